//! The admin listener of a real `ferryd` on loopback: `/metrics` after a known sequence of
//! sessions (exact counts, parsed as Prometheus text), `/health` and `/ready` (also while
//! draining), the bearer token, a malformed request, and `/status` as headless Chromium renders
//! it while rate-limited transfers run.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Control, PASSWORD};

/// The hostile file name: markup if the page forgot to escape it (no `/`: it is a file name).
const HOSTILE: &str = "<script>document.title='pwned'<img id=hostile src=x>.bin";

/// Size of `file.bin`, the file the metrics test downloads.
const FILE_SIZE: usize = 100_000;

/// A `ferryd` with the admin listener on, serving a temporary folder.
struct Admind {
    child: Child,
    ftp: SocketAddr,
    admin: SocketAddr,
    /// The argon2 hash of alice's password, as in the users file.
    hash: String,
    _root: tempfile::TempDir,
}

impl Admind {
    /// Starts ferryd with `--admin-listen 127.0.0.1:0`, a users file (alice, read-write) and
    /// `args`; `file.bin`, and `big.bin` and the hostile name (4 MiB each) are in its root.
    fn start(args: &[&str]) -> Admind {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file.bin"), vec![7u8; FILE_SIZE]).unwrap();
        std::fs::create_dir(root.path().join("pub")).unwrap();
        std::fs::write(root.path().join("big.bin"), vec![1u8; 4 << 20]).unwrap();
        std::fs::write(root.path().join(HOSTILE), vec![2u8; 4 << 20]).unwrap();
        let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
        let users = root.path().join(".users.toml");
        let text = format!(
            "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{}\"\nwritable = true\n",
            root.path().display()
        );
        std::fs::write(&users, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--root", root.path().to_str().unwrap()])
            .args(["--users-file", users.to_str().unwrap()])
            .args(["--failed-login-delay", "10", "--log-level", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut ftp, mut admin) = (None, None);
        for line in lines.by_ref().take(20).map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("ferryd admin listening on ") {
                admin = address.split(' ').next().and_then(|a| a.parse().ok());
            } else if let Some(address) = line.strip_prefix("ferryd listening on ") {
                ftp = address.parse().ok();
            }
            if ftp.is_some() && admin.is_some() {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Admind {
            child,
            ftp: ftp.expect("ferryd said where it listens"),
            admin: admin.expect("ferryd said where its admin listener listens"),
            hash,
            _root: root,
        }
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    fn login(&self, user: &str, password: &str) -> Control {
        let mut control = Control::connect(self.ftp);
        assert_eq!(control.reply().code, 220);
        control.expect(&format!("USER {user}"), 331);
        control.expect(&format!("PASS {password}"), 230);
        control
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let authorization = token.map_or_else(String::new, |token| {
            format!("Authorization: Bearer {token}\r\n")
        });
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Connection: close\r\n\r\n",
            self.admin
        );
        http(self.admin, request.as_bytes())
    }
}

impl Drop for Admind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` and reads the whole response: its status code and body.
fn http(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the admin listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A request the server refuses early may be cut off while it is written: then the answer
    // (if any) is what the server sent before closing.
    let _ = stream.write_all(request);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

/// Waits (at most 15 s) until `check` holds, asking again every 50 ms.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses Prometheus text (format 0.0.4): every sample's family has a `# TYPE` line before it,
/// names and labels are well formed, values are numbers. Returns `name{labels}` → value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let name_ok = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line:?}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPEs: {line:?}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            value => value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                    let (label, quoted) = pair.split_once('=').expect("label=value");
                    assert!(name_ok(label) && quoted.starts_with('"'), "{line:?}");
                }
                name
            }
            None => series,
        };
        assert!(name_ok(name), "bad name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| types.get(*base).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line:?}");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {line:?}"
        );
    }
    samples
}

/// Reads a passive data connection to its end.
fn read_data(stream: TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut data = Vec::new();
    let mut stream = stream;
    stream.read_to_end(&mut data).unwrap();
    data
}

