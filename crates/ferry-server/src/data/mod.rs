//! Data connections: passive listeners, active connects, and the byte pumps that move a
//! transfer's bytes between a data connection and a file or buffer.

pub mod deflate;
pub mod direct;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::ascii::{lf_to_crlf, CrlfDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::config::ActiveSource;
use crate::limits::Throttle;
use crate::proxy::{self, Header, Trusted};
use crate::stream::MaybeTls;

/// Size of the buffers transfers read and write with.
const CHUNK: usize = 256 * 1024;

/// How the next data connection will be made, set by PORT/EPRT or PASV/EPSV.
#[derive(Debug)]
pub enum DataPlan {
    /// Connect to the client (PORT, EPRT).
    Active(SocketAddr),
    /// Accept from the client on this listener (PASV, EPSV); the session may keep it for its
    /// next PASV.
    Passive(Arc<TcpListener>),
    /// Already accepted: a download that began on the session's own task and could not finish
    /// there (see [`accept_now`]). Never stored as a session's plan.
    Accepted(TcpStream),
}

/// What the data connection needs to know about the session.
#[derive(Debug, Clone, Copy)]
pub struct DataContext {
    /// The control connection's local address: active connections come from its IP (and its
    /// port minus one).
    pub control_local: SocketAddr,
    /// The client (the control connection's peer, or its PROXY header's source): only it may
    /// connect to a passive port.
    pub peer_ip: IpAddr,
    pub active_source: ActiveSource,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
}

/// What a running transfer shares with its session: the bytes moved so far, and a way to wait,
/// after ABOR, until no thread of the transfer can still write to its file.
#[derive(Debug)]
pub struct Progress {
    /// Bytes sent or received so far (for STAT and the log).
    pub bytes: AtomicU64,
    /// Held by an upload's writing thread until it returns.
    writer: Arc<tokio::sync::Semaphore>,
    /// The data connection's TLS, once its handshake is done.
    pub tls: std::sync::OnceLock<crate::events::TlsFacts>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            bytes: AtomicU64::new(0),
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            tls: std::sync::OnceLock::new(),
        }
    }
}

impl Progress {
    /// Taken by the thread that writes an upload's file, and moved into it.
    fn writer_token(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.writer).try_acquire_owned().ok()
    }

    /// Resolves once no writing thread holds a token: after an abort, the file is left alone
    /// from then on.
    pub async fn writers_done(&self) {
        let _ = self.writer.acquire().await;
    }
}

/// Why a transfer failed; each maps to one reply.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// 425: the data connection could not be made.
    #[error("cannot open data connection: {0}")]
    Connect(io::Error),
    /// 426: the data connection broke or stalled.
    #[error("data connection broken: {0}")]
    Broken(io::Error),
    /// 425: the client did not resume the control connection's TLS session on the data
    /// connection, as the policy requires.
    #[error("the data connection's TLS handshake did not resume the control connection's session")]
    NotResumed,
    /// 425: the TLS handshake on the data connection failed.
    #[error("TLS handshake on the data connection failed: {0}")]
    Handshake(io::Error),
    /// 553: a complete upload could not be published, as a file of its name appeared and the
    /// user may not replace it.
    #[error("a file of the upload's name exists")]
    Exists,
    /// 451 (452 when the disk is full): reading or writing the file failed.
    #[error("local file error: {0}")]
    Local(io::Error),
}

