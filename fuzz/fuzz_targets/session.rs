//! `session`: a real ferryd session (the server's own listener and session code, over a real
//! loopback TCP connection) fed arbitrary bytes, with invariants checked after each input.
//!
//! Input: `[flags, chunk_seed, stream..]`. `flags & 1` picks the server: 0 has anonymous logins
//! off and an authenticator that refuses everyone, so no command can ever run logged in; 1 lets
//! anonymous users log in and write. `stream` goes to the control connection in the reads
//! `chunk_seed` gives (`ferry_fuzz::chunks`); then the client closes its sending side, at once
//! when `flags & 2` is 0, else once the server has answered everything ([`Ending`]).
//!
//! One tokio runtime and two servers (one per mode) serve the whole fuzzing process; everything
//! is on 127.0.0.1. See `fuzz/README.md` for the invariants.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferry_fuzz::fixture::{Fixture, SENTINEL};
use ferry_fuzz::replies::Transcript;
use ferry_proto::command::{self, Command};
use ferry_proto::{Frame, LineFramer};
use ferry_server::users::{AccountSpec, Authenticator};
use ferry_server::{Config, Context};
use libfuzzer_sys::{fuzz_target, Corpus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};

/// The servers' `max_line`, small so that overlong lines are cheap to reach.
const MAX_LINE: usize = 512;
/// The servers' `timeouts.data_connect`, in seconds.
const DATA_CONNECT: u64 = 1;
/// After 221 or 421 the server must close the connection within this.
const END_AFTER_LAST_REPLY: Duration = Duration::from_secs(2);
/// After the client's shutdown(Write): this, plus [`PER_DATA_COMMAND`] for each command that
/// may wait for a data connection.
const END_AFTER_SHUTDOWN: Duration = Duration::from_secs(2);
const PER_DATA_COMMAND: Duration = Duration::from_secs(DATA_CONNECT + 1);
/// After the client's shutdown(Write), the longest the server may send nothing and not close.
const MAX_SILENCE: Duration = Duration::from_secs(DATA_CONNECT + 2);
/// Connecting, and sending the whole input (a few KiB into an empty socket buffer).
const SEND_LIMIT: Duration = Duration::from_secs(5);
/// How long the client waits for the probe's reply after the server's last byte before it shuts
/// down anyway. Replies come in microseconds; the probe gets none of its own when it came
/// behind a running transfer with the queue full (503 to the lines that did not fit), so after a
/// 503 the wait is shorter.
const PROBE_PATIENCE: Duration = Duration::from_millis(500);
const PROBE_PATIENCE_AFTER_503: Duration = Duration::from_millis(100);
/// Data connections the harness opens per input, and how long each may last.
const MAX_DATA_CONNECTIONS: usize = 16;
const DATA_LIMIT: Duration = Duration::from_secs(3);
const DATA_READ_CAP: u64 = 1 << 20;
/// What the harness sends on every data connection (the body of STOR and APPE).
const UPLOAD: &[u8] = b"uploaded by the fuzzer\r\nsecond line\nthird\r\x00\xff end";
/// Where PORT and EPRT may point: the harness's own listener, the first of these ports that is
/// free (seeds use 24193). Inputs naming any other data address are not run.
const SINK_PORTS: RangeInclusive<u16> = 24193..=24202;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Anonymous off, every login refused: nothing may reach storage.
    Closed,
    /// Anonymous logins with writes.
    Anonymous,
}

struct Server {
    mode: Mode,
    addr: SocketAddr,
    fixture: Fixture,
}

struct Harness {
    runtime: Runtime,
    servers: [Server; 2],
    sink: Option<(TcpListener, u16)>,
}

fuzz_target!(|data: &[u8]| -> Corpus {
    let [flags, chunk_seed, ref stream @ ..] = *data else {
        return Corpus::Reject;
    };
    let harness = harness();
    let ending = if flags & 2 == 0 {
        Ending::Abrupt
    } else {
        Ending::WhenIdle
    };
    let tail = ending.tail(stream);
    let sink_port = harness.sink.as_ref().map(|(_, port)| *port);
    let Some(data_commands) = screen(&[stream, &tail].concat(), sink_port) else {
        return Corpus::Reject;
    };
    let server = &harness.servers[usize::from(flags & 1)];
    let mut chunks = ferry_fuzz::chunks(chunk_seed, stream);
    chunks.push(&tail);
    let sink = harness.sink.as_ref().map(|(listener, _)| listener);
    let session = run_session(server, &chunks, ending, data_commands, sink);
    harness.runtime.block_on(session);
    check_folders(harness, server);
    Corpus::Keep
});

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        install_panic_hook();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let work = work_folder();
        let servers = [Mode::Closed, Mode::Anonymous].map(|mode| start(&runtime, &work, mode));
        let sink = runtime.block_on(bind_sink());
        Harness {
            runtime,
            servers,
            sink,
        }
    })
}

