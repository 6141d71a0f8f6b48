//! Regression tests for the findings of the outside security review of `ferryd` at 6b1c52d
//! (issue 11). Each test is named after its finding and fails on that commit.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{read_all, Control, Ferryd, TestServer, PASSWORD};

/// A server whose only named user is `carol` (root `home/`, with `projects/secret/plan.txt`,
/// `public/` and `incoming/`), her entry ending with `extra`.
fn server_with_carol(
    extra: &str,
    adjust: impl FnOnce(&mut ferry_server::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("projects/secret")).unwrap();
    std::fs::create_dir_all(home.join("public")).unwrap();
    std::fs::create_dir_all(home.join("incoming")).unwrap();
    std::fs::write(home.join("projects/secret/plan.txt"), "the plan\n").unwrap();
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let users = dir.path().join("users.toml");
    let text = format!(
        "[[user]]\nname = \"carol\"\npassword = \"{hash}\"\nroot = \"{}\"\n{extra}\n",
        home.display()
    );
    std::fs::write(&users, text).unwrap();
    let server = TestServer::start_with(|config| {
        config.users_file = Some(users);
        adjust(config);
    });
    (server, dir)
}

/// Carol may do everything, but only list `/projects/secret`.
const SECRET_RULE: &str = "writable = true\n\
    [[user.folders]]\npath = \"/projects/secret\"\npermissions = [\"list\"]\n";

/// RETR over a fresh passive connection: the reply code, and the data when it is sent.
fn retr(control: &mut Control, path: &str) -> (u16, Vec<u8>) {
    let data = control.epsv();
    control.send(&format!("RETR {path}"));
    let reply = control.reply();
    if reply.code != 150 {
        return (reply.code, Vec::new());
    }
    let bytes = read_all(data);
    (control.reply().code, bytes)
}

/// Waits (bounded) until `check` holds.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The private upload files in a folder.
fn private_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with('.') && name.ends_with(".ferry-upload")
        })
        .collect()
}

#[test]
fn finding_01_renaming_a_folder_above_a_rule_cannot_shed_it() {
    let (server, dir) = server_with_carol(SECRET_RULE, |_| {});
    let mut control = server.login("carol");
    assert_eq!(retr(&mut control, "/projects/secret/plan.txt").0, 550);
    control.expect("RNFR /projects", 350);
    control.expect("RNTO /moved", 550);
    assert_eq!(retr(&mut control, "/moved/secret/plan.txt").0, 550);
    control.expect("RNFR /projects/secret", 550);
    // Moving something else into the ruled folder's place is refused too.
    control.expect("MKD /other", 257);
    control.expect("RNFR /other", 350);
    control.expect("RNTO /projects/secret", 550);
    // Moves that touch no rule still work.
    control.expect("RNFR /other", 350);
    control.expect("RNTO /public/other", 250);
    assert!(dir.path().join("home/projects/secret/plan.txt").exists());
}

