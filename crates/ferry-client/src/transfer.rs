//! Transfers over a data connection: RETR, STOR, APPE and the listings (LIST, NLST, MLSD).
//!
//! Each transfer opens its data connection first (passive, or active as a fallback), sends
//! REST when resuming, sends the command, then moves the bytes with a timeout on every read and
//! write, and succeeds only on the server's 2yz final reply. On any failure after the server
//! said 1yz, ABOR resynchronises the control connection.
//!
//! After PROT P every data connection is TLS, resuming the control connection's session. A
//! protected download must end with the server's close_notify: a bare end of the TCP stream
//! could be an attacker cutting the file short, so it is an error (the `.part` file stays).

use std::time::{Duration, Instant};

use ferry_proto::ascii::{lf_to_crlf, CrlfDecoder};
use ferry_proto::command::TransferType;
use ferry_proto::list_parse::{parse_list_counted, parse_mlsd, RemoteEntry};
use ferry_proto::reply::Reply;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{negative, Client};
use crate::data::PendingData;
use crate::deflate::{Deflater, Inflater};
use crate::error::FtpError;
use crate::stream::Stream;
use crate::tls::{TlsContext, TlsInfo};
use crate::trace::{DataLink, Opener, TransferEnd};

const CHUNK: usize = 64 * 1024;

/// What a download is: the command line, the file it names, where it starts.
struct Request<'a> {
    line: String,
    path: &'a str,
    offset: u64,
    ascii: bool,
}

impl Client {
    /// Downloads `path` into `writer` (RETR, RFC 959 §4.1.3), starting at byte `offset` (REST,
    /// RFC 3659 §5) when it is not 0. Returns the number of bytes written to `writer`.
    ///
    /// A binary resumption asks SIZE first: some servers answer a REST past the end with no
    /// byte and 226, which would pass a stale longer file for a whole one. An offset past the
    /// end is [`FtpError::ResumePastEnd`]; one at the end moves nothing (`Ok(0)`).
    pub async fn retrieve<W: AsyncWrite + Unpin>(
        &mut self,
        path: &str,
        writer: &mut W,
        offset: u64,
    ) -> Result<u64, FtpError> {
        let ascii = self.transfer_type == TransferType::Ascii;
        if offset > 0 && !ascii {
            match self.size(path).await {
                Ok(size) if size < offset => {
                    return Err(FtpError::ResumePastEnd {
                        path: path.to_string(),
                        offset,
                        size,
                    })
                }
                Ok(size) if size == offset => return Ok(0),
                // No SIZE (or not for this file): the server's REST decides.
                Ok(_) => {}
                Err(error) if error.is_fatal() => return Err(error),
                Err(_) => {}
            }
        }
        let request = Request {
            line: format!("RETR {path}"),
            path,
            offset,
            ascii,
        };
        self.download(request, writer, None).await
    }

    /// Downloads at most `length` bytes of `path` from byte `offset` (REST then RETR) into
    /// `writer`, for one segment of a parallel download. Once `length` bytes are in, the data
    /// connection is closed and the control connection brought back in step (NOOP, reading
    /// every reply up to its 200); a file that ends sooner ends the segment early.
    pub async fn retrieve_range<W: AsyncWrite + Unpin>(
        &mut self,
        path: &str,
        writer: &mut W,
        offset: u64,
        length: u64,
    ) -> Result<u64, FtpError> {
        if self.mode_z {
            // A range is counted in the file's bytes, which MODE Z does not show: this one
            // goes in MODE S.
            self.set_mode_z(false).await?;
            let result = Box::pin(self.retrieve_range(path, writer, offset, length)).await;
            self.set_mode_z(true).await?;
            return result;
        }
        let stream = self
            .start_transfer(&format!("RETR {path}"), path, offset)
            .await?;
        let timeout = self.config.data_timeout;
        match receive_at_most(stream, writer, path, timeout, length).await {
            Ok((count, true)) => self.finish_transfer(Ok(count), path).await,
            Ok((count, false)) => {
                self.resync().await?;
                Ok(count)
            }
            Err(error) => self.finish_transfer(Err(error), path).await,
        }
    }

    /// After a data connection the client closed early: NOOP, and every reply until its 200
    /// (the transfer's 426/451/226 come first), five at most.
    async fn resync(&mut self) -> Result<(), FtpError> {
        self.control.send("NOOP").await?;
        for _ in 0..5 {
            if self.control.read_final_reply().await?.code == 200 {
                return Ok(());
            }
        }
        Err(FtpError::UnexpectedReply {
            command: "NOOP".into(),
            reply: Reply::new(0, "no 200 reply to NOOP after a closed download"),
        })
    }

