//! Test support: a `ferryd` running in-process on 127.0.0.1 port 0 over a temporary folder, and a
//! small raw control-connection client for conformance tests; [`garage`]: a Garage cluster
//! for the S3 client's tests.
//!
//! Each test gets its own server; dropping [`TestServer`] shuts it down.
#![allow(dead_code)]

pub mod garage;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use ferry_server::config::Config;
use ferry_server::Context;

/// The seed's file: 1715 bytes of text with LF line ends.
pub fn readme_bytes() -> Vec<u8> {
    let mut text = Vec::new();
    let mut line = 0;
    while text.len() < 1715 {
        text.extend_from_slice(
            format!("Line {line}: Ferry serves readme.txt over FTP.\n").as_bytes(),
        );
        line += 1;
    }
    text.truncate(1714);
    text.push(b'\n');
    text
}

/// Password of the named test users.
pub const PASSWORD: &str = "s3cret pass";

/// A running server and the folders it serves.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Anonymous root: `readme.txt`, `pub/readme.txt`, `pub/sub/`, `my file ü.txt`.
    pub root: PathBuf,
    /// Root of the read-write user `alice` (and read-only `bob`).
    pub alice_root: PathBuf,
    /// The server's context, to read its state (what a metric would show).
    pub context: Arc<Context>,
    _dirs: Vec<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// A server with the defaults the seed needs (server name `ftp.any-domain.com`).
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server whose configuration `adjust` may change.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_on("127.0.0.1:0", adjust)
    }

    /// A server listening on `listen` (a `:0` port).
    pub fn start_on(listen: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let (anonymous_dir, alice_dir, users_dir) = (tempdir(), tempdir(), tempdir());
        fill_anonymous_root(anonymous_dir.path());
        std::fs::write(alice_dir.path().join("notes.txt"), "alice's notes\n").unwrap();
        let users_file = write_users_file(users_dir.path(), alice_dir.path());
        let mut config = Config {
            root: anonymous_dir.path().to_path_buf(),
            server_name: Some("ftp.any-domain.com".into()),
            users_file: Some(users_file),
            ..Config::default()
        };
        config.timeouts.failed_login_delay_ms = 50;
        config.timeouts.data_connect = 5;
        adjust(&mut config);
        let context = Arc::new(Context::new(config).expect("valid test configuration"));
        let served = Arc::clone(&context);
        let listener = bind_with_free_adjacent_port(listen);
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                ferry_server::run(listener, served, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        TestServer {
            addr,
            root: anonymous_dir.path().to_path_buf(),
            alice_root: alice_dir.path().to_path_buf(),
            context,
            _dirs: vec![anonymous_dir, alice_dir, users_dir],
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ftp://127.0.0.1:PORT/` (with `path` appended).
    pub fn url(&self, path: &str) -> String {
        format!("ftp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// A raw control connection, greeting already read.
    pub fn connect(&self) -> Control {
        let mut control = Control::connect(self.addr);
        let greeting = control.reply();
        assert_eq!(greeting.code, 220, "{greeting:?}");
        control
    }

    /// A raw control connection logged in as `user` (`ftp` for anonymous).
    pub fn login(&self, user: &str) -> Control {
        let mut control = self.connect();
        control.expect(&format!("USER {user}"), 331);
        let password = if user == "ftp" || user == "anonymous" {
            "test@example.com"
        } else {
            PASSWORD
        };
        control.expect(&format!("PASS {password}"), 230);
        control
    }

    /// Stops the server and waits for it (graceful shutdown).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn fill_anonymous_root(root: &Path) {
    std::fs::write(root.join("readme.txt"), readme_bytes()).unwrap();
    std::fs::create_dir_all(root.join("pub/sub")).unwrap();
    std::fs::write(root.join("pub/readme.txt"), readme_bytes()).unwrap();
    std::fs::write(root.join("my file ü.txt"), "spaces and UTF-8\n").unwrap();
    let big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
}

/// Users `alice` (read-write) and `bob` (read-only), both with [`PASSWORD`], sharing one root.
fn write_users_file(dir: &Path, root: &Path) -> PathBuf {
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{root}\"\nwritable = true\n\n\
         [[user]]\nname = \"bob\"\npassword = \"{hash}\"\nroot = \"{root}\"\n",
        root = root.display()
    );
    let path = dir.join("users.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Binds `listen`, retrying (a bounded number of times) until port - 1 is free too, so active
/// data connections can come from the adjacent port as they would from port 20.
fn bind_with_free_adjacent_port(listen: &str) -> TcpListener {
    for _ in 0..50 {
        let listener = TcpListener::bind(listen).expect("bind test listener");
        let addr = listener.local_addr().unwrap();
        let adjacent = SocketAddr::new(addr.ip(), addr.port() - 1);
        if addr.port() > 1025 && TcpListener::bind(adjacent).is_ok() {
            listener.set_nonblocking(true).unwrap();
            return listener;
        }
    }
    panic!("no port with a free adjacent port");
}

/// One reply as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireReply {
    pub code: u16,
    /// The raw lines, CRLF removed.
    pub lines: Vec<String>,
}

impl WireReply {
    /// The text of the last line (after the code and space).
    pub fn text(&self) -> &str {
        self.lines.last().map(|l| &l[4..]).unwrap_or("")
    }
}

/// A blocking control connection that checks the wire format strictly.
pub struct Control {
    reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Control {
    pub fn connect(addr: SocketAddr) -> Control {
        Control::over(TcpStream::connect(addr).expect("connect to ferryd"))
    }

    /// A control connection over a stream already connected.
    pub fn over(stream: TcpStream) -> Control {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Control {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write control line");
    }

    /// Reads one complete reply; every line must end in CRLF.
    pub fn reply(&mut self) -> WireReply {
        let first = self.line();
        let code: u16 = first[..3]
            .parse()
            .unwrap_or_else(|_| panic!("bad reply line {first:?}"));
        let mut lines = vec![first.clone()];
        if first.as_bytes()[3] == b'-' {
            let end = format!("{code} ");
            for _ in 0..10_000 {
                let line = self.line();
                let done = line.starts_with(&end);
                lines.push(line);
                if done {
                    break;
                }
            }
        } else {
            assert_eq!(first.as_bytes()[3], b' ', "bad reply line {first:?}");
        }
        WireReply { code, lines }
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("read reply line");
        assert!(
            line.ends_with(b"\r\n"),
            "reply line without CRLF: {:?}",
            String::from_utf8_lossy(&line)
        );
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("UTF-8 reply")
    }

    /// Sends a command and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> WireReply {
        self.send(line);
        let reply = self.reply();
        assert_eq!(reply.code, code, "{line} -> {reply:?}");
        reply
    }

    /// Sends a command and asserts the exact single-line reply.
    pub fn expect_text(&mut self, line: &str, code: u16, text: &str) {
        let reply = self.expect(line, code);
        assert_eq!(reply.lines, vec![format!("{code} {text}")], "{line}");
    }

    /// Opens a passive data connection with EPSV.
    pub fn epsv(&mut self) -> TcpStream {
        let reply = self.expect("EPSV", 229);
        let port = ferry_proto::hostport::parse_epsv_reply(reply.text()).expect("EPSV port");
        let ip = self.stream.peer_addr().unwrap().ip();
        TcpStream::connect((ip, port)).expect("connect to passive port")
    }

    /// STOR (or APPE, ...) `bytes` over a fresh passive connection: the final reply code, or
    /// the refusal's when there is no 150.
    pub fn upload(&mut self, command: &str, bytes: &[u8]) -> u16 {
        let mut data = self.epsv();
        self.send(command);
        let reply = self.reply();
        if reply.code != 150 {
            return reply.code;
        }
        data.write_all(bytes).unwrap();
        drop(data);
        self.reply().code
    }

    /// Whether the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// A test that cannot run here (no second loopback address, not root, ...) says why and is
/// skipped; under CI (`CI=true`, as `.ci/run` sets) it fails instead, so that a green CI always
/// means every test ran.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}: CI must run this test");
    }
    eprintln!("{reason}; skipping");
}

/// Reads a data connection to its end.
pub fn read_all(mut stream: TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut data = Vec::new();
    stream.read_to_end(&mut data).expect("read data connection");
    data
}

/// Runs a command with a time limit; returns (success, stdout, stderr).
pub fn run_tool(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    cwd: Option<&Path>,
) -> (bool, String, String) {
    let (code, stdout, stderr) = run_tool_with_code(program, args, stdin, cwd);
    (code == Some(0), stdout, stderr)
}

/// Like [`run_tool`], but returns the exit code (`None` when killed by a signal) instead of
/// success, for tests that check a client's documented exit code.
pub fn run_tool_with_code(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    cwd: Option<&Path>,
) -> (Option<i32>, String, String) {
    use std::process::{Command, Stdio};
    let mut command = Command::new("timeout");
    command.arg("60").arg(program).args(args);
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `ferryd` process on a temporary port, killed when dropped. Its log (standard error) is
/// read as it comes, so that a chatty server never blocks on a full pipe.
pub struct Ferryd {
    pub child: Child,
    pub addr: SocketAddr,
    /// The implicit FTPS listener's address, when one is configured.
    pub implicit: Option<SocketAddr>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl Ferryd {
    /// Starts ferryd serving `root` anonymously with `args`, logging at info level.
    pub fn start(root: &Path, args: &[&str]) -> Ferryd {
        Ferryd::start_on("127.0.0.1:0", root, args)
    }

    /// Like [`Ferryd::start`], listening on `listen`.
    pub fn start_on(listen: &str, root: &Path, args: &[&str]) -> Ferryd {
        let mut all = vec!["--listen", listen, "--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        Ferryd::start_with(&all)
    }

    /// Starts ferryd with exactly `args` (and info logging), e.g. `--config FILE` alone, so
    /// that the file says where it listens.
    pub fn start_with(args: &[&str]) -> Ferryd {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .args(["--log-level", "info"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&log);
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines
            .find_map(|l| {
                let line = l.ok()?;
                line.strip_prefix("ferryd listening on ")?.parse().ok()
            })
            .expect("ferryd did not start");
        // The implicit FTPS listener, if configured, is told on the next line.
        let implicit = lines.next().and_then(|line| {
            line.ok()?
                .strip_prefix("ferryd listening for implicit FTPS on ")?
                .parse()
                .ok()
        });
        std::thread::spawn(move || lines.for_each(drop));
        Ferryd {
            child,
            addr,
            implicit,
            log,
            log_reader: Some(log_reader),
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits (bounded) for the process to exit; returns its status and whole log.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "ferryd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        (status, self.log())
    }

    /// kill -9, and wait for it to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ferryd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