#[test]
fn finding_02_atomic_drop_box_uploads_belong_to_their_session() {
    let server = TestServer::start_with(|c| {
        c.anonymous.upload_folder = Some("/incoming".into());
        c.atomic_uploads = true;
    });
    let incoming = server.root.join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    let mut victim = server.login("ftp");
    victim.expect("TYPE I", 200);
    let mut data = victim.epsv();
    victim.expect("STOR incoming/report2.pdf", 150);
    data.write_all(&[b'v'; 50_000]).unwrap();
    wait_for("the victim's bytes", || {
        private_files(&incoming)
            .first()
            .is_some_and(|p| std::fs::metadata(p).unwrap().len() == 50_000)
    });
    let mut attacker = server.login("ftp");
    attacker.expect("TYPE I", 200);
    for offset in ["50000", "1"] {
        attacker.expect(&format!("REST {offset}"), 350);
        assert_eq!(
            attacker.upload("STOR incoming/report2.pdf", b"EVIL"),
            554,
            "REST {offset} resumes nobody else's upload"
        );
    }
    // The same answer for a name nobody is uploading: no size oracle.
    attacker.expect("REST 50000", 350);
    assert_eq!(attacker.upload("STOR incoming/never.pdf", b"x"), 554);
    data.write_all(&[b'w'; 10]).unwrap();
    drop(data);
    assert_eq!(victim.reply().code, 226);
    let published = std::fs::read(incoming.join("report2.pdf")).unwrap();
    assert_eq!(published.len(), 50_010);
    assert!(published[..50_000].iter().all(|&b| b == b'v'));
    assert!(private_files(&incoming).is_empty());
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn finding_03_unread_listings_and_stat_hold_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..100_000 {
        std::fs::File::create(big.join(format!("file-with-a-longish-name-{i:06}.dat"))).unwrap();
    }
    // A folder that has not changed for a few seconds, as big folders mostly are: its names are
    // read once and shared by the listings (one that keeps changing costs each listing its own
    // copy of the names, about 3.5 MB here).
    std::thread::sleep(Duration::from_millis(2500));
    let ferryd = Ferryd::start(dir.path(), &["--max-sessions-per-ip", "0"]);
    let before = rss_kib(ferryd.child.id());
    let mut held = Vec::new();
    let mut unread: Vec<TcpStream> = Vec::new();
    for _ in 0..10 {
        let mut control = Control::connect(ferryd.addr);
        assert_eq!(control.reply().code, 220);
        control.expect("USER ftp", 331);
        control.expect("PASS x@y", 230);
        control.send("STAT -la big");
        held.push(control);
        let mut control = Control::connect(ferryd.addr);
        assert_eq!(control.reply().code, 220);
        control.expect("USER ftp", 331);
        control.expect("PASS x@y", 230);
        let data = control.epsv();
        control.expect("LIST big", 150);
        held.push(control);
        unread.push(data);
    }
    // Long enough for every session to have filled its sockets and to be waiting on them.
    std::thread::sleep(Duration::from_secs(3));
    let grown_mib = rss_kib(ferryd.child.id()).saturating_sub(before) / 1024;
    eprintln!("20 unread listings of 100,000 entries: ferryd grew by {grown_mib} MiB");
    // Rendered whole, each of these 20 listings (about 8 MB of text) held some 40 MB.
    assert!(
        grown_mib < 60,
        "20 unread listings of 100,000 entries grew ferryd by {grown_mib} MiB"
    );
    // A STAT that is read comes whole.
    let mut control = Control::connect(ferryd.addr);
    assert_eq!(control.reply().code, 220);
    control.expect("USER ftp", 331);
    control.expect("PASS x@y", 230);
    let stat = control.expect("STAT big/file-with-a-longish-name-09999*", 213);
    assert_eq!(stat.lines.len(), 12, "{stat:?}");
    assert!(stat.lines[1].ends_with("file-with-a-longish-name-099990.dat"));
    // And a LIST that is read comes whole.
    let data = control.epsv();
    control.expect("LIST big", 150);
    let listing = read_all(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        listing
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        100_000
    );
}

#[test]
fn finding_04_site_chmod_refuses_setuid_setgid_and_the_root() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let mut control = server.login("alice");
    assert_eq!(control.upload("STOR myid", b"#!/bin/sh\nid\n"), 226);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    for bits in ["4755", "2755", "6755", "1755"] {
        control.expect(&format!("SITE CHMOD {bits} myid"), 550);
    }
    assert_eq!(mode(&server.alice_root.join("myid")) & 0o7000, 0);
    control.expect("SITE CHMOD 755 myid", 200);
    assert_eq!(mode(&server.alice_root.join("myid")), 0o755);
    let root_mode = mode(&server.alice_root);
    control.expect("SITE CHMOD 000 /", 550);
    control.expect("SITE CHMOD 000 .", 550);
    std::os::unix::fs::symlink(".", server.alice_root.join("self")).unwrap();
    control.expect("SITE CHMOD 000 self", 550);
    assert_eq!(mode(&server.alice_root), root_mode);
    control.expect("MKD shared", 257);
    control.expect("SITE CHMOD 1777 shared", 200);
    assert_eq!(mode(&server.alice_root.join("shared")), 0o1777);
}

