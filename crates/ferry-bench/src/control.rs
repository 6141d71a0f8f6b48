//! The bench's own FTP client: a control connection with bounded lines and passive data
//! connections, optionally explicit FTPS (RFC 4217: AUTH TLS, PBSZ 0, PROT P). It is
//! deliberately small: it only does what the workloads need, and it only ever connects to the
//! server it was given (a PASV reply's address is ignored; its port is used with the control
//! connection's peer address).

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_proto::command::TransferType;
use ferry_proto::hostport::{parse_epsv_reply, parse_pasv_reply};
use ferry_proto::reply::ReplyParser;
use ferry_proto::{Frame, LineFramer, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::BenchError;
use crate::limits::Limits;
use crate::stream::Stream;
use crate::tls::TlsClient;

/// Longest control line accepted from a server, in bytes.
pub const MAX_LINE: usize = 8 * 1024;
/// Most lines in one multi-line reply (FEAT, STAT, a long banner).
const MAX_REPLY_LINES: usize = 1000;

/// The server under test and the account to log in with.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    /// Explicit FTPS: `AUTH TLS` before logging in, `PROT P` data connections.
    pub tls: Option<TlsClient>,
}

/// A logged-in (or just greeted) control connection.
#[derive(Debug)]
pub struct Control {
    stream: Stream,
    /// This session's TLS configuration, once `AUTH TLS` succeeded: data connections resume
    /// the control connection's TLS session from its store.
    tls: Option<TlsClient>,
    addr: SocketAddr,
    io_timeout: Duration,
    framer: LineFramer,
    frames: VecDeque<Frame>,
    parser: ReplyParser,
    read_buffer: Vec<u8>,
}

/// Runs `operation` with a time limit, naming it in the error.
pub(crate) async fn timed<T>(
    what: &'static str,
    addr: SocketAddr,
    limit: Duration,
    operation: impl Future<Output = std::io::Result<T>>,
) -> Result<T, BenchError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(BenchError::Io { what, addr, source }),
        Err(_) => Err(BenchError::Timeout { what, addr }),
    }
}

/// Connects a TCP stream to `addr` with a time limit; `nodelay` for a control connection (its
/// small commands go out at once), not for a data connection (big writes or none).
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    limit: Duration,
    nodelay: bool,
) -> Result<TcpStream, BenchError> {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            if nodelay {
                let _ = stream.set_nodelay(true);
            }
            Ok(stream)
        }
        Ok(Err(source)) => Err(BenchError::Connect { addr, source }),
        Err(_) => Err(BenchError::Timeout {
            what: "connect",
            addr,
        }),
    }
}

/// Connects a control connection (`nodelay`) to `addr` from `source` (any port) with a time
/// limit.
async fn connect_tcp_from(
    addr: SocketAddr,
    source: IpAddr,
    limit: Duration,
) -> Result<TcpStream, BenchError> {
    connect_configured(addr, limit, |socket| {
        socket.set_nodelay(true)?;
        socket.bind(SocketAddr::new(source, 0))
    })
    .await
}

/// Connects a TCP stream to `addr` with a time limit and a receive buffer of about
/// `receive_buffer` bytes (SO_RCVBUF, set before connecting so the window is small from the
/// start; Linux doubles the figure and stops autotuning it).
pub(crate) async fn connect_tcp_with_receive_buffer(
    addr: SocketAddr,
    receive_buffer: u32,
    limit: Duration,
) -> Result<TcpStream, BenchError> {
    connect_configured(addr, limit, |socket| {
        socket.set_recv_buffer_size(receive_buffer)
    })
    .await
}

/// Makes a socket for `addr`, lets `configure` set it up before the connect (options that
/// must precede it, a source address), and connects with a time limit.
async fn connect_configured(
    addr: SocketAddr,
    limit: Duration,
    configure: impl FnOnce(&TcpSocket) -> std::io::Result<()>,
) -> Result<TcpStream, BenchError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let socket = socket
        .and_then(|socket| {
            configure(&socket)?;
            Ok(socket)
        })
        .map_err(|source| BenchError::Connect { addr, source })?;
    match tokio::time::timeout(limit, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(BenchError::Connect { addr, source }),
        Err(_) => Err(BenchError::Timeout {
            what: "connect",
            addr,
        }),
    }
}

