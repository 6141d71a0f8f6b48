//! FTPS (RFC 4217) against `ferryd` with real clients: curl, lftp and Python's ftplib, explicit
//! and implicit, TLS 1.2 and 1.3, with data connections required to resume the control
//! connection's TLS session; and the policy replies.

mod support;

use std::path::{Path, PathBuf};

use ferry_server::config::TlsPolicy;
use support::{readme_bytes, run_tool, TestServer, PASSWORD};

/// A test CA and a server certificate for localhost and 127.0.0.1 it signed, as PEM files.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Ferry test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), server_key.serialize_pem()).unwrap();
        Certificates { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn configure(&self, config: &mut ferry_server::Config) {
        config.tls.certificate = Some(self.dir.path().join("cert.pem"));
        config.tls.key = Some(self.dir.path().join("key.pem"));
    }
}

/// A server with the test certificate; `adjust` may change the rest.
fn tls_server(
    certificates: &Certificates,
    adjust: impl FnOnce(&mut ferry_server::Config),
) -> TestServer {
    TestServer::start_with(|config| {
        certificates.configure(config);
        adjust(config);
    })
}

fn curl(args: &[&str]) -> (bool, String, String) {
    run_tool("curl", args, None, None)
}

#[test]
fn curl_explicit_ftps_with_tls_1_3_and_1_2() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.tls.data = TlsPolicy::Required);
    let url = format!("ftp://localhost:{}/readme.txt", server.port());
    let ca = certificates.ca();
    for version in ["--tlsv1.3", "--tls-max"] {
        let mut args = vec![
            "-sS",
            "-v",
            "--ssl-reqd",
            "--cacert",
            ca.to_str().unwrap(),
            version,
        ];
        if version == "--tls-max" {
            args.push("1.2");
        }
        args.push(&url);
        let (ok, out, err) = curl(&args);
        assert!(ok, "{version}: {err}");
        assert_eq!(out.as_bytes(), readme_bytes(), "{version}");
        assert!(err.contains("AUTH") && err.contains("PROT P"), "{err}");
        let expected = if version == "--tlsv1.3" {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        };
        assert!(err.contains(expected), "{version}: {err}");
    }
}

#[test]
fn curl_uploads_over_ftps_as_a_user() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| {
        c.tls.control = TlsPolicy::Required;
        c.tls.data = TlsPolicy::Required;
    });
    let source = tempfile::NamedTempFile::new().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(source.path(), &payload).unwrap();
    let url = format!("ftp://localhost:{}/secret.bin", server.port());
    let user = format!("alice:{PASSWORD}");
    let ca = certificates.ca();
    let (ok, _, err) = curl(&[
        "-sS",
        "--ssl-reqd",
        "--cacert",
        ca.to_str().unwrap(),
        "-u",
        &user,
        "-T",
        source.path().to_str().unwrap(),
        &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(server.alice_root.join("secret.bin")).unwrap(),
        payload
    );
    let (ok, _, err) = curl(&[
        "-sS",
        "-u",
        &user,
        "-T",
        source.path().to_str().unwrap(),
        &url,
    ]);
    assert!(
        !ok,
        "a plain login must be refused when TLS is required: {err}"
    );
}