#[test]
fn metrics_count_a_known_sequence_exactly() {
    let server = Admind::start(&[]);
    let mut alice = server.login("alice", PASSWORD);
    alice.expect("TYPE I", 200);
    let data = alice.epsv();
    alice.expect("RETR file.bin", 150);
    let received = read_data(data);
    assert_eq!(received.len(), FILE_SIZE);
    assert_eq!(alice.reply().code, 226);
    let uploaded = vec![9u8; 12_345];
    assert_eq!(alice.upload("STOR new.bin", &uploaded), 226);
    let data = alice.epsv();
    alice.expect("LIST", 150);
    let listing = read_data(data);
    assert_eq!(alice.reply().code, 226);
    // The listener of the last EPSV, kept for the next one.
    let open = parse_metrics(&server.get("/metrics", None).1)["ferry_passive_ports_in_use"];
    assert_eq!(open, 1.0);
    alice.expect("QUIT", 221);
    let anonymous = server.login("ftp", "me@example.com");
    drop(anonymous);
    let mut wrong = Control::connect(server.ftp);
    assert_eq!(wrong.reply().code, 220);
    wrong.expect("USER alice", 331);
    wrong.expect("PASS not the password", 530);
    drop(wrong);

    let mut metrics = HashMap::new();
    wait_for("every session's end", || {
        let (status, text) = server.get("/metrics", None);
        assert_eq!(status, 200, "{text}");
        metrics = parse_metrics(&text);
        // A session's listeners close just after its end is told.
        metrics.get("ferry_sessions") == Some(&0.0)
            && metrics.get("ferry_sessions_total") == Some(&3.0)
            && metrics.get("ferry_passive_ports_in_use") == Some(&0.0)
    });
    let expected = [
        ("ferry_logins_total{result=\"ok\"}", 2.0),
        ("ferry_logins_total{result=\"failed\"}", 1.0),
        ("ferry_commands_total{verb=\"RETR\",class=\"2xx\"}", 1.0),
        ("ferry_commands_total{verb=\"STOR\",class=\"2xx\"}", 1.0),
        ("ferry_commands_total{verb=\"LIST\",class=\"2xx\"}", 1.0),
        ("ferry_commands_total{verb=\"PASS\",class=\"2xx\"}", 2.0),
        ("ferry_commands_total{verb=\"PASS\",class=\"5xx\"}", 1.0),
        ("ferry_commands_total{verb=\"USER\",class=\"3xx\"}", 3.0),
        ("ferry_commands_total{verb=\"EPSV\",class=\"2xx\"}", 3.0),
        (
            "ferry_transfers_total{direction=\"download\",kind=\"file\",result=\"ok\"}",
            1.0,
        ),
        (
            "ferry_transfers_total{direction=\"upload\",kind=\"file\",result=\"ok\"}",
            1.0,
        ),
        (
            "ferry_transfers_total{direction=\"download\",kind=\"listing\",result=\"ok\"}",
            1.0,
        ),
        (
            "ferry_transfer_bytes_total{direction=\"download\"}",
            (FILE_SIZE + listing.len()) as f64,
        ),
        (
            "ferry_transfer_bytes_total{direction=\"upload\"}",
            uploaded.len() as f64,
        ),
        ("ferry_transfer_duration_seconds_count", 3.0),
        ("ferry_transfer_duration_seconds_bucket{le=\"+Inf\"}", 3.0),
        ("ferry_bans_active", 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(metrics.get(series), Some(&value), "{series}");
    }
    let no_tls = metrics
        .keys()
        .filter(|k| k.starts_with("ferry_tls_handshakes_total"));
    assert_eq!(no_tls.count(), 0, "no TLS was used");
    let rss = metrics["process_resident_memory_bytes"];
    assert!((1e6..8e9).contains(&rss), "resident memory {rss}");
    let fds = metrics["process_open_fds"];
    assert!((3.0..10_000.0).contains(&fds), "open descriptors {fds}");
    assert!(metrics["process_cpu_seconds_total"] > 0.0);
}

#[test]
fn tls_handshakes_are_counted_with_resumption() {
    let server = Admind::start(&["--tls-self-signed"]);
    let ok = support::run_tool(
        "curl",
        &[
            "--silent",
            "--ssl-reqd",
            "--insecure",
            "--user",
            &format!("alice:{PASSWORD}"),
            &format!("ftp://{}/file.bin", server.ftp),
            "--output",
            "/dev/null",
        ],
        None,
        None,
    );
    assert!(ok.0, "curl over FTPS: {ok:?}");
    let mut metrics = HashMap::new();
    wait_for("the session's end", || {
        metrics = parse_metrics(&server.get("/metrics", None).1);
        metrics.get("ferry_sessions") == Some(&0.0)
    });
    let control =
        "ferry_tls_handshakes_total{connection=\"control\",result=\"ok\",resumed=\"false\"}";
    let data = "ferry_tls_handshakes_total{connection=\"data\",result=\"ok\",resumed=\"true\"}";
    assert_eq!(metrics.get(control), Some(&1.0), "{metrics:?}");
    assert_eq!(metrics.get(data), Some(&1.0), "{metrics:?}");
}

#[test]
fn health_and_ready_and_draining() {
    let server = Admind::start(&["--download-rate", "65536", "--shutdown-grace", "20"]);
    assert_eq!(server.get("/health", None), (200, "ok\n".into()));
    assert_eq!(server.get("/ready", None), (200, "ready\n".into()));
    assert_eq!(server.get("/nothing", None).0, 404);
    let mut alice = server.login("alice", PASSWORD);
    alice.expect("TYPE I", 200);
    let data = alice.epsv();
    alice.expect("RETR big.bin", 150);
    server.signal(rustix::process::Signal::TERM);
    wait_for("/ready to say draining", || {
        server.get("/ready", None) == (503, "draining\n".into())
    });
    // Still alive and serving the running transfer meanwhile.
    assert_eq!(server.get("/health", None).0, 200);
    drop(data);
}

#[test]
fn a_token_is_required_and_secrets_never_shown() {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, "  the-admin-token\n").unwrap();
    let server = Admind::start(&["--admin-token-file", token_file.to_str().unwrap()]);
    let _alice = server.login("alice", PASSWORD);
    for path in ["/metrics", "/status", "/health", "/ready"] {
        assert_eq!(server.get(path, None).0, 401, "{path} without a token");
        assert_eq!(
            server.get(path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
        assert_eq!(server.get(path, Some("the-admin-token2")).0, 401, "{path}");
        let (status, body) = server.get(path, Some("the-admin-token"));
        assert_eq!(status, 200, "{path} with the token");
        for secret in [PASSWORD, server.hash.as_str(), "argon2", "the-admin-token"] {
            assert!(!body.contains(secret), "{path} shows {secret:?}");
        }
    }
    let (_, page) = server.get("/status", Some("the-admin-token"));
    assert!(page.contains(">alice<"), "{page}");
}

#[test]
fn an_empty_token_file_is_a_configuration_error() {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, " \n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--check-config")
        .args(["--root", token_dir.path().to_str().unwrap()])
        .args(["--admin-token-file", token_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("admin.token_file") && error.contains("empty"),
        "{error}"
    );
}

#[test]
fn a_malformed_request_does_not_touch_ftp() {
    let server = Admind::start(&[]);
    let (status, _) = http(server.admin, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(status, 400);
    let (status, _) = http(
        server.admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    );
    assert_eq!(status, 400);
    // Past the 64 KiB buffer: refused (or the connection reset while the test still writes).
    let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(200_000));
    let (status, _) = http(server.admin, huge.as_bytes());
    assert!(
        status == 0 || (400..500).contains(&status),
        "status {status}"
    );
    let mut anonymous = server.login("ftp", "me@example.com");
    anonymous.expect("NOOP", 200);
    assert_eq!(server.get("/health", None).0, 200);
}

/// Where Chromium is; `None` (after `support::skip`) when it is not installed.
fn chromium() -> Option<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => Some(Box::leak(
            path.to_string_lossy().into_owned().into_boxed_str(),
        )),
        None => {
            support::skip("chromium is not installed (apt-get install chromium)");
            None
        }
    }
}

