//! systemd: the unit file passes `systemd-analyze verify` and its system-call filter lets
//! through what ferryd calls; the real ferryd speaks the readiness protocol to a fake
//! `NOTIFY_SOCKET` (READY=1 once bound, STOPPING=1 on SIGTERM) and takes a socket-activated
//! listener; the reload notification carries MONOTONIC_USEC.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{skip, Control};

fn unit_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/systemd")
        .join(name)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The unit as installed, with ExecStart pointing at the binary under test (verify checks that
/// the program exists).
fn unit_for_verify(folder: &Path) -> PathBuf {
    let text = std::fs::read_to_string(unit_file("ferryd.service")).unwrap();
    let text = text.replace("/usr/bin/ferryd", env!("CARGO_BIN_EXE_ferryd"));
    let path = folder.join("ferryd.service");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `systemd-analyze verify` on a unit; any line on standard error fails, since unknown keys
/// and unknown system-call groups are only warnings to verify, yet mistakes in the unit.
fn verify(unit: &Path) {
    let output = Command::new("timeout")
        .args(["60", "systemd-analyze", "verify", "--man=no"])
        .arg(unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", unit.display());
    assert!(
        stderr.trim().is_empty(),
        "{} warns: {stderr}",
        unit.display()
    );
}

#[test]
fn units_pass_systemd_analyze_verify_without_a_warning() {
    if !have("systemd-analyze") {
        return skip("systemd-analyze is not installed (apt-get install systemd)");
    }
    let folder = tempfile::tempdir().unwrap();
    verify(&unit_for_verify(folder.path()));
    let socket = folder.path().join("ferryd.socket");
    std::fs::copy(unit_file("ferryd.socket"), &socket).unwrap();
    verify(&socket);
}

/// Expands `@group` names with `systemd-analyze syscall-filter` (nested groups included).
fn expand_filter(items: &[String]) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    let mut pending: Vec<String> = items.to_vec();
    let mut seen = BTreeSet::new();
    for _ in 0..1000 {
        let Some(item) = pending.pop() else { break };
        if !item.starts_with('@') {
            allowed.insert(item);
            continue;
        }
        if !seen.insert(item.clone()) {
            continue;
        }
        let output = Command::new("systemd-analyze")
            .args(["syscall-filter", &item])
            .output()
            .unwrap();
        assert!(output.status.success(), "unknown group {item}");
        for line in String::from_utf8_lossy(&output.stdout).lines().skip(1) {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                pending.push(line.to_string());
            }
        }
    }
    allowed
}

#[test]
fn system_call_filter_allows_the_hardening_calls() {
    if !have("systemd-analyze") {
        return skip("systemd-analyze is not installed (apt-get install systemd)");
    }
    let unit = std::fs::read_to_string(unit_file("ferryd.service")).unwrap();
    let mut allow = Vec::new();
    for line in unit.lines() {
        if let Some(list) = line.strip_prefix("SystemCallFilter=") {
            assert!(
                !list.starts_with('~'),
                "a deny list: this test reads allow lists only"
            );
            allow.extend(list.split_whitespace().map(str::to_string));
        }
    }
    assert!(allow.contains(&"@system-service".to_string()), "{allow:?}");
    let allowed = expand_filter(&allow);
    // What ferryd's hardening module and listeners call: Landlock (hardening.landlock),
    // dropping root (hardening.run_as_user), the open-file limit, sockets, sendfile.
    for call in [
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "setresuid",
        "setresgid",
        "setgroups",
        "prlimit64",
        "socket",
        "bind",
        "listen",
        "accept4",
        "connect",
        "epoll_wait",
        "sendfile",
        "openat",
        "renameat2",
        "clone3",
    ] {
        assert!(
            allowed.contains(call),
            "SystemCallFilter does not allow {call}"
        );
    }
    assert!(
        unit.contains("\nSystemCallErrorNumber=EPERM"),
        "a filtered call must fail, not kill ferryd"
    );
}

/// The notifications received on `socket`, one datagram each, until `want` has come (bounded
/// by time).
fn receive_until(socket: &UnixDatagram, want: &str) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(length) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
            let done = message.lines().any(|line| line == want);
            received.push(message);
            if done {
                return received;
            }
        }
    }
    panic!("no {want} within 20 s; received {received:?}");
}

