//! Interoperability with the real FTP clients installed on this machine: curl, lftp, Python's
//! ftplib and tnftp drive an in-process `ferryd` on 127.0.0.1 (and ::1), and each test checks
//! the files the client leaves behind and what it printed.
//!
//! Every client runs through [`support::run_tool`] (60 s limit); failures print the client's
//! stdout and stderr, which carry its protocol trace (`curl -v`, `lftp -d`, `tnftp -d`).

mod support;

use std::path::Path;

use support::{readme_bytes, run_tool, run_tool_with_code, TestServer, PASSWORD};

/// What one client process did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new((ok, stdout, stderr): (bool, String, String)) -> Run {
        Run { ok, stdout, stderr }
    }

    /// Everything the process printed, for assertion messages.
    fn report(&self) -> String {
        format!(
            "success: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.ok, self.stdout, self.stderr
        )
    }

    fn assert_ok(self, what: &str) -> Run {
        assert!(self.ok, "{what} failed:\n{}", self.report());
        self
    }

    /// Asserts the trace (stdout and stderr) contains `needle`.
    fn assert_trace(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected {needle:?} in the client's output:\n{}",
            self.report()
        );
        self
    }
}

/// A scratch folder for a client's local files.
fn work_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Asserts a file's bytes, naming the file and showing the client's output on failure.
fn assert_file(path: &Path, expected: &[u8], run: &Run) {
    let Ok(actual) = std::fs::read(path) else {
        panic!("{} was not written:\n{}", path.display(), run.report());
    };
    assert!(
        actual == expected,
        "{} differs: {} bytes, expected {} (first difference at byte {:?}):\n{}",
        path.display(),
        actual.len(),
        expected.len(),
        actual.iter().zip(expected).position(|(a, b)| a != b),
        run.report()
    );
}

/// Bytes with every value, CR and LF included, that only a binary transfer keeps intact.
/// A client's debug transcript shows active mode only: PORT or EPRT to 127.0.0.1, no PASV/EPSV.
fn assert_active_mode(transcript: &str, run: &Run) {
    let active = transcript.contains("---> PORT 127,0,0,1,")
        || transcript.contains("---> EPRT |1|127.0.0.1|");
    let passive = transcript.contains("---> PASV") || transcript.contains("---> EPSV");
    assert!(
        active && !passive,
        "active mode expected:\n{}",
        run.report()
    );
}

fn binary_payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `readme.txt` as sent in TYPE A: every LF preceded by a CR.
fn readme_with_crlf() -> Vec<u8> {
    let mut wire = Vec::new();
    ferry_proto::ascii::lf_to_crlf(&readme_bytes(), &mut wire);
    wire
}

fn alice_credentials() -> String {
    format!("alice:{PASSWORD}")
}

fn bob_credentials() -> String {
    format!("bob:{PASSWORD}")
}

// ----------------------------------------------------------------------------------------------
// curl

/// Common curl options: quiet progress, errors shown, full protocol trace on stderr.
const CURL_OPTIONS: [&str; 6] = ["-sS", "-v", "--max-time", "30", "--connect-timeout", "10"];

fn curl(args: &[&str], cwd: &Path) -> Run {
    let mut all: Vec<&str> = CURL_OPTIONS.to_vec();
    all.extend_from_slice(args);
    Run::new(run_tool("curl", &all, None, Some(cwd)))
}

/// curl, keeping its exit code (its documented codes tell refusals apart).
fn curl_code(args: &[&str], cwd: &Path) -> (Option<i32>, Run) {
    let mut all: Vec<&str> = CURL_OPTIONS.to_vec();
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run_tool_with_code("curl", &all, None, Some(cwd));
    let run = Run {
        ok: code == Some(0),
        stdout,
        stderr,
    };
    (code, run)
}

#[test]
fn curl_lists_with_list_and_nlst() {
    let server = TestServer::start();
    let work = work_dir();
    let long = curl(&[&server.url("")], work.path()).assert_ok("curl LIST /");
    long.assert_trace("> LIST");
    let lines: Vec<&str> = long.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('-') && l.contains(" 1715 ") && l.ends_with(" readme.txt")),
        "{}",
        long.report()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('d') && l.ends_with(" pub")),
        "{}",
        long.report()
    );

    let names =
        curl(&["--list-only", &server.url("pub/")], work.path()).assert_ok("curl NLST pub/");
    names.assert_trace("> NLST");
    let mut listed: Vec<&str> = names.stdout.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, ["readme.txt", "sub"], "{}", names.report());
}