impl Control {
    /// Connects and reads the greeting, which must be a 2xx reply.
    pub async fn connect(target: &Target, limits: &Limits) -> Result<Control, BenchError> {
        Control::connect_from(target, limits, None).await
    }

    /// [`Control::connect`] from the local address `source` (any port) when given: one source
    /// address has only the ephemeral port range (about 28,000 ports) to connect from.
    pub async fn connect_from(
        target: &Target,
        limits: &Limits,
        source: Option<IpAddr>,
    ) -> Result<Control, BenchError> {
        let stream = match source {
            Some(source) => connect_tcp_from(target.addr, source, limits.io_timeout).await?,
            None => connect_tcp(target.addr, limits.io_timeout, true).await?,
        };
        let mut control = Control {
            stream: Stream::Plain(stream),
            tls: None,
            addr: target.addr,
            io_timeout: limits.io_timeout,
            framer: LineFramer::new(MAX_LINE),
            frames: VecDeque::new(),
            parser: ReplyParser::new(MAX_REPLY_LINES),
            read_buffer: vec![0; 4096],
        };
        let greeting = control.reply().await?;
        control.check(&greeting, "(greeting)", 2)?;
        Ok(control)
    }

    /// Connects and logs in with USER and, when asked for, PASS. With `target.tls`, secures
    /// the control connection first (AUTH TLS) and asks for protected data connections after
    /// (PBSZ 0, PROT P; RFC 4217 §§ 8-9). Reading those replies over TLS also takes in the
    /// server's TLS 1.3 session tickets, which the first data connection needs to resume.
    pub async fn login(target: &Target, limits: &Limits) -> Result<Control, BenchError> {
        Control::login_from(target, limits, None).await
    }

    /// [`Control::login`] from the local address `source` when given.
    pub async fn login_from(
        target: &Target,
        limits: &Limits,
        source: Option<IpAddr>,
    ) -> Result<Control, BenchError> {
        let control = Control::connect_from(target, limits, source).await?;
        let mut control = control.sign_in(target).await?;
        if control.tls.is_some() {
            control.expect("PBSZ 0", 2).await?;
            control.expect("PROT P", 2).await?;
        }
        Ok(control)
    }

    /// Connects and logs in, over TLS with `target.tls` (AUTH TLS, then a full handshake: each
    /// session has a session store of its own, see [`TlsClient::session`]), without asking for
    /// protected data connections: all a session that only logs in and out needs.
    pub async fn sign_in_only(target: &Target, limits: &Limits) -> Result<Control, BenchError> {
        Control::connect(target, limits)
            .await?
            .sign_in(target)
            .await
    }

    /// AUTH TLS with `target.tls`, then USER and PASS.
    async fn sign_in(mut self, target: &Target) -> Result<Control, BenchError> {
        if let Some(tls) = &target.tls {
            self = self.secure(tls.session()).await?;
        }
        self.authenticate(target).await?;
        Ok(self)
    }

    /// USER and, when asked for, PASS.
    async fn authenticate(&mut self, target: &Target) -> Result<(), BenchError> {
        let user = self.command(&format!("USER {}", target.user)).await?;
        let logged_in = match user.code {
            230 => user,
            331 | 332 => self.command(&format!("PASS {}", target.password)).await?,
            _ => return Err(self.unexpected("USER", user)),
        };
        self.check(&logged_in, "PASS", 2)
    }

