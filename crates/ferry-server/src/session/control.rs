//! The control connection: bounded frames in, replies out, and the switch to TLS (AUTH TLS).

use std::time::Duration;

use ferry_proto::{Frame, LineFramer, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::stream::MaybeTls;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 1024;

/// One session's control connection.
#[derive(Debug)]
pub struct Control {
    /// `None` only while the connection is being switched to TLS.
    stream: Option<MaybeTls>,
    framer: LineFramer,
    max_line: usize,
    /// How long a reply may wait for a client that does not read.
    send_limit: Duration,
    /// Frames read but not yet handed out, from `next` on. Usually one (a command and its
    /// reply take turns); emptied when all are out, so an idle session holds no buffer.
    frames: Vec<Frame>,
    next: usize,
    /// Replies held back to leave with the next one (see [`Self::hold`]).
    held: Vec<u8>,
}

impl Control {
    pub fn new(stream: TcpStream, max_line: usize, send_limit: Duration) -> Self {
        Control {
            stream: Some(MaybeTls::Plain(stream)),
            framer: LineFramer::new(max_line),
            max_line,
            send_limit,
            frames: Vec::new(),
            next: 0,
            held: Vec::new(),
        }
    }

    /// The control connection's TLS handshake resumed an earlier TLS session.
    pub fn tls_resumed(&self) -> bool {
        match &self.stream {
            Some(MaybeTls::Tls(tls)) => {
                tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
            }
            _ => false,
        }
    }

    /// Whether the control connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MaybeTls::is_tls)
    }

    /// The next frame, or `None` when the client has closed the connection (or it broke).
    ///
    /// Cancel-safe: bytes are framed as soon as they are read, and the awaits hold none.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.frames.get_mut(self.next) {
                let frame = std::mem::replace(frame, Frame::Overlong);
                self.next += 1;
                if self.next == self.frames.len() {
                    self.frames = Vec::new();
                    self.next = 0;
                }
                return Some(frame);
            }
            match self.stream.as_mut()? {
                MaybeTls::Plain(tcp) => {
                    let (framer, frames) = (&mut self.framer, &mut self.frames);
                    std::future::poll_fn(|cx| poll_read_plain(tcp, framer, frames, cx)).await?
                }
                MaybeTls::Tls(tls) => {
                    let (framer, frames) = (&mut self.framer, &mut self.frames);
                    std::future::poll_fn(|cx| poll_read_tls(tls, framer, frames, cx)).await?
                }
            }
        }
    }

    /// Keeps `reply` to be sent together with the next one (by [`Self::send`] or
    /// [`Self::flush`]): one write and one segment where the two would leave a moment apart
    /// anyway, as a preliminary reply and the final one of a download that is over at once.
    pub fn hold(&mut self, reply: &Reply) {
        self.held.extend_from_slice(&reply.to_wire());
    }

    /// Sends the held replies, if any.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let wire = std::mem::take(&mut self.held);
        self.write(&wire).await
    }

    /// Sends one reply (after any held ones) and flushes it; a client that does not read its
    /// replies within the send limit loses the connection (the error ends the session).
    pub async fn send(&mut self, reply: &Reply) -> std::io::Result<()> {
        let mut wire = reply.to_wire();
        if !self.held.is_empty() {
            let mut held = std::mem::take(&mut self.held);
            held.append(&mut wire);
            wire = held;
        }
        self.write(&wire).await
    }

    /// Sends a single-line reply (after any held ones): written straight into the buffer that
    /// is sent, no `Reply` made.
    pub async fn send_line(&mut self, code: u16, text: &str) -> std::io::Result<()> {
        let mut wire = std::mem::take(&mut self.held);
        ferry_proto::reply::write_line(&mut wire, code, text);
        self.write(&wire).await
    }

    /// Sends bytes already in wire form (part of a multi-line reply sent as it is made), after
    /// any held replies.
    pub async fn send_wire(&mut self, wire: &[u8]) -> std::io::Result<()> {
        self.flush().await?;
        self.write(wire).await
    }

    async fn write(&mut self, wire: &[u8]) -> std::io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(closed)?;
        // A reply nearly always fits in the socket's send buffer: written at once, it needs no
        // timer for the send limit (arming and dropping one costs more than the write). Only
        // what does not fit goes through the timed path.
        let mut wire = wire;
        if let MaybeTls::Plain(tcp) = stream {
            match tcp.try_write(wire) {
                Ok(written) if written == wire.len() => return Ok(()),
                Ok(written) => wire = &wire[written..],
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        let send = async {
            stream.write_all(wire).await?;
            stream.flush().await
        };
        // Boxed: rarely taken, and every reply's future (held by the session while it sends)
        // would otherwise have room for the timer and the write.
        Box::pin(tokio::time::timeout(self.send_limit, send))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client does not read its replies",
                )
            })?
    }

    /// Runs the TLS handshake on the connection (after `234` to AUTH TLS, or at once for
    /// implicit FTPS). Whatever the client sent in the clear before it is thrown away, so no
    /// command can be slipped in unprotected (the STARTTLS injection attack).
    /// Returns the server name the client asked for (SNI), if it sent one.
    pub async fn start_tls(
        &mut self,
        acceptor: &TlsAcceptor,
        limit: Duration,
    ) -> std::io::Result<Option<String>> {
        self.frames = Vec::new();
        self.next = 0;
        self.framer = LineFramer::new(self.max_line);
        let Some(MaybeTls::Plain(tcp)) = self.stream.take() else {
            return Err(std::io::Error::other(
                "the control connection is already TLS",
            ));
        };
        let tls = tokio::time::timeout(limit, acceptor.accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let server_name = tls.get_ref().1.server_name().map(str::to_string);
        self.stream = Some(MaybeTls::Tls(Box::new(tls)));
        Ok(server_name)
    }

    /// CCC: closes TLS on the control connection (close_notify both ways) and goes on in the
    /// clear.
    pub async fn end_tls(&mut self, limit: Duration) -> std::io::Result<()> {
        let Some(MaybeTls::Tls(mut tls)) = self.stream.take() else {
            return Err(std::io::Error::other("the control connection is not TLS"));
        };
        tls.get_mut().1.send_close_notify();
        tokio::time::timeout(limit, tls.flush())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "CCC timed out"))??;
        // Wait for the client's close_notify, which ends the TLS stream.
        let mut sink = [0u8; 256];
        let drained = tokio::time::timeout(limit, async {
            while tls.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        });
        let _ = drained.await;
        self.frames = Vec::new();
        self.next = 0;
        self.framer = LineFramer::new(self.max_line);
        self.stream = Some(MaybeTls::Plain(tls.into_inner().0));
        Ok(())
    }

    /// Holds back what is sent from now on until [`Self::close`], so the last reply and the
    /// FIN leave in one segment (TCP_CORK; the shutdown sends what it holds).
    pub fn hold_until_close(&self) {
        if let Some(stream) = &self.stream {
            let _ = socket2::SockRef::from(stream.tcp()).set_cork(true);
        }
    }

    /// Closes the sending side (FIN; for TLS, close_notify first), within the time a reply
    /// may take: a client that does not read leaves no room for the close_notify, and the
    /// session must still end.
    pub async fn close(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(self.send_limit, stream.shutdown()).await;
        }
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "control connection closed",
    )
}