#[test]
fn curl_downloads_byte_exact_over_epsv_and_pasv() {
    let server = TestServer::start();
    let work = work_dir();
    for (options, command, reply) in [
        (&[][..], "> EPSV", "< 229"),
        (&["--disable-epsv"][..], "> PASV", "< 227"),
    ] {
        for name in ["readme.txt", "big.bin"] {
            let out = work.path().join(format!("{}-{name}", &command[2..]));
            let mut args = options.to_vec();
            let url = server.url(name);
            args.extend(["-o", out.to_str().unwrap(), &url]);
            let run = curl(&args, work.path()).assert_ok("curl download");
            run.assert_trace(command)
                .assert_trace(reply)
                .assert_trace("> TYPE I");
            assert_file(&out, &read(&server.root.join(name)), &run);
            if command == "> PASV" {
                assert!(!run.stderr.contains("> EPSV"), "{}", run.report());
            }
        }
    }
}

#[test]
fn curl_active_mode_with_eprt_and_port() {
    let server = TestServer::start();
    let work = work_dir();
    for (options, command) in [
        (&["-P", "127.0.0.1"][..], "> EPRT |1|127.0.0.1|"),
        (
            &["--ftp-port", "127.0.0.1", "--disable-eprt"][..],
            "> PORT 127,0,0,1,",
        ),
    ] {
        let out = work.path().join("readme.txt");
        let url = server.url("readme.txt");
        let mut args = options.to_vec();
        args.extend(["-o", out.to_str().unwrap(), &url]);
        let run = curl(&args, work.path()).assert_ok("curl active download");
        run.assert_trace(command).assert_trace("< 200");
        assert!(
            !run.stderr.contains("> EPSV") && !run.stderr.contains("> PASV"),
            "{}",
            run.report()
        );
        assert_file(&out, &readme_bytes(), &run);

        let mut args = options.to_vec();
        let url = server.url("pub/");
        args.push(&url);
        let listing = curl(&args, work.path()).assert_ok("curl active LIST");
        listing.assert_trace(command);
        assert!(
            listing.stdout.lines().any(|l| l.ends_with(" readme.txt")),
            "{}",
            listing.report()
        );
    }
}

#[test]
fn curl_changes_folders_on_the_way_to_a_file() {
    let server = TestServer::start();
    let work = work_dir();
    let out = work.path().join("out.txt");
    let run = curl(
        &["-o", out.to_str().unwrap(), &server.url("pub/readme.txt")],
        work.path(),
    )
    .assert_ok("curl pub/readme.txt");
    run.assert_trace("> CWD pub").assert_trace("< 250");
    assert_file(&out, &readme_bytes(), &run);

    let empty = curl(&[&server.url("pub/sub/")], work.path()).assert_ok("curl LIST pub/sub/");
    empty.assert_trace("> CWD pub").assert_trace("> CWD sub");
    assert_eq!(empty.stdout, "", "pub/sub is empty:\n{}", empty.report());

    let (code, missing) = curl_code(&[&server.url("no/such/folder/file")], work.path());
    assert_eq!(
        code,
        Some(9),
        "CWD into a missing folder is curl's 'access denied' (9):\n{}",
        missing.report()
    );
    missing.assert_trace("< 550");
}

#[test]
fn curl_uploads_as_alice_in_binary() {
    let server = TestServer::start();
    let work = work_dir();
    let payload = binary_payload(300_000);
    let local = work.path().join("upload.bin");
    std::fs::write(&local, &payload).unwrap();
    let credentials = alice_credentials();
    let run = curl(
        &[
            "-u",
            &credentials,
            "-T",
            local.to_str().unwrap(),
            &server.url("upload.bin"),
        ],
        work.path(),
    )
    .assert_ok("curl upload");
    run.assert_trace("> STOR upload.bin").assert_trace("< 226");
    assert_file(&server.alice_root.join("upload.bin"), &payload, &run);

    let run = curl(
        &[
            "-u",
            &credentials,
            "--ftp-create-dirs",
            "-T",
            local.to_str().unwrap(),
            &server.url("new/deeper/copy.bin"),
        ],
        work.path(),
    )
    .assert_ok("curl upload with --ftp-create-dirs");
    run.assert_trace("> MKD new");
    assert_file(
        &server.alice_root.join("new/deeper/copy.bin"),
        &payload,
        &run,
    );
}

#[test]
fn curl_wrong_password_exits_67() {
    let server = TestServer::start();
    let work = work_dir();
    let (code, run) = curl_code(
        &["-u", "alice:wrong password", &server.url("notes.txt")],
        work.path(),
    );
    assert_eq!(code, Some(67), "curl's 'login denied':\n{}", run.report());
    run.assert_trace("< 530");
    assert!(!run.stdout.contains("alice's notes"), "{}", run.report());
}