    /// AUTH TLS (RFC 4217 § 4) and the TLS handshake on the control connection.
    async fn secure(mut self, tls: TlsClient) -> Result<Control, BenchError> {
        self.expect("AUTH TLS", 2).await?;
        let tcp = match self.stream {
            Stream::Plain(tcp) => tcp,
            secured @ Stream::Tls(_) => {
                return Ok(Control {
                    stream: secured,
                    ..self
                })
            }
        };
        let handshake = tls.handshake(tcp);
        let secured = timed("TLS handshake", self.addr, self.io_timeout, handshake).await?;
        Ok(Control {
            stream: Stream::Tls(Box::new(secured)),
            tls: Some(tls),
            ..self
        })
    }

    /// The server's control address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one command line (CRLF is added).
    pub async fn send(&mut self, line: &str) -> Result<(), BenchError> {
        let wire = format!("{line}\r\n");
        let stream = &mut self.stream;
        timed(
            "sending a command",
            self.addr,
            self.io_timeout,
            stream.write_all(wire.as_bytes()),
        )
        .await
    }

    /// Reads one complete reply.
    pub async fn reply(&mut self) -> Result<Reply, BenchError> {
        loop {
            let line = self.line().await?;
            let pushed = self.parser.push_line(&line);
            match pushed.map_err(|source| BenchError::Reply {
                addr: self.addr,
                source,
            })? {
                Some(reply) => return Ok(reply),
                None => continue,
            }
        }
    }

