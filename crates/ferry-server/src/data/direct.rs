//! Transfers without conversion on one thread each: a blocking loop moves the bytes between
//! the socket (through rustls, over TLS) and the file with one buffer, as a forking server does,
//! so that no hand-off between threads sits between the network and the disk.
//!
//! - Uploads ([`receive`]): TYPE I, no bandwidth limit, no quota or MODE Z. Everything else goes
//!   through [`super::receive`].
//! - Downloads over TLS ([`send_tls`]): TYPE I, no bandwidth limit, no MODE Z. Plain ones use
//!   sendfile(2) instead, everything else [`super::send`]'s chunks.
//!
//! Each holds a [`Slot`]: at most [`MAX_PUMPS`] run at once, so that the blocking pool keeps
//! threads for listings and password checks; a transfer that finds none takes the async path.
//!
//! Measured on 1 GiB uploads over loopback (2 cores, ferry-bench stor-big): ferryd spent about
//! 540 ms of CPU per upload this way, against 740 ms with a reading task handing chunks to a
//! writing thread, and 730–2,800 ms with splice(2) through a pipe. TLS downloads (retr-big
//! --tls): 0.47–0.51 s of CPU per GiB against 0.53–0.62 with the file read on the blocking pool
//! chunk by chunk and encrypted on a worker.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConnection;

use super::{stalled, Progress, TransferError, CHUNK};
use crate::stream::MaybeTls;

/// Plaintext an upload over TLS gathers before it writes to the file: rustls hands out about
/// one record (16 KiB) per read, and a write per record would cost a syscall each.
const TLS_WRITE_AT_LEAST: usize = CHUNK / 2;

/// Transfers on threads of their own at once, at most: a quarter of ferryd's blocking pool.
pub const MAX_PUMPS: usize = 1024;

/// A count of running transfers with a limit.
#[derive(Debug)]
struct Pumps {
    running: AtomicUsize,
    max: usize,
}

impl Pumps {
    const fn new(max: usize) -> Pumps {
        Pumps {
            running: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&'static self) -> Option<Slot> {
        self.running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot { pumps: self })
    }
}

static PUMPS: Pumps = Pumps::new(MAX_PUMPS);

/// A transfer's place among the [`MAX_PUMPS`], held by its thread and given back when the
/// thread is done.
#[derive(Debug)]
pub struct Slot {
    pumps: &'static Pumps,
}