    /// Uploads `reader` as `path` (STOR, RFC 959 §4.1.3); with `offset` > 0 the server is told to
    /// write from that byte on (REST before STOR), for resuming an upload.
    pub async fn store<R: AsyncRead + Unpin>(
        &mut self,
        path: &str,
        reader: &mut R,
        offset: u64,
    ) -> Result<u64, FtpError> {
        self.upload(&format!("STOR {path}"), path, reader, offset)
            .await
    }

    /// Appends `reader` to the remote file `path` (APPE, RFC 959 §4.1.3).
    pub async fn append<R: AsyncRead + Unpin>(
        &mut self,
        path: &str,
        reader: &mut R,
    ) -> Result<u64, FtpError> {
        self.upload(&format!("APPE {path}"), path, reader, 0).await
    }

    /// Writes the server's LIST output (RFC 959 §4.1.3) into `writer`, line ends made LF.
    pub async fn list_into<W: AsyncWrite + Unpin>(
        &mut self,
        path: Option<&str>,
        writer: &mut W,
    ) -> Result<u64, FtpError> {
        let request = listing_request("LIST", path);
        self.download(request, writer, None).await
    }

    /// Writes the server's NLST output (RFC 959 §4.1.3) into `writer`, line ends made LF.
    pub async fn nlst_into<W: AsyncWrite + Unpin>(
        &mut self,
        path: Option<&str>,
        writer: &mut W,
    ) -> Result<u64, FtpError> {
        let request = listing_request("NLST", path);
        self.download(request, writer, None).await
    }

    /// Writes the server's MLSD output (RFC 3659 §7) into `writer`, line ends made LF.
    pub async fn mlsd_into<W: AsyncWrite + Unpin>(
        &mut self,
        path: Option<&str>,
        writer: &mut W,
    ) -> Result<u64, FtpError> {
        let request = listing_request("MLSD", path);
        self.download(request, writer, None).await
    }

    /// The LIST output as text (at most `max_listing` bytes).
    pub async fn list(&mut self, path: Option<&str>) -> Result<String, FtpError> {
        self.listing("LIST", path).await
    }