#[test]
fn curl_implicit_ftps() {
    let certificates = Certificates::new();
    let implicit = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let implicit_addr = implicit.local_addr().unwrap();
    drop(implicit);
    let server = tls_server(&certificates, |c| {
        c.tls.implicit_listen = Some(implicit_addr)
    });
    let _ = &server;
    // The test server only runs the explicit listener; run the implicit one with ferryd itself.
    let ferryd = env!("CARGO_BIN_EXE_ferryd");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), readme_bytes()).unwrap();
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = std::process::Command::new(ferryd)
        .args([
            "--listen",
            &control.to_string(),
            "--root",
            dir.path().to_str().unwrap(),
        ])
        .args([
            "--tls-certificate",
            certificates.dir.path().join("cert.pem").to_str().unwrap(),
        ])
        .args([
            "--tls-key",
            certificates.dir.path().join("key.pem").to_str().unwrap(),
        ])
        .args([
            "--implicit-listen",
            &implicit_addr.to_string(),
            "--log-level",
            "warn",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let started = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("implicit FTPS")));
    assert!(
        started.is_some(),
        "ferryd did not start its implicit listener"
    );
    let url = format!("ftps://localhost:{}/readme.txt", implicit_addr.port());
    let ca = certificates.ca();
    let result = curl(&["-sS", "--cacert", ca.to_str().unwrap(), &url]);
    let _ = child.kill();
    let _ = child.wait();
    let (ok, out, err) = result;
    assert!(ok, "{err}");
    assert_eq!(out.as_bytes(), readme_bytes());
}

/// Runs a Python ftplib FTP_TLS session; `reuse` passes the control connection's TLS session to
/// each data connection, as servers that enforce reuse need.
fn ftplib_tls(server: &TestServer, ca: &Path, reuse: bool, body: &str) -> (bool, String, String) {
    let script = format!(
        r#"
import ftplib, ssl, sys
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
context = ssl.create_default_context(cafile={ca:?})
cls = Reusing if {reuse} else ftplib.FTP_TLS
ftp = cls(context=context, timeout=20)
ftp.connect("localhost", {port})
ftp.auth()
ftp.login("alice", {password:?})
ftp.prot_p()
{body}
ftp.quit()
"#,
        ca = ca.to_str().unwrap(),
        reuse = if reuse { "True" } else { "False" },
        port = server.port(),
        password = PASSWORD,
    );
    run_tool("python3", &["-"], Some(&script), None)
}

#[test]
fn ftplib_with_session_reuse_works_and_without_is_refused() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |_| {});
    std::fs::write(server.alice_root.join("data.bin"), vec![42u8; 100_000]).unwrap();
    let body = r#"
chunks = []
ftp.retrbinary("RETR data.bin", chunks.append)
assert b"".join(chunks) == b"\x2a" * 100000
import io
ftp.storbinary("STOR up.bin", io.BytesIO(b"uploaded over TLS"))
print(sorted(ftp.nlst()))
"#;
    let (ok, out, err) = ftplib_tls(&server, &certificates.ca(), true, body);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("'up.bin'"), "{out}");
    assert_eq!(
        std::fs::read(server.alice_root.join("up.bin")).unwrap(),
        b"uploaded over TLS"
    );

    let (ok, out, err) = ftplib_tls(&server, &certificates.ca(), false, "print(ftp.nlst())");
    assert!(
        !ok,
        "a data connection that does not resume the session must be refused: {out}"
    );
    assert!(
        err.contains("425") || err.contains("EOF") || err.contains("SSL"),
        "{err}"
    );
}

#[test]
fn reuse_can_be_switched_off() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.tls.require_session_reuse = false);
    let (ok, out, err) = ftplib_tls(&server, &certificates.ca(), false, "print(ftp.nlst())");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("notes.txt"), "{out}");
}

#[test]
fn lftp_over_ftps() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.tls.data = TlsPolicy::Required);
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "set ssl:ca-file {ca}; set ftp:ssl-force true; set ftp:ssl-protect-data true; set net:max-retries 1; \
         open -u alice,'{PASSWORD}' ftp://localhost:{port}; put {src} -o sent.txt; get notes.txt -o {dest}; bye",
        ca = certificates.ca().display(),
        port = server.port(),
        src = work.path().join("local.txt").display(),
        dest = work.path().join("notes.txt").display(),
    );
    std::fs::write(work.path().join("local.txt"), "from lftp\n").unwrap();
    let (ok, out, err) = run_tool("lftp", &["-c", &script], None, None);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        std::fs::read(server.alice_root.join("sent.txt")).unwrap(),
        b"from lftp\n"
    );
    assert_eq!(
        std::fs::read(work.path().join("notes.txt")).unwrap(),
        b"alice's notes\n"
    );
}