#[test]
fn curl_uploads_refused_for_bob_and_anonymous() {
    let server = TestServer::start();
    let work = work_dir();
    let local = work.path().join("upload.txt");
    std::fs::write(&local, "must not arrive\n").unwrap();
    let bob = bob_credentials();
    for (user, root) in [
        (&["-u", bob.as_str()][..], &server.alice_root),
        (&[][..], &server.root),
    ] {
        let mut args = user.to_vec();
        let url = server.url("refused.txt");
        args.extend(["-T", local.to_str().unwrap(), &url]);
        let (code, run) = curl_code(&args, work.path());
        assert_eq!(code, Some(25), "curl's 'upload failed':\n{}", run.report());
        run.assert_trace("> STOR refused.txt").assert_trace("< 550");
        assert!(!root.join("refused.txt").exists(), "{}", run.report());
    }
}

#[test]
fn curl_resumes_partial_downloads() {
    let server = TestServer::start();
    let work = work_dir();
    let big = read(&server.root.join("big.bin"));
    for (name, full, present) in [
        ("readme.txt", readme_bytes(), 1000),
        ("big.bin", big, 1_048_579),
    ] {
        let out = work.path().join(name);
        std::fs::write(&out, &full[..present]).unwrap();
        let run = curl(
            &["-C", "-", "-o", out.to_str().unwrap(), &server.url(name)],
            work.path(),
        )
        .assert_ok("curl -C -");
        run.assert_trace(&format!("> REST {present}"))
            .assert_trace("< 350");
        assert_file(&out, &full, &run);
    }
}

#[test]
fn curl_ascii_mode_sends_crlf_and_stores_lf() {
    let server = TestServer::start();
    let work = work_dir();
    let out = work.path().join("ascii.txt");
    let run = curl(
        &[
            "--use-ascii",
            "-o",
            out.to_str().unwrap(),
            &server.url("readme.txt"),
        ],
        work.path(),
    )
    .assert_ok("curl --use-ascii download");
    run.assert_trace("> TYPE A");
    // The wire carries CRLF (see the ftplib test); curl turns it back into LF.
    assert_file(&out, &readme_bytes(), &run);

    let local = work.path().join("lf.txt");
    std::fs::write(&local, "one\ntwo\nthree\n").unwrap();
    let credentials = alice_credentials();
    let run = curl(
        &[
            "--use-ascii",
            "--crlf",
            "-u",
            &credentials,
            "-T",
            local.to_str().unwrap(),
            &server.url("ascii-upload.txt"),
        ],
        work.path(),
    )
    .assert_ok("curl --use-ascii --crlf upload");
    run.assert_trace("> TYPE A");
    assert_file(
        &server.alice_root.join("ascii-upload.txt"),
        b"one\ntwo\nthree\n",
        &run,
    );
}

#[test]
fn curl_handles_spaces_and_utf8_in_names() {
    let server = TestServer::start();
    let work = work_dir();
    let out = work.path().join("out.txt");
    let run = curl(
        &[
            "-o",
            out.to_str().unwrap(),
            &server.url("my%20file%20%C3%BC.txt"),
        ],
        work.path(),
    )
    .assert_ok("curl get 'my file ü.txt'");
    run.assert_trace("> RETR my file ü.txt");
    assert_file(&out, b"spaces and UTF-8\n", &run);

    let credentials = alice_credentials();
    let run = curl(
        &[
            "-u",
            &credentials,
            "-T",
            out.to_str().unwrap(),
            &server.url("caf%C3%A9%20menu.txt"),
        ],
        work.path(),
    )
    .assert_ok("curl put 'café menu.txt'");
    assert_file(
        &server.alice_root.join("café menu.txt"),
        b"spaces and UTF-8\n",
        &run,
    );
}

#[test]
fn curl_over_ipv6_with_epsv_and_eprt() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        support::skip("cannot bind [::1] on this machine");
        return;
    }
    let server = TestServer::start_on("[::1]:0", |_| {});
    let work = work_dir();
    let url = format!("ftp://[::1]:{}/readme.txt", server.port());
    for (options, command) in [(&[][..], "> EPSV"), (&["-P", "::1"][..], "> EPRT |2|::1|")] {
        let out = work.path().join("readme.txt");
        let mut args = options.to_vec();
        args.extend(["-g", "-o", out.to_str().unwrap(), &url]);
        let run = curl(&args, work.path()).assert_ok("curl over IPv6");
        run.assert_trace(command);
        assert!(
            !run.stderr.contains("> PASV") && !run.stderr.contains("> PORT"),
            "{}",
            run.report()
        );
        assert_file(&out, &readme_bytes(), &run);
    }
}

// ----------------------------------------------------------------------------------------------
// lftp

