//! The doctor's side of an FTP connection: a control connection that reads replies (plain or
//! TLS), bounded in time and size, and listings over a data connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any one step (connect, reply, listing) may take.
pub(super) const STEP: Duration = Duration::from_secs(10);
/// The doctor's control connection (plain or TLS).
pub(super) struct Control<S> {
    pub(super) reader: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Control<S> {
    /// One reply: its code and its last line.
    pub(super) async fn reply(&mut self) -> Result<(u16, String), String> {
        for _ in 0..1000 {
            let mut line = String::new();
            let mut bounded = (&mut self.reader).take(8192);
            match tokio::time::timeout(STEP, bounded.read_line(&mut line)).await {
                Err(_) => return Err("no reply within 10 s".into()),
                Ok(Err(error)) => return Err(format!("connection failed: {error}")),
                Ok(Ok(0)) => return Err("the server closed the connection".into()),
                Ok(Ok(_)) => {}
            }
            let line = line.trim_end().to_string();
            let code = line.get(..3).and_then(|code| code.parse::<u16>().ok());
            if let (Some(code), Some(b' ')) = (code, line.as_bytes().get(3)) {
                return Ok((code, line));
            }
        }
        Err("a reply of more than 1000 lines".into())
    }

    pub(super) async fn command(&mut self, line: &str) -> Result<(u16, String), String> {
        let bytes = format!("{line}\r\n");
        let stream = self.reader.get_mut();
        tokio::time::timeout(STEP, stream.write_all(bytes.as_bytes()))
            .await
            .map_err(|_| "cannot send within 10 s".to_string())?
            .map_err(|e| format!("cannot send: {e}"))?;
        self.reply().await
    }

    /// Sends `line` and requires `code`.
    pub(super) async fn expect(&mut self, line: &str, code: u16) -> Result<String, String> {
        let verb = line.split(' ').next().unwrap_or(line);
        let verb = if verb == "PASS" { "PASS" } else { verb };
        match self.command(line).await? {
            (got, text) if got == code => Ok(text),
            (_, text) => Err(format!("{verb}: {text}")),
        }
    }
}

pub(super) async fn connect(
    address: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, String> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("cannot bind {source}: {e}"))?;
    }
    match tokio::time::timeout(STEP, socket.connect(address)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(format!("cannot connect to {address}: {error}")),
        Err(_) => Err(format!(
            "cannot connect to {address}: no answer within 10 s"
        )),
    }
}
/// LIST over an open data connection; the listing's size.
pub(super) async fn listing<S, D>(control: &mut Control<S>, mut data: D) -> Result<usize, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: AsyncRead + Unpin,
{
    match control.command("LIST").await? {
        (125 | 150, _) => {}
        (_, text) => return Err(format!("LIST: {text}")),
    }
    let bytes = read_listing(&mut data).await?;
    match control.reply().await? {
        (226 | 250, _) => Ok(bytes),
        (_, text) => Err(format!("after LIST: {text}")),
    }
}

/// Reads a listing to its end (at most 64 MiB, within 30 s); its size.
pub(super) async fn read_listing(data: &mut (impl AsyncRead + Unpin)) -> Result<usize, String> {
    let mut bytes = Vec::new();
    let mut bounded = data.take(64 * 1024 * 1024);
    tokio::time::timeout(Duration::from_secs(30), bounded.read_to_end(&mut bytes))
        .await
        .map_err(|_| "the listing did not end within 30 s".to_string())?
        .map_err(|e| format!("reading the listing: {e}"))?;
    Ok(bytes.len())
}