#[test]
fn policy_replies() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| {
        c.tls.control = TlsPolicy::Required;
        c.tls.data = TlsPolicy::Required;
    });
    let mut control = server.connect();
    let feat = control.expect("FEAT", 211);
    for line in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(feat.lines.iter().any(|l| l == line), "{feat:?}");
    }
    control.expect("PBSZ 0", 503);
    control.expect("PROT P", 503);
    control.expect("CCC", 533);
    control.expect("AUTH KERBEROS_V4", 504);
    control.expect_text(
        "USER alice",
        530,
        "Non-anonymous sessions must use encryption (AUTH TLS).",
    );
    control.expect("USER ftp", 331);
    control.expect("PASS me@example.com", 230);
    control.expect("TYPE I", 200);
    control.expect("EPSV", 229);
    control.expect("RETR readme.txt", 150);

    let server = tls_server(&certificates, |c| {
        c.tls.control = TlsPolicy::Required;
        c.tls.anonymous_exempt = false;
    });
    server.connect().expect("USER ftp", 530);

    let plain = TestServer::start();
    let mut control = plain.connect();
    control.expect("AUTH TLS", 502);
    assert!(!control
        .expect("FEAT", 211)
        .lines
        .iter()
        .any(|l| l.contains("AUTH")));
}

/// Python, driving the protocol by hand over TLS: the STARTTLS injection, PROT and CCC replies.
#[test]
fn commands_sent_in_the_clear_before_the_handshake_are_dropped() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.tls.data = TlsPolicy::Required);
    let script = format!(
        r#"
import socket, ssl
raw = socket.create_connection(("127.0.0.1", {port}), timeout=20)
f = raw.makefile("rb")
assert f.readline().startswith(b"220")
raw.sendall(b"AUTH TLS\r\nUSER injected\r\n")
assert f.readline().startswith(b"234"), "no 234"
context = ssl.create_default_context(cafile={ca:?})
tls = context.wrap_socket(raw, server_hostname="localhost")
g = tls.makefile("rb")
def cmd(line):
    tls.sendall(line + b"\r\n")
    reply = g.readline()
    print(line.decode(), "->", reply.decode().strip())
    return reply[:3]
assert cmd(b"NOOP") == b"200", "the injected USER was answered"
assert cmd(b"PROT P") == b"503"
assert cmd(b"PBSZ 0") == b"200"
assert cmd(b"PROT S") == b"536"
assert cmd(b"USER alice") == b"331"
assert cmd(b"PASS {password}") == b"230"
while not g.readline().startswith(b"230 "): pass
assert cmd(b"PROT C") == b"534"
assert cmd(b"EPSV") == b"229"
assert cmd(b"LIST") == b"521"
assert cmd(b"PROT P") == b"200"
assert cmd(b"CCC") == b"534"
print("ok")
"#,
        port = server.port(),
        ca = certificates.ca().to_str().unwrap(),
        password = PASSWORD,
    );
    let (ok, out, err) = run_tool("python3", &["-"], Some(&script), None);
    assert!(ok && out.contains("ok"), "{out}\n{err}");
}

/// A client that never reads its replies is disconnected over TLS too: the session's last
/// act, the close_notify, has the same time limit as a reply (it waited forever for room in a
/// full socket, and the session with it).
#[test]
fn a_tls_client_that_never_reads_its_replies_is_disconnected() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.timeouts.stalled_transfer = 1);
    let script = format!(
        r#"
import socket, ssl, time
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(30)
raw.connect(("127.0.0.1", {port}))
f = raw.makefile("rb")
assert f.readline().startswith(b"220")
raw.sendall(b"AUTH TLS\r\n")
assert f.readline().startswith(b"234"), "no 234"
context = ssl.create_default_context(cafile={ca:?})
tls = context.wrap_socket(raw, server_hostname="localhost")
started = time.monotonic()
batch = b"NOOP\r\n" * 10000
outcome = "the server kept reading"
for _ in range(400):
    try:
        tls.sendall(batch)
    except (socket.timeout, TimeoutError):
        outcome = "stuck: the server stopped reading but kept the connection"
        break
    except (OSError, ssl.SSLError) as error:
        outcome = "closed"
        break
print(outcome, round(time.monotonic() - started))
"#,
        port = server.port(),
        ca = certificates.ca().to_str().unwrap(),
    );
    let (ok, out, err) = run_tool("python3", &["-"], Some(&script), None);
    assert!(ok && out.starts_with("closed"), "{out}\n{err}");
}

