//! The transfer logs, read by real tools: xferlog by ProFTPD's `ftpstats` and by
//! `webalizer -F ftp`, JSON lines by a JSON parser against the documented fields; names with
//! spaces and control bytes cannot forge a field or a line; SIGHUP reopens the files
//! (logrotate); an unwritable log never stops a transfer.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{run_tool, skip, Ferryd, TestServer, PASSWORD};

/// Waits (bounded) until `path` has at least `lines` lines; returns them.
fn wait_for_lines(path: &Path, lines: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_string).collect();
        if found.len() >= lines || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ftpstats` from ProFTPD's Debian package (`proftpd-core`), unpacked without the daemon.
fn ftpstats() -> Option<PathBuf> {
    let cached = std::env::temp_dir().join("ferry-ftpstats/usr/sbin/ftpstats");
    if cached.exists() {
        return Some(cached);
    }
    let dir = tempfile::tempdir().ok()?;
    let (ok, _, stderr) = run_tool(
        "apt-get",
        &["download", "proftpd-core"],
        None,
        Some(dir.path()),
    );
    if !ok {
        eprintln!("apt-get download proftpd-core: {stderr}");
        return None;
    }
    let deb = std::fs::read_dir(dir.path())
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".deb"))?
        .path();
    let target = std::env::temp_dir().join("ferry-ftpstats");
    let (ok, _, _) = run_tool("dpkg", &["-x", deb.to_str()?, target.to_str()?], None, None);
    (ok && cached.exists()).then_some(cached)
}

/// A session's transfers: anonymous RETR of readme.txt and of a name with spaces, alice's STOR
/// and an ABORed download.
fn make_transfers(server: &TestServer) {
    let mut anonymous = server.connect();
    anonymous.expect("USER ftp", 331);
    anonymous.expect("PASS ferry@example.org", 230);
    anonymous.expect("TYPE I", 200);
    for name in ["readme.txt", "my file ü.txt"] {
        let mut data = anonymous.epsv();
        anonymous.expect(&format!("RETR {name}"), 150);
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).unwrap();
        assert_eq!(anonymous.reply().code, 226);
    }
    anonymous.expect("QUIT", 221);

    let mut alice = server.login("alice");
    alice.expect("TYPE I", 200);
    assert_eq!(alice.upload("STOR up load.bin", &[7u8; 5000]), 226);
    // A download broken off by ABOR: incomplete.
    let _data = alice.epsv();
    alice.expect("RETR big.bin", 150);
    std::thread::sleep(Duration::from_millis(50));
    alice.send("ABOR");
    let first = alice.reply().code;
    assert!(matches!(first, 426 | 226), "{first}");
    if first == 426 {
        assert_eq!(alice.reply().code, 226);
    }
    alice.expect("QUIT", 221);
}

#[test]
fn xferlog_is_read_by_ftpstats_and_webalizer_and_json_lines_by_a_parser() {
    let logs = tempfile::tempdir().unwrap();
    let (xferlog, json) = (logs.path().join("xferlog"), logs.path().join("events.json"));
    let server = TestServer::start_with(|c| {
        c.logs.xferlog = Some(xferlog.clone());
        c.logs.json = Some(json.clone());
        // A slow download, so that ABOR catches it running.
        c.limits.download_rate = 200_000;
    });
    std::fs::write(server.alice_root.join("big.bin"), vec![1u8; 2_000_000]).unwrap();
    make_transfers(&server);

    let lines = wait_for_lines(&xferlog, 4);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    // Every line has exactly the 14 fields (the time is 5 words).
    for line in &lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 18, "{line}");
        assert_eq!(&fields[14..], &["ftp", "0", "*", fields[17]], "{line}");
    }
    let field = |line: &str, i: usize| line.split_whitespace().nth(i).unwrap().to_string();
    let readme = &lines[0];
    assert_eq!(field(readme, 6), "127.0.0.1");
    assert_eq!(field(readme, 7), "1715");
    assert_eq!(field(readme, 8), "/readme.txt");
    assert_eq!(
        readme.split_whitespace().skip(9).collect::<Vec<_>>(),
        [
            "b",
            "_",
            "o",
            "a",
            "ferry@example.org",
            "ftp",
            "0",
            "*",
            "c"
        ]
    );
    assert_eq!(field(&lines[1], 8), "/my_file_ü.txt");
    let upload = &lines[2];
    assert_eq!(field(upload, 8), "/up_load.bin");
    assert_eq!(
        upload.split_whitespace().skip(9).collect::<Vec<_>>(),
        ["b", "_", "i", "r", "alice", "ftp", "0", "*", "c"]
    );
    assert!(
        lines[3].ends_with(" i"),
        "an aborted transfer is incomplete: {}",
        lines[3]
    );

    // ProFTPD's ftpstats reads every line: 4 files, their bytes.
    match ftpstats() {
        Some(ftpstats) => {
            let (ok, stdout, stderr) = run_tool(
                "perl",
                &[
                    ftpstats.to_str().unwrap(),
                    "-f",
                    xferlog.to_str().unwrap(),
                    "-r",
                    "-a",
                ],
                None,
                None,
            );
            assert!(ok, "{stdout}\n{stderr}");
            let number = |label: &str| -> u64 {
                stdout
                    .lines()
                    .find(|l| l.starts_with(label))
                    .and_then(|l| l.split_whitespace().last())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"))
            };
            assert_eq!(number("Files Transmitted During Summary Period"), 4);
            let bytes: u64 = lines
                .iter()
                .map(|l| field(l, 7).parse::<u64>().unwrap())
                .sum();
            assert_eq!(number("Bytes Transmitted During Summary Period"), bytes);
        }
        None => skip("cannot unpack ftpstats from proftpd-core"),
    }

    // webalizer in FTP mode: every record read, none bad.
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run_tool(
        "webalizer",
        &[
            "-F",
            "ftp",
            "-N",
            "0",
            "-n",
            "ferry.test",
            "-o",
            out.path().to_str().unwrap(),
            xferlog.to_str().unwrap(),
        ],
        None,
        None,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("4 records in"), "{stdout}");
    assert!(!stdout.contains("bad"), "{stdout}");

    // JSON lines: one object per event, the documented fields on transfers.
    let events: Vec<serde_json::Value> = wait_for_lines(&json, 1)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let transfers: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "transfer").collect();
    assert_eq!(transfers.len(), 4, "{events:#?}");
    for field in [
        "time",
        "event",
        "session",
        "transfer",
        "remote",
        "user",
        "anonymous",
        "verb",
        "path",
        "bytes",
        "size",
        "elapsed_ms",
        "status",
        "error",
        "type",
        "data_mode",
        "tls_version",
        "tls_cipher",
        "tls_resumed",
    ] {
        assert!(
            transfers[0].get(field).is_some(),
            "{field}: {}",
            transfers[0]
        );
    }
    assert_eq!(transfers[0]["path"], "/readme.txt");
    assert_eq!(transfers[0]["size"], 1715);
    assert_eq!(transfers[0]["status"], "ok");
    assert_eq!(transfers[2]["verb"], "STOR");
    assert_eq!(transfers[2]["user"], "alice");
    assert_eq!(transfers[3]["status"], "aborted");
    assert!(events
        .iter()
        .any(|e| e["event"] == "login" && e["user"] == "alice"));
    assert!(events.iter().any(|e| e["event"] == "disconnect"));
    assert!(events
        .iter()
        .any(|e| e["event"] == "command" && e["verb"] == "RETR" && e["code"] == 226));
}

/// A transfer broken off because its session ended (the client closed the control connection
/// mid-download, or the data connection is all that is left) is logged once, as incomplete,
/// with the bytes it moved, like one broken off by ABOR.
#[test]
fn a_transfer_cut_by_the_sessions_end_is_logged_as_incomplete() {
    let logs = tempfile::tempdir().unwrap();
    let xferlog = logs.path().join("xferlog");
    let server = TestServer::start_with(|c| {
        c.logs.xferlog = Some(xferlog.clone());
        c.limits.download_rate = 200_000;
    });
    std::fs::write(server.alice_root.join("big.bin"), vec![1u8; 2_000_000]).unwrap();
    let mut alice = server.login("alice");
    alice.expect("TYPE I", 200);
    let mut data = alice.epsv();
    alice.expect("RETR big.bin", 150);
    let mut some = [0u8; 1000];
    data.read_exact(&mut some).unwrap();
    drop(alice);
    let lines = wait_for_lines(&xferlog, 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields.len(), 18, "{}", lines[0]);
    assert_eq!(fields[8], "/big.bin");
    let bytes: u64 = fields[7].parse().unwrap();
    // (What the pump counted: a chunk the client never read to its end is not.)
    assert!(bytes < 2_000_000, "{}", lines[0]);
    assert_eq!(fields[17], "i", "{}", lines[0]);
    // Once: nothing more is written for it.
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&xferlog).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn sighup_reopens_the_logs_after_logrotate_and_a_broken_log_stops_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("readme.txt"), support::readme_bytes()).unwrap();
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let xferlog = logs.join("xferlog");
    let config = work.path().join("ferryd.toml");
    std::fs::write(
        &config,
        format!("[logs]\nxferlog = \"{}\"\n", xferlog.display()),
    )
    .unwrap();
    let server = Ferryd::start(&root, &["--config", config.to_str().unwrap()]);
    let get = |name: &str| {
        let url = format!("ftp://{}/readme.txt", server.addr);
        let out = work.path().join(name);
        let (ok, _, stderr) = run_tool(
            "curl",
            &["-sS", "-o", out.to_str().unwrap(), &url],
            None,
            None,
        );
        assert!(ok, "{stderr}");
    };
    get("one");
    assert_eq!(wait_for_lines(&xferlog, 1).len(), 1);
    // logrotate: move the file away, then SIGHUP.
    let rotated = logs.join("xferlog.1");
    std::fs::rename(&xferlog, &rotated).unwrap();
    server.signal(rustix::process::Signal::HUP);
    std::thread::sleep(Duration::from_millis(300));
    get("two");
    assert_eq!(
        wait_for_lines(&xferlog, 1).len(),
        1,
        "a new file after SIGHUP"
    );
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );

    // The log's folder gone: transfers go on, and a warning says why.
    std::fs::remove_file(&xferlog).unwrap();
    std::fs::remove_file(&rotated).unwrap();
    std::fs::remove_dir(&logs).unwrap();
    server.signal(rustix::process::Signal::HUP);
    std::thread::sleep(Duration::from_millis(300));
    for name in ["three", "four", "five"] {
        get(name);
        assert_eq!(
            std::fs::read(work.path().join(name)).unwrap(),
            support::readme_bytes()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("log file") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    assert_eq!(
        log.matches("ferryd: log file").count(),
        1,
        "one warning a minute at most:\n{log}"
    );
    let _ = PASSWORD;
}

/// `--check-config` (and `doctor`) do not create the log files: a check run as root would
/// leave root's files where the service, as its own user, must write. They do say when one
/// could not be written. The server itself creates them readable by owner and group only.
#[test]
fn checks_create_no_log_file_and_the_server_makes_them_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let xferlog = dir.path().join("xferlog");
    let check = |xferlog: &Path| {
        let config = dir.path().join("ferryd.toml");
        std::fs::write(
            &config,
            format!("[logs]\nxferlog = \"{}\"\n", xferlog.display()),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .args(["--config", config.to_str().unwrap(), "--check-config"])
            .args(["--root", dir.path().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let checked = check(&xferlog);
    assert!(checked.status.success(), "{checked:?}");
    assert!(!xferlog.exists(), "--check-config created the log file");
    let nowhere = dir.path().join("no/such/folder/xferlog");
    let refused = check(&nowhere);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("xferlog"),
        "{refused:?}"
    );
    let _server = TestServer::start_with(|c| c.logs.xferlog = Some(xferlog.clone()));
    let mode = std::fs::metadata(&xferlog).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "{mode:o}");
}