/// A panic anywhere (a server task included: tokio would catch it) aborts, so libFuzzer sees it.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        std::process::abort();
    }));
}

/// `$TMPDIR/ferry-fuzz-session.<pid>`, after removing those of processes that are gone.
fn work_folder() -> PathBuf {
    let temp = std::env::temp_dir();
    let entries = std::fs::read_dir(&temp).into_iter().flatten().flatten();
    for entry in entries.take(100_000) {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("ferry-fuzz-session."));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    temp.join(format!("ferry-fuzz-session.{}", std::process::id()))
}

/// Starts one mode's server on 127.0.0.1:0, serving a fresh fixture.
fn start(runtime: &Runtime, work: &Path, mode: Mode) -> Server {
    let folder = work.join(format!("{mode:?}").to_lowercase());
    let fixture = Fixture::create(&folder).expect("fixture folders");
    let config = server_config(&fixture.root, mode);
    let context = Context::with_authenticator(config, Arc::new(RefuseAll)).expect("configuration");
    let listener = runtime
        .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener address");
    let shutdown = std::future::pending::<()>();
    runtime.spawn(ferry_server::run(listener, Arc::new(context), shutdown));
    Server {
        mode,
        addr,
        fixture,
    }
}

fn server_config(root: &Path, mode: Mode) -> Config {
    let mut config = Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        root: root.to_path_buf(),
        server_name: Some("ftp.any-domain.com".into()),
        max_line: MAX_LINE,
        ..Config::default()
    };
    let anonymous = mode == Mode::Anonymous;
    config.anonymous.enabled = anonymous;
    config.anonymous.writable = anonymous;
    config.anonymous.upload_folder = Some("/incoming".into());
    // AUTH TLS answers 234 and hands the rest of the input to the TLS handshake.
    config.tls.self_signed = true;
    let timeouts = &mut config.timeouts;
    timeouts.idle = 3;
    timeouts.login = 3;
    timeouts.data_connect = DATA_CONNECT;
    timeouts.stalled_transfer = 2;
    timeouts.failed_login_delay_ms = 0;
    timeouts.abandoned_upload = 0;
    config.limits.ban_after_failures = 0;
    config.limits.max_sessions_per_ip = 0;
    config
}

/// Refuses every login.
#[derive(Debug)]
struct RefuseAll;

impl Authenticator for RefuseAll {
    fn authenticate(&self, _user: &str, _password: &str, _peer: IpAddr) -> Option<AccountSpec> {
        None
    }

    fn account_count(&self) -> Option<usize> {
        Some(0)
    }
}

/// The harness's listener for active-mode data connections.
async fn bind_sink() -> Option<(TcpListener, u16)> {
    for port in SINK_PORTS {
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return Some((listener, port));
        }
    }
    None
}

/// Frames and parses the stream as the server will (the framer's output does not depend on the
/// reads, see the `framer` target). `None` when a PORT or EPRT names any data address but the
/// sink, which the server could connect to; else how many commands may wait for a data
/// connection.
fn screen(stream: &[u8], sink_port: Option<u16>) -> Option<u32> {
    let mut frames = Vec::new();
    LineFramer::new(MAX_LINE).push(stream, &mut frames);
    let mut data_commands = 0;
    for frame in &frames {
        let Frame::Line(line) = frame else { continue };
        match command::parse(&String::from_utf8_lossy(line)) {
            Ok(Command::Port(target) | Command::Eprt(target)) => {
                let loopback = target.ip().to_canonical() == IpAddr::V4(Ipv4Addr::LOCALHOST);
                if !loopback || Some(target.port()) != sink_port {
                    return None;
                }
            }
            Ok(
                Command::Retr(_)
                | Command::Stor(_)
                | Command::Stou
                | Command::Appe(_)
                | Command::List(_)
                | Command::Nlst(_)
                | Command::Mlsd(_),
            ) => data_commands += 1,
            _ => {}
        }
    }
    Some(data_commands)
}

/// How the client ends its side of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// shutdown(Write) right after the input, while the server may still be busy with it (a
    /// transfer running, commands queued behind it): the session ends there.
    Abrupt,
    /// First [`IDLE_PROBE_VERB`], then shutdown(Write) once its reply shows that the server has
    /// worked through the whole input (or after [`PROBE_PATIENCE`] without a byte).
    WhenIdle,
}

/// An unknown command, sent after the input (and a CRLF if it ended inside a line): its reply,
/// `500 Unknown command XFUZZEND.`, comes after those of every command before it.
const IDLE_PROBE_VERB: &str = "XFUZZEND";