/// Runs an lftp script logged in as `user` (`user,password`), with its debug trace on stderr.
fn lftp(server: &TestServer, user: &str, script: &str, cwd: &Path) -> Run {
    let full = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; \
         set net:timeout 10; set net:reconnect-interval-base 1; set xfer:clobber yes; \
         open -u \"{user}\" -p {port} 127.0.0.1; {script}",
        port = server.port()
    );
    Run::new(run_tool("lftp", &["-d", "-c", &full], None, Some(cwd)))
}

#[test]
fn lftp_lists_changes_folder_and_gets() {
    let server = TestServer::start();
    let work = work_dir();
    let run = lftp(
        &server,
        "ftp,lftp@example.com",
        "set ftp:use-mlsd no; ls; nlist pub; cd pub; get readme.txt -o readme.txt; \
         cd /; get big.bin -o big.bin",
        work.path(),
    )
    .assert_ok("lftp session");
    run.assert_trace("---> LIST")
        .assert_trace("---> NLST")
        .assert_trace("---> CWD /pub");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with('-') && l.ends_with(" readme.txt")),
        "{}",
        run.report()
    );
    assert!(
        run.stdout.lines().any(|l| l == "sub"),
        "NLST pub shows sub:\n{}",
        run.report()
    );
    assert_file(&work.path().join("readme.txt"), &readme_bytes(), &run);
    assert_file(
        &work.path().join("big.bin"),
        &read(&server.root.join("big.bin")),
        &run,
    );
}

#[test]
fn lftp_mirrors_pub() {
    let server = TestServer::start();
    std::fs::write(server.root.join("pub/sub/deep.bin"), binary_payload(70_000)).unwrap();
    let work = work_dir();
    let run = lftp(
        &server,
        "anonymous,lftp@example.com",
        "mirror pub mirrored",
        work.path(),
    )
    .assert_ok("lftp mirror");
    let mirrored = work.path().join("mirrored");
    assert_file(&mirrored.join("readme.txt"), &readme_bytes(), &run);
    assert_file(
        &mirrored.join("sub/deep.bin"),
        &binary_payload(70_000),
        &run,
    );
    let mut names: Vec<String> = std::fs::read_dir(&mirrored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["readme.txt", "sub"], "{}", run.report());
}

#[test]
fn lftp_resumes_with_get_c_and_reget() {
    let server = TestServer::start();
    let work = work_dir();
    let big = read(&server.root.join("big.bin"));
    std::fs::write(work.path().join("readme.txt"), &readme_bytes()[..700]).unwrap();
    std::fs::write(work.path().join("big.bin"), &big[..2_000_000]).unwrap();
    let run = lftp(
        &server,
        "ftp,lftp@example.com",
        "get -c readme.txt -o readme.txt; reget big.bin -o big.bin",
        work.path(),
    )
    .assert_ok("lftp resume");
    run.assert_trace("---> REST 700")
        .assert_trace("---> REST 2000000");
    assert_file(&work.path().join("readme.txt"), &readme_bytes(), &run);
    assert_file(&work.path().join("big.bin"), &big, &run);
}

#[test]
fn lftp_active_mode() {
    let server = TestServer::start();
    let work = work_dir();
    let run = lftp(
        &server,
        "ftp,lftp@example.com",
        "set ftp:passive-mode off; set ftp:port-ipv4 127.0.0.1; set ftp:use-mlsd no; \
         ls pub; get readme.txt -o readme.txt",
        work.path(),
    )
    .assert_ok("lftp active");
    assert_active_mode(&run.stderr, &run);
    assert!(
        run.stdout.lines().any(|l| l.ends_with(" readme.txt")),
        "{}",
        run.report()
    );
    assert_file(&work.path().join("readme.txt"), &readme_bytes(), &run);
}

#[test]
fn lftp_puts_as_alice() {
    let server = TestServer::start();
    let work = work_dir();
    let payload = binary_payload(123_457);
    std::fs::write(work.path().join("local.bin"), &payload).unwrap();
    let user = format!("alice,{PASSWORD}");
    let run = lftp(
        &server,
        &user,
        "put local.bin -o remote.bin; mkdir made; cd made; put local.bin",
        work.path(),
    )
    .assert_ok("lftp put");
    run.assert_trace("---> STOR remote.bin");
    assert_file(&server.alice_root.join("remote.bin"), &payload, &run);
    assert_file(&server.alice_root.join("made/local.bin"), &payload, &run);
}

// ----------------------------------------------------------------------------------------------
// tnftp

/// Runs tnftp (`-n`: no auto-login, `-d`: commands sent, `-v`: replies) with `flags` and commands piped on stdin.
fn tnftp(server: &TestServer, flags: &[&str], commands: &str, cwd: &Path) -> Run {
    let port = server.port().to_string();
    let mut args = vec!["-n", "-d", "-v"];
    args.extend_from_slice(flags);
    args.extend(["127.0.0.1", port.as_str()]);
    Run::new(run_tool("/usr/bin/tnftp", &args, Some(commands), Some(cwd)))
}

