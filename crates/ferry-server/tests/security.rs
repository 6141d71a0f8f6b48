//! Hardening against the classic attacks and abuse (RFC 2577): permissions per user and folder,
//! the anonymous drop box, session limits, failed-login limits and bans, bandwidth throttling,
//! atomic uploads, FXP, and a full disk.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{read_all, TestServer, PASSWORD};

/// Writes a users file with one user `carol` (password [`PASSWORD`]) and extra TOML lines.
fn users_file(dir: &Path, root: &Path, extra: &str) -> std::path::PathBuf {
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let path = dir.join("carol.toml");
    let text = format!(
        "[[user]]\nname = \"carol\"\npassword = \"{hash}\"\nroot = \"{}\"\n{extra}\n",
        root.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A server whose only named user is `carol`, with `extra` in her entry.
fn server_with_carol(
    extra: &str,
    adjust: impl FnOnce(&mut ferry_server::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home/drop")).unwrap();
    std::fs::create_dir_all(dir.path().join("home/pub")).unwrap();
    std::fs::write(dir.path().join("home/pub/a.txt"), "a\n").unwrap();
    let file = users_file(dir.path(), &dir.path().join("home"), extra);
    let server = TestServer::start_with(|config| {
        config.users_file = Some(file);
        adjust(config);
    });
    (server, dir)
}

#[test]
fn anonymous_drop_box_takes_uploads_it_will_not_give_back() {
    let server = TestServer::start_with(|c| c.anonymous.upload_folder = Some("/incoming".into()));
    std::fs::create_dir(server.root.join("incoming")).unwrap();
    let mut control = server.login("ftp");
    assert_eq!(
        control.upload("STOR incoming/report.txt", b"secret report"),
        226
    );
    assert_eq!(
        std::fs::read(server.root.join("incoming/report.txt")).unwrap(),
        b"secret report"
    );
    let _data = control.epsv();
    control.expect("RETR incoming/report.txt", 550);
    // Refused after the data (553), so a STOR does not tell beforehand what exists.
    assert_eq!(
        control.upload("STOR incoming/report.txt", b"overwritten"),
        553
    );
    assert_eq!(control.upload("APPE incoming/report.txt", b"more"), 553);
    assert_eq!(
        std::fs::read(server.root.join("incoming/report.txt")).unwrap(),
        b"secret report"
    );
    let _data = control.epsv();
    control.expect("LIST incoming", 550);
    control.expect("DELE incoming/report.txt", 550);
    control.expect("RNFR incoming/report.txt", 550);
    control.expect("MKD incoming/sub", 550);
    assert_eq!(control.upload("STOR pub/outside.txt", b"x"), 550);
    control.expect("MLST incoming/report.txt", 550);
}

#[test]
fn anonymous_drop_box_with_mkdir() {
    let server = TestServer::start_with(|c| {
        c.anonymous.upload_folder = Some("/incoming".into());
        c.anonymous.upload_mkdir = true;
    });
    std::fs::create_dir(server.root.join("incoming")).unwrap();
    let mut control = server.login("anonymous");
    control.expect("MKD incoming/batch", 257);
    assert_eq!(control.upload("STOR incoming/batch/one.bin", b"1"), 226);
    control.expect("RMD incoming/batch", 550);
}

#[test]
fn per_folder_permissions_of_a_named_user() {
    let extra = "permissions = [\"list\", \"download\"]\n\
                 [[user.folders]]\npath = \"/drop\"\npermissions = [\"list\", \"upload\", \"delete\"]\n";
    let (server, dir) = server_with_carol(extra, |_| {});
    let mut control = server.login("carol");
    assert_eq!(control.upload("STOR pub/new.txt", b"x"), 550);
    assert_eq!(control.upload("STOR drop/new.txt", b"x"), 226);
    assert_eq!(
        control.upload("STOR drop/new.txt", b"y"),
        553,
        "no overwrite permission: refused after the data"
    );
    assert_eq!(
        std::fs::read(dir.path().join("home/drop/new.txt")).unwrap(),
        b"x"
    );
    let mlst = control.expect("MLST drop/new.txt", 250);
    assert!(mlst.lines[1].contains(";perm=d;"), "{mlst:?}");
    let mlst = control.expect("MLST pub/a.txt", 250);
    assert!(mlst.lines[1].contains(";perm=r;"), "{mlst:?}");
    control.expect("DELE pub/a.txt", 550);
    control.expect("DELE drop/new.txt", 250);
    control.expect("SITE CHMOD 777 pub/a.txt", 550);
    assert!(dir.path().join("home/pub/a.txt").exists());
}

#[test]
fn disabled_users_and_foreign_networks_get_the_same_refusal() {
    for extra in ["disabled = true", "allowed_networks = [\"192.0.2.0/24\"]"] {
        let (server, _dir) = server_with_carol(extra, |_| {});
        let mut control = server.connect();
        control.expect("USER carol", 331);
        control.expect_text(&format!("PASS {PASSWORD}"), 530, "Login incorrect.");
    }
    let (server, _dir) = server_with_carol("allowed_networks = [\"127.0.0.0/8\"]", |_| {});
    server.login("carol");
}

#[test]
fn sessions_per_address_are_limited() {
    let server = TestServer::start_with(|c| c.limits.max_sessions_per_ip = 2);
    let first = server.connect();
    let _second = server.connect();
    let mut third = support::Control::connect(server.addr);
    assert_eq!(
        third.reply().lines,
        vec!["421 Too many connections from your address."]
    );
    assert!(third.is_closed());
    drop(first);
    let mut control = None;
    for _ in 0..100 {
        let mut attempt = support::Control::connect(server.addr);
        if attempt.reply().code == 220 {
            control = Some(attempt);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(control.is_some(), "a freed slot can be used again");
}

#[test]
fn sessions_per_user_are_limited() {
    let (server, _dir) = server_with_carol("max_sessions = 1", |_| {});
    let _first = server.login("carol");
    let mut second = server.connect();
    second.expect("USER carol", 331);
    second.expect(&format!("PASS {PASSWORD}"), 421);
    assert!(second.is_closed());
}

#[test]
fn too_many_failed_logins_close_the_session() {
    let server = TestServer::start_with(|c| c.limits.max_login_failures = 3);
    let mut control = server.connect();
    let started = Instant::now();
    for _ in 0..2 {
        control.expect("USER alice", 331);
        control.expect("PASS wrong", 530);
    }
    control.expect("USER alice", 331);
    control.expect("PASS wrong", 530);
    assert_eq!(control.reply().code, 421);
    assert!(control.is_closed());
    // 50 ms, then 100 ms, then 200 ms: the pause grows.
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn repeated_failures_ban_the_address_until_the_ban_expires() {
    let server = TestServer::start_with(|c| {
        c.limits.ban_after_failures = 2;
        c.limits.ban_seconds = 1;
        c.limits.max_login_failures = 5;
    });
    let mut control = server.connect();
    control.expect("USER alice", 331);
    control.expect("PASS wrong", 530);
    control.expect("USER alice", 331);
    control.expect("PASS wrong", 530);
    assert_eq!(
        control.reply().code,
        421,
        "the banning failure closes the session"
    );
    let mut refused = support::Control::connect(server.addr);
    assert_eq!(
        refused.reply().lines,
        vec!["421 Too many failed logins from your address; try again later."]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut attempt = support::Control::connect(server.addr);
        if attempt.reply().code == 220 {
            break;
        }
        assert!(Instant::now() < deadline, "the ban never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.login("alice");
}

#[test]
fn downloads_are_throttled_per_session() {
    let server = TestServer::start_with(|c| c.limits.download_rate = 2 * 1024 * 1024);
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let started = Instant::now();
    let data = control.epsv();
    control.expect("RETR big.bin", 150);
    assert_eq!(read_all(data).len(), 4 * 1024 * 1024);
    assert_eq!(control.reply().code, 226);
    // 4 MiB at 2 MiB/s with 2 MiB of burst: at least about one second.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_users_rate_is_shared_by_all_their_sessions() {
    let (server, dir) = server_with_carol("upload_rate = 1048576\nwritable = true", |_| {});
    let payload = vec![7u8; 1024 * 1024];
    let started = Instant::now();
    let uploads: Vec<_> = (0..2)
        .map(|i| {
            let mut control = server.login("carol");
            control.expect("TYPE I", 200);
            let payload = payload.clone();
            std::thread::spawn(move || control.upload(&format!("STOR drop/{i}.bin"), &payload))
        })
        .collect();
    for upload in uploads {
        assert_eq!(upload.join().unwrap(), 226);
    }
    // 2 MiB at 1 MiB/s shared, with 1 MiB of burst: at least about one second.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read(dir.path().join("home/drop/1.bin"))
            .unwrap()
            .len(),
        1024 * 1024
    );
}

#[test]
fn atomic_uploads_appear_only_when_complete_and_resume() {
    let server = TestServer::start_with(|c| c.atomic_uploads = true);
    let mut control = server.login("alice");
    control.expect("TYPE I", 200);
    let final_path = server.alice_root.join("file.bin");
    let hidden = || {
        std::fs::read_dir(&server.alice_root)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(".file.bin.") && name.ends_with(".ferry-upload")
            })
    };
    let mut data = control.epsv();
    control.expect("STOR file.bin", 150);
    data.write_all(&[1u8; 1000]).unwrap();
    data.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hidden().map_or(0, |h| std::fs::metadata(h).unwrap().len()) < 1000 {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the hidden file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !final_path.exists(),
        "a half-sent file never has its final name"
    );
    control.send_raw(b"ABOR\r\n");
    assert_eq!(control.reply().code, 426);
    assert_eq!(control.reply().code, 226);
    drop(data);
    assert!(!final_path.exists());
    control.expect("REST 1000", 350);
    assert_eq!(control.upload("STOR file.bin", &[2u8; 500]), 226);
    let content = std::fs::read(&final_path).unwrap();
    assert_eq!(content.len(), 1500);
    assert!(content[..1000].iter().all(|&b| b == 1) && content[1000..].iter().all(|&b| b == 2));
    assert!(hidden().is_none());
    let _data = control.epsv();
    control.expect("LIST -a", 150);
}

#[test]
fn fxp_is_off_by_default_and_can_be_allowed() {
    let Ok(third_party) = TcpListener::bind("127.0.0.2:0") else {
        support::skip("127.0.0.2 not available");
        return;
    };
    let port = third_party.local_addr().unwrap().port();
    let command = format!("EPRT |1|127.0.0.2|{port}|");
    let server = TestServer::start();
    server.login("ftp").expect(&command, 500);
    let server = TestServer::start_with(|c| c.data.allow_fxp = true);
    let mut control = server.login("ftp");
    control.expect(&command, 200);
    control.expect("NLST", 150);
    let (stream, _) = third_party.accept().unwrap();
    assert!(String::from_utf8(read_all(stream))
        .unwrap()
        .contains("readme.txt"));
    assert_eq!(control.reply().code, 226);
}

#[test]
fn a_full_disk_gets_452_and_leaves_no_partial_file() {
    let mount_point = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(mount_point.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        support::skip("cannot mount a small tmpfs here");
        return;
    }
    let root = mount_point.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.anonymous.root = Some(root.clone());
        c.anonymous.writable = true;
    });
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let code = control.upload("STOR too-big.bin", &vec![9u8; 1024 * 1024]);
    assert_eq!(code, 452);
    assert!(
        !root.join("too-big.bin").exists(),
        "the partial file is removed"
    );
    assert_eq!(control.upload("STOR small.bin", b"fits"), 226);
    drop(control);
    drop(server);
    let _ = std::process::Command::new("umount").arg(&root).status();
}

/// One command for each permission: (permission, command, reply code when it is allowed).
/// Each user's root holds `f.txt` and an empty folder `empty`.
const PERMISSION_COMMANDS: [(&str, &str, u16); 10] = [
    ("list", "LIST", 150),
    ("download", "RETR f.txt", 150),
    ("upload", "STOR new.txt", 150),
    ("overwrite", "STOR f.txt", 150),
    ("append", "APPE f.txt", 150),
    ("delete", "DELE f.txt", 250),
    ("rename", "RNFR f.txt", 350),
    ("mkdir", "MKD made", 257),
    ("rmdir", "RMD empty", 250),
    ("chmod", "SITE CHMOD 600 f.txt", 200),
];

#[test]
fn every_permission_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let mut users = String::new();
    for (index, (missing, _, _)) in PERMISSION_COMMANDS.iter().enumerate() {
        let root = dir.path().join(format!("user{index}"));
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("f.txt"), "file\n").unwrap();
        let granted: Vec<String> = PERMISSION_COMMANDS
            .iter()
            .filter(|(p, _, _)| p != missing)
            .map(|(p, _, _)| format!("\"{p}\""))
            .collect();
        users.push_str(&format!(
            "[[user]]\nname = \"user{index}\"\npassword = \"{hash}\"\nroot = \"{}\"\npermissions = [{}]\n\n",
            root.display(),
            granted.join(", ")
        ));
    }
    let users_file = dir.path().join("users.toml");
    std::fs::write(&users_file, users).unwrap();
    let server = TestServer::start_with(|c| c.users_file = Some(users_file));
    for (index, (missing, command, _)) in PERMISSION_COMMANDS.iter().enumerate() {
        let mut control = server.login(&format!("user{index}"));
        let refused_data = control.epsv();
        control.send(command);
        let reply = control.reply();
        if matches!(*missing, "overwrite" | "append") {
            // Taken, and refused after the data: nothing said beforehand about what exists.
            assert_eq!(reply.code, 150, "{command} without {missing}");
            drop(refused_data);
            assert_eq!(control.reply().code, 553, "{command} without {missing}");
            let root = dir.path().join(format!("user{index}"));
            assert_eq!(std::fs::read(root.join("f.txt")).unwrap(), b"file\n");
        } else {
            assert_eq!(reply.code, 550, "{command} without {missing}");
        }
        // The same user may do what the next permission allows.
        let (next, next_command, allowed_code) =
            PERMISSION_COMMANDS[(index + 1) % PERMISSION_COMMANDS.len()];
        let data = control.epsv();
        control.send(next_command);
        assert_eq!(
            control.reply().code,
            allowed_code,
            "{next_command} with {next}"
        );
        if allowed_code == 150 {
            drop(data);
            let reply = control.reply();
            assert!(
                reply.code == 226 || reply.code == 426,
                "{next_command}: {reply:?}"
            );
        }
    }
}

/// `ferryd --run-as-user nobody --landlock` still serves (root only: the test is skipped
/// otherwise), and says how it is confined.
#[test]
fn ferryd_drops_root_and_confines_itself() {
    if !rustix_is_root() {
        support::skip("not root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), support::readme_bytes()).unwrap();
    let mut permissions = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(dir.path(), permissions).unwrap();
    let listen = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // A named user (password checks run on threads of their own) and a transfer log (written
    // by a thread of its own): every thread must run as nobody, not only the main one.
    let etc = tempfile::tempdir().unwrap();
    let hash = ferry_server::users::hash_password(support::PASSWORD).unwrap();
    let users = etc.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let config = etc.path().join("ferryd.toml");
    let xferlog = etc.path().join("xferlog");
    std::fs::write(
        &config,
        format!(
            "users_file = \"{}\"\n[logs]\nxferlog = \"{}\"\n",
            users.display(),
            xferlog.display()
        ),
    )
    .unwrap();
    // What nobody must read at a reload, and the log it must reopen (as a package's folders
    // would be set up).
    let mode = |path: &Path, mode: u32| {
        let mut permissions = std::fs::metadata(path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, mode);
        std::fs::set_permissions(path, permissions).unwrap();
    };
    std::fs::write(&xferlog, "").unwrap();
    mode(etc.path(), 0o755);
    mode(&users, 0o644);
    mode(&config, 0o644);
    mode(&xferlog, 0o666);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args(["--config", config.to_str().unwrap()])
        .args([
            "--listen",
            &listen.to_string(),
            "--root",
            dir.path().to_str().unwrap(),
        ])
        .args([
            "--run-as-user",
            "nobody",
            "--landlock",
            "--log-level",
            "info",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("listening on"))),
        "ferryd did not start"
    );
    let mut control = support::Control::connect(listen);
    assert_eq!(control.reply().code, 220);
    control.expect("USER ftp", 331);
    control.expect("PASS x@y", 230);
    control.expect("TYPE I", 200);
    control.expect("SIZE readme.txt", 213);
    control.expect("QUIT", 221);
    let mut alice = support::Control::connect(listen);
    assert_eq!(alice.reply().code, 220);
    alice.expect("USER alice", 331);
    alice.expect(&format!("PASS {}", support::PASSWORD), 230);
    alice.expect("TYPE I", 200);
    let data = alice.epsv();
    alice.expect("RETR readme.txt", 150);
    assert_eq!(support::read_all(data), support::readme_bytes());
    assert_eq!(alice.reply().code, 226);
    // Every thread of the process (/proc/PID/task), not only the main one.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap();
    let mut threads = Vec::new();
    for task in tasks {
        let task = task.unwrap().path();
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        threads.push((name.trim().to_string(), status));
    }
    assert!(
        threads
            .iter()
            .any(|(name, _)| name.starts_with("ferryd-passwor")),
        "no password-check thread: {:?}",
        threads.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, status) in &threads {
        let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
        assert!(
            uids.split_whitespace().skip(1).all(|uid| uid == "65534"),
            "thread {name}: {uids}"
        );
    }
    // A reload, confined and as nobody: it reads the configuration and users file again and
    // reopens the transfer log, whose next line lands in it.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = 0;
    for _ in 0..100 {
        let data = alice.epsv();
        alice.expect("RETR readme.txt", 150);
        assert_eq!(support::read_all(data), support::readme_bytes());
        assert_eq!(alice.reply().code, 226);
        std::thread::sleep(Duration::from_millis(100));
        lines = std::fs::read_to_string(&xferlog).unwrap().lines().count();
        if lines >= 3 || Instant::now() > deadline {
            break;
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("configuration reloaded") && !log.contains("reload refused"),
        "{log}"
    );
    assert!(lines >= 3, "{lines} xferlog lines after the reload:\n{log}");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|uid| uid == "65534"),
        "{uid_line}"
    );
    assert!(
        log.contains("running as") && log.contains("landlock"),
        "{log}"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
