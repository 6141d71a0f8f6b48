//! The shell's mirror, pget, reput and `verify` setting through piped stdin, against
//! pyftpdlib with HASH: more sessions open as the logged-in user in the current directory.

mod support;

use std::fs;

use support::binary_bytes;
use support::ferry;
use support::servers::pyftpd_options;

#[test]
fn shell_mirror_pget_reput_and_verify() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("site/sub")).unwrap();
    fs::write(root.path().join("site/a.txt"), "alpha\n").unwrap();
    fs::write(root.path().join("site/sub/big.bin"), binary_bytes(3 << 20)).unwrap();
    fs::write(root.path().join("site/x.tmp"), "tmp").unwrap();
    fs::write(
        root.path().join("up.bin"),
        &binary_bytes(400_000)[..150_000],
    )
    .unwrap();
    let Some(server) = pyftpd_options(root.path(), &[("FERRY_TEST_HASH", "hash")]) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("up.bin"), binary_bytes(400_000)).unwrap();
    let script = "user tester secret\nverify\nmirror --exclude *.tmp site copy\n\
                  cd site/sub\npget -n 3 big.bin got.bin\ncd /\nreput up.bin\n\
                  mirror -R --parallel 2 copy back\nget --segments 2 site/sub/big.bin seg.bin\n\
                  ls --json site\nbye\n";
    let port = server.port.to_string();
    let outcome = ferry(&["-n", "-d", "127.0.0.1", &port], script, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("Verify transfers against the server's checksum: on.")
        .expect_stdout("mirror: 2 files transferred")
        .expect_stdout("---> HASH ")
        .expect_stdout("---> REST 150000");
    let copy = local.path().join("copy");
    assert_eq!(fs::read(copy.join("a.txt")).unwrap(), b"alpha\n");
    assert!(!copy.join("x.tmp").exists());
    assert!(fs::read(local.path().join("got.bin")).unwrap() == binary_bytes(3 << 20));
    // The pget ranges ran in site/sub, where the session was.
    assert_eq!(
        outcome.stdout.matches("---> RETR big.bin").count(),
        3,
        "{outcome}"
    );
    assert_eq!(
        fs::read(root.path().join("up.bin")).unwrap(),
        binary_bytes(400_000)
    );
    assert!(fs::read(root.path().join("back/sub/big.bin")).unwrap() == binary_bytes(3 << 20));
    assert!(fs::read(local.path().join("seg.bin")).unwrap() == binary_bytes(3 << 20));
    let entries = support::json_lines(&outcome.stdout);
    let listed = entries
        .iter()
        .find(|e| e["name"] == "a.txt")
        .expect("ls --json lists a.txt");
    support::expect_fields(listed, &support::documented_fields().entry);
    assert_eq!(listed["size"], 6);
}

#[test]
fn shell_verify_mismatch_sets_exit_code_11() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("f.bin"), binary_bytes(5000)).unwrap();
    let options = [("FERRY_TEST_HASH", "x"), ("FERRY_TEST_CORRUPT", "1")];
    let Some(server) = pyftpd_options(root.path(), &options) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let port = server.port.to_string();
    let script = "user tester secret\nverify on\nget f.bin\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &port], script, local.path());
    outcome.expect_code(11);
    assert!(outcome.stderr.contains("MD5 mismatch"), "{outcome}");
    assert!(local.path().join("f.bin.part").exists());
    assert!(!local.path().join("f.bin").exists());
}

#[test]
fn shell_mirror_usage_errors() {
    let local = tempfile::tempdir().unwrap();
    let outcome = ferry(
        &["-n"],
        "mirror --exclude= a b\nmirror\nbye\n",
        local.path(),
    );
    assert!(
        outcome.stdout.contains("empty") || outcome.stderr.contains("empty"),
        "{outcome}"
    );
    assert_ne!(outcome.code, Some(0));
}

/// A mirror after `ascii` copies files as they are (TYPE I for its transfers), and the shell
/// is in ASCII mode again after it.
#[test]
fn shell_mirror_after_ascii_copies_bytes_as_they_are() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("site")).unwrap();
    fs::write(root.path().join("site/crlf.bin"), b"a\r\nb\r\n\x00\r\n").unwrap();
    let Some(server) = pyftpd_options(root.path(), &[]) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let script = "user tester secret\nascii\nmirror site copy\nget site/crlf.bin text.txt\nbye\n";
    let port = server.port.to_string();
    let outcome = ferry(&["-n", "-d", "127.0.0.1", &port], script, local.path());
    outcome.expect_code(0);
    assert_eq!(
        fs::read(local.path().join("copy/crlf.bin")).unwrap(),
        b"a\r\nb\r\n\x00\r\n",
        "{outcome}"
    );
    // The get after the mirror is in ASCII mode again: line ends become LF.
    assert_eq!(
        fs::read(local.path().join("text.txt")).unwrap(),
        b"a\nb\n\x00\n",
        "{outcome}"
    );
}