fn probe_line() -> Vec<u8> {
    format!("{IDLE_PROBE_VERB}\r\n").into_bytes()
}

impl Ending {
    /// What the client sends after the input.
    fn tail(self, stream: &[u8]) -> Vec<u8> {
        match self {
            Ending::Abrupt => Vec::new(),
            Ending::WhenIdle if stream.last() == Some(&b'\n') => probe_line(),
            Ending::WhenIdle => [b"\r\n".to_vec(), probe_line()].concat(),
        }
    }
}

/// When the session must have ended, from what has happened so far.
struct Clock {
    started: Instant,
    /// The input (and probe) were sent.
    sent: Option<Instant>,
    /// shutdown(Write) was done.
    shut: Option<Instant>,
    /// 221 or 421 came.
    last_reply: Option<Instant>,
    last_byte: Instant,
    /// A 503 came: perhaps the probe's.
    refused: bool,
    data_commands: u32,
}

impl Clock {
    fn new(data_commands: u32) -> Self {
        let now = Instant::now();
        Clock {
            started: now,
            sent: None,
            shut: None,
            last_reply: None,
            last_byte: now,
            refused: false,
            data_commands,
        }
    }

    /// How long the commands may take: [`PER_DATA_COMMAND`] for each data command.
    fn data_allowance(&self) -> Duration {
        PER_DATA_COMMAND * self.data_commands
    }

    /// Until when the client waits for the probe's reply before it shuts down anyway.
    fn idle_deadline(&self) -> Instant {
        let sent = self.sent.unwrap_or(self.started);
        let patience = if self.refused {
            PROBE_PATIENCE_AFTER_503
        } else {
            PROBE_PATIENCE
        };
        (sent + SEND_LIMIT).min(self.last_byte.max(sent) + patience)
    }

    /// When the session must be over (or, before shutdown, the input sent).
    fn deadline(&self) -> Instant {
        let mut deadline = match (self.sent, self.shut) {
            (None, _) => self.started + SEND_LIMIT,
            (Some(_), None) => self.idle_deadline(),
            (_, Some(shut)) => (shut + END_AFTER_SHUTDOWN + self.data_allowance())
                .min(self.last_byte.max(shut) + MAX_SILENCE),
        };
        if let Some(last) = self.last_reply {
            deadline = deadline.min(last + END_AFTER_LAST_REPLY);
        }
        deadline
    }

    fn overdue(&self) -> String {
        let now = Instant::now();
        let ago = |at: Option<Instant>| at.map(|at| now - at);
        format!(
            "the session did not end in time: {:?} since the start, {:?} since the input was \
             sent, {:?} since shutdown(Write), {:?} since 221/421, {:?} since the last byte, \
             {} data commands",
            now - self.started,
            ago(self.sent),
            ago(self.shut),
            ago(self.last_reply),
            now - self.last_byte,
            self.data_commands
        )
    }
}

/// One session: connect, send the input in chunks, shut down the sending side (at once, or
/// once the server is idle), and read every reply until the server closes, checking them and
/// answering PASV/EPSV and PORT/EPRT.
async fn run_session(
    server: &Server,
    chunks: &[&[u8]],
    ending: Ending,
    data_commands: u32,
    sink: Option<&TcpListener>,
) {
    if let Some(sink) = sink {
        drain(sink).await;
    }
    let stream = timeout(SEND_LIMIT, TcpStream::connect(server.addr))
        .await
        .expect("connecting to ferryd timed out")
        .expect("connect to ferryd");
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let send = send_input(writer, chunks);
    tokio::pin!(send);
    let mut writer = None;
    let mut clock = Clock::new(data_commands);
    let mut transcript = Transcript::new(server.mode == Mode::Closed, IDLE_PROBE_VERB);
    let mut data = DataConnections::default();
    let mut buffer = vec![0u8; 16 * 1024];
    let clean = loop {
        // After 234 the probe goes to the TLS handshake and gets no reply.
        let idle =
            ending == Ending::Abrupt || transcript.idle || transcript.ended || transcript.tls;
        if clock.sent.is_some()
            && clock.shut.is_none()
            && (idle || Instant::now() >= clock.idle_deadline())
        {
            if let Some(mut writer) = writer.take() {
                let _ = AsyncWriteExt::shutdown(&mut writer).await;
            }
            clock.shut = Some(Instant::now());
        }
        tokio::select! {
            sent = &mut send, if clock.sent.is_none() => {
                writer = sent;
                clock.sent = Some(Instant::now());
            }
            read = reader.read(&mut buffer) => match read {
                Ok(0) => break true,
                Err(_) => break false,
                Ok(n) => {
                    clock.last_byte = Instant::now();
                    for port in transcript.feed(&buffer[..n]) {
                        data.connect(port);
                    }
                    clock.refused |= transcript.refused;
                    if transcript.ended && clock.last_reply.is_none() {
                        clock.last_reply = Some(clock.last_byte);
                    }
                }
            },
            accepted = accept(sink) => {
                if let Ok((stream, _)) = accepted {
                    data.exchange(stream);
                }
            }
            _ = sleep_until(clock.deadline()) => {
                // Waiting for the probe's reply is not bounded by an invariant: shut down.
                if clock.sent.is_none() || clock.shut.is_some() || transcript.ended {
                    panic!("invariant failed: {}", clock.overdue());
                }
            }
        }
    };
    transcript.finish(clean);
    data.tasks.shutdown().await;
}