/// Waits for the socket to be readable, then reads what is there into `framer`. The buffer lives
/// only between the wakeup and the read, so an idle session (the common state) holds none, and
/// the bytes go from it to the framer without a copy on the heap.
///
/// A poll function rather than `readable().await`: the wait then keeps the task's waker in the
/// socket's own reader slot, where `readable()`'s future would hold a 150-byte waiter node in
/// every idle session's state.
///
/// `try_read` keeps the socket marked readable after a short read, so bytes that a read left
/// behind come with the next one: a read stops at the TCP urgent mark, where clients put ABOR
/// (or Telnet's IAC DM) when they send it as urgent data.
fn poll_read_plain(
    tcp: &TcpStream,
    framer: &mut LineFramer,
    frames: &mut Vec<Frame>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<()>> {
    use std::task::Poll;
    loop {
        match tcp.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(None),
            Poll::Ready(Ok(())) => {}
        }
        let mut buffer = [0u8; READ_CHUNK];
        match tcp.try_read(&mut buffer) {
            Ok(0) => return Poll::Ready(None),
            Ok(read) => {
                framer.push(&buffer[..read], frames);
                return Poll::Ready(Some(()));
            }
            // Readiness is cleared: the next poll waits.
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Poll::Ready(None),
        }
    }
}

/// Reads what rustls has decrypted into `framer` (clients do not send urgent data over TLS).
/// Like [`poll_read_plain`], the buffer lives only for the read.
fn poll_read_tls(
    tls: &mut tokio_rustls::server::TlsStream<TcpStream>,
    framer: &mut LineFramer,
    frames: &mut Vec<Frame>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<()>> {
    use std::task::Poll;
    let mut buffer = [0u8; READ_CHUNK];
    let mut read = tokio::io::ReadBuf::new(&mut buffer);
    match std::pin::Pin::new(tls).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Ok(())) if !read.filled().is_empty() => {
            framer.push(read.filled(), frames);
            Poll::Ready(Some(()))
        }
        Poll::Ready(_) => Poll::Ready(None),
    }
}