#[test]
fn tnftp_passive_session() {
    let server = TestServer::start();
    let work = work_dir();
    let run = tnftp(
        &server,
        &["-p"],
        "user ftp tnftp@example.com\nbinary\nls\ncd pub\nnlist\nget readme.txt out.txt\nbye\n",
        work.path(),
    )
    .assert_ok("tnftp -p");
    run.assert_trace("---> EPSV")
        .assert_trace("---> CWD pub")
        .assert_trace("---> NLST");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with('-') && l.ends_with(" big.bin")),
        "LIST output:\n{}",
        run.report()
    );
    assert!(
        run.stdout.lines().any(|l| l == "sub"),
        "NLST output:\n{}",
        run.report()
    );
    assert_file(&work.path().join("out.txt"), &readme_bytes(), &run);
}

#[test]
fn tnftp_active_session() {
    let server = TestServer::start();
    let work = work_dir();
    let run = tnftp(
        &server,
        &["-A"],
        "user ftp tnftp@example.com\nbinary\nls pub\nget big.bin big.bin\nbye\n",
        work.path(),
    )
    .assert_ok("tnftp -A");
    assert_active_mode(&run.stdout, &run);
    assert!(
        run.stdout.lines().any(|l| l.ends_with(" readme.txt")),
        "{}",
        run.report()
    );
    assert_file(
        &work.path().join("big.bin"),
        &read(&server.root.join("big.bin")),
        &run,
    );
}

#[test]
fn tnftp_puts_as_alice_and_bob_is_refused() {
    let server = TestServer::start();
    let work = work_dir();
    let payload = binary_payload(65_537);
    std::fs::write(work.path().join("local.bin"), &payload).unwrap();
    let run = tnftp(
        &server,
        &["-p"],
        &format!("user alice \"{PASSWORD}\"\nbinary\nput local.bin up.bin\nbye\n"),
        work.path(),
    )
    .assert_ok("tnftp put as alice");
    run.assert_trace("230 User alice logged in.");
    assert_file(&server.alice_root.join("up.bin"), &payload, &run);

    let run = tnftp(
        &server,
        &["-p"],
        &format!("user bob \"{PASSWORD}\"\nbinary\nput local.bin bob.bin\nbye\n"),
        work.path(),
    );
    run.assert_trace("230 User bob logged in.")
        .assert_trace("550 Permission denied.");
    assert!(
        !server.alice_root.join("bob.bin").exists(),
        "{}",
        run.report()
    );
}

// ----------------------------------------------------------------------------------------------
// Python ftplib

/// Shared start of every ftplib script: `python3 - PORT ROOT ALICE_ROOT WORK PASSWORD`.
const PYTHON_PRELUDE: &str = r#"
import ftplib, io, os, sys, time
PORT = int(sys.argv[1])
ROOT, ALICE_ROOT, WORK, PASSWORD = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

def connect(user="anonymous", password="ftplib@example.com", passive=True):
    ftp = ftplib.FTP(timeout=20)
    ftp.connect("127.0.0.1", PORT)
    ftp.login(user, password)
    ftp.set_pasv(passive)
    return ftp

def alice(passive=True):
    return connect("alice", PASSWORD, passive)

def fetch(ftp, command):
    chunks = []
    ftp.retrbinary(command, chunks.append)
    return b"".join(chunks)

def local(name):
    return open(os.path.join(ROOT, name), "rb").read()

def expect_error(code, call, *args):
    try:
        call(*args)
    except ftplib.all_errors as error:
        assert str(error).startswith(code), f"expected {code}, got {error!r}"
        return str(error)
    raise AssertionError(f"expected a {code} error")
"#;

/// Runs an ftplib script (after the prelude); it prints what the Rust side checks.
fn python(server: &TestServer, work: &Path, body: &str) -> Run {
    let script = format!("{PYTHON_PRELUDE}\n{body}");
    let port = server.port().to_string();
    let args = [
        "-",
        port.as_str(),
        server.root.to_str().unwrap(),
        server.alice_root.to_str().unwrap(),
        work.to_str().unwrap(),
        PASSWORD,
    ];
    Run::new(run_tool("python3", &args, Some(&script), Some(work)))
}