/// Review finding 6: commands that arrived in the clear behind AUTH TLS while a transfer ran
/// (so they were queued) are dropped, never answered over TLS.
#[test]
fn finding_06_commands_queued_behind_auth_tls_during_a_transfer_are_dropped() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |_| {});
    let script = format!(
        r#"
import socket, ssl
raw = socket.create_connection(("127.0.0.1", {port}), timeout=20)
f = raw.makefile("rb")
def reply():
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line
assert reply().startswith(b"220")
for line, code in [(b"USER ftp", b"331"), (b"PASS x@y", b"230"), (b"TYPE I", b"200")]:
    raw.sendall(line + b"\r\n")
    assert reply()[:3] == code, line
raw.sendall(b"EPSV\r\n")
port = int(reply().split(b"|||")[1].split(b"|")[0])
data = socket.create_connection(("127.0.0.1", port), timeout=20)
raw.sendall(b"RETR big.bin\r\n")
assert reply()[:3] == b"150"
raw.sendall(b"AUTH TLS\r\nCWD /pub\r\nSYST\r\nPWD\r\n")
got = 0
while True:
    chunk = data.recv(65536)
    if not chunk:
        break
    got += len(chunk)
data.close()
assert got == 4 * 1024 * 1024, got
assert reply()[:3] == b"226"
assert reply()[:3] == b"234", "AUTH answered after the transfer"
context = ssl.create_default_context(cafile={ca:?})
tls = context.wrap_socket(raw, server_hostname="localhost")
g = tls.makefile("rb")
tls.sendall(b"NOOP\r\n")
answer = g.readline()
assert answer.startswith(b"200"), "a queued command was answered over TLS: %r" % answer
tls.sendall(b"PWD\r\n")
assert g.readline().startswith(b'257 "/"'), "the queued CWD ran"
print("ok")
"#,
        port = server.port(),
        ca = certificates.ca().to_str().unwrap(),
    );
    let (ok, out, err) = run_tool("python3", &["-"], Some(&script), None);
    assert!(ok && out.contains("ok"), "{out}\n{err}");
}

/// Review finding 12: an account that must use TLS, logging in over a clear connection with its
/// right password, gets the same reply as a wrong password (and the same delay), and never
/// goes back to a clear connection with CCC.
#[test]
fn finding_12_require_tls_accounts_fail_like_any_login_in_the_clear() {
    let certificates = Certificates::new();
    let dir = tempfile::tempdir().unwrap();
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[user]]\nname = \"dave\"\npassword = \"{hash}\"\nroot = \"{}\"\nrequire_tls = true\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let server = tls_server(&certificates, |c| {
        c.users_file = Some(users);
        c.tls.allow_ccc = true;
    });
    let mut control = server.connect();
    let mut attempt = |password: &str| {
        control.expect("USER dave", 331);
        let started = std::time::Instant::now();
        let reply = control.expect(&format!("PASS {password}"), 530);
        (reply.lines, started.elapsed())
    };
    let (wrong, wrong_delay) = attempt("wrong");
    let (right, right_delay) = attempt(PASSWORD);
    assert_eq!(
        wrong, right,
        "the right password in the clear is not told apart"
    );
    assert!(
        right_delay >= wrong_delay / 2,
        "{right_delay:?} against {wrong_delay:?}"
    );
    let script = format!(
        r#"
import ftplib, ssl
context = ssl.create_default_context(cafile={ca:?})
ftp = ftplib.FTP_TLS(context=context, timeout=20)
ftp.connect("localhost", {port})
ftp.auth()
ftp.login("dave", {password:?})
try:
    ftp.voidcmd("CCC")
    print("CCC accepted")
except ftplib.error_perm as e:
    assert str(e).startswith("534"), e
    print("ok")
"#,
        port = server.port(),
        ca = certificates.ca().to_str().unwrap(),
        password = PASSWORD,
    );
    let (ok, out, err) = run_tool("python3", &["-"], Some(&script), None);
    assert!(ok && out.contains("ok"), "{out}\n{err}");
}