#[test]
fn finding_05_stor_to_a_fifo_is_refused_at_once() {
    let server = TestServer::start();
    let fifo = server.alice_root.join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    let mut control = server.login("alice");
    let started = Instant::now();
    for command in ["STOR pipe", "APPE pipe"] {
        let _data = control.epsv();
        control.expect(command, 550);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    control.expect("NOOP", 200);
    control.expect("QUIT", 221);
}

#[test]
fn finding_07_symlinks_do_not_carry_a_user_past_folder_rules() {
    let (server, dir) = server_with_carol(SECRET_RULE, |_| {});
    let home = dir.path().join("home");
    std::os::unix::fs::symlink("../projects/secret", home.join("public/shortcut")).unwrap();
    std::os::unix::fs::symlink("../projects", home.join("public/up")).unwrap();
    let mut control = server.login("carol");
    assert_eq!(retr(&mut control, "public/shortcut/plan.txt").0, 550);
    assert_eq!(retr(&mut control, "public/up/secret/plan.txt").0, 550);
    assert_eq!(control.upload("STOR public/shortcut/new.txt", b"x"), 550);
    control.expect("DELE public/shortcut/plan.txt", 550);
    control.expect("SITE CHMOD 666 public/shortcut/plan.txt", 550);
    assert!(home.join("projects/secret/plan.txt").exists());
    assert!(!home.join("projects/secret/new.txt").exists());
    // Listing is what the rule gives, through the link too.
    let data = control.epsv();
    control.expect("NLST public/shortcut", 150);
    assert_eq!(read_all(data), b"plan.txt\r\n");
    control.reply();
    // The drop box likewise: a link into it gives no more than the drop box does.
    let server = TestServer::start_with(|c| c.anonymous.upload_folder = Some("/incoming".into()));
    std::fs::create_dir(server.root.join("incoming")).unwrap();
    std::fs::write(server.root.join("incoming/report.txt"), "dropped\n").unwrap();
    std::os::unix::fs::symlink("../incoming", server.root.join("pub/in")).unwrap();
    let mut control = server.login("ftp");
    assert_eq!(retr(&mut control, "pub/in/report.txt").0, 550);
    let _data = control.epsv();
    control.expect("LIST pub/in", 550);
}

#[test]
fn finding_08_two_uploads_of_one_new_name_never_mix() {
    let server = TestServer::start_with(|c| c.anonymous.upload_folder = Some("/incoming".into()));
    let incoming = server.root.join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    let mut first = server.login("ftp");
    let mut first_data = first.epsv();
    first.expect("STOR incoming/same.bin", 150);
    first_data.write_all(&[b'1'; 20_000]).unwrap();
    let mut second = server.login("ftp");
    assert_eq!(
        second.upload("STOR incoming/same.bin", &[b'2'; 30_000]),
        226
    );
    first_data.write_all(&[b'1'; 20_000]).unwrap();
    drop(first_data);
    assert_eq!(first.reply().code, 553, "the later upload may not replace");
    assert_eq!(
        std::fs::read(incoming.join("same.bin")).unwrap(),
        vec![b'2'; 30_000]
    );
    assert!(private_files(&incoming).is_empty());
    // APPE of a new name without the Append permission goes the same way.
    assert_eq!(second.upload("APPE incoming/same.bin", b"more"), 553);
    assert_eq!(second.upload("APPE incoming/new.bin", b"new"), 226);
    assert_eq!(std::fs::read(incoming.join("new.bin")).unwrap(), b"new");
}

#[test]
fn finding_09_a_second_pass_keeps_the_login() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    let reply = control.expect("PASS x", 230);
    assert_eq!(reply.text(), "Already logged in.");
    control.expect("PWD", 257);
    let mut anonymous = server.login("ftp");
    anonymous.expect("PASS again@example.com", 230);
    anonymous.expect("SIZE readme.txt", 213);
}