/// Makes the data connection the plan describes, within the connect timeout. `proxy`: the
/// proxies' networks, when the PROXY protocol is on (passive connections must come from them
/// and name the client in their header).
pub async fn open(
    plan: DataPlan,
    context: &DataContext,
    proxy: Option<&Trusted>,
) -> Result<TcpStream, TransferError> {
    let result = match plan {
        DataPlan::Active(target) => {
            timeout(context.connect_timeout, connect(target, context)).await
        }
        DataPlan::Passive(listener) => {
            timeout(context.connect_timeout, accept(&listener, context, proxy)).await
        }
        DataPlan::Accepted(stream) => return Ok(stream),
    };
    let stream = result
        .map_err(|_| TransferError::Connect(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
        .map_err(TransferError::Connect)?;
    Ok(stream)
}

/// What a transfer needs to put TLS on its data connection.
#[derive(Clone)]
pub struct DataTls {
    /// The session's acceptor (its TLS session cache is the control connection's).
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The data connection must resume the control connection's TLS session.
    pub require_reuse: bool,
}

/// Puts TLS on a data connection when PROT P is in force, and checks that the handshake resumed
/// the control connection's session when the policy requires it.
pub async fn secure(
    stream: TcpStream,
    tls: Option<DataTls>,
    limit: Duration,
) -> Result<MaybeTls, TransferError> {
    let Some(tls) = tls else {
        return Ok(MaybeTls::Plain(stream));
    };
    let stream = timeout(limit, tls.acceptor.accept(stream))
        .await
        .map_err(|_| {
            TransferError::Handshake(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        })?
        .map_err(TransferError::Handshake)?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    if tls.require_reuse && !resumed {
        return Err(TransferError::NotResumed);
    }
    Ok(MaybeTls::Tls(Box::new(stream)))
}

/// Active mode: connect to the client from port L-1 (RFC 959 §3.2), falling back to an
/// ephemeral port when that port cannot be bound.
async fn connect(target: SocketAddr, context: &DataContext) -> io::Result<TcpStream> {
    let local_ip = context.control_local.ip();
    let adjacent = context
        .control_local
        .port()
        .checked_sub(1)
        .filter(|p| *p > 0);
    if let (ActiveSource::Adjacent, Some(port)) = (context.active_source, adjacent) {
        match bound_socket(SocketAddr::new(local_ip, port)) {
            Ok(socket) => return socket.connect(target).await,
            Err(e) => tracing::warn!(
                source_port = port,
                error = %e,
                "cannot bind the active-mode source port; using an ephemeral port"
            ),
        }
    }
    bound_socket(SocketAddr::new(local_ip, 0))?
        .connect(target)
        .await
}

fn bound_socket(local: SocketAddr) -> io::Result<TcpSocket> {
    let socket = match local {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(local)?;
    Ok(socket)
}

/// Passive mode: accept the first connection that comes from the client; others are dropped
/// before a byte is sent (RFC 2577 §5, port stealing). With the PROXY protocol the client is
/// the one its header names.
async fn accept(
    listener: &TcpListener,
    context: &DataContext,
    proxy: Option<&Trusted>,
) -> io::Result<TcpStream> {
    loop {
        let (mut stream, peer) = listener.accept().await?;
        let client = match proxy {
            None => Some(peer),
            Some(trusted) => proxied_client(&mut stream, peer, trusted, context).await,
        };
        if client.is_some_and(|client| from_client(Some(client), context)) {
            return Ok(stream);
        }
    }
}

/// The client a passive data connection from a proxy names in its PROXY header; `None` (and
/// logged) when it does not come from a trusted proxy or has no valid header.
async fn proxied_client(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &Trusted,
    context: &DataContext,
) -> Option<SocketAddr> {
    let proxy = peer.ip().to_canonical();
    if !trusted.trusts(proxy) {
        tracing::warn!(%proxy, "dropped a passive data connection: not from a PROXY protocol source");
        return None;
    }
    match proxy::read_header(stream, context.connect_timeout).await {
        Ok(Header::Proxied(client)) => Some(client),
        Ok(Header::Local) => {
            tracing::debug!(%proxy, "dropped a passive data connection without a client (LOCAL or UNKNOWN)");
            None
        }
        Err(error) => {
            tracing::warn!(%proxy, %error, "dropped a passive data connection without a valid PROXY header");
            None
        }
    }
}

/// Whether a passive data connection comes from the control connection's peer; one that does
/// not is logged, and its caller drops it.
fn from_client(peer: Option<SocketAddr>, context: &DataContext) -> bool {
    if peer.is_some_and(|p| p.ip().to_canonical() == context.peer_ip) {
        return true;
    }
    tracing::warn!(?peer, expected = %context.peer_ip, "dropped a passive data connection from another address");
    false
}

/// Passive mode without waiting: the client's data connection if it is already there (a
/// client connects before it sends RETR), not registered with the runtime. `None` when it has
/// not arrived yet; the caller then waits for it as usual.
///
/// Connections from other addresses are dropped, as by [`accept`]. Not for the PROXY protocol,
/// where a connection's header has to be read first: its callers wait with [`open`] instead.
pub fn accept_now(listener: &TcpListener, context: &DataContext) -> Option<std::net::TcpStream> {
    use rustix::net::{acceptfrom_with, SocketFlags};
    for _ in 0..64 {
        match acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Ok((socket, peer)) => {
                let peer = peer.and_then(|a| SocketAddr::try_from(a).ok());
                if from_client(peer, context) {
                    return Some(std::net::TcpStream::from(socket));
                }
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Sends what the socket takes at once of `file` from `*offset` to `end` with sendfile(2),
/// without the runtime, and moves `*offset` on. Returns true when everything is sent (an error
/// if the file turned out shorter); false when the socket's buffer is full and the rest has to wait, or
/// after [`SENDFILE_CHUNK`] bytes, so that a fast reader of a big file does not keep the session
/// from its control connection (the transfer task sends the rest).
///
/// The socket is corked first, as in [`send_file_zero_copy`]: a small file then leaves as one
/// segment that also carries the FIN of the close.
pub fn send_file_now(
    socket: &std::net::TcpStream,
    file: &std::fs::File,
    offset: &mut u64,
    end: u64,
    progress: &AtomicU64,
) -> Result<bool, TransferError> {
    let _ = socket2::SockRef::from(socket).set_cork(true);
    let stop = end.min(offset.saturating_add(SENDFILE_CHUNK as u64));
    while *offset < stop {
        // At most SENDFILE_CHUNK, so this fits.
        let count = usize::try_from(stop - *offset).unwrap_or(SENDFILE_CHUNK);
        match rustix::fs::sendfile(socket, file, Some(offset), count) {
            // The file is shorter than it was: what was announced cannot be sent.
            Ok(0) => return Err(shrank()),
            Ok(moved) => {
                progress.fetch_add(moved as u64, Ordering::Relaxed);
            }
            Err(rustix::io::Errno::AGAIN) => return Ok(false),
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(sendfile_error(error.into())),
        }
    }
    Ok(*offset >= end)
}

/// Binds a passive listener on `ip`, on a port from `range` (tried in a pseudo-random order)
/// or any port when there is no range.
pub async fn passive_listener(ip: IpAddr, range: Option<(u16, u16)>) -> io::Result<TcpListener> {
    let Some((start, end)) = range else {
        return TcpListener::bind(SocketAddr::new(ip, 0)).await;
    };
    for port in passive_ports_to_try(start, end, random_u32()) {
        if let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return Ok(listener);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free port in the passive range",
    ))
}

/// The ports of `start..=end` a PASV tries, at most 512, from `seed` on: apart, so that
/// sessions asking at once seldom meet, and all different. A prime stride that does not divide
/// the range's size visits every port of it (no range holds a multiple of both primes: their
/// product is past 65,536).
fn passive_ports_to_try(start: u16, end: u16, seed: u32) -> impl Iterator<Item = u16> {
    let count = u32::from(end - start) + 1;
    let offset = seed % count;
    let stride = if count % 7919 == 0 { 7907 } else { 7919 };
    (0..count.min(512)).map(move |step| start + ((offset + step * stride) % count) as u16)
}

/// Accepts and closes the connections already waiting on a kept passive listener, without
/// waiting: they were made for an earlier PASV that was not used, and must not become the next
/// transfer's data connection.
pub fn drain_stale(listener: &TcpListener) {
    // Straight to accept(2): tokio's idea of the listener's readiness may not have caught up with
    // a connection that just arrived. The socket is non-blocking, so an empty queue returns at
    // once. Bounded: a client holds few connections to its own port.
    let socket = socket2::SockRef::from(listener);
    for _ in 0..64 {
        match socket.accept() {
            Ok((_stale, peer)) => {
                tracing::debug!(peer = ?peer.as_socket(), "closed a stale passive data connection");
            }
            Err(_) => return,
        }
    }
}

/// A cheap non-cryptographic random number (the clock's nanoseconds, mixed).
fn random_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (x ^ (x >> 33)) as u32
}

/// Bytes one sendfile(2) call may move.
const SENDFILE_CHUNK: usize = 8 * 1024 * 1024;

/// What a download sends.
pub enum Source {
    /// A file, from a byte offset (REST) to `end`, its size when it was opened: like vsftpd,
    /// a download sends the length its 150 reply announced, even if the file grows meanwhile.
    File {
        file: std::fs::File,
        offset: u64,
        end: u64,
    },
    /// A stream (an object store's ranged GET) that must deliver exactly `len` bytes.
    Stream {
        reader: Box<dyn io::Read + Send>,
        len: u64,
    },
    /// Chunks made as they are sent (a listing, rendered a batch of entries at a time).
    Chunks(Box<dyn Chunks>),
}

/// Something sent a chunk at a time, each made on the blocking pool while the one before is
/// being written: a file's range (converted for TYPE A), or a listing.
pub trait Chunks: Send + 'static {
    /// Replaces `chunk`'s contents with the next chunk, of about `size` bytes; leaves it empty
    /// at the end.
    fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> io::Result<()>;
    /// Whether everything has been made already (the next chunk would be empty), so that no
    /// trip to the blocking pool is made to find that out.
    fn finished(&self) -> bool {
        false
    }
    /// A first chunk made already (a listing's, made when it was opened), to be sent without a
    /// trip to the blocking pool.
    fn take_ready(&mut self) -> Option<Vec<u8>> {
        None
    }
}

/// Sends `source` on `stream` (converting LF to CRLF when `ascii`), then closes the sending side
/// so the client sees the end of the data. Returns the bytes sent.
///
/// A file in TYPE I, unthrottled and uncompressed, goes out with sendfile(2) on a plain
/// connection, and on a thread of its own over TLS ([`direct::send_tls`]) while one of
/// [`direct::MAX_PUMPS`] is free; everything else in chunks read one ahead.
pub async fn send(
    mut stream: MaybeTls,
    source: Source,
    ascii: bool,
    deflate: Option<u32>,
    progress: &Arc<Progress>,
    stall: Duration,
    throttle: &Throttle,
) -> Result<u64, TransferError> {
    let max_chunk = throttle.chunk_size(CHUNK);
    let small = (SMALL_CHUNK.min(max_chunk), max_chunk);
    let (chunks, sizes): (Box<dyn Chunks>, _) = match source {
        Source::File { file, offset, end }
            if !ascii && throttle.is_unlimited() && deflate.is_none() =>
        {
            match stream {
                MaybeTls::Plain(tcp) => {
                    let sent =
                        send_file_zero_copy(&tcp, &file, offset..end, &progress.bytes, stall)
                            .await?;
                    return finish_sending(&mut MaybeTls::Plain(tcp), sent, stall).await;
                }
                MaybeTls::Tls(tls) => {
                    if let Some(slot) = direct::Slot::take() {
                        let progress = Arc::clone(progress);
                        let range = offset..end;
                        return direct::send_tls(tls, file, range, progress, stall, slot).await;
                    }
                    stream = MaybeTls::Tls(tls);
                    (Box::new(FileChunks::new(file, offset..end, ascii)), small)
                }
            }
        }
        Source::File { file, offset, end } => {
            (Box::new(FileChunks::new(file, offset..end, ascii)), small)
        }
        Source::Stream { reader, len } => {
            let chunks = StreamChunks {
                reader,
                left: len,
                raw: Vec::new(),
                ascii,
            };
            (Box::new(chunks), small)
        }
        // A listing is made from memory and a look-up per entry: big chunks from the start (a
        // slow reader still halves them), so fewer trips to the blocking pool.
        Source::Chunks(chunks) => (chunks, (max_chunk, max_chunk)),
    };
    let chunks = match deflate {
        Some(level) => Box::new(deflate::DeflateChunks::new(chunks, level)),
        None => chunks,
    };
    let sent = send_chunks(&mut stream, chunks, sizes, &progress.bytes, stall, throttle).await?;
    finish_sending(&mut stream, sent, stall).await
}

/// Closes the sending side after a download, so the client sees the end of the data.
async fn finish_sending(
    stream: &mut MaybeTls,
    sent: u64,
    stall: Duration,
) -> Result<u64, TransferError> {
    timeout(stall, stream.shutdown())
        .await
        .map_err(|_| stalled())?
        .map_err(TransferError::Broken)?;
    Ok(sent)
}

/// Sends a file with sendfile(2): the kernel copies from the page cache to the socket, with no
/// trip through user space. Used for TYPE I on a plain connection without a bandwidth limit.
///
/// The socket is corked: full segments only, and the last one carries the FIN the shutdown
/// after adds, so a small file is one segment, not a data segment and a FIN.
async fn send_file_zero_copy(
    tcp: &TcpStream,
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    progress: &AtomicU64,
    stall: Duration,
) -> Result<u64, TransferError> {
    let _ = socket2::SockRef::from(tcp).set_cork(true);
    let (mut offset, end) = (range.start, range.end);
    let mut sent = 0u64;
    while offset < end {
        timeout(stall, tcp.writable())
            .await
            .map_err(|_| stalled())?
            .map_err(TransferError::Broken)?;
        let count =
            usize::try_from(end - offset).map_or(SENDFILE_CHUNK, |left| left.min(SENDFILE_CHUNK));
        let result = tcp.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(tcp, file, Some(&mut offset), count).map_err(io::Error::from)
        });
        match result {
            // The file is shorter than it was: what was announced cannot be sent.
            Ok(0) => return Err(shrank()),
            Ok(moved) => {
                sent += moved as u64;
                // Added, not stored: a download begun by `send_file_now` counted its start.
                progress.fetch_add(moved as u64, Ordering::Relaxed);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(sendfile_error(error)),
        }
    }
    Ok(sent)
}

/// What a failed sendfile(2) means: the client's connection going away (426), or the file
/// failing to be read (EIO from the disk: 451), which is not the client's doing.
fn sendfile_error(error: io::Error) -> TransferError {
    use io::ErrorKind as K;
    match error.kind() {
        K::BrokenPipe
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::TimedOut => TransferError::Broken(error),
        _ => TransferError::Local(error),
    }
}

/// The smallest chunk of the buffered path, and its size while a transfer starts.
const SMALL_CHUNK: usize = 32 * 1024;

/// Bytes a buffered transfer sends in small chunks before it may use bigger ones: more than a
/// socket's send buffer grows to (4 MiB), so that a slow reader is found out (its writes start
/// to wait) before any big buffer is made.
const SMALL_CHUNKS_FOR: u64 = 8 * 1024 * 1024;

/// A write that takes longer than this means the reader, not this server, sets the pace.
const SLOW_WRITE: Duration = Duration::from_millis(20);

/// Sends chunks through a buffer: a file in TYPE A (LF to CRLF), over TLS, or with a bandwidth
/// limit; or a listing.
///
/// The next chunk is read (and converted, or rendered) on the blocking pool while the current
/// one is being written, so the disk, the conversion and the network overlap. A transfer holds two chunk
/// buffers, reused to the end (and in TYPE A the read buffer the conversion works from).
///
/// Chunks start at the first of `sizes` (a file: small) and double up to the second once the
/// first megabytes have gone out with no write waiting long for the reader; a slow write halves
/// them again. A slow reader of a file so holds about 100-200 KiB of buffers instead of a
/// megabyte, and a fast one gets big chunks, which cost fewer trips to the blocking pool.
async fn send_chunks(
    stream: &mut MaybeTls,
    reader: Box<dyn Chunks>,
    sizes: (usize, usize),
    progress: &AtomicU64,
    stall: Duration,
    throttle: &Throttle,
) -> Result<u64, TransferError> {
    let (mut size, max_chunk) = sizes;
    let mut reader = reader;
    let mut chunk = match reader.take_ready() {
        Some(chunk) => chunk,
        None => {
            let made;
            (reader, made) = made_chunk(read_next(reader, Vec::new(), size)).await?;
            made
        }
    };
    let mut spare = Vec::new();
    let mut sent = 0;
    while !chunk.is_empty() {
        let pending =
            (!reader.finished()).then(|| read_next(reader, std::mem::take(&mut spare), size));
        throttle.consume(chunk.len()).await;
        let started = std::time::Instant::now();
        write(stream, &chunk, stall).await?;
        sent += chunk.len() as u64;
        progress.store(sent, Ordering::Relaxed);
        size = next_chunk_size(size, started.elapsed() > SLOW_WRITE, sent, max_chunk);
        // A buffer left from bigger chunks is dropped rather than kept.
        spare = if chunk.capacity() > 4 * size {
            Vec::new()
        } else {
            chunk
        };
        let Some(pending) = pending else {
            break;
        };
        (reader, chunk) = made_chunk(pending).await?;
    }
    Ok(sent)
}

/// The chunk [`read_next`] made, with its source.
async fn made_chunk(
    pending: tokio::task::JoinHandle<NextChunk>,
) -> Result<(Box<dyn Chunks>, Vec<u8>), TransferError> {
    let (reader, chunk) = pending
        .await
        .map_err(|join| TransferError::Local(io::Error::other(join.to_string())))?;
    Ok((reader, chunk.map_err(TransferError::Local)?))
}

/// The buffered path's next chunk size: halved after a slow write (not below the small size),
/// doubled up to `max` once the first [`SMALL_CHUNKS_FOR`] bytes are sent, else the same.
fn next_chunk_size(size: usize, slow_write: bool, sent: u64, max: usize) -> usize {
    let smallest = SMALL_CHUNK.min(max);
    if slow_write {
        (size / 2).max(smallest)
    } else if sent >= SMALL_CHUNKS_FOR {
        (size * 2).min(max)
    } else {
        size
    }
}

/// A range of a file read chunk by chunk with positioned reads, each chunk converted to TYPE A's
/// CRLF line ends when `ascii`.
#[derive(Debug)]
struct FileChunks {
    file: std::fs::File,
    offset: u64,
    /// Where reading stops (or the end of the file, if that comes first).
    end: u64,
    /// TYPE A: the raw bytes, converted from here into the chunk (empty for TYPE I, which
    /// reads straight into the chunk).
    raw: Vec<u8>,
    ascii: bool,
}

impl FileChunks {
    fn new(file: std::fs::File, range: std::ops::Range<u64>, ascii: bool) -> FileChunks {
        FileChunks {
            file,
            offset: range.start,
            end: range.end,
            raw: Vec::new(),
            ascii,
        }
    }
}

/// A chunk made on the blocking pool, with its source for the next one.
type NextChunk = (Box<dyn Chunks>, io::Result<Vec<u8>>);

/// Makes the next chunk of about `size` bytes into `buffer` on the blocking pool; an empty chunk
/// is the end. The source comes back with it, for the chunk after.
fn read_next(
    mut source: Box<dyn Chunks>,
    mut buffer: Vec<u8>,
    size: usize,
) -> tokio::task::JoinHandle<NextChunk> {
    tokio::task::spawn_blocking(move || {
        let result = source.fill(&mut buffer, size).map(|()| buffer);
        (source, result)
    })
}

impl Chunks for FileChunks {
    /// Replaces `chunk`'s contents with the next chunk (nothing at the end of the file).
    fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let size = usize::try_from(self.end.saturating_sub(self.offset))
            .map_or(size, |left| left.min(size));
        if !self.ascii {
            // Only a bigger chunk than the last makes the resize write anything.
            chunk.resize(size, 0);
            let read = self.file.read_at(chunk, self.offset)?;
            if read == 0 && size > 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK));
            }
            chunk.truncate(read);
            self.offset += read as u64;
            return Ok(());
        }
        if self.raw.capacity() > 4 * size {
            // Left from bigger chunks: let it go.
            self.raw = Vec::new();
        }
        self.raw.resize(size, 0);
        let read = self.file.read_at(&mut self.raw, self.offset)?;
        if read == 0 && size > 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK));
        }
        self.offset += read as u64;
        chunk.clear();
        lf_to_crlf(&self.raw[..read], chunk);
        Ok(())
    }
}