    /// The names NLST gives (RFC 959 §4.1.3).
    pub async fn nlst(&mut self, path: Option<&str>) -> Result<Vec<String>, FtpError> {
        let text = self.listing("NLST", path).await?;
        Ok(text
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The entries MLSD gives (RFC 3659 §7), without the `.`/`..` entries.
    pub async fn mlsd(&mut self, path: Option<&str>) -> Result<Vec<RemoteEntry>, FtpError> {
        let text = self.listing("MLSD", path).await?;
        Ok(without_dot_entries(parse_mlsd(&text)))
    }

    /// The entries of a directory: MLSD when the server announces MLST in FEAT, else LIST
    /// parsed as `ls -l`, DOS or EPLF lines. `now` (seconds since the epoch) dates `ls -l`
    /// entries that show no year.
    pub async fn entries(
        &mut self,
        path: Option<&str>,
        now: i64,
    ) -> Result<Vec<RemoteEntry>, FtpError> {
        Ok(self.entries_counted(path, now).await?.0)
    }

    /// [`Client::entries`], and how many lines of a LIST could not be read as entries (in a
    /// format no parser knows): the listing may then lack entries the folder has, which a
    /// mirror must not delete on its word.
    pub async fn entries_counted(
        &mut self,
        path: Option<&str>,
        now: i64,
    ) -> Result<(Vec<RemoteEntry>, usize), FtpError> {
        if self.features().await?.has("MLST") {
            return Ok((self.mlsd(path).await?, 0));
        }
        let text = self.listing("LIST", path).await?;
        let (entries, unread) = parse_list_counted(&text, now);
        Ok((without_dot_entries(entries), unread))
    }

    async fn listing(&mut self, verb: &str, path: Option<&str>) -> Result<String, FtpError> {
        let mut body = Vec::new();
        let limit = Some(self.config.max_listing);
        self.download(listing_request(verb, path), &mut body, limit)
            .await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn download<W: AsyncWrite + Unpin>(
        &mut self,
        request: Request<'_>,
        writer: &mut W,
        limit: Option<usize>,
    ) -> Result<u64, FtpError> {
        let stream = self
            .start_transfer(&request.line, request.path, request.offset)
            .await?;
        let timeout = self.config.data_timeout;
        let started = Instant::now();
        let inflater = self.mode_z.then(Inflater::new);
        let copied = receive(stream, writer, &request, timeout, limit, inflater).await;
        self.data_ended(started, false, &copied);
        self.finish_transfer(copied, request.path).await
    }

    async fn upload<R: AsyncRead + Unpin>(
        &mut self,
        line: &str,
        path: &str,
        reader: &mut R,
        offset: u64,
    ) -> Result<u64, FtpError> {
        let stream = self.start_transfer(line, path, offset).await?;
        let ascii = self.transfer_type == TransferType::Ascii;
        let timeout = self.config.data_timeout;
        let started = Instant::now();
        let deflater = self.mode_z.then(Deflater::new);
        let copied = send(stream, reader, ascii, timeout, path, deflater).await;
        self.data_ended(started, true, &copied);
        self.finish_transfer(copied, path).await
    }

    /// Opens the data connection and sends REST and the command; returns the data stream once
    /// the server said 1yz and (in active mode) connected.
    async fn start_transfer(
        &mut self,
        line: &str,
        path: &str,
        offset: u64,
    ) -> Result<Stream, FtpError> {
        let pending = self.open_data().await?;
        if offset > 0 {
            let reply = self
                .control
                .command_final(&format!("REST {offset}"))
                .await?;
            if reply.code != 350 {
                return Err(negative(reply, "REST", None));
            }
        }
        let reply = self.control.command(line).await?;
        if reply.class() != 1 {
            let verb = line.split(' ').next().unwrap_or(line);
            return Err(negative(reply, verb, Some(path)));
        }
        match self.await_data_connection(pending, path).await {
            Ok(stream) => Ok(stream),
            Err(error) => Err(self.abort_after(error).await),
        }
    }

    /// Waits for the data connection (and its TLS handshake after PROT P); a reply on the
    /// control connection first (425, or vsftpd's 522 when TLS session reuse fails) means the
    /// server gave up, so that is watched too.
    async fn await_data_connection(
        &mut self,
        pending: PendingData,
        path: &str,
    ) -> Result<Stream, FtpError> {
        let peer = self.peer.ip();
        let opener = match pending {
            PendingData::Connected(_) => Opener::Client,
            PendingData::Listening(_) => Opener::Server,
        };
        let timeout = self.config.data_timeout;
        let tls = self.tls.clone().filter(|_| self.data_protected);
        let establish = async move {
            let tcp = pending.establish(peer, timeout).await?;
            secure_data(tcp, tls.as_ref(), timeout).await
        };
        tokio::pin!(establish);
        let result = tokio::select! {
            biased;
            stream = &mut establish => stream,
            readable = self.control.readable() => {
                readable?;
                let reply = self.control.read_final_reply().await?;
                return Err(FtpError::TransferFailed { path: path.to_string(), reply });
            }
        };
        match result {
            Ok(stream) => {
                self.last_data_tls = stream.tls_connection().map(TlsInfo::of);
                self.data_started(&stream, opener);
                Ok(stream)
            }
            Err(error) => Err(self.server_reason(error, path).await),
        }
    }

    /// Tells the transcript that a data connection is up.
    fn data_started(&mut self, stream: &Stream, opener: Opener) {
        self.data_link = stream.addrs().map(|(local, remote)| DataLink {
            local,
            remote,
            opener,
        });
        let Some(transcript) = &self.config.transcript else {
            return;
        };
        if let Some(link) = &self.data_link {
            transcript.data_connected(link);
        }
        if let Some(info) = &self.last_data_tls {
            transcript.tls_handshake(self.data_link.as_ref(), info);
        }
    }

    /// Tells the transcript that the data connection has moved its bytes and is closed.
    fn data_ended(&mut self, started: Instant, upload: bool, copied: &Result<u64, FtpError>) {
        let Some(link) = self.data_link.take() else {
            return;
        };
        let end = TransferEnd {
            bytes: copied.as_ref().ok().copied(),
            elapsed: started.elapsed(),
            upload,
            error: copied.as_ref().err().map(ToString::to_string),
        };
        if let Some(transcript) = &self.config.transcript {
            transcript.data_finished(&link, &end);
        }
    }

    /// When a data connection failed, the server may have said why on the control connection
    /// (522 for a TLS session that was not resumed, say): that reply, if it comes quickly.
    async fn server_reason(&mut self, error: FtpError, path: &str) -> FtpError {
        if !matches!(error, FtpError::DataConnection(_)) {
            return error;
        }
        let wait = Duration::from_millis(500).min(self.config.reply_timeout);
        match tokio::time::timeout(wait, self.control.readable()).await {
            Ok(Ok(())) => match self.control.read_final_reply().await {
                Ok(reply) if reply.class() >= 4 => FtpError::TransferFailed {
                    path: path.to_string(),
                    reply,
                },
                _ => error,
            },
            _ => error,
        }
    }

    /// Reads the final reply of a transfer whose bytes were moved (or not).
    async fn finish_transfer(
        &mut self,
        copied: Result<u64, FtpError>,
        path: &str,
    ) -> Result<u64, FtpError> {
        let count = match copied {
            Ok(count) => count,
            Err(error) => return Err(self.abort_after(error).await),
        };
        let reply =
            match self.control.read_final_reply().await {
                Ok(reply) => reply,
                // The server went away before confirming the transfer (killed, say): what arrived
                // may be short, so the transfer is broken, not merely the connection lost.
                Err(FtpError::ConnectionClosed) => return Err(FtpError::TransferBroken {
                    path: path.to_string(),
                    error: std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the server closed the control connection before confirming the transfer",
                    ),
                }),
                Err(error) => return Err(error),
            };
        if reply.class() == 2 {
            Ok(count)
        } else {
            Err(FtpError::TransferFailed {
                path: path.to_string(),
                reply,
            })
        }
    }

    /// Sends ABOR after a failed transfer and reads the replies it causes: 426 for the
    /// transfer then 226 (RFC 959 §4.1.3), or, when the transfer had ended, its 226 then the
    /// ABOR's 225 or 226, or the ABOR's alone. How many is not known, so PWD follows, whose 257
    /// no ABOR gives: once it is read, the replies are in step again. When it does not come
    /// (within a few seconds), the connection is given up rather than read out of step.
    async fn abort_after(&mut self, error: FtpError) -> FtpError {
        if error.is_fatal() || self.control.send("ABOR").await.is_err() {
            return error;
        }
        if self.control.send("PWD").await.is_err() {
            return error;
        }
        let wait = self.config.reply_timeout.min(Duration::from_secs(5));
        for _ in 0..8 {
            match tokio::time::timeout(wait, self.control.read_reply()).await {
                Ok(Ok(reply)) if reply.code == 257 => return error,
                Ok(Ok(_)) => continue,
                _ => break,
            }
        }
        self.control.give_up();
        error
    }
}

/// Wraps a data connection in TLS when the session protects data (PROT P).
async fn secure_data(
    tcp: TcpStream,
    tls: Option<&TlsContext>,
    timeout: Duration,
) -> Result<Stream, FtpError> {
    let Some(context) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    match context.handshake(tcp, timeout).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
        Err(error) => Err(FtpError::DataConnection(format!("TLS: {error}"))),
    }
}

fn listing_request<'a>(verb: &str, path: Option<&'a str>) -> Request<'a> {
    let line = match path {
        Some(path) => format!("{verb} {path}"),
        None => verb.to_string(),
    };
    Request {
        line,
        path: path.unwrap_or("."),
        offset: 0,
        ascii: true,
    }
}