    /// Sends `line` and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, BenchError> {
        self.send(line).await?;
        self.reply().await
    }

    /// Sends `line` and requires a reply of class `class` (1 to 5).
    pub async fn expect(&mut self, line: &str, class: u16) -> Result<Reply, BenchError> {
        let reply = self.command(line).await?;
        self.check(&reply, line, class)?;
        Ok(reply)
    }

    /// TYPE I or TYPE A (RFC 959 § 4.1.2), which must be accepted.
    pub async fn set_type(&mut self, transfer_type: TransferType) -> Result<(), BenchError> {
        let command = match transfer_type {
            TransferType::Image => "TYPE I",
            TransferType::Ascii => "TYPE A",
        };
        self.expect(command, 2).await.map(drop)
    }

    /// Fails with [`BenchError::Unexpected`] unless `reply` is of class `class`.
    pub fn check(&self, reply: &Reply, command: &str, class: u16) -> Result<(), BenchError> {
        if reply.class() == class {
            Ok(())
        } else {
            Err(self.unexpected(command, reply.clone()))
        }
    }

    fn unexpected(&self, command: &str, reply: Reply) -> BenchError {
        let command = command.split(' ').next().unwrap_or(command).to_string();
        BenchError::Unexpected {
            addr: self.addr,
            command,
            reply,
        }
    }

    /// Asks for a passive data port (PASV, or EPSV over IPv6) and connects to it.
    pub async fn open_passive(&mut self) -> Result<TcpStream, BenchError> {
        let addr = self.passive_addr().await?;
        connect_tcp(addr, self.io_timeout, false).await
    }

    /// Asks for a passive data port (PASV, or EPSV over IPv6): the server's address with that
    /// port.
    pub async fn passive_addr(&mut self) -> Result<SocketAddr, BenchError> {
        let port = if self.addr.is_ipv4() {
            let reply = self.expect("PASV", 2).await?;
            parse_pasv_reply(&reply.text())
                .map(|addr| addr.port())
                .map_err(|_| BenchError::PassiveReply {
                    addr: self.addr,
                    reply,
                })?
        } else {
            let reply = self.expect("EPSV", 2).await?;
            parse_epsv_reply(&reply.text()).map_err(|_| BenchError::PassiveReply {
                addr: self.addr,
                reply,
            })?
        };
        Ok(SocketAddr::new(self.addr.ip(), port))
    }

    /// Sends a transfer command (RETR, STOR, LIST, ...) for the data connection `data` (from
    /// [`Control::open_passive`]) and requires a 1xx reply. After PROT P, the TLS handshake on
    /// `data` runs alongside reading that reply (servers differ on which comes first) and
    /// resumes the control connection's TLS session.
    pub async fn start_transfer(
        &mut self,
        line: &str,
        data: TcpStream,
    ) -> Result<Stream, BenchError> {
        self.send(line).await?;
        let Some(tls) = self.tls.clone() else {
            let reply = self.reply().await?;
            self.check(&reply, line, 1)?;
            return Ok(Stream::Plain(data));
        };
        let what = "data connection TLS handshake";
        let handshake = timed(what, self.addr, self.io_timeout, tls.handshake(data));
        let (reply, secured) = tokio::join!(self.reply(), handshake);
        let reply = reply?;
        self.check(&reply, line, 1)?;
        Ok(Stream::Tls(Box::new(secured?)))
    }

    /// Reads the reply that ends a transfer and requires a 2xx.
    pub async fn finish_transfer(&mut self, command: &str) -> Result<(), BenchError> {
        let reply = self.reply().await?;
        self.check(&reply, command, 2)
    }

    /// ABOR (RFC 959 § 4.1.3) after the data connection was dropped, while the transfer's final
    /// reply is still to come: reads that reply (426 if the ABOR cut the transfer, 226 or 426 if
    /// it had ended by itself) and then the ABOR's own (226, or 225 when nothing was left to
    /// abort), within `wait`. Stopping at the first 2xx would leave the ABOR's reply unread
    /// when the transfer had ended first, and every later command would read the reply of the
    /// one before it.
    pub async fn abort(&mut self, wait: Duration) -> Result<(), BenchError> {
        self.send("ABOR").await?;
        let io_timeout = self.io_timeout;
        self.io_timeout = wait.min(io_timeout);
        let result = self.abort_replies().await;
        self.io_timeout = io_timeout;
        result
    }

    /// The two replies that follow ABOR during a transfer.
    async fn abort_replies(&mut self) -> Result<(), BenchError> {
        let transfer = self.reply().await?;
        if !matches!(transfer.class(), 2 | 4) {
            return self.check(&transfer, "ABOR", 2);
        }
        let abor = self.reply().await?;
        self.check(&abor, "ABOR", 2)
    }

    /// Sends QUIT, reads the 221 and waits briefly for the server to close, so the server side
    /// holds the TIME_WAIT state rather than the bench.
    pub async fn quit(mut self) -> Result<(), BenchError> {
        self.expect("QUIT", 2).await?;
        let mut byte = [0u8; 1];
        let wait = Duration::from_secs(2).min(self.io_timeout);
        let _ = tokio::time::timeout(wait, self.stream.read(&mut byte)).await;
        Ok(())
    }

    /// Drops the control connection with a reset (SO_LINGER 0) instead of QUIT and a FIN: a
    /// client that vanishes.
    pub fn reset(self) {
        self.stream.reset();
    }

    /// The next line from the server, without its line end.
    async fn line(&mut self) -> Result<String, BenchError> {
        loop {
            match self.frames.pop_front() {
                Some(Frame::Line(bytes)) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Some(Frame::Overlong) => {
                    return Err(BenchError::LineTooLong {
                        addr: self.addr,
                        limit: MAX_LINE,
                    })
                }
                None => self.fill().await?,
            }
        }
    }

    /// Reads more bytes from the control connection into the framer.
    async fn fill(&mut self) -> Result<(), BenchError> {
        let read = self.stream.read(&mut self.read_buffer);
        let count = timed("reading a reply", self.addr, self.io_timeout, read).await?;
        if count == 0 {
            return Err(BenchError::Closed { addr: self.addr });
        }
        let mut frames = Vec::new();
        self.framer.push(&self.read_buffer[..count], &mut frames);
        self.frames.extend(frames);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_from_the_given_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            user: "anonymous".into(),
            password: "x".into(),
            tls: None,
        };
        let server = tokio::spawn(async move {
            let (mut stream, peer) = listener.accept().await.unwrap();
            stream.write_all(b"220 ready\r\n").await.unwrap();
            peer
        });
        let source = IpAddr::from([127, 0, 0, 2]);
        let control = Control::connect_from(&target, &Limits::default(), Some(source)).await;
        assert!(control.is_ok(), "{control:?}");
        assert_eq!(server.await.unwrap().ip(), source);
    }
}