/// A stream read chunk by chunk on the blocking pool, each chunk converted to TYPE A's CRLF
/// line ends when `ascii`. It must deliver the length announced: a stream that ends early is
/// an error (451), never a short file sent as complete.
struct StreamChunks {
    reader: Box<dyn io::Read + Send>,
    /// Bytes still to come.
    left: u64,
    /// TYPE A: the raw bytes, converted from here into the chunk.
    raw: Vec<u8>,
    ascii: bool,
}

impl StreamChunks {
    /// Reads until `buffer` holds `size` bytes or the stream's announced end.
    fn read_full(&mut self, buffer: &mut Vec<u8>, size: usize) -> io::Result<()> {
        let size = usize::try_from(self.left).map_or(size, |left| left.min(size));
        buffer.resize(size, 0);
        let mut filled = 0;
        while filled < size {
            match self.reader.read(&mut buffer[filled..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK)),
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.left -= filled as u64;
        Ok(())
    }
}

impl Chunks for StreamChunks {
    fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> io::Result<()> {
        if !self.ascii {
            return self.read_full(chunk, size);
        }
        let mut raw = std::mem::take(&mut self.raw);
        if raw.capacity() > 4 * size {
            raw = Vec::new();
        }
        let read = self.read_full(&mut raw, size);
        chunk.clear();
        lf_to_crlf(&raw, chunk);
        self.raw = raw;
        read
    }