/// `len` bytes that differ from offset to offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// TLS downloads in TYPE I go from file to socket on a thread of their own: whole, resumed
/// from an offset (REST), aborted mid-way (426, then 226 for the ABOR, and the session goes
/// on), and cut short by a file that shrinks (451, never 226).
#[test]
fn ftplib_tls_downloads_whole_resumed_aborted_and_shrunk() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |_| {});
    let path = server.alice_root.join("big.bin");
    std::fs::write(&path, pattern(24 << 20)).unwrap();
    let body = format!(
        r#"
local = open({path:?}, "rb").read()
chunks = []
ftp.retrbinary("RETR big.bin", chunks.append)
print("whole:", b"".join(chunks) == local)
chunks = []
ftp.retrbinary("RETR big.bin", chunks.append, rest=1000003)
print("resumed:", b"".join(chunks) == local[1000003:])
conn = ftp.transfercmd("RETR big.bin")
received = 0
for _ in range(4):
    received += len(conn.recv(8192))
print("received some:", 0 < received < len(local))
reply = ftp.abort()
print("abort:", reply[:3])
if reply.startswith("426"):
    print("then:", ftp.getresp()[:3])
conn.close()
chunks = []
ftp.retrbinary("RETR big.bin", chunks.append)
print("after abort:", b"".join(chunks) == local)
conn = ftp.transfercmd("RETR big.bin")
first = conn.recv(8192)
open({path:?}, "r+b").truncate(1 << 20)
rest = b""
while True:
    piece = conn.recv(65536)
    if not piece:
        break
    rest += piece
conn.close()
try:
    print("shrunk:", ftp.voidresp()[:3])
except ftplib.error_temp as error:
    print("shrunk:", str(error)[:3], len(first) + len(rest) < len(local))
print("pwd:", ftp.pwd())
"#,
        path = path.to_str().unwrap()
    );
    let (ok, out, err) = ftplib_tls(&server, &certificates.ca(), true, &body);
    assert!(ok, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "whole: True",
            "resumed: True",
            "received some: True",
            "abort: 426",
            "then: 226",
            "after abort: True",
            "shrunk: 451 True",
            "pwd: /",
        ],
        "{out}\n{err}"
    );
}

/// A TLS download whose client stops reading is broken off with 426 after the stall timeout,
/// and the session goes on.
#[test]
fn a_stalled_tls_download_gets_426_and_the_session_goes_on() {
    let certificates = Certificates::new();
    let server = tls_server(&certificates, |c| c.timeouts.stalled_transfer = 2);
    std::fs::write(server.alice_root.join("big.bin"), pattern(48 << 20)).unwrap();
    let body = r#"
import time
conn = ftp.transfercmd("RETR big.bin")
started = time.monotonic()
try:
    print("stalled:", ftp.voidresp()[:3])
except ftplib.error_temp as error:
    print("stalled:", str(error)[:3], time.monotonic() - started < 15)
conn.close()
print("noop:", ftp.voidcmd("NOOP")[:3])
"#;
    let (ok, out, err) = ftplib_tls(&server, &certificates.ca(), true, body);
    assert!(ok, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["stalled: 426 True", "noop: 200"], "{out}\n{err}");
}
