//! What happens, said once: a session's start and end, a login, a command's reply, a transfer,
//! a TLS handshake. Sessions emit these typed [`Event`]s; every writer (the log line, xferlog,
//! JSON lines, metrics, the status page) consumes them and formats what it needs, so no fact is
//! written down twice by hand.

pub mod json;
pub mod xferlog;

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// One thing that happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A control connection was accepted (its address is the client's, after PROXY).
    Connected {
        session: u64,
        peer: SocketAddr,
    },
    Login(&'a Login<'a>),
    /// A command got its final reply (a transfer's, when it ends).
    Command {
        session: u64,
        verb: &'a str,
        code: u16,
    },
    Transfer(&'a Transfer<'a>),
    /// A TLS handshake on the control (`data: false`) or a data connection.
    TlsHandshake {
        session: u64,
        data: bool,
        ok: bool,
        resumed: bool,
    },
    Disconnected {
        session: u64,
        peer: SocketAddr,
        user: &'a str,
        elapsed: Duration,
    },
}

impl Event<'_> {
    /// The event's name in JSON lines and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Connected { .. } => "connect",
            Event::Login(login) if login.ok => "login",
            Event::Login(_) => "login_failed",
            Event::Command { .. } => "command",
            Event::Transfer(_) => "transfer",
            Event::TlsHandshake { .. } => "tls_handshake",
            Event::Disconnected { .. } => "disconnect",
        }
    }
}

/// A login attempt.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub session: u64,
    pub peer: SocketAddr,
    /// The name given (as given, for a failure).
    pub user: &'a str,
    pub anonymous: bool,
    pub ok: bool,
    /// Why it failed (`None` for a wrong password, to keep the reason from clients' logs too).
    pub reason: Option<&'a str>,
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// ABOR, or the client's connection going away.
    Aborted,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Aborted => "aborted",
            Status::Failed => "failed",
        }
    }
}

/// Which way a transfer's bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To the client (RETR, listings).
    Download,
    /// From the client (STOR, APPE, STOU).
    Upload,
}

/// The TLS of a data connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    pub version: &'static str,
    pub cipher: String,
    /// The handshake resumed the control connection's TLS session.
    pub resumed: bool,
}

/// A transfer that ended.
#[derive(Debug, Clone)]
pub struct Transfer<'a> {
    pub session: u64,
    pub transfer: u64,
    pub peer: SocketAddr,
    pub user: &'a str,
    pub anonymous: bool,
    /// For anonymous users, the identity they gave as password (xferlog's user field).
    pub identity: &'a str,
    pub verb: &'a str,
    /// The path as the user sees it.
    pub path: &'a str,
    pub direction: Direction,
    pub bytes: u64,
    /// The size a download announced in its 150 reply.
    pub size: Option<u64>,
    pub elapsed: Duration,
    pub status: Status,
    pub error: Option<&'a str>,
    pub ascii: bool,
    pub passive: bool,
    pub tls: Option<&'a TlsFacts>,
    /// When it ended.
    pub at: SystemTime,
}

impl Transfer<'_> {
    /// A file transfer (RETR, STOR, APPE, STOU), not a listing.
    pub fn is_file(&self) -> bool {
        matches!(self.verb, "RETR" | "STOR" | "APPE" | "STOU")
    }
}

/// Something that consumes events. Called on the session's task: it must not block (file
/// writers hand their lines to a thread of their own).
pub trait Writer: Send + Sync + fmt::Debug {
    fn write(&self, event: &Event<'_>);
    /// SIGHUP: reopen files (after logrotate moved them).
    fn reopen(&self) {}
}

/// The writers events go to: the log writers ([`Events::from_config`]: the log line and the log
/// files) and the others ([`Events::add`]: metrics, live sessions).
#[derive(Debug, Default, Clone)]
pub struct Events {
    writers: Vec<Arc<dyn Writer>>,
    others: Vec<Arc<dyn Writer>>,
    ids: Arc<Ids>,
}

/// Session and transfer numbers, unique in the process.
#[derive(Debug, Default)]
struct Ids {
    sessions: AtomicU64,
    transfers: AtomicU64,
}

impl Events {
    pub fn new(writers: Vec<Arc<dyn Writer>>) -> Events {
        Events {
            writers,
            others: Vec::new(),
            ids: Arc::default(),
        }
    }

