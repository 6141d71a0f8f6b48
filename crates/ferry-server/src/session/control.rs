//! The control connection: bounded frames in, replies out.

use std::collections::VecDeque;

use ferry_proto::{Frame, LineFramer, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 1024;

/// One session's control connection.
#[derive(Debug)]
pub struct Control {
    reader: OwnedReadHalf,
    writer: BufWriter<OwnedWriteHalf>,
    framer: LineFramer,
    frames: VecDeque<Frame>,
    scratch: Vec<Frame>,
}

impl Control {
    pub fn new(stream: TcpStream, max_line: usize) -> Self {
        let (reader, writer) = stream.into_split();
        Control {
            reader,
            writer: BufWriter::with_capacity(1024, writer),
            framer: LineFramer::new(max_line),
            frames: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// The next frame, or `None` when the client has closed the connection (or it broke).
    ///
    /// Cancel-safe: the only await point is the socket read, and bytes are framed as soon as
    /// they arrive, so dropping this future loses nothing.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            let mut buffer = [0u8; READ_CHUNK];
            match self.reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => {
                    let read = read + self.read_past_urgent_mark(&mut buffer[read..]);
                    self.framer.push(&buffer[..read], &mut self.scratch);
                    self.frames.extend(self.scratch.drain(..));
                }
            }
        }
    }

    /// A read stops at the TCP urgent mark (clients send ABOR, or Telnet's IAC DM, as urgent
    /// data), and after such a short read tokio assumes the socket is drained and waits for new
    /// data that may never come. Reads on directly, without waiting, until the socket is empty.
    fn read_past_urgent_mark(&self, buffer: &mut [u8]) -> usize {
        let socket = socket2::SockRef::from(self.reader.as_ref());
        let mut total = 0;
        while total < buffer.len() {
            match std::io::Read::read(&mut &*socket, &mut buffer[total..]) {
                Ok(0) | Err(_) => break,
                Ok(read) => total += read,
            }
        }
        total
    }

    /// Sends one reply and flushes it.
    pub async fn send(&mut self, reply: &Reply) -> std::io::Result<()> {
        self.writer.write_all(&reply.to_wire()).await?;
        self.writer.flush().await
    }

    /// Closes the sending side (FIN), after everything written has gone out.
    pub async fn close(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}