fn without_dot_entries(entries: Vec<RemoteEntry>) -> Vec<RemoteEntry> {
    entries
        .into_iter()
        .filter(|e| e.name != "." && e.name != ".." && !e.name.contains('/'))
        .collect()
}

/// Copies the data connection into `writer`, inflating it in MODE Z, then decoding CRLF in
/// ASCII mode.
async fn receive<W: AsyncWrite + Unpin>(
    mut stream: Stream,
    writer: &mut W,
    request: &Request<'_>,
    timeout: Duration,
    limit: Option<usize>,
    mut inflater: Option<Inflater>,
) -> Result<u64, FtpError> {
    let mut buffer = vec![0; CHUNK];
    let mut decoder = request.ascii.then(CrlfDecoder::new);
    let (mut decoded, mut inflated, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = 0u64;
    loop {
        let read = timed(timeout, "receiving data", stream.read(&mut buffer)).await?;
        let read = read.map_err(|error| broken(request.path, error))?;
        // MODE Z: the zlib stream's bytes become the file's (a chunk may inflate to many).
        plain.clear();
        let raw: &[u8] = match &mut inflater {
            Some(inflater) => {
                inflater.inflate(&buffer[..read], &mut inflated, |bytes| {
                    plain.extend_from_slice(bytes);
                    Ok(())
                })?;
                if read == 0 {
                    inflater.finish()?;
                }
                &plain
            }
            None => &buffer[..read],
        };
        decoded.clear();
        match (&mut decoder, read) {
            (Some(decoder), 0) => decoder.finish(&mut decoded),
            (Some(decoder), _) => decoder.decode(raw, &mut decoded),
            (None, _) => decoded.extend_from_slice(raw),
        }
        total += decoded.len() as u64;
        if limit.is_some_and(|limit| total > limit as u64) {
            return Err(FtpError::ListingTooLarge {
                limit: limit.unwrap_or_default(),
            });
        }
        writer.write_all(&decoded).await.map_err(FtpError::Local)?;
        if plain.capacity() > 4 * CHUNK {
            plain = Vec::new();
        }
        if read == 0 {
            writer.flush().await.map_err(FtpError::Local)?;
            close_politely(&mut stream).await;
            return Ok(total);
        }
    }
}

/// Copies up to `length` bytes of the data connection into `writer`; says whether the stream
/// ended by itself (`true`) or was cut at `length` (`false`).
async fn receive_at_most<W: AsyncWrite + Unpin>(
    mut stream: Stream,
    writer: &mut W,
    path: &str,
    timeout: Duration,
    length: u64,
) -> Result<(u64, bool), FtpError> {
    let mut buffer = vec![0; CHUNK];
    let mut total = 0u64;
    while total < length {
        let want = (length - total).min(CHUNK as u64) as usize;
        let read = timed(timeout, "receiving data", stream.read(&mut buffer[..want])).await?;
        let read = read.map_err(|error| broken(path, error))?;
        if read == 0 {
            writer.flush().await.map_err(FtpError::Local)?;
            close_politely(&mut stream).await;
            return Ok((total, true));
        }
        writer
            .write_all(&buffer[..read])
            .await
            .map_err(FtpError::Local)?;
        total += read as u64;
    }
    writer.flush().await.map_err(FtpError::Local)?;
    Ok((total, false))
}

/// Copies `reader` into the data connection, encoding LF as CRLF in ASCII mode (then
/// deflating, in MODE Z), then closes it.
async fn send<R: AsyncRead + Unpin>(
    mut stream: Stream,
    reader: &mut R,
    ascii: bool,
    timeout: Duration,
    path: &str,
    mut deflater: Option<Deflater>,
) -> Result<u64, FtpError> {
    let mut buffer = vec![0; CHUNK];
    let (mut encoded, mut deflated) = (Vec::new(), Vec::new());
    let mut total = 0u64;
    loop {
        let read = reader.read(&mut buffer).await.map_err(FtpError::Local)?;
        total += read as u64;
        let bytes = if ascii {
            encoded.clear();
            lf_to_crlf(&buffer[..read], &mut encoded);
            &encoded[..]
        } else {
            &buffer[..read]
        };
        let bytes = match &mut deflater {
            Some(deflater) => {
                deflater.deflate(bytes, &mut deflated, read == 0);
                &deflated[..]
            }
            None => bytes,
        };
        if !bytes.is_empty() {
            let written = timed(timeout, "sending data", stream.write_all(bytes)).await?;
            written.map_err(|error| broken(path, error))?;
        }
        if read == 0 {
            break;
        }
    }
    let closed = timed(timeout, "closing the data connection", stream.shutdown()).await?;
    closed.map_err(|error| broken(path, error))?;
    drain_until_closed(&mut stream, timeout).await;
    Ok(total)
}

/// After an upload's close_notify, reads what the server still sends (TLS 1.3 session tickets,
/// its close_notify) until it closes, briefly: closing a socket with unread bytes resets the
/// connection, and the server could then lose the end of the upload.
async fn drain_until_closed(stream: &mut Stream, timeout: Duration) {
    if !stream.is_tls() {
        return;
    }
    let mut buffer = [0u8; 4096];
    let wait = timeout.min(Duration::from_secs(10));
    let drain = async {
        for _ in 0..64 {
            if matches!(stream.read(&mut buffer).await, Ok(0) | Err(_)) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(wait, drain).await;
}

async fn timed<T>(
    timeout: Duration,
    action: &'static str,
    future: impl std::future::Future<Output = T>,
) -> Result<T, FtpError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| FtpError::DataTimeout {
            action,
            seconds: timeout.as_secs(),
        })
}

/// After a TLS download ended with the server's close_notify, answers with ours (briefly).
async fn close_politely(stream: &mut Stream) {
    if stream.is_tls() {
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
    }
}

/// A broken transfer; a TLS stream cut without close_notify is named as possibly truncated.
fn broken(path: &str, error: std::io::Error) -> FtpError {
    let error = match error.kind() {
        std::io::ErrorKind::UnexpectedEof => std::io::Error::new(
            error.kind(),
            format!("the data connection ended without TLS close_notify, the data may be truncated ({error})"),
        ),
        _ => error,
    };
    FtpError::TransferBroken {
        path: path.to_string(),
        error,
    }
}