    /// The log line, and the log files the configuration names (opened now: a file that
    /// cannot be opened at start is a configuration error).
    pub fn from_config(logs: &crate::config::LogsConfig) -> Result<Events, String> {
        let mut writers: Vec<Arc<dyn Writer>> = vec![Arc::new(LogLines)];
        if let Some(path) = &logs.xferlog {
            let writer = xferlog::Xferlog::open(path)
                .map_err(|e| format!("logs.xferlog {}: {e}", path.display()))?;
            writers.push(Arc::new(writer));
        }
        if let Some(path) = &logs.json {
            let writer = json::JsonLines::open(path)
                .map_err(|e| format!("logs.json {}: {e}", path.display()))?;
            writers.push(Arc::new(writer));
        }
        Ok(Events::new(writers))
    }

    pub fn add(&mut self, writer: Arc<dyn Writer>) {
        self.others.push(writer);
    }

    pub fn emit(&self, event: Event<'_>) {
        for writer in self.writers.iter().chain(&self.others) {
            writer.write(&event);
        }
    }

    /// These events with `new`'s log writers (a reload that changed the log files): the other
    /// writers and the session and transfer numbers go on.
    pub fn with_log_writers_of(&self, new: &Events) -> Events {
        Events {
            writers: new.writers.clone(),
            others: self.others.clone(),
            ids: Arc::clone(&self.ids),
        }
    }

    pub fn reopen(&self) {
        for writer in self.writers.iter().chain(&self.others) {
            writer.reopen();
        }
    }

    pub fn next_session(&self) -> u64 {
        self.ids.sessions.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn next_transfer(&self) -> u64 {
        self.ids.transfers.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The log line on standard error (through `tracing`): connect, login, transfer, disconnect.
/// A failed login is `login failed peer=<address> user="<name>"`, which fail2ban can match.
#[derive(Debug, Default)]
pub struct LogLines;

impl Writer for LogLines {
    fn write(&self, event: &Event<'_>) {
        match event {
            Event::Connected { peer, .. } => tracing::info!(peer = %peer, "connect"),
            Event::Login(login) if login.ok => tracing::info!(
                peer = %login.peer.ip(),
                user = %Escaped(login.user),
                anonymous = login.anonymous,
                "login"
            ),
            Event::Login(login) => match login.reason {
                None => {
                    tracing::warn!(peer = %login.peer.ip(), user = %Escaped(login.user), "login failed")
                }
                Some(reason) => {
                    tracing::warn!(peer = %login.peer.ip(), user = %Escaped(login.user), reason, "login failed")
                }
            },
            Event::Transfer(t) => {
                let seconds = t.elapsed.as_secs_f64();
                let path = Escaped(t.path);
                match (t.status, t.error) {
                    (Status::Ok, _) => tracing::info!(
                        peer = %t.peer, user = t.user, verb = t.verb, %path, bytes = t.bytes, seconds,
                        "transfer"
                    ),
                    (Status::Aborted, _) => tracing::info!(
                        peer = %t.peer, user = t.user, verb = t.verb, %path, bytes = t.bytes, seconds,
                        "transfer aborted"
                    ),
                    (Status::Failed, error) => tracing::warn!(
                        peer = %t.peer, user = t.user, verb = t.verb, %path, bytes = t.bytes, seconds,
                        error = error.unwrap_or(""), "transfer failed"
                    ),
                }
            }
            Event::Disconnected {
                peer,
                user,
                elapsed,
                ..
            } => tracing::info!(
                peer = %peer,
                user = *user,
                seconds = elapsed.as_secs_f64(),
                "disconnect"
            ),
            Event::Command { .. } | Event::TlsHandshake { .. } => {}
        }
    }
}

/// Escapes control characters in client-supplied text before it goes into a log line.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

/// [`escape`] done only when the text is written: a log line at a level that is off costs
/// nothing (a transfer's line is formatted for every transfer otherwise).
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0.escape_debug(), f)
    }
}

/// Lines queued for a file writer's thread before new ones are dropped (and counted).
const QUEUED_LINES: usize = 65_536;

/// A warning about a log file is printed at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A log file written by a thread of its own: a slow or full disk never holds a session up.
/// A line that cannot be written is dropped, with a warning on standard error at most once a
/// minute; SIGHUP reopens the file (logrotate).
///
/// The thread starts with the first line or reopening, not when the file is opened: `ferryd`
/// opens its logs before it drops root and confines itself, which changes only the threads
/// running then and the ones they start later.
#[derive(Debug)]
pub struct LogFile {
    lines: Mutex<mpsc::SyncSender<Message>>,
    dropped: Arc<AtomicU64>,
    /// Until the writer starts: what it will take (shared with the thread being started,
    /// which takes it: a thread that could not start leaves it for the next try).
    waiting: Arc<Mutex<Option<UnstartedWriter>>>,
    started: std::sync::atomic::AtomicBool,
}

/// What a log file's writer thread takes.
struct UnstartedWriter {
    path: PathBuf,
    file: std::fs::File,
    queue: mpsc::Receiver<Message>,
}

impl std::fmt::Debug for UnstartedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnstartedWriter")
            .field("path", &self.path)
            .finish()
    }
}

