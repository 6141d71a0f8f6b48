//! The control connection: bounded reply lines in, command lines out.
//!
//! Every reply line is read with a hard length limit and every wait with a timeout, so a hostile
//! or broken server can neither eat memory nor hang the client. Command arguments containing CR
//! or LF are refused before anything is sent, so a file name cannot smuggle in a second command.

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::reply::{Reply, ReplyParser};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::error::FtpError;
use crate::stream::Stream;
use crate::tls::TlsContext;
use crate::transcript::{masked, Transcript};

/// Size limits and the reply timeout of a control connection.
#[derive(Debug, Clone, Copy)]
pub struct ControlLimits {
    /// Longest reply line accepted, in bytes, without CRLF.
    pub max_line: usize,
    /// Most lines accepted in one multi-line reply.
    pub max_reply_lines: usize,
    /// How long to wait for a reply.
    pub reply_timeout: Duration,
}

/// One control connection, plain or TLS.
pub struct Control {
    reader: BufReader<Stream>,
    limits: ControlLimits,
    transcript: Option<Arc<dyn Transcript>>,
    /// Replies can no longer be told apart (some were never read): nothing more is sent.
    out_of_step: bool,
}

impl Control {
    pub fn new(
        stream: Stream,
        limits: ControlLimits,
        transcript: Option<Arc<dyn Transcript>>,
    ) -> Self {
        Control {
            reader: BufReader::new(stream),
            limits,
            transcript,
            out_of_step: false,
        }
    }

    /// Gives the connection up: the replies it would read next may answer earlier commands,
    /// so every later command fails ([`FtpError::ConnectionClosed`]) rather than take them.
    pub fn give_up(&mut self) {
        self.out_of_step = true;
    }

    /// The connection, for its TLS state.
    pub fn stream(&self) -> &Stream {
        self.reader.get_ref()
    }

    /// Runs the TLS handshake on this (plain) connection, after the server's 234 to AUTH TLS
    /// (RFC 4217 §4). Bytes the server sent after its 234 and before the handshake would be
    /// read as if protected, so they are refused.
    pub async fn start_tls(
        &mut self,
        context: &TlsContext,
        timeout: std::time::Duration,
    ) -> Result<(), FtpError> {
        if !self.reader.buffer().is_empty() {
            return Err(FtpError::TlsHandshake {
                server: "the server".into(),
                error: "it sent data between its 234 reply and the TLS handshake".into(),
            });
        }
        let Some(tcp) = self.reader.get_mut().take_plain() else {
            return Err(FtpError::TlsSetup(
                "the control connection is already TLS".into(),
            ));
        };
        let tls = context.handshake(tcp, timeout).await?;
        *self.reader.get_mut() = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Replaces the observer of this connection.
    pub fn set_transcript(&mut self, transcript: Option<Arc<dyn Transcript>>) {
        self.transcript = transcript;
    }

    /// Sends one command line; CRLF is added here.
    pub async fn send(&mut self, line: &str) -> Result<(), FtpError> {
        if self.out_of_step {
            return Err(FtpError::ConnectionClosed);
        }
        if line.contains(['\r', '\n']) {
            return Err(FtpError::InvalidArgument(masked(line)));
        }
        if let Some(transcript) = &self.transcript {
            transcript.sent(&masked(line));
        }
        let wire = format!("{line}\r\n");
        let writer = self.reader.get_mut();
        writer
            .write_all(wire.as_bytes())
            .await
            .map_err(FtpError::ControlIo)?;
        writer.flush().await.map_err(FtpError::ControlIo)
    }

    /// Reads one complete reply, preliminary (1yz) ones included.
    pub async fn read_reply(&mut self) -> Result<Reply, FtpError> {
        let seconds = self.limits.reply_timeout.as_secs();
        let reply = tokio::time::timeout(self.limits.reply_timeout, self.read_reply_untimed())
            .await
            .map_err(|_| FtpError::ReplyTimeout { seconds })??;
        if let Some(transcript) = &self.transcript {
            transcript.reply(&reply);
        }
        Ok(reply)
    }

    /// Reads replies until one that is not preliminary (not 1yz).
    pub async fn read_final_reply(&mut self) -> Result<Reply, FtpError> {
        loop {
            let reply = self.read_reply().await?;
            if reply.class() != 1 {
                return Ok(reply);
            }
        }
    }

    /// Waits until reply bytes arrive, without consuming them (safe to cancel in `select!`).
    pub async fn readable(&mut self) -> Result<(), FtpError> {
        let buffer = self.reader.fill_buf().await.map_err(FtpError::ControlIo)?;
        if buffer.is_empty() {
            return Err(FtpError::ConnectionClosed);
        }
        Ok(())
    }

    /// Sends a command and returns its first reply (which may be preliminary).
    pub async fn command(&mut self, line: &str) -> Result<Reply, FtpError> {
        self.send(line).await?;
        self.read_reply().await
    }

    /// Sends a command and returns its final reply.
    pub async fn command_final(&mut self, line: &str) -> Result<Reply, FtpError> {
        self.send(line).await?;
        self.read_final_reply().await
    }

    async fn read_reply_untimed(&mut self) -> Result<Reply, FtpError> {
        let mut parser = ReplyParser::new(self.limits.max_reply_lines);
        loop {
            let line = read_bounded_line(&mut self.reader, self.limits.max_line).await?;
            if let Some(reply) = parser.push_line(&line)? {
                return Ok(reply);
            }
        }
    }
}

/// Reads one line ending in LF (a CR before it is dropped), refusing lines longer than
/// `max_line` bytes instead of buffering them.
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max_line: usize,
) -> Result<String, FtpError> {
    let mut line = Vec::new();
    loop {
        let buffer = reader.fill_buf().await.map_err(FtpError::ControlIo)?;
        if buffer.is_empty() {
            return Err(FtpError::ConnectionClosed);
        }
        let (chunk, complete) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..end + 1], true),
            None => (buffer, false),
        };
        // Two bytes of slack for the CRLF itself.
        if line.len() + chunk.len() > max_line + 2 {
            return Err(FtpError::LineTooLong { limit: max_line });
        }
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if complete {
            return Ok(strip_line_end(line));
        }
    }
}

fn strip_line_end(mut line: Vec<u8>) -> String {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<String, String>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        for _ in 0..10 {
            match read_bounded_line(&mut reader, max).await {
                Err(FtpError::ConnectionClosed) => break,
                other => out.push(other.map_err(|e| e.to_string())),
            }
        }
        out
    }

    #[tokio::test]
    async fn splits_crlf_and_bare_lf() {
        let got = lines(b"220 a\r\n221 bb\n", 100).await;
        assert_eq!(got, vec![Ok("220 a".into()), Ok("221 bb".into())]);
    }

    #[tokio::test]
    async fn refuses_a_long_line() {
        let got = lines(b"220 0123456789\r\n", 8).await;
        assert!(got[0].as_ref().is_err_and(|e| e.contains("longer than 8")));
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_passes() {
        let got = lines(b"12345678\r\n", 8).await;
        assert_eq!(got, vec![Ok("12345678".into())]);
    }
}