    fn finished(&self) -> bool {
        self.left == 0
    }
}

async fn write(stream: &mut MaybeTls, bytes: &[u8], stall: Duration) -> Result<(), TransferError> {
    timeout(stall, stream.write_all(bytes))
        .await
        .map_err(|_| stalled())?
        .map_err(TransferError::Broken)
}

/// Why a download stopped short: the file was cut while it was being sent.
const SHRANK: &str = "the file became shorter during the transfer";

/// A download whose file was cut while it was sent: 451, never a 226 for data that is short.
fn shrank() -> TransferError {
    TransferError::Local(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK))
}

fn stalled() -> TransferError {
    TransferError::Broken(io::Error::new(io::ErrorKind::TimedOut, "transfer stalled"))
}

/// How an upload's data goes from the network to its writer: in chunks of at most `chunk`
/// bytes, at most `in_flight` of them queued for the writer; for a staged upload, the signal
/// that tells its writer, maybe blocked waiting for the back-end, that the upload is dropped.
#[derive(Debug, Clone)]
pub struct Pipe {
    chunk: usize,
    in_flight: usize,
    abandon: Option<crate::storage::Abandon>,
}

impl Pipe {
    /// To a file: big chunks, several queued, so that the disk writes overlap the network reads.
    pub const FILE: Pipe = Pipe {
        chunk: CHUNK,
        in_flight: 4,
        abandon: None,
    };