enum Message {
    Line(String),
    Reopen,
}

impl LogFile {
    /// Opens (creating, appending) `path`; an error if it cannot be opened now.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_append(path)?;
        let (lines, queue) = mpsc::sync_channel::<Message>(QUEUED_LINES);
        Ok(LogFile {
            lines: Mutex::new(lines),
            dropped: Arc::new(AtomicU64::new(0)),
            waiting: Arc::new(Mutex::new(Some(UnstartedWriter {
                path: path.to_path_buf(),
                file,
                queue,
            }))),
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Starts the writer thread, once; when it cannot start, the next line tries again (the
    /// lines wait in the queue meanwhile, up to its size).
    fn start(&self) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        // One start at a time; the thread takes the writer once this lock is let go.
        let starting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if self.started.load(Ordering::Acquire) || starting.is_none() {
            return;
        }
        let waiting = Arc::clone(&self.waiting);
        let lost = Arc::clone(&self.dropped);
        let started = std::thread::Builder::new()
            .name("ferry-log".into())
            .spawn(move || {
                let writer = waiting.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(UnstartedWriter { path, file, queue }) = writer {
                    write_lines(path, file, queue, lost);
                }
            });
        match started {
            Ok(_) => self.started.store(true, Ordering::Release),
            Err(error) => {
                eprintln!(
                    "ferryd: cannot start a log file's writer thread (will try again): {error}"
                )
            }
        }
        drop(starting);
    }

    /// Queues a line (its newline included).
    pub fn push(&self, line: String) {
        self.start();
        let sender = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if sender.try_send(Message::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reopen(&self) {
        self.start();
        let sender = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let _ = sender.try_send(Message::Reopen);
    }
}

/// Set by a run that only checks (`--check-config`, `doctor`): log files are not created (a
/// check run as root would leave root's files where the service, as its own user, must write),
/// only found writable, or their folder.
static CHECK_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, opening a log file only checks that it could be written (see [`CHECK_ONLY`]).
pub fn only_check_log_files() {
    CHECK_ONLY.store(true, Ordering::Relaxed);
}

/// Opens `path` to append to it, creating it readable by its owner and group only (its lines
/// name users and addresses).
fn open_append(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if CHECK_ONLY.load(Ordering::Relaxed) && !path.exists() {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        rustix::fs::access(folder, rustix::fs::Access::WRITE_OK).map_err(io::Error::from)?;
        // A stand-in that is never written (nothing is logged by a check).
        return std::fs::OpenOptions::new().append(true).open("/dev/null");
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// The writer thread: appends each line, reopens on request, and warns (at most once a
/// minute) about lines it could not write or that were dropped.
fn write_lines(
    path: PathBuf,
    file: std::fs::File,
    queue: mpsc::Receiver<Message>,
    dropped: Arc<AtomicU64>,
) {
    let mut file = Some(file);
    let mut failed = 0u64;
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: String| {
        if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            eprintln!("ferryd: log file {}: {what}", path.display());
            last_warning = Some(Instant::now());
        }
    };
    while let Ok(message) = queue.recv() {
        match message {
            Message::Reopen => match open_append(&path) {
                Ok(reopened) => file = Some(reopened),
                Err(error) => {
                    file = None;
                    warn(format!("cannot reopen: {error}"));
                }
            },
            Message::Line(line) => {
                let written = match file.as_mut() {
                    Some(file) => file.write_all(line.as_bytes()),
                    None => open_append(&path).and_then(|mut reopened| {
                        let result = reopened.write_all(line.as_bytes());
                        file = Some(reopened);
                        result
                    }),
                };
                if let Err(error) = written {
                    failed += 1;
                    warn(format!("{failed} line(s) not written: {error}"));
                }
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            warn(format!("{lost} line(s) dropped: the writer fell behind"));
        }
    }
}