#[test]
fn finding_10_sighup_reloads_without_ending_the_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), support::readme_bytes()).unwrap();
    let ferryd = Ferryd::start(dir.path(), &[]);
    let mut control = Control::connect(ferryd.addr);
    assert_eq!(control.reply().code, 220);
    control.expect("USER ftp", 331);
    control.expect("PASS x@y", 230);
    ferryd.signal(rustix::process::Signal::HUP);
    std::thread::sleep(Duration::from_millis(300));
    control.expect("NOOP", 200);
    control.expect("QUIT", 221);
    let mut again = Control::connect(ferryd.addr);
    assert_eq!(again.reply().code, 220);
    ferryd.signal(rustix::process::Signal::TERM);
    let (status, log) = ferryd.wait();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[test]
fn finding_11_a_ban_closes_the_addresss_sessions_still_logging_in() {
    let server = TestServer::start_with(|c| {
        c.limits.ban_after_failures = 4;
        c.limits.max_login_failures = 2;
        c.limits.max_sessions_per_ip = 10;
    });
    let mut logged_in = server.login("alice");
    let mut waiting: Vec<Control> = (0..5).map(|_| server.connect()).collect();
    for control in &mut waiting {
        control.expect("USER alice", 331);
    }
    // Two sessions guess until the address is banned (4 failures, 2 in each session).
    for control in &mut waiting[..2] {
        for attempt in 0..2 {
            if attempt > 0 {
                control.expect("USER alice", 331);
            }
            control.expect("PASS wrong", 530);
        }
        // Closed: too many failures in the session, then the ban.
        assert_eq!(control.reply().code, 421);
    }
    // The three others, which had not sent a password yet, are closed by the ban.
    for control in &mut waiting[2..] {
        let reply = control.reply();
        assert_eq!(reply.code, 421, "{reply:?}");
        assert!(control.is_closed());
    }
    logged_in.expect("NOOP", 200);
    // Still banned: a new connection is refused at once.
    let mut late = Control::connect(server.addr);
    assert_eq!(late.reply().code, 421);
}

#[test]
fn finding_13_new_names_with_control_characters_are_refused() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    control.expect("MKD esc\u{1b}[31mred", 553);
    control.expect("MKD bell\u{7}", 553);
    control.send_raw(b"MKD cr\rname\r\n");
    assert_eq!(control.reply().code, 553);
    let _data = control.epsv();
    control.expect("STOR evil\u{1b}]0;title\u{7}.txt", 553);
    control.expect("RNFR notes.txt", 350);
    control.expect("RNTO notes\u{1b}.txt", 553);
    control.expect("MKD plain ü", 257);
    let names: Vec<String> = std::fs::read_dir(&server.alice_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.chars().any(|c| c.is_control())),
        "{names:?}"
    );
}

#[test]
fn private_upload_files_are_hidden_refused_and_swept_when_old() {
    let server = TestServer::start_with(|c| c.timeouts.abandoned_upload = 3600);
    let old = server.alice_root.join(".old.bin.u0123.ferry-upload");
    let legacy = server.alice_root.join(".notes.txt.ferry-upload");
    std::fs::write(&legacy, "left by an older release").unwrap();
    std::fs::write(&old, "abandoned").unwrap();
    let mut control = server.login("alice");
    let data = control.epsv();
    control.expect("LIST -a", 150);
    let listing = String::from_utf8(read_all(data)).unwrap();
    control.reply();
    assert!(!listing.contains("ferry-upload"), "{listing}");
    assert_eq!(retr(&mut control, ".notes.txt.ferry-upload").0, 550);
    control.expect("SIZE .old.bin.u0123.ferry-upload", 550);
    control.expect("DELE .notes.txt.ferry-upload", 550);
    control.expect("RNFR .notes.txt.ferry-upload", 550);
    assert_eq!(control.upload("STOR .x.ferry-upload", b"x"), 550);
    assert!(legacy.exists());
    drop(control);
    drop(server);
    // A server starting finds old ones and removes them; fresh ones stay.
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join(".a.bin.u1.ferry-upload");
    let fresh = dir.path().join(".b.bin.u1.ferry-upload");
    std::fs::write(&old, "x").unwrap();
    std::fs::write(&fresh, "x").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let root = dir.path().to_path_buf();
    let _server = TestServer::start_with(move |c| {
        c.root = root;
        c.timeouts.abandoned_upload = 3600;
    });
    wait_for("the sweep", || !old.exists());
    assert!(fresh.exists());
}