#[test]
fn ftplib_anonymous_and_user_logins() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = ftplib.FTP(timeout=20)
print("greeting:", ftp.connect("127.0.0.1", PORT))
print("anonymous:", ftp.login().splitlines()[-1])
print("pwd:", ftp.pwd())
ftp.quit()
ftp = alice()
print("alice:", ftp.getwelcome() and ftp.pwd(), ftp.nlst())
ftp.quit()
ftp = ftplib.FTP(timeout=20)
ftp.connect("127.0.0.1", PORT)
print("wrong:", expect_error("530", ftp.login, "alice", "not the password"))
print("after:", ftp.sendcmd("NOOP"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib logins");
    for line in [
        "greeting: 220 ANY-DOMAIN.COM FTP Service",
        "anonymous: 230 Anonymous user logged in.",
        "pwd: /",
        "alice: / ['notes.txt']",
        "wrong: 530 Login incorrect.",
        "after: 200 NOOP ok.",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "expected line {line:?}:\n{}",
            run.report()
        );
    }
}

#[test]
fn ftplib_lists_and_changes_folders() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
print("nlst:", sorted(ftp.nlst()))
lines = []
ftp.dir(lines.append)
print("dir:", len(lines), [l for l in lines if l.endswith(" readme.txt")][0].split()[4])
ftp.cwd("pub")
print("pwd:", ftp.pwd())
ftp.cwd("sub")
print("pwd:", ftp.pwd(), ftp.nlst())
ftp.cwd("..")
print("pwd:", ftp.pwd())
print("cdup:", ftp.sendcmd("CDUP"), ftp.pwd())
print("missing:", expect_error("550", ftp.cwd, "nowhere"))
print("file:", expect_error("550", ftp.cwd, "readme.txt"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib listing");
    let expected = [
        "nlst: ['big.bin', 'my file ü.txt', 'pub', 'readme.txt']",
        "dir: 4 1715",
        "pwd: /pub",
        "pwd: /pub/sub []",
        "pwd: /pub",
        "cdup: 250 CWD command successful. /",
        "missing: 550 No such file or directory.",
        "file: 550 Not a directory.",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, expected, "{}", run.report());
}

#[test]
fn ftplib_download_resume_with_rest() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
head = fetch(ftp, "RETR readme.txt")[:1000]
tail = []
ftp.retrbinary("RETR readme.txt", tail.append, rest=1000)
open(os.path.join(WORK, "readme.txt"), "wb").write(head + b"".join(tail))
big = local("big.bin")
fetch_tail = []
ftp.retrbinary("RETR big.bin", fetch_tail.append, rest=3_000_001)
open(os.path.join(WORK, "big.bin"), "wb").write(big[:3_000_001] + b"".join(fetch_tail))
print("tail:", len(b"".join(tail)), len(b"".join(fetch_tail)))
print("past end:", expect_error("554", ftp.retrbinary, "RETR readme.txt", print, None, 5000))
print("after:", len(fetch(ftp, "RETR readme.txt")))
ftp.quit()
"#,
    )
    .assert_ok("ftplib retrbinary rest=");
    run.assert_trace("tail: 715 1194303")
        .assert_trace("after: 1715");
    assert_file(&work.path().join("readme.txt"), &readme_bytes(), &run);
    assert_file(
        &work.path().join("big.bin"),
        &read(&server.root.join("big.bin")),
        &run,
    );
}