/// Starts ferryd with `NOTIFY_SOCKET`; returns it and the address it listens on.
fn start_notifying(root: &Path, notify: &Path) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args(["--listen", "127.0.0.1:0", "--root", root.to_str().unwrap()])
        .env("NOTIFY_SOCKET", notify)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .find_map(|line| {
            line.ok()?
                .strip_prefix("ferryd listening on ")?
                .parse()
                .ok()
        })
        .expect("ferryd did not start");
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "ferryd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ferryd_notifies_ready_once_bound_and_stopping_on_sigterm() {
    let folder = tempfile::tempdir().unwrap();
    let notify = folder.path().join("notify");
    let socket = UnixDatagram::bind(&notify).unwrap();
    let (mut child, addr) = start_notifying(folder.path(), &notify);
    let ready = receive_until(&socket, "READY=1");
    assert_eq!(ready.len(), 1, "READY=1 is the first message: {ready:?}");
    assert!(
        ready[0].contains(&format!("STATUS=listening on {addr}")),
        "{ready:?}"
    );
    // Ready means sessions are served.
    let mut control = Control::connect(addr);
    assert_eq!(control.reply().code, 220);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let stopping = receive_until(&socket, "STOPPING=1");
    assert!(
        !stopping.iter().any(|m| m.contains("READY=1")),
        "{stopping:?}"
    );
    let status = wait_bounded(&mut child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn reloading_carries_the_monotonic_clock() {
    let folder = tempfile::tempdir().unwrap();
    let notify = folder.path().join("notify");
    let socket = UnixDatagram::bind(&notify).unwrap();
    let clock = || {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        i128::from(now.tv_sec) * 1_000_000 + i128::from(now.tv_nsec) / 1000
    };
    // No other test in this binary reads NOTIFY_SOCKET from this process's environment.
    std::env::set_var("NOTIFY_SOCKET", &notify);
    let before = clock();
    ferry_server::systemd::reloading();
    let after = clock();
    ferry_server::systemd::ready("reloaded");
    std::env::remove_var("NOTIFY_SOCKET");
    let messages = receive_until(&socket, "READY=1");
    assert_eq!(messages.len(), 2, "{messages:?}");
    let reloading: Vec<&str> = messages[0].lines().collect();
    assert_eq!(reloading[0], "RELOADING=1", "{messages:?}");
    let usec: i128 = reloading[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {messages:?}"))
        .parse()
        .unwrap();
    assert!(
        before <= usec && usec <= after,
        "{before} <= {usec} <= {after}"
    );
    assert!(messages[1].contains("STATUS=reloaded"), "{messages:?}");
}

/// A helper that binds 127.0.0.1:0, prints the port, and execs ferryd with the listener as
/// descriptor 3 and LISTEN_FDS=1, as systemd does for a socket unit.
const ACTIVATE: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execve(sys.argv[1], sys.argv[1:], env)
"#;

#[test]
fn ferryd_serves_a_socket_activated_listener() {
    if !have("python3") {
        return skip("python3 is not installed");
    }
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("hello.txt"), "hi\n").unwrap();
    // The configured address is unbindable: only the passed socket can work.
    let mut child = Command::new("python3")
        .args(["-c", ACTIVATE, env!("CARGO_BIN_EXE_ferryd")])
        .args(["--listen", "192.0.2.1:2121", "--root"])
        .arg(folder.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let announced = lines.next().unwrap().unwrap();
    assert_eq!(announced, format!("ferryd listening on 127.0.0.1:{port}"));
    std::thread::spawn(move || lines.for_each(drop));
    let mut control = Control::connect(([127, 0, 0, 1], port).into());
    assert_eq!(control.reply().code, 220);
    control.expect("USER anonymous", 331);
    control.expect("PASS ferry@", 230);
    control.expect("SIZE hello.txt", 213);
    let _ = child.kill();
    let _ = child.wait();
}