    /// To an object store, whose upload holds the data in memory until the store has it, within
    /// the server's room for that ([`crate::storage::upload_memory`]): small chunks, few
    /// queued, so that an upload waiting for room (or abandoned while it waits) holds little
    /// besides.
    pub const STAGED: Pipe = Pipe {
        chunk: 64 * 1024,
        in_flight: 2,
        abandon: None,
    };

    /// The pipe for an upload into `body`.
    pub fn to(body: &crate::storage::WriteBody) -> Pipe {
        match body {
            crate::storage::WriteBody::File(_) => Pipe::FILE,
            crate::storage::WriteBody::Staged(upload) => Pipe {
                abandon: Some(upload.abandon()),
                ..Pipe::STAGED
            },
        }
    }
}

/// Receives everything the client sends on `stream` into `file` (converting CRLF to LF when
/// `ascii`), through `pipe`, until the client closes the connection. Returns the bytes
/// received, and the writer back (a staged upload is then committed; dropped on the way, it is
/// aborted).
///
/// A blocking writer thread takes the chunks, so the disk writes (or an object store's part
/// uploads) overlap the network reads instead of alternating with them. While the writer is
/// busy the channel fills and the socket is not read: the client is slowed by TCP.
pub async fn receive<W>(
    stream: &mut MaybeTls,
    file: W,
    ascii: bool,
    pipe: Pipe,
    progress: &Progress,
    stall: Duration,
    throttle: &Throttle,
) -> Result<(u64, W), TransferError>
where
    W: io::Write + Send + 'static,
{
    let (chunks, mut pending) = tokio::sync::mpsc::channel::<Vec<u8>>(pipe.in_flight);
    // Written chunks come back to be read into again: no allocation (nor zeroing) per chunk.
    let (spares, mut returned) = std::sync::mpsc::sync_channel::<Vec<u8>>(pipe.in_flight + 1);
    // Set when this future, not an abort, ends the upload. After ABOR the task is dropped
    // mid-await; the writer must then stop at once rather than write what is queued, or it could
    // write into a file that a following REST+STOR is already resuming.
    let ended_here = Arc::new(AtomicBool::new(false));
    let ended = Arc::clone(&ended_here);
    // Dropped mid-await (ABOR, the session's end), this future abandons a staged upload, whose
    // writer may be blocked waiting for its back-end and would not see the channel close.
    let mut abandon_on_drop = GiveOnDrop(pipe.abandon.clone());
    let token = progress.writer_token();
    let writer = tokio::task::spawn_blocking(move || {
        let _token = token;
        let mut file = file;
        while let Some(chunk) = pending.blocking_recv() {
            if pending.is_closed() && !ended.load(Ordering::SeqCst) {
                break;
            }
            std::io::Write::write_all(&mut file, &chunk)?;
            let _ = spares.try_send(chunk);
        }
        Ok::<W, io::Error>(file)
    });
    let received = pump_into(
        stream,
        (&chunks, &mut returned),
        ascii,
        pipe.chunk,
        &progress.bytes,
        stall,
        throttle,
    )
    .await;
    ended_here.store(true, Ordering::SeqCst);
    drop(chunks);
    // A broken or stalled connection: the upload will not be committed, so a writer still
    // blocked in its back-end is told to stop (a writer that failed first has its own error).
    let abandoned = received.is_err() && !writer.is_finished();
    if let (true, Some(abandon)) = (abandoned, &pipe.abandon) {
        abandon.give();
    }
    let written = writer
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
        .map_err(TransferError::Local);
    // The writer is done: what follows (a commit) must not be abandoned.
    abandon_on_drop.0 = None;
    // A failed write ends the pump too; its error is the one to report, unless the write
    // failed because the broken connection abandoned it.
    let (received, file) = match (received, written) {
        (Err(error), _) if abandoned => return Err(error),
        (_, Err(error)) => return Err(error),
        (received, Ok(file)) => (received?, file),
    };
    // Answer the client's close (and close_notify, over TLS) with ours.
    let _ = timeout(stall, stream.shutdown()).await;
    Ok((received, file))
}