/// Sends the chunks, stopping at the first error (the server may have closed). Returns the
/// sending side, unless it failed.
async fn send_input(mut writer: OwnedWriteHalf, chunks: &[&[u8]]) -> Option<OwnedWriteHalf> {
    for chunk in chunks {
        writer.write_all(chunk).await.ok()?;
        tokio::task::yield_now().await;
    }
    Some(writer)
}

/// Drops connections left on the sink (none are expected).
async fn drain(sink: &TcpListener) {
    for _ in 0..64 {
        if !matches!(timeout(Duration::ZERO, sink.accept()).await, Ok(Ok(_))) {
            return;
        }
    }
}

async fn accept(sink: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match sink {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The data connections of one session, at most [`MAX_DATA_CONNECTIONS`].
#[derive(Default)]
struct DataConnections {
    tasks: JoinSet<()>,
    opened: usize,
}

impl DataConnections {
    /// Connects to a passive port the server announced (on 127.0.0.1 only).
    fn connect(&mut self, port: u16) {
        if self.take_turn() {
            self.tasks.spawn(async move {
                let connect = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
                if let Ok(Ok(stream)) = timeout(DATA_LIMIT, connect).await {
                    exchange(stream).await;
                }
            });
        }
    }

    /// Serves a connection the server made to the sink (PORT, EPRT).
    fn exchange(&mut self, stream: TcpStream) {
        if self.take_turn() {
            self.tasks.spawn(exchange(stream));
        }
    }

    fn take_turn(&mut self) -> bool {
        self.opened += 1;
        self.opened <= MAX_DATA_CONNECTIONS
    }
}

/// Sends [`UPLOAD`] and closes the sending side while reading what the server sends (a bounded
/// amount, for a bounded time), which must not hold the sentinel's content.
async fn exchange(stream: TcpStream) {
    let (mut reader, mut writer) = stream.into_split();
    let send = async move {
        let _ = writer.write_all(UPLOAD).await;
        let _ = writer.shutdown().await;
    };
    let receive = async move {
        let mut received = Vec::new();
        let _ = (&mut reader)
            .take(DATA_READ_CAP)
            .read_to_end(&mut received)
            .await;
        received
    };
    let Ok(((), received)) = timeout(DATA_LIMIT, async { tokio::join!(send, receive) }).await
    else {
        return;
    };
    // Without the final LF, which TYPE A sends as CRLF.
    let marker = &SENTINEL[..SENTINEL.len() - 1];
    assert!(
        !received
            .windows(marker.len())
            .any(|window| window == marker),
        "invariant failed: a data connection carried the sentinel's content (outside the root)"
    );
}

/// After a session: nothing outside either root changed; the closed server's root is exactly
/// its seed; the anonymous server's root goes back to its seed when it changed.
fn check_folders(harness: &Harness, server: &Server) {
    for each in &harness.servers {
        if let Some(problem) = each.fixture.outside_problem() {
            panic!(
                "invariant failed: outside the {:?} root: {problem}",
                each.mode
            );
        }
    }
    let changes = server
        .fixture
        .root_changes()
        .unwrap_or_else(|error| panic!("invariant failed: the {:?} root: {error}", server.mode));
    match (server.mode, changes) {
        (_, None) => {}
        (Mode::Closed, Some(changes)) => {
            panic!("invariant failed: the root changed though no login can succeed: {changes}")
        }
        (Mode::Anonymous, Some(_)) => reset(&server.fixture),
    }
}

/// Puts the anonymous root back; it must stay put (the session, and its transfers, are over).
fn reset(fixture: &Fixture) {
    let mut last = String::new();
    for _ in 0..10 {
        match fixture.reset_root().and_then(|()| fixture.root_changes()) {
            Ok(None) => return,
            Ok(Some(changes)) => last = changes,
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("invariant failed: the anonymous root kept changing after its session ended: {last}");
}