impl Slot {
    /// A place, or `None` when [`MAX_PUMPS`] transfers run on their own threads already.
    pub fn take() -> Option<Slot> {
        PUMPS.take()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pumps.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Receives everything the client sends on `stream` into `file` until the client closes the
/// connection, on a blocking-pool thread. Returns the bytes received.
///
/// Over TLS the connection is taken out of the runtime with its rustls state, nothing lost:
/// rustls keeps whatever it has read but not yet handed out.
///
/// Dropping the future (ABOR) shuts the socket down, which wakes the thread; it then stops
/// without writing anything more, and [`Progress::writers_done`] tells when it has.
pub async fn receive(
    stream: MaybeTls,
    file: std::fs::File,
    progress: Arc<Progress>,
    stall: Duration,
    slot: Slot,
) -> Result<u64, TransferError> {
    let (tcp, tls) = match stream {
        MaybeTls::Plain(tcp) => (tcp, None),
        MaybeTls::Tls(tls) => {
            let (tcp, connection) = tls.into_inner();
            (tcp, Some(connection))
        }
    };
    // The file and the thread's handle of the socket are closed before the token says so.
    let token = progress.writer_token();
    on_own_thread(
        tcp,
        Waits::Reads(stall),
        (slot, token),
        move |socket, stop| {
            let result = match tls {
                None => pump_plain(socket, &file, &progress.bytes, stop),
                Some(connection) => pump_tls(connection, socket, &file, &progress.bytes, stop),
            };
            drop(file);
            result
        },
    )
    .await
}

/// Which of a blocking socket's calls time out after the stall limit.
#[derive(Debug, Clone, Copy)]
enum Waits {
    Reads(Duration),
    Writes(Duration),
}

/// Takes `tcp` out of the runtime, makes it blocking with a stall timeout on its reads or
/// writes, and runs `pump` with it (and the stop flag) on a blocking-pool thread, which holds
/// `held` (the transfer's [`Slot`], an upload's writer token) until its socket is closed.
/// Dropping the future (ABOR) sets the flag and shuts the socket down, which wakes the thread
/// from any wait.
async fn on_own_thread<F, H>(
    tcp: tokio::net::TcpStream,
    waits: Waits,
    held: H,
    pump: F,
) -> Result<u64, TransferError>
where
    F: FnOnce(&std::net::TcpStream, &AtomicBool) -> Result<u64, TransferError> + Send + 'static,
    H: Send + 'static,
{
    // Setting the socket up fails only on the server's side (out of descriptors for the stop
    // guard's handle, say): 451, told as failed, never as the client breaking the transfer.
    let socket = tcp.into_std().map_err(TransferError::Local)?;
    socket
        .set_nonblocking(false)
        .map_err(TransferError::Local)?;
    // A zero timeout would mean "never"; a stall limit is never meant that way.
    let timeout = |stall: Duration| Some(stall.max(Duration::from_millis(1)));
    match waits {
        Waits::Reads(stall) => socket.set_read_timeout(timeout(stall)),
        Waits::Writes(stall) => socket.set_write_timeout(timeout(stall)),
    }
    .map_err(TransferError::Local)?;
    let guard = StopOnDrop {
        socket: socket.try_clone().map_err(TransferError::Local)?,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let stop = Arc::clone(&guard.stop);
    let pumping = tokio::task::spawn_blocking(move || {
        let result = pump(&socket, &stop);
        drop(socket);
        drop(held);
        result
    });
    let result = pumping
        .await
        .unwrap_or_else(|e| Err(TransferError::Local(io::Error::other(e.to_string()))));
    drop(guard);
    result
}

/// Stops the pumping thread when the transfer's future is dropped before it ends.
struct StopOnDrop {
    socket: std::net::TcpStream,
    stop: Arc<AtomicBool>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Plain TCP: [`pump`] straight from the socket, then our close.
fn pump_plain(
    socket: &std::net::TcpStream,
    file: &std::fs::File,
    progress: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
) -> Result<u64, TransferError> {
    let mut source = socket;
    let received = pump(&mut source, 1, file, progress, stop)?;
    // Answer the client's close with ours.
    let _ = socket.shutdown(Shutdown::Write);
    Ok(received)
}

/// TLS: [`pump`] from rustls reading the socket, then close_notify and our close.
fn pump_tls(
    mut connection: ServerConnection,
    socket: &std::net::TcpStream,
    file: &std::fs::File,
    progress: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
) -> Result<u64, TransferError> {
    let mut io = socket;
    let mut source = rustls::Stream::new(&mut connection, &mut io);
    let received = pump(&mut source, TLS_WRITE_AT_LEAST, file, progress, stop)?;
    // Answer the client's close (and close_notify) with ours.
    connection.send_close_notify();
    let _ = connection.complete_io(&mut io);
    let _ = socket.shutdown(Shutdown::Write);
    Ok(received)
}

/// The blocking loop: read from `source` until at least `write_at_least` bytes (or the end)
/// are in the buffer, write them to the file, until end of file, an error or a stop.
fn pump(
    source: &mut dyn Read,
    write_at_least: usize,
    mut file: &std::fs::File,
    progress: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
) -> Result<u64, TransferError> {
    let mut buffer = vec![0; CHUNK];
    let mut received = 0u64;
    loop {
        let mut filled = 0;
        let mut ended = false;
        while filled < write_at_least {
            let read = match source.read(&mut buffer[filled..]) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // The socket's read timeout.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Err(stalled()),
                Err(error) => return Err(TransferError::Broken(error)),
            };
            if stop.load(Ordering::SeqCst) {
                // ABOR: whatever was read is not written.
                return Ok(received);
            }
            if read == 0 {
                ended = true;
                break;
            }
            filled += read;
        }
        file.write_all(&buffer[..filled])
            .map_err(TransferError::Local)?;
        received += filled as u64;
        progress.store(received, Ordering::Relaxed);
        if ended {
            return Ok(received);
        }
    }
}

/// Plaintext a TLS download reads from the file at a time: small enough that the bytes are
/// still in the core's cache when rustls copies and encrypts them and the kernel copies the
/// records out.
const TLS_READ: usize = 64 * 1024;

/// Sends `range` of `file` over the TLS connection `tls` on a blocking-pool thread: read a
/// piece of the file, encrypt it, write the records, on one thread with one buffer (the
/// download side of [`receive`]). Closes with close_notify and a FIN. Returns the bytes sent.
///
/// Dropping the future (ABOR) shuts the socket down, which ends the thread's next write.
pub async fn send_tls(
    tls: Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    file: std::fs::File,
    range: std::ops::Range<u64>,
    progress: Arc<Progress>,
    stall: Duration,
    slot: Slot,
) -> Result<u64, TransferError> {
    let (tcp, connection) = tls.into_inner();
    on_own_thread(tcp, Waits::Writes(stall), slot, move |socket, stop| {
        pump_out_tls(connection, socket, &file, range, &progress.bytes, stop)
    })
    .await
}

fn pump_out_tls(
    mut connection: ServerConnection,
    socket: &std::net::TcpStream,
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    progress: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
) -> Result<u64, TransferError> {
    use std::os::unix::fs::FileExt;
    let mut io = socket;
    let mut buffer = vec![0; TLS_READ];
    let (mut offset, end) = (range.start, range.end);
    let mut sent = 0u64;
    while offset < end {
        let want = usize::try_from(end - offset).map_or(TLS_READ, |left| left.min(TLS_READ));
        let read = match file.read_at(&mut buffer[..want], offset) {
            Ok(0) => return Err(super::shrank()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(TransferError::Local(error)),
        };
        let mut taken = 0;
        while taken < read {
            // rustls takes what fits under its buffer limit; its records are all written out
            // before each call, so it takes something every time.
            match connection.writer().write(&buffer[taken..read]) {
                Ok(0) => return Err(TransferError::Local(io::ErrorKind::WriteZero.into())),
                Ok(count) => taken += count,
                Err(error) => return Err(TransferError::Local(error)),
            }
            write_records(&mut connection, &mut io, stop)?;
        }
        offset += read as u64;
        sent += read as u64;
        progress.store(sent, Ordering::Relaxed);
    }
    connection.send_close_notify();
    write_records(&mut connection, &mut io, stop)?;
    socket
        .shutdown(Shutdown::Write)
        .map_err(TransferError::Broken)?;
    Ok(sent)
}

/// Writes out every record rustls holds; a stop (ABOR) or the socket's write timeout ends it.
fn write_records(
    connection: &mut ServerConnection,
    io: &mut &std::net::TcpStream,
    stop: &AtomicBool,
) -> Result<(), TransferError> {
    while connection.wants_write() {
        if stop.load(Ordering::SeqCst) {
            return Err(TransferError::Broken(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "transfer aborted",
            )));
        }
        match connection.write_tls(io) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // The socket's write timeout.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Err(super::stalled()),
            Err(error) => return Err(TransferError::Broken(error)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_at_the_limit_and_come_back_when_dropped() {
        static SMALL: Pumps = Pumps::new(2);
        let first = SMALL.take().unwrap();
        let second = SMALL.take().unwrap();
        assert!(SMALL.take().is_none(), "a third past a limit of two");
        drop(first);
        let third = SMALL.take().unwrap();
        assert!(SMALL.take().is_none());
        drop((second, third));
        assert_eq!(SMALL.running.load(Ordering::SeqCst), 0);
    }
}