/// Resolves with the error once `tcp` is reset (or fails otherwise); never resolves before.
async fn reset(tcp: &TcpStream) -> io::Error {
    if tcp.ready(tokio::io::Interest::ERROR).await.is_ok() {
        if let Ok(Some(error)) = tcp.take_error() {
            return error;
        }
    }
    // Told of an error that is not there (or none could be read): no second look.
    std::future::pending().await
}

/// Gives its signal when dropped, unless emptied first.
struct GiveOnDrop(Option<crate::storage::Abandon>);

impl Drop for GiveOnDrop {
    fn drop(&mut self) {
        if let Some(abandon) = self.0.take() {
            abandon.give();
        }
    }
}

/// Reads the upload and hands it on in chunks of at most `chunk` bytes until the client closes
/// (or the writer stops). The writer takes `chunks` and gives them back through `spares`.
async fn pump_into(
    stream: &mut MaybeTls,
    (chunks, spares): (
        &tokio::sync::mpsc::Sender<Vec<u8>>,
        &mut std::sync::mpsc::Receiver<Vec<u8>>,
    ),
    ascii: bool,
    chunk: usize,
    progress: &AtomicU64,
    stall: Duration,
    throttle: &Throttle,
) -> Result<u64, TransferError> {
    let chunk_size = throttle.chunk_size(chunk);
    let mut decoder = CrlfDecoder::new();
    let mut raw = Vec::new();
    let mut received = 0;
    loop {
        let mut buffer = spares
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(chunk_size));
        buffer.clear();
        // TYPE A reads into `raw` and decodes into the chunk; TYPE I reads into the chunk.
        let target = if ascii { &mut raw } else { &mut buffer };
        target.clear();
        target.reserve(chunk_size);
        let read = timeout(stall, stream.read_buf(target))
            .await
            .map_err(|_| stalled())?
            .map_err(TransferError::Broken)?;
        let chunk = if ascii {
            decoder.decode(&raw, &mut buffer);
            if read == 0 {
                decoder.finish(&mut buffer);
            }
            buffer
        } else {
            buffer
        };
        if !chunk.is_empty() {
            // While the writer is busy the socket is not read, so a reset would go unseen
            // until the writer takes more: it is watched for meanwhile.
            let sent = tokio::select! {
                biased;
                sent = chunks.send(chunk) => sent.is_ok(),
                error = reset(stream.tcp()) => return Err(TransferError::Broken(error)),
            };
            if !sent {
                return Ok(received);
            }
        }
        if read == 0 {
            return Ok(received);
        }
        throttle.consume(read).await;
        received += read as u64;
        progress.store(received, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    /// Every range gets as many different ports as it is asked for, whatever its size (a
    /// range of a multiple of 7,919 ports got one port, tried over and over).
    #[test]
    fn passive_ports_are_all_different() {
        for (start, end) in [
            (50000, 50000),
            (50000, 50100),
            (50000, 57918),
            (40000, 55837),
        ] {
            for seed in [0, 1, 12345, u32::MAX] {
                let ports: Vec<u16> = super::passive_ports_to_try(start, end, seed).collect();
                let distinct: std::collections::HashSet<_> = ports.iter().collect();
                let count = usize::from(end - start) + 1;
                assert_eq!(ports.len(), count.min(512));
                assert_eq!(distinct.len(), ports.len(), "{start}-{end}");
                assert!(ports.iter().all(|p| (start..=end).contains(p)));
            }
        }
    }

    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn chunks_stay_small_until_the_first_megabytes_are_out() {
        let mut size = SMALL_CHUNK;
        let mut sent = 0;
        while sent < SMALL_CHUNKS_FOR {
            size = next_chunk_size(size, false, sent, CHUNK);
            sent += size as u64;
        }
        assert_eq!(sent, SMALL_CHUNKS_FOR, "all of it in small chunks");
        let sizes: Vec<usize> = (0..4)
            .scan(SMALL_CHUNK, |size, _| {
                *size = next_chunk_size(*size, false, 9 * MIB, CHUNK);
                Some(*size)
            })
            .collect();
        assert_eq!(sizes, [64 * 1024, 128 * 1024, CHUNK, CHUNK]);
    }

    #[test]
    fn slow_writes_shrink_chunks_to_the_small_size() {
        let mut size = CHUNK;
        for _ in 0..5 {
            size = next_chunk_size(size, true, 100 * MIB, CHUNK);
        }
        assert_eq!(size, SMALL_CHUNK);
    }

    #[test]
    fn a_throttled_transfer_never_exceeds_its_chunk_size() {
        let max = 8 * 1024;
        assert_eq!(next_chunk_size(max, false, 100 * MIB, max), max);
        assert_eq!(next_chunk_size(max, true, 100 * MIB, max), max);
    }
}
