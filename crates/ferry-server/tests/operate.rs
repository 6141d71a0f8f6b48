//! Operating `ferryd`: reload on SIGHUP (new settings for new sessions, old ones kept by running
//! sessions, bans and TLS resumption surviving, a bad file refused, listeners re-bound) and the
//! staged drain on SIGTERM/SIGINT, against the real binary with a configuration file.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::{Control, Ferryd, PASSWORD};

/// A folder with a root to serve, a users file and a configuration file that a test rewrites.
struct Site {
    dir: tempfile::TempDir,
}

/// What a test puts in the configuration file.
#[derive(Clone)]
struct Settings {
    listen: String,
    banner: String,
    /// Users in the users file (each writable, with [`PASSWORD`]).
    users: Vec<&'static str>,
    /// More top-level lines.
    top: String,
    /// Lines of `[limits]`.
    limits: String,
    /// More tables, after the rest.
    tables: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:0".into(),
            banner: "Before the reload".into(),
            users: vec!["alice", "bob"],
            top: String::new(),
            limits: String::new(),
            tables: String::new(),
        }
    }
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["root", "home"] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
        }
        std::fs::write(dir.path().join("root/readme.txt"), support::readme_bytes()).unwrap();
        std::fs::write(dir.path().join("home/notes.txt"), "alice's notes\n").unwrap();
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("ferryd.toml")
    }

    /// Writes the users file and the configuration file.
    fn write(&self, settings: &Settings) {
        let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
        let mut users = String::new();
        for name in &settings.users {
            users.push_str(&format!(
                "[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\nroot = \"{}\"\nwritable = true\n\n",
                self.path("home").display()
            ));
        }
        std::fs::write(self.path("users.toml"), users).unwrap();
        let text = format!(
            "listen = \"{listen}\"\nroot = \"{root}\"\nusers_file = \"{users}\"\nbanner = \"{banner}\"\n{top}\n\
             [limits]\nmax_sessions_per_ip = 0\n{limits}\n\
             [timeouts]\nfailed_login_delay_ms = 50\ndata_connect = 10\n\n{tables}\n",
            listen = settings.listen,
            root = self.path("root").display(),
            users = self.path("users.toml").display(),
            banner = settings.banner,
            top = settings.top,
            limits = settings.limits,
            tables = settings.tables,
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn start(&self, settings: &Settings) -> Ferryd {
        self.write(settings);
        Ferryd::start_with(&["--config", self.config().to_str().unwrap()])
    }
}

/// Waits (at most 15 s) until the log has `needle` at least `count` times.
fn wait_for_log(ferryd: &Ferryd, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = ferryd.log();
        if log.matches(needle).count() >= count {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGHUP and waits for the reload to be done or refused (the `count`th time).
fn reload(ferryd: &Ferryd, count: usize) -> String {
    ferryd.signal(Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = ferryd.log();
        let ended =
            log.matches("configuration reloaded").count() + log.matches("reload refused").count();
        if ended >= count {
            return log;
        }
        assert!(Instant::now() < deadline, "the reload did not end:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A control connection; its greeting's text.
fn greet(addr: SocketAddr) -> (Control, String) {
    let mut control = Control::connect(addr);
    let greeting = control.reply();
    assert_eq!(greeting.code, 220, "{greeting:?}");
    (control, greeting.text().to_string())
}

fn login(addr: SocketAddr, user: &str) -> Control {
    let (mut control, _) = greet(addr);
    control.expect(&format!("USER {user}"), 331);
    let password = if user == "ftp" {
        "me@example.com"
    } else {
        PASSWORD
    };
    control.expect(&format!("PASS {password}"), 230);
    control
}

/// Bytes that differ from file to file.
fn content(length: usize, seed: u32) -> Vec<u8> {
    (0..length as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A control connection from another loopback address (for bans), greeting not read; `None`
/// where that address cannot be used.
fn connect_from(source: &str, addr: SocketAddr) -> Option<Control> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).ok()?;
    socket.connect(&addr.into()).ok()?;
    Some(Control::over(socket.into()))
}

#[test]
fn twenty_sessions_transfer_through_a_reload_and_none_breaks() {
    const SIZE: usize = 3 << 20;
    const SESSIONS: u32 = 20;
    let site = Site::new();
    std::fs::write(site.path("root/big.bin"), content(SIZE, 0)).unwrap();
    // About five seconds a transfer: the reload comes while every one of them runs.
    let settings = Settings {
        top: "atomic_uploads = true".into(),
        limits: "download_rate = 524288\nupload_rate = 524288\n".into(),
        ..Settings::default()
    };
    let ferryd = site.start(&settings);
    let addr = ferryd.addr;
    let (ready, started, finished) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let workers: Vec<_> = (0..SESSIONS)
        .map(|index| {
            let (ready, started, finished) = (
                Arc::clone(&ready),
                Arc::clone(&started),
                Arc::clone(&finished),
            );
            let home = site.path("home");
            std::thread::spawn(move || {
                let upload = index % 2 == 1;
                let mut control = login(addr, if upload { "alice" } else { "ftp" });
                control.expect("TYPE I", 200);
                let mut data = control.epsv();
                // Password checks take a while: every transfer starts once all have logged in.
                ready.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(60);
                while ready.load(Ordering::SeqCst) < SESSIONS as usize {
                    assert!(Instant::now() < deadline, "the sessions did not all log in");
                    std::thread::sleep(Duration::from_millis(5));
                }
                let result = if upload {
                    let bytes = content(SIZE, index);
                    control.expect(&format!("STOR up{index}.bin"), 150);
                    started.fetch_add(1, Ordering::SeqCst);
                    data.write_all(&bytes).unwrap();
                    drop(data);
                    let code = control.reply().code;
                    let stored = std::fs::read(home.join(format!("up{index}.bin"))).unwrap();
                    (code, stored == bytes)
                } else {
                    control.expect("RETR big.bin", 150);
                    started.fetch_add(1, Ordering::SeqCst);
                    let got = support::read_all(data);
                    (control.reply().code, got == content(SIZE, 0))
                };
                finished.fetch_add(1, Ordering::SeqCst);
                control.expect("QUIT", 221);
                result
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::SeqCst) < SESSIONS as usize {
        assert!(Instant::now() < deadline, "the transfers did not all start");
        std::thread::sleep(Duration::from_millis(10));
    }
    site.write(&Settings {
        banner: "After the reload".into(),
        ..settings
    });
    let log = reload(&ferryd, 1);
    assert!(log.contains("configuration reloaded"), "{log}");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the reload came after a transfer had ended: the test proves nothing\n{log}"
    );
    let (_, greeting) = greet(addr);
    assert_eq!(greeting, "After the reload");
    // The upload of up1.bin, begun before the reload, still holds its private file.
    let mut racer = login(addr, "alice");
    let _data = racer.epsv();
    let busy = racer.expect("STOR up1.bin", 450);
    assert!(busy.text().contains("busy"), "{busy:?}");
    for (index, worker) in workers.into_iter().enumerate() {
        let (code, same) = worker.join().unwrap();
        assert_eq!(code, 226, "session {index}");
        assert!(same, "session {index}: the bytes differ");
    }
}

#[test]
fn a_reload_serves_new_sessions_with_new_settings_and_keeps_old_ones_and_bans() {
    let site = Site::new();
    let settings = Settings {
        limits: "ban_after_failures = 2\nmax_login_failures = 3\n".into(),
        ..Settings::default()
    };
    let ferryd = site.start(&settings);
    let addr = ferryd.addr;
    let mut old = login(addr, "alice");
    old.expect("HASH notes.txt", 213);
    let (mut waiting, greeting) = greet(addr);
    assert_eq!(greeting, "Before the reload");
    // Two failed logins from 127.0.0.2 get it banned.
    let Some(mut guesser) = connect_from("127.0.0.2", addr) else {
        support::skip("127.0.0.2 is not usable");
        return;
    };
    assert_eq!(guesser.reply().code, 220);
    guesser.expect("USER alice", 331);
    guesser.expect("PASS wrong", 530);
    guesser.expect("USER alice", 331);
    guesser.expect("PASS wrong", 530);
    let banned = guesser.reply();
    assert_eq!(banned.code, 421, "{banned:?}");
    let mut refused = connect_from("127.0.0.2", addr).unwrap();
    assert_eq!(refused.reply().code, 421, "banned before the reload");

    site.write(&Settings {
        banner: "After the reload".into(),
        users: vec!["alice"],
        tables: "[checksums]\nenabled = false\n".into(),
        ..settings
    });
    reload(&ferryd, 1);
    let (mut new, greeting) = greet(addr);
    assert_eq!(greeting, "After the reload", "new sessions greet anew");
    new.expect("USER bob", 331);
    new.expect(&format!("PASS {PASSWORD}"), 530);
    let mut alice = login(addr, "alice");
    alice.expect("HASH notes.txt", 502);
    let kept = old.expect("HASH notes.txt", 213);
    assert!(
        kept.text().contains("SHA-256"),
        "a logged-in session keeps its settings"
    );
    let reply = waiting.expect("USER bob", 421);
    assert!(reply.text().contains("reconnect"), "{reply:?}");
    let mut still = connect_from("127.0.0.2", addr).unwrap();
    let reply = still.reply();
    assert_eq!(reply.code, 421, "the ban survives the reload: {reply:?}");
    old.expect("QUIT", 221);
}

#[test]
fn a_bad_configuration_is_refused_with_the_reason_and_the_old_one_serves() {
    let site = Site::new();
    let settings = Settings::default();
    let ferryd = site.start(&settings);
    let mut old = login(ferryd.addr, "alice");
    let bad = [
        Settings {
            top: "max_line = 10".into(),
            ..settings.clone()
        },
        Settings {
            top: "lisen = \"127.0.0.1:2121\"".into(),
            ..settings.clone()
        },
        Settings {
            tables:
                "[tls]\ncertificate = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n"
                    .into(),
            ..settings.clone()
        },
    ];
    for (index, broken) in bad.iter().enumerate() {
        site.write(&Settings {
            banner: "Broken".into(),
            ..broken.clone()
        });
        let (_, _, stderr) = support::run_tool(
            env!("CARGO_BIN_EXE_ferryd"),
            &[
                "--config",
                site.config().to_str().unwrap(),
                "--check-config",
            ],
            None,
            None,
        );
        let reason = stderr
            .trim()
            .strip_prefix("ferryd: ")
            .unwrap_or("")
            .to_string();
        assert!(!reason.is_empty(), "--check-config said nothing: {stderr}");
        let log = reload(&ferryd, index + 1);
        let line = log
            .lines()
            .filter(|l| l.contains("reload refused"))
            .nth(index)
            .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
        assert!(line.contains("ERROR"), "{line}");
        // The reason as --check-config says it, its line ends escaped to keep one log line.
        let reason = reason.replace('\n', "\\n");
        assert!(line.contains(&reason), "{line:?} does not say {reason:?}");
        let (_, greeting) = greet(ferryd.addr);
        assert_eq!(
            greeting, "Before the reload",
            "the old configuration serves"
        );
    }
    // A users file that cannot be read is refused likewise.
    site.write(&settings);
    std::fs::write(site.path("users.toml"), "[[user]]\nname = 3\n").unwrap();
    let log = reload(&ferryd, bad.len() + 1);
    assert!(
        log.lines()
            .any(|l| l.contains("reload refused") && l.contains("users.toml")),
        "{log}"
    );
    let mut again = login(ferryd.addr, "bob");
    again.expect("QUIT", 221);
    old.expect("NOOP", 200);
    assert!(!log.contains("configuration reloaded"), "{log}");
}

/// A listener on a free port below Linux's ephemeral range (32768 and up), which the
/// connections of other tests and benchmarks running on the machine do not take between this
/// listener's close and the server's bind.
fn below_ephemeral_ports() -> TcpListener {
    let seed = std::process::id() as u16;
    for i in 0..500u16 {
        let port = 20_000 + (seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(97))) % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return listener;
        }
    }
    panic!("no free port between 20000 and 32000");
}

#[test]
fn a_changed_listen_address_is_served_after_the_reload() {
    let site = Site::new();
    let settings = Settings::default();
    let ferryd = site.start(&settings);
    let before = ferryd.addr;
    let mut old = login(before, "ftp");
    let free = below_ephemeral_ports();
    let after = free.local_addr().unwrap();
    // Taken: the reload is refused and the old listener stays.
    site.write(&Settings {
        listen: after.to_string(),
        banner: "Moved".into(),
        ..settings.clone()
    });
    let log = reload(&ferryd, 1);
    assert!(
        log.lines()
            .any(|l| l.contains("reload refused")
                && l.contains(&format!("cannot listen on {after}"))),
        "{log}"
    );
    assert_eq!(greet(before).1, "Before the reload");
    // Now free; and implicit FTPS is added on another (picked while the first is held).
    let implicit = below_ephemeral_ports().local_addr().unwrap();
    drop(free);
    site.write(&Settings {
        listen: after.to_string(),
        banner: "Moved".into(),
        tables: format!("[tls]\nself_signed = true\nimplicit_listen = \"{implicit}\"\n"),
        ..settings.clone()
    });
    let log = reload(&ferryd, 2);
    assert!(log.contains("configuration reloaded"), "{log}");
    assert_eq!(greet(after).1, "Moved", "the new address serves");
    let handshake = format!(
        "import socket, ssl\n\
         context = ssl._create_unverified_context()\n\
         tls = context.wrap_socket(socket.create_connection(('127.0.0.1', {port}), timeout=20))\n\
         print(tls.recv(100))\n",
        port = implicit.port()
    );
    let (ok, out, err) = support::run_tool("python3", &["-c", &handshake], None, None);
    assert!(
        ok && out.contains("220 Moved"),
        "implicit FTPS: {out}\n{err}"
    );
    assert!(
        TcpStream::connect(before).is_err(),
        "the old address no longer accepts"
    );
    old.expect("NOOP", 200);
    old.expect("QUIT", 221);
}

/// `GET path` on the admin listener at `address` with a bearer `token`: the status and body,
/// or `None` when the address does not answer.
fn admin_get(address: SocketAddr, path: &str, token: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_string()))
}

#[test]
fn a_reload_takes_the_new_admin_token_and_moves_the_admin_listener() {
    let site = Site::new();
    let token = site.path("admin-token");
    std::fs::write(&token, "first-token\n").unwrap();
    let admin_table = |address: SocketAddr| {
        format!(
            "[admin]\nlisten = \"{address}\"\ntoken_file = \"{}\"\n",
            token.display()
        )
    };
    let first = below_ephemeral_ports().local_addr().unwrap();
    let settings = Settings {
        tables: admin_table(first),
        ..Settings::default()
    };
    let ferryd = site.start(&settings);
    let status = |address, token| admin_get(address, "/health", token).map(|(code, _)| code);
    assert_eq!(status(first, "first-token"), Some(200));
    assert_eq!(status(first, "second-token"), Some(401));
    login(ferryd.addr, "ftp").expect("QUIT", 221);

    // The same address, a new token: only the new one is taken from the reload on.
    std::fs::write(&token, "second-token\n").unwrap();
    let log = reload(&ferryd, 1);
    assert!(log.contains("configuration reloaded"), "{log}");
    assert_eq!(status(first, "second-token"), Some(200));
    assert_eq!(status(first, "first-token"), Some(401));

    // A new address that is taken: the whole reload is refused, token included.
    let taken = below_ephemeral_ports();
    let taken_address = taken.local_addr().unwrap();
    std::fs::write(&token, "third-token\n").unwrap();
    site.write(&Settings {
        tables: admin_table(taken_address),
        ..settings.clone()
    });
    let log = reload(&ferryd, 2);
    assert!(
        log.lines().any(|l| l.contains("reload refused")
            && l.contains(&format!("cannot listen on {taken_address}"))),
        "{log}"
    );
    assert_eq!(status(first, "second-token"), Some(200));
    assert_eq!(status(first, "third-token"), Some(401));

    // A free new address: served there with the new token, and the counters go on.
    let second = below_ephemeral_ports().local_addr().unwrap();
    site.write(&Settings {
        tables: admin_table(second),
        ..settings.clone()
    });
    let log = reload(&ferryd, 3);
    assert!(log.contains("admin listener moved"), "{log}");
    let (code, metrics) = admin_get(second, "/metrics", "third-token").expect("the new address");
    assert_eq!(code, 200, "{metrics}");
    let sessions = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ferry_sessions_total "))
        .and_then(|value| value.parse::<f64>().ok());
    assert_eq!(sessions, Some(1.0), "{metrics}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(first).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the old admin address still accepts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(taken);
}

/// A test CA and server certificates for localhost and 127.0.0.1 that it signed.
fn write_certificates(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Its own name: a certificate it signs must not look self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Ferry reload test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    for name in ["first", "second"] {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

fn tls_table(site: &Site, name: &str) -> String {
    format!(
        "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\ndata = \"required\"\n",
        site.path(&format!("{name}.pem")).display(),
        site.path(&format!("{name}.key")).display()
    )
}

/// Python ftplib over FTPS, each data connection resuming the control connection's TLS
/// session; between `first` and `second` it waits for a line on standard input.
fn ftplib_script(port: u16, ca: &Path, first: &str, second: &str) -> String {
    format!(
        r#"
import ftplib, io, sys
import ssl
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
ftp = Reusing(context=ssl.create_default_context(cafile={ca:?}), timeout=20)
print(ftp.connect("localhost", {port}), flush=True)
ftp.auth()
ftp.login("alice", {password:?})
ftp.prot_p()
{first}
print("first done", flush=True)
sys.stdin.readline()
{second}
print("second done", flush=True)
ftp.quit()
"#,
        ca = ca.to_str().unwrap(),
        password = PASSWORD,
    )
}

#[test]
fn tls_data_connections_of_a_session_from_before_the_reload_still_resume() {
    let site = Site::new();
    write_certificates(site.dir.path());
    std::fs::write(site.path("home/data.bin"), content(200_000, 5)).unwrap();
    let settings = Settings {
        tables: tls_table(&site, "first"),
        ..Settings::default()
    };
    let ferryd = site.start(&settings);
    let transfers = r#"
chunks = []
ftp.retrbinary("RETR data.bin", chunks.append)
assert len(b"".join(chunks)) == 200000
ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 100000))
print(sorted(ftp.nlst()), flush=True)
"#;
    let script = ftplib_script(
        ferryd.addr.port(),
        &site.path("ca.pem"),
        transfers,
        transfers,
    );
    let mut python = std::process::Command::new("timeout")
        .args(["60", "python3", "-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdout = BufReader::new(python.stdout.take().unwrap());
    let mut seen = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 || line.contains("first done") {
            seen.push_str(&line);
            break;
        }
        seen.push_str(&line);
    }
    if !seen.contains("first done") {
        let mut stderr = String::new();
        let _ = python.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("{seen}\n{stderr}\n{}", ferryd.log());
    }
    site.write(&Settings {
        banner: "After the reload".into(),
        tables: tls_table(&site, "second"),
        ..settings
    });
    let log = reload(&ferryd, 1);
    assert!(log.contains("configuration reloaded"), "{log}");
    python.stdin.take().unwrap().write_all(b"go\n").unwrap();
    stdout.read_to_string(&mut seen).unwrap();
    let mut stderr = String::new();
    python
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = python.wait().unwrap();
    assert!(status.success(), "{seen}\n{stderr}\n{}", ferryd.log());
    assert!(seen.contains("second done"), "{seen}");
    assert!(!ferryd.log().contains("did not resume"), "{}", ferryd.log());
    // A session begun after the reload gets the new settings and the new certificate.
    let which = format!(
        "served = ftp.sock.getpeercert(True)\n\
         new = ssl.PEM_cert_to_DER_cert(open({:?}).read())\n\
         print('new certificate' if served == new else 'old certificate', flush=True)\n",
        site.path("second.pem").to_str().unwrap()
    );
    let script = ftplib_script(ferryd.addr.port(), &site.path("ca.pem"), &which, transfers);
    let (ok, out, err) = support::run_tool("python3", &["-c", &script], Some("\n"), None);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("After the reload"), "{out}");
    assert!(out.contains("new certificate"), "{out}");
}

#[test]
fn sigterm_drains_in_stages_and_exits_0() {
    const SIZE: usize = 2 << 20;
    let site = Site::new();
    std::fs::write(site.path("root/big.bin"), content(SIZE, 1)).unwrap();
    // The download takes about 3.5 s: past the accept grace, within the deadline.
    let ferryd = site.start(&Settings {
        limits: "download_rate = 524288\n".into(),
        tables: "[shutdown]\naccept_grace = 2\ndeadline = 8\n".into(),
        ..Settings::default()
    });
    let addr = ferryd.addr;
    let mut idle = login(addr, "ftp");
    let mut busy = login(addr, "ftp");
    busy.expect("TYPE I", 200);
    let data = busy.epsv();
    busy.expect("RETR big.bin", 150);
    let reader = std::thread::spawn(move || support::read_all(data));
    let signalled = Instant::now();
    ferryd.signal(Signal::TERM);
    wait_for_log(&ferryd, "draining", 1);
    let (mut late, _) = greet(addr);
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "the greeting came after the grace: the test proves nothing"
    );
    assert_eq!(idle.reply().code, 421, "an idle session is closed");
    let closed_after = signalled.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1900),
        "idle sessions are closed when the accept grace is over, not at {closed_after:?}"
    );
    assert_eq!(
        late.reply().code,
        421,
        "so is one accepted during the grace"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "after the grace the listener is closed"
    );
    assert_eq!(reader.join().unwrap(), content(SIZE, 1));
    assert_eq!(
        busy.reply().code,
        226,
        "the transfer finishes before the deadline"
    );
    assert_eq!(busy.reply().code, 421);
    let (status, log) = ferryd.wait();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn sigint_drains_too_and_a_transfer_past_the_deadline_is_cut() {
    let site = Site::new();
    std::fs::write(site.path("root/big.bin"), content(4 << 20, 2)).unwrap();
    let ferryd = site.start(&Settings {
        limits: "download_rate = 262144\n".into(),
        tables: "[shutdown]\ndeadline = 1\n".into(),
        ..Settings::default()
    });
    let mut idle = login(ferryd.addr, "ftp");
    let mut busy = login(ferryd.addr, "ftp");
    let data = busy.epsv();
    busy.expect("RETR big.bin", 150);
    ferryd.signal(Signal::INT);
    assert_eq!(idle.reply().code, 421, "without accept grace, at once");
    assert_eq!(busy.reply().code, 426, "cut at the deadline");
    assert_eq!(busy.reply().code, 421);
    drop(data);
    let (status, log) = ferryd.wait();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGINT"), "{log}");
}

/// The library: readiness follows the server's life, a reload that cannot bind its new address
/// changes nothing, and a draining server refuses reloads.
#[test]
fn readiness_and_reload_through_the_library() {
    let root = tempfile::tempdir().unwrap();
    let config = |banner: &str, listen: SocketAddr| {
        let mut config = ferry_server::Config {
            root: root.path().to_path_buf(),
            banner: Some(banner.into()),
            listen,
            ..ferry_server::Config::default()
        };
        config.shutdown.accept_grace = 1;
        config
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let context = ferry_server::Context::new(config("one", addr)).unwrap();
    let (readiness, handle, task) = runtime.block_on(async {
        let listeners = ferry_server::Listeners {
            control: tokio::net::TcpListener::from_std(std_listener).unwrap(),
            implicit: None,
            admin: None,
        };
        let (server, handle) = ferry_server::Server::new(listeners, std::sync::Arc::new(context));
        let readiness = handle.readiness().clone();
        assert!(!readiness.is_ready(), "not ready before it serves");
        (readiness, handle, tokio::spawn(server.run()))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !readiness.is_ready() {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let moved = ferry_server::Context::new(config("two", taken.local_addr().unwrap())).unwrap();
    let error = runtime.block_on(handle.reload(moved)).unwrap_err();
    assert!(error.to_string().contains("cannot listen on"), "{error}");
    assert_eq!(greet(addr).1, "one", "a refused reload changes nothing");
    let same_place = ferry_server::Context::new(config("three", addr)).unwrap();
    runtime.block_on(handle.reload(same_place)).unwrap();
    assert_eq!(greet(addr).1, "three");
    handle.drain();
    assert!(
        !readiness.is_ready() && readiness.is_draining(),
        "not ready at once"
    );
    assert_eq!(greet(addr).1, "three", "accepting during the grace");
    let late = ferry_server::Context::new(config("four", addr)).unwrap();
    let error = runtime.block_on(handle.reload(late)).unwrap_err();
    assert!(error.to_string().contains("stopping"), "{error}");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the server ends after the grace")
            .unwrap();
    });
    assert!(TcpStream::connect(addr).is_err());
}