#[test]
fn ftplib_upload_resume_with_rest() {
    let server = TestServer::start();
    let work = work_dir();
    let payload = binary_payload(500_000);
    std::fs::write(work.path().join("source.bin"), &payload).unwrap();
    let run = python(
        &server,
        work.path(),
        r#"
data = open(os.path.join(WORK, "source.bin"), "rb").read()
ftp = alice()
ftp.storbinary("STOR resumed.bin", io.BytesIO(data[:123_456]))
print("partial:", ftp.size("resumed.bin"))
ftp.storbinary("STOR resumed.bin", io.BytesIO(data[123_456:]), rest=123_456)
print("final:", ftp.size("resumed.bin"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib storbinary rest=");
    run.assert_trace("partial: 123456")
        .assert_trace("final: 500000");
    assert_file(&server.alice_root.join("resumed.bin"), &payload, &run);
}

#[test]
fn ftplib_ascii_mode_crlf_on_the_wire_lf_on_disk() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
lines = []
ftp.retrlines("RETR readme.txt", lines.append)
open(os.path.join(WORK, "retrlines.txt"), "w").write("\n".join(lines) + "\n")
ftp.voidcmd("TYPE A")
with ftp.transfercmd("RETR readme.txt") as conn:
    raw = b""
    for _ in range(10_000):
        chunk = conn.recv(65536)
        if not chunk:
            break
        raw += chunk
ftp.voidresp()
open(os.path.join(WORK, "wire.txt"), "wb").write(raw)
print("ascii size:", ftp.sendcmd("SIZE readme.txt"))
ftp.quit()
ftp = alice()
ftp.storlines("STOR lines.txt", io.BytesIO(b"alpha\nbeta\r\ngamma\n"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib ASCII");
    let wire = readme_with_crlf();
    run.assert_trace(&format!("ascii size: 213 {}", wire.len()));
    assert_file(&work.path().join("retrlines.txt"), &readme_bytes(), &run);
    assert_file(&work.path().join("wire.txt"), &wire, &run);
    assert_file(
        &server.alice_root.join("lines.txt"),
        b"alpha\nbeta\ngamma\n",
        &run,
    );
}

#[test]
fn ftplib_active_mode() {
    let server = TestServer::start();
    let work = work_dir();
    let payload = binary_payload(200_000);
    std::fs::write(work.path().join("source.bin"), &payload).unwrap();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect(passive=False)
print("nlst:", sorted(ftp.nlst("pub")))
open(os.path.join(WORK, "readme.txt"), "wb").write(fetch(ftp, "RETR readme.txt"))
ftp.quit()
ftp = alice(passive=False)
ftp.storbinary("STOR active.bin", open(os.path.join(WORK, "source.bin"), "rb"))
print("listed:", ftp.nlst())
ftp.quit()
"#,
    )
    .assert_ok("ftplib active");
    run.assert_trace("nlst: ['readme.txt', 'sub']")
        .assert_trace("listed: ['active.bin', 'notes.txt']");
    assert_file(&work.path().join("readme.txt"), &readme_bytes(), &run);
    assert_file(&server.alice_root.join("active.bin"), &payload, &run);
}

#[test]
fn ftplib_mkdir_rmdir_rename_delete_as_alice() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = alice()
print("mkd:", ftp.mkd("projects"))
ftp.cwd("projects")
ftp.storbinary("STOR draft.txt", io.BytesIO(b"draft\n"))
print("rename:", ftp.rename("draft.txt", "final.txt"))
print("listed:", ftp.nlst())
print("not empty:", expect_error("550", ftp.rmd, "/projects"))
print("delete:", ftp.delete("final.txt"))
print("gone:", expect_error("550", ftp.delete, "final.txt"))
ftp.cwd("/")
print("rmd:", ftp.rmd("projects"))
ftp.mkd("kept")
ftp.rename("notes.txt", "kept/renamed notes.txt")
print("root:", sorted(ftp.nlst()))
ftp.quit()
"#,
    )
    .assert_ok("ftplib file management");
    let expected = [
        "mkd: /projects",
        "rename: 250 Rename successful.",
        "listed: ['final.txt']",
        "not empty: 550 Directory not empty.",
        "delete: 250 DELE command successful.",
        "gone: 550 No such file or directory.",
        "rmd: 250 RMD command successful.",
        "root: ['kept']",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, expected, "{}", run.report());
    assert!(
        !server.alice_root.join("projects").exists(),
        "{}",
        run.report()
    );
    assert!(
        !server.alice_root.join("notes.txt").exists(),
        "{}",
        run.report()
    );
    assert_file(
        &server.alice_root.join("kept/renamed notes.txt"),
        b"alice's notes\n",
        &run,
    );
}

#[test]
fn ftplib_size_mdtm_mlsd_mlst() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
ftp.voidcmd("TYPE I")
print("size:", ftp.size("readme.txt"), ftp.size("big.bin"))
mtime = time.strftime("%Y%m%d%H%M%S", time.gmtime(os.stat(os.path.join(ROOT, "readme.txt")).st_mtime))
print("mdtm matches:", ftp.voidcmd("MDTM readme.txt") == "213 " + mtime)
entries = dict(ftp.mlsd())
print("mlsd:", sorted(n for n in entries if n not in (".", "..")))
print("readme:", entries["readme.txt"]["type"], entries["readme.txt"]["size"])
print("pub:", entries["pub"]["type"])
print("modify matches:", entries["readme.txt"]["modify"][:14] == mtime)
mlst = ftp.sendcmd("MLST readme.txt").splitlines()
print("mlst first:", mlst[0])
facts = dict(f.split("=", 1) for f in mlst[1].strip().split(";")[:-1])
print("mlst facts:", facts["type"], facts["size"], mlst[1].rsplit(";", 1)[1])
print("mlst last:", mlst[-1])
print("missing:", expect_error("550", ftp.size, "nope.txt"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib SIZE/MDTM/MLSD/MLST");
    let expected = [
        "size: 1715 4194304",
        "mdtm matches: True",
        "mlsd: ['big.bin', 'my file ü.txt', 'pub', 'readme.txt']",
        "readme: file 1715",
        "pub: dir",
        "modify matches: True",
        "mlst first: 250-Listing /readme.txt",
        "mlst facts: file 1715  /readme.txt",
        "mlst last: 250 End",
        "missing: 550 No such file or directory.",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, expected, "{}", run.report());
}

#[test]
fn ftplib_names_with_spaces_and_utf8() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
print("listed:", "my file ü.txt" in ftp.nlst())
print("ascii size:", ftp.size("my file ü.txt"))
ftp.voidcmd("TYPE I")
print("binary size:", ftp.size("my file ü.txt"))
open(os.path.join(WORK, "got.txt"), "wb").write(fetch(ftp, "RETR my file ü.txt"))
ftp.quit()
ftp = alice()
ftp.mkd("dossier été")
ftp.storbinary("STOR dossier été/naïve file ü.txt", io.BytesIO("日本語\n".encode()))
print("inside:", ftp.nlst("dossier été"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib UTF-8 names");
    run.assert_trace("listed: True")
        .assert_trace("ascii size: 18")
        .assert_trace("binary size: 17");
    run.assert_trace("inside: ['naïve file ü.txt']");
    assert_file(&work.path().join("got.txt"), b"spaces and UTF-8\n", &run);
    assert_file(
        &server.alice_root.join("dossier été/naïve file ü.txt"),
        "日本語\n".as_bytes(),
        &run,
    );
}

#[test]
fn ftplib_uploads_refused_for_bob_and_anonymous() {
    let server = TestServer::start();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
for name, ftp in [("bob", connect("bob", PASSWORD)), ("anonymous", connect())]:
    print(name, "stor:", expect_error("550", ftp.storbinary, "STOR refused.txt", io.BytesIO(b"x")))
    print(name, "mkd:", expect_error("550", ftp.mkd, "refused"))
    print(name, "dele:", expect_error("550", ftp.delete, "readme.txt" if name == "anonymous" else "notes.txt"))
    print(name, "still works:", ftp.pwd())
    ftp.quit()
"#,
    )
    .assert_ok("ftplib refusals");
    for name in ["bob", "anonymous"] {
        for verb in ["stor", "mkd", "dele"] {
            run.assert_trace(&format!("{name} {verb}: 550 Permission denied."));
        }
        run.assert_trace(&format!("{name} still works: /"));
    }
    for root in [&server.alice_root, &server.root] {
        assert!(
            !root.join("refused.txt").exists() && !root.join("refused").exists(),
            "{}",
            run.report()
        );
    }
    assert!(
        server.alice_root.join("notes.txt").exists() && server.root.join("readme.txt").exists()
    );
}

#[test]
fn ftplib_abort_during_download_keeps_the_session() {
    let server = TestServer::start();
    // Big enough not to fit in the sockets' buffers, so the transfer is still running at ABOR.
    let huge = std::fs::File::create(server.root.join("huge.bin")).unwrap();
    huge.set_len(64 * 1024 * 1024).unwrap();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("RETR huge.bin")
received = 0
for _ in range(4):
    received += len(conn.recv(8192))
print("received some:", 0 < received < 64 * 1024 * 1024)
reply = ftp.abort()
print("abort reply:", reply)
if reply.startswith("426"):
    # RFC 959 §4.1.3: 426 ends the transfer, then the ABOR itself is answered.
    print("then:", ftp.getresp())
conn.close()
print("pwd:", ftp.pwd())
data = fetch(ftp, "RETR readme.txt")
print("after abort:", data == local("readme.txt"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib abort");
    run.assert_trace("received some: True")
        .assert_trace("abort reply: 426")
        .assert_trace("then: 226")
        .assert_trace("pwd: /")
        .assert_trace("after abort: True");
}

/// The same abort as above with ABOR sent in-band (as clients that do not use urgent data send
/// it): the transfer ends with 426, the ABOR gets 226, and the session goes on.
#[test]
fn ftplib_inband_abor_during_download_keeps_the_session() {
    let server = TestServer::start();
    // Big enough not to fit in the sockets' buffers, so the transfer is still running at ABOR.
    let huge = std::fs::File::create(server.root.join("huge.bin")).unwrap();
    huge.set_len(64 * 1024 * 1024).unwrap();
    let work = work_dir();
    let run = python(
        &server,
        work.path(),
        r#"
ftp = connect()
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("RETR huge.bin")
received = 0
for _ in range(4):
    received += len(conn.recv(8192))
print("received some:", 0 < received < 64 * 1024 * 1024)
ftp.putcmd("ABOR")
print("first:", ftp.getmultiline())
print("second:", ftp.getmultiline())
conn.close()
print("pwd:", ftp.pwd())
print("after abort:", fetch(ftp, "RETR readme.txt") == local("readme.txt"))
ftp.quit()
"#,
    )
    .assert_ok("ftplib in-band ABOR");
    let expected = [
        "received some: True",
        "first: 426 Connection closed; transfer aborted.",
        "second: 226 ABOR command successful.",
        "pwd: /",
        "after abort: True",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, expected, "{}", run.report());
}
