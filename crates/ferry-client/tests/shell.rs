//! Interactive-session features through piped stdin: .netrc auto-login, trying every address,
//! `!`, hash marks, settings, and the one-shot/usage paths.

mod support;

use std::fs;

use support::servers::{pyftpd, pyftpd_on};
use support::{dead_port, ferry};

#[test]
fn netrc_logs_in_without_prompts() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("n.txt"), b"netrc").unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let netrc = local.path().join("my-netrc");
    fs::write(
        &netrc,
        "machine 127.0.0.1\n  login tester\n  password secret\n",
    )
    .unwrap();
    let port = server.port.to_string();
    let netrc_arg = netrc.to_str().unwrap();
    let outcome = ferry(
        &["-N", netrc_arg, "-d", "127.0.0.1", &port],
        "get n.txt\nbye\n",
        local.path(),
    );
    outcome
        .expect_code(0)
        .expect_stdout("---> USER tester")
        .expect_stdout("---> PASS XXXX");
    assert!(!outcome.stdout.contains("Name ("), "{outcome}");
    assert_eq!(fs::read(local.path().join("n.txt")).unwrap(), b"netrc");
}

#[test]
fn every_address_of_a_name_is_tried_in_turn() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    // 127.0.0.2 answers nothing on this port (pyftpdlib listens on 127.0.0.1 only).
    let port = server.port.to_string();
    let outcome = ferry(
        &[
            "-n",
            "--resolve",
            "ftp.any-domain.com:127.0.0.2",
            "--resolve",
            "ftp.any-domain.com:127.0.0.1",
            "ftp.any-domain.com",
            &port,
        ],
        "bye\n",
        local.path(),
    );
    outcome
        .expect_code(0)
        .expect_stdout(&format!("Trying 127.0.0.2:{port} ..."))
        .expect_stdout(&format!("Trying 127.0.0.1:{port} ..."))
        .expect_stdout("Connected to ftp.any-domain.com.");
}

#[test]
fn local_shell_hash_marks_and_settings() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("big.bin"), support::binary_bytes(5000)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let port = server.port.to_string();
    let script = "user tester secret\n!echo from-shell > shell.txt\nhash\nget big.bin\n\
                  passive off\nepsv off\ndebug\nls\nstatus\nlcd\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &port], script, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("Hash mark printing on (1024 bytes/hash mark).")
        .expect_stdout("####\n")
        .expect_stdout("Passive mode: off.")
        .expect_stdout("EPSV/EPRT: off.")
        .expect_stdout("Debugging on (debug=1).")
        .expect_stdout("---> PORT 127,0,0,1,")
        .expect_stdout("Passive mode: off; EPSV/EPRT: off")
        .expect_stdout("Local directory now ");
    assert_eq!(
        fs::read_to_string(local.path().join("shell.txt")).unwrap(),
        "from-shell\n"
    );
}

#[test]
fn ipv6_loopback_uses_epsv_and_eprt() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        support::servers::skip("no IPv6 loopback here");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("six.txt"), b"over IPv6").unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd_on(root.path(), "::1", None) else {
        return;
    };
    let port = server.port.to_string();
    for mode in ["-p", "-A"] {
        let script = "user tester secret\nget six.txt\nbye\n";
        let outcome = ferry(&["-n", "-d", mode, "::1", &port], script, local.path());
        outcome
            .expect_code(0)
            .expect_stdout(&format!("Trying [::1]:{port} ..."));
        let data_command = if mode == "-p" {
            "---> EPSV"
        } else {
            "---> EPRT |2|::1|"
        };
        outcome.expect_stdout(data_command);
        assert_eq!(
            fs::read(local.path().join("six.txt")).unwrap(),
            b"over IPv6"
        );
    }
    let outcome = ferry(&["-6", "-n", "127.0.0.1", &port], "bye\n", local.path());
    outcome.expect_code(3);
    assert!(
        outcome
            .stderr
            .contains("no address of the requested family"),
        "{outcome}"
    );
}

#[test]
fn not_connected_and_usage_messages() {
    let local = tempfile::tempdir().unwrap();
    let script = "dir\nget\nopen\nopen 127.0.0.1 notaport\nhelp frob\nbye\n";
    ferry(&[], script, local.path())
        .expect_code(1)
        .expect_stdout("Not connected.")
        .expect_stdout("usage: get remote-file [local-file]")
        .expect_stdout("usage: open host-name [port]")
        .expect_stdout("bad port number")
        .expect_stdout("?Invalid help command frob");
    let port = dead_port().to_string();
    ferry(
        &["-n"],
        &format!("open 127.0.0.1 {port}\nbye\n"),
        local.path(),
    )
    .expect_code(3);
}

#[test]
fn help_documents_exit_codes() {
    let local = tempfile::tempdir().unwrap();
    let outcome = ferry(&["--help"], "", local.path());
    outcome
        .expect_code(0)
        .expect_stdout("Exit codes:")
        .expect_stdout("4  login refused")
        .expect_stdout("ferry get ftp://");
    ferry(&["--bogus-flag"], "", local.path()).expect_code(2);
    ferry(&["get", "ftp://h/x", "extra"], "", local.path()).expect_code(2);
}