#[test]
fn listings_do_not_show_symlink_targets_outside_the_root() {
    let server = TestServer::start();
    std::os::unix::fs::symlink("/etc", server.root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../..", server.root.join("pub/up")).unwrap();
    std::os::unix::fs::symlink("readme.txt", server.root.join("pub/link")).unwrap();
    let mut control = server.login("ftp");
    for folder in ["/", "pub"] {
        let data = control.epsv();
        control.expect(&format!("LIST {folder}"), 150);
        let listing = String::from_utf8(read_all(data)).unwrap();
        control.reply();
        assert!(
            !listing.contains("/etc") && !listing.contains("../.."),
            "{listing}"
        );
        if folder == "pub" {
            assert!(listing.contains("link -> readme.txt"), "{listing}");
        }
    }
}

#[test]
fn sessions_cut_at_the_end_of_the_grace_get_replies_and_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 4 << 20]).unwrap();
    let ferryd = Ferryd::start(
        dir.path(),
        &["--shutdown-grace", "1", "--download-rate", "65536"],
    );
    let mut busy = Control::connect(ferryd.addr);
    assert_eq!(busy.reply().code, 220);
    busy.expect("USER ftp", 331);
    busy.expect("PASS x@y", 230);
    let data = busy.epsv();
    busy.expect("RETR big.bin", 150);
    let mut idle = Control::connect(ferryd.addr);
    assert_eq!(idle.reply().code, 220);
    ferryd.signal(rustix::process::Signal::TERM);
    assert_eq!(idle.reply().code, 421, "an idle session is closed at once");
    assert_eq!(
        busy.reply().code,
        426,
        "the transfer is cut after the grace"
    );
    assert_eq!(busy.reply().code, 421);
    drop(data);
    let (status, log) = ferryd.wait();
    assert!(status.success(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("transfer failed") && l.contains("RETR")),
        "{log}"
    );
    assert_eq!(log.matches("disconnect").count(), 2, "{log}");
}

#[test]
fn the_listen_backlog_is_configurable_and_large_by_default() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [(&[][..], "1024"), (&["--listen-backlog", "300"][..], "300")] {
        let ferryd = Ferryd::start(dir.path(), args);
        let filter = format!("sport = :{}", ferryd.addr.port());
        let output = Command::new("ss")
            .args(["-Hltn", &filter])
            .output()
            .expect("ss (iproute2) runs");
        let text = String::from_utf8_lossy(&output.stdout);
        // Listening sockets show their backlog as Send-Q, the third column.
        let backlog = text.split_whitespace().nth(2).unwrap_or("");
        assert_eq!(backlog, expected, "{text}");
    }
}

#[test]
fn drop_box_replies_do_not_tell_what_exists() {
    let server = TestServer::start_with(|c| {
        c.anonymous.upload_folder = Some("/incoming".into());
        c.anonymous.upload_mkdir = true;
    });
    std::fs::create_dir(server.root.join("incoming")).unwrap();
    std::fs::write(server.root.join("incoming/there.txt"), "x").unwrap();
    std::fs::create_dir(server.root.join("incoming/folder")).unwrap();
    let mut control = server.login("ftp");
    let there = control.expect("CWD incoming/there.txt", 550);
    let missing = control.expect("CWD incoming/missing", 550);
    assert_eq!(there.lines, missing.lines);
    let exists = control.expect("MKD incoming/folder", 550);
    let nowhere = control.expect("MKD incoming/no/such", 550);
    assert_eq!(exists.lines, nowhere.lines);
    // An existing name is refused only after the data, like a race lost.
    assert_eq!(control.upload("STOR incoming/there.txt", b"y"), 553);
    assert_eq!(
        std::fs::read(server.root.join("incoming/there.txt")).unwrap(),
        b"x"
    );
    // Where the user may list, the replies stay precise.
    let file = control.expect("CWD readme.txt", 550);
    assert_eq!(file.text(), "Not a directory.");
}