/// Starts a rate-limited download of `name` on `control`: the data connection is read (slowly,
/// as the server sends) by a thread until the server or the test ends it.
fn slow_download(control: &mut Control, name: &str) {
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect(&format!("RETR {name}"), 150);
    std::thread::spawn(move || {
        let _ = read_data(data);
    });
}

/// The DOM Chromium builds from `url` (at most 60 s).
fn dump_dom(chromium: &str, profile: &Path, url: &str) -> String {
    let (ok, dom, error) = support::run_tool(
        chromium,
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ],
        None,
        None,
    );
    assert!(ok, "chromium failed: {error}");
    dom
}

#[test]
fn the_status_page_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let server = Admind::start(&["--download-rate", "65536"]);
    let mut alice = server.login("alice", PASSWORD);
    alice.expect("CWD pub", 250);
    let mut anonymous = server.login("ftp", "me@example.com");
    slow_download(&mut alice, &format!("/{HOSTILE}"));
    slow_download(&mut anonymous, "big.bin");
    wait_for("two running transfers with bytes", || {
        let (_, page) = server.get("/status", None);
        page.contains("Transfers (2)") && page.matches("<progress value=\"0\"").count() == 0
    });
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/status", server.admin);
    let dom = dump_dom(chromium, profile.path(), &url);
    for control in [&alice, &anonymous] {
        let address = control.stream.local_addr().unwrap().to_string();
        assert!(dom.contains(&address), "{address} missing from {dom}");
    }
    assert!(dom.contains("<td class=\"user\">alice</td>"), "{dom}");
    assert!(dom.contains("<td class=\"user\">ftp</td>"), "{dom}");
    assert!(dom.contains("<td class=\"path\">/big.bin</td>"), "{dom}");
    assert!(dom.contains("<td class=\"folder\">/pub</td>"), "{dom}");
    assert_eq!(
        dom.matches("<td class=\"command\">RETR</td>").count(),
        2,
        "{dom}"
    );
    assert_eq!(dom.matches("<progress ").count(), 2, "{dom}");
    // The hostile name is text: no script or image element came out of it.
    let escaped = "/&lt;script&gt;document.title='pwned'&lt;img id=hostile src=x&gt;.bin";
    assert!(dom.contains(escaped), "{dom}");
    assert!(!dom.contains("<script") && !dom.contains("<img"), "{dom}");
    assert!(!dom.contains("pwned</title>"), "{dom}");
    assert!(dom.contains("<meta http-equiv=\"refresh\""), "{dom}");
}

#[test]
fn bans_show_in_metrics_and_on_the_page() {
    let server = Admind::start(&["--ban-after-failures", "2"]);
    let metrics = parse_metrics(&server.get("/metrics", None).1);
    assert_eq!(metrics.get("ferry_bans_active"), Some(&0.0));
    let mut guesser = Control::connect(server.ftp);
    assert_eq!(guesser.reply().code, 220);
    for _ in 0..2 {
        guesser.expect("USER alice", 331);
        guesser.expect("PASS wrong", 530);
    }
    wait_for("the ban", || {
        let metrics = parse_metrics(&server.get("/metrics", None).1);
        metrics.get("ferry_bans_active") == Some(&1.0)
    });
    let (_, page) = server.get("/status", None);
    assert!(page.contains("<h2>Bans (1)</h2>"), "{page}");
    assert!(
        page.contains("<tr class=\"ban\"><td>127.0.0.1</td>"),
        "{page}"
    );
    let metrics = parse_metrics(&server.get("/metrics", None).1);
    assert_eq!(
        metrics.get("ferry_logins_total{result=\"failed\"}"),
        Some(&2.0)
    );
}
