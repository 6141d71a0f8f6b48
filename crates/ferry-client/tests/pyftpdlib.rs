//! The `ferry` binary against pyftpdlib: the seed session in passive and active mode, round
//! trips, resume, ASCII mode, mget/mput, PASV address substitution, and error exit codes.

mod support;

use std::fs;
use std::path::Path;

use support::servers::{pyftpd, Server};
use support::{binary_bytes, ferry, readme_bytes};

/// A pyftpdlib root with `pub/readme.txt`, and a separate local working directory.
fn setup() -> Option<(tempfile::TempDir, tempfile::TempDir, Server)> {
    let root = tempfile::tempdir().expect("root");
    fs::create_dir(root.path().join("pub")).expect("pub");
    fs::write(root.path().join("pub/readme.txt"), readme_bytes()).expect("readme");
    let local = tempfile::tempdir().expect("local");
    let server = pyftpd(root.path(), None)?;
    Some((root, local, server))
}

const SEED: &str = "anonymous\nabc@any-domain.com\ndir\ncd pub\nget readme.txt\nbye\n";

fn seed_session(extra_flags: &[&str]) -> Option<(support::Outcome, tempfile::TempDir)> {
    let (_root, local, server) = setup()?;
    let port = server.port.to_string();
    let mut args = vec!["-d"];
    args.extend_from_slice(extra_flags);
    args.extend(["127.0.0.1", port.as_str()]);
    let outcome = ferry(&args, SEED, local.path());
    Some((outcome, local))
}

fn check_seed_transcript(outcome: &support::Outcome, local: &Path) {
    outcome
        .expect_code(0)
        .expect_stdout("Connected to 127.0.0.1.")
        .expect_stdout("220 ANY-DOMAIN.COM FTP Service")
        .expect_stdout("Name (127.0.0.1:tester): ")
        .expect_stdout("---> USER anonymous")
        .expect_stdout("331 ")
        .expect_stdout("Password: ")
        .expect_stdout("---> PASS XXXX")
        .expect_stdout("230 ")
        .expect_stdout("---> LIST")
        .expect_stdout("pub")
        .expect_stdout("226 ")
        .expect_stdout("---> CWD pub")
        .expect_stdout("250 ")
        .expect_stdout("local: readme.txt remote: readme.txt")
        .expect_stdout("---> RETR readme.txt")
        .expect_stdout("1715 bytes received in ")
        // pyftpdlib says 125 when the passive connection is already in, 150 otherwise.
        .expect_any(&["125 Data connection already open.", "150 File status okay."])
        .expect_stdout("---> QUIT")
        .expect_stdout("221 ");
    assert!(
        !outcome.stdout.contains("abc@any-domain.com"),
        "password shown:\n{outcome}"
    );
    assert_eq!(fs::read(local.join("readme.txt")).unwrap(), readme_bytes());
    assert!(!local.join("readme.txt.part").exists());
}

#[test]
fn seed_session_passive() {
    let Some((outcome, local)) = seed_session(&[]) else {
        return;
    };
    check_seed_transcript(&outcome, local.path());
    outcome.expect_stdout("---> EPSV").expect_stdout("229 ");
}

#[test]
fn seed_session_active() {
    let Some((outcome, local)) = seed_session(&["-A"]) else {
        return;
    };
    check_seed_transcript(&outcome, local.path());
    outcome
        .expect_stdout("---> PORT 127,0,0,1,")
        .expect_stdout("200 ");
    assert!(!outcome.stdout.contains("EPSV"), "{outcome}");
}

#[test]
fn put_then_get_round_trip_is_byte_exact_in_both_modes() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let data = binary_bytes(300_000);
    fs::write(local.path().join("blob.bin"), &data).unwrap();
    let port = server.port.to_string();
    for mode in ["-p", "-A"] {
        let script =
            "user tester secret\nput blob.bin up.bin\nget up.bin back.bin\nsize up.bin\nbye\n";
        let outcome = ferry(&["-n", mode, "127.0.0.1", &port], script, local.path());
        outcome
            .expect_code(0)
            .expect_stdout("300000 bytes sent in ")
            .expect_stdout("300000 bytes received in ")
            .expect_stdout("213 300000");
        assert_eq!(
            fs::read(local.path().join("back.bin")).unwrap(),
            data,
            "{mode}"
        );
        assert_eq!(
            fs::read(server.root.join("up.bin")).unwrap(),
            data,
            "{mode}"
        );
        fs::remove_file(local.path().join("back.bin")).unwrap();
    }
}

#[test]
fn reget_continues_a_partial_download() {
    let Some((root, local, server)) = setup() else {
        return;
    };
    let data = binary_bytes(100_000);
    fs::write(root.path().join("big.bin"), &data).unwrap();
    fs::write(local.path().join("big.bin.part"), &data[..40_000]).unwrap();
    let port = server.port.to_string();
    let script = "user tester secret\nreget big.bin\nbye\n";
    let outcome = ferry(&["-n", "-d", "127.0.0.1", &port], script, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("---> REST 40000")
        .expect_stdout("350 ")
        .expect_stdout("60000 bytes received in ");
    assert_eq!(fs::read(local.path().join("big.bin")).unwrap(), data);
    assert!(!local.path().join("big.bin.part").exists());
}

#[test]
fn one_shot_get_with_continue() {
    let Some((root, local, server)) = setup() else {
        return;
    };
    let data = binary_bytes(50_000);
    fs::write(root.path().join("c.bin"), &data).unwrap();
    fs::write(local.path().join("c.bin.part"), &data[..12_345]).unwrap();
    let url = format!("ftp://tester:secret@127.0.0.1:{}/c.bin", server.port);
    ferry(&["get", &url, "-c"], "", local.path()).expect_code(0);
    assert_eq!(fs::read(local.path().join("c.bin")).unwrap(), data);
}

#[test]
fn one_shot_put_ls_and_anonymous_get() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    fs::write(local.path().join("my file.txt"), b"uploaded\n").unwrap();
    let base = format!("ftp://tester:secret@127.0.0.1:{}", server.port);
    ferry(
        &["put", "my file.txt", &format!("{base}/pub/")],
        "",
        local.path(),
    )
    .expect_code(0);
    assert_eq!(
        fs::read(server.root.join("pub/my file.txt")).unwrap(),
        b"uploaded\n"
    );
    let listing = ferry(&["ls", &format!("{base}/pub")], "", local.path());
    listing
        .expect_code(0)
        .expect_stdout("my file.txt")
        .expect_stdout("readme.txt");
    let anonymous = format!("ftp://127.0.0.1:{}/pub/my%20file.txt", server.port);
    ferry(&["get", &anonymous, "-o", "copy.txt"], "", local.path()).expect_code(0);
    assert_eq!(
        fs::read(local.path().join("copy.txt")).unwrap(),
        b"uploaded\n"
    );
}

#[test]
fn ascii_mode_converts_line_ends_both_ways() {
    let Some((root, local, server)) = setup() else {
        return;
    };
    fs::write(local.path().join("unix.txt"), b"one\ntwo\n").unwrap();
    let port = server.port.to_string();
    let script = "user tester secret\nascii\nput unix.txt\nget unix.txt back.txt\nbinary\nget unix.txt raw.txt\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, local.path())
        .expect_code(0)
        .expect_stdout("200 Type set to: ASCII.");
    // pyftpdlib turns CRLF from the wire into LF on its disk; the exact wire form is checked
    // against a fake server in hostile.rs.
    assert_eq!(
        fs::read(root.path().join("unix.txt")).unwrap(),
        b"one\ntwo\n"
    );
    assert_eq!(
        fs::read(local.path().join("back.txt")).unwrap(),
        b"one\ntwo\n"
    );
    assert_eq!(
        fs::read(local.path().join("raw.txt")).unwrap(),
        b"one\ntwo\n"
    );
}

#[test]
fn mput_and_mget_with_wildcards() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let up = local.path().join("up");
    fs::create_dir(&up).unwrap();
    for name in ["a.txt", "b.txt", "c.bin"] {
        fs::write(up.join(name), name.as_bytes()).unwrap();
    }
    let port = server.port.to_string();
    let script = "user tester secret\nmkdir drop\ncd drop\nmput up/*.txt\nbye\n";
    let outcome = ferry(&["-n", "-i", "127.0.0.1", &port], script, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("local: up/a.txt remote: a.txt");
    assert!(server.root.join("drop/a.txt").exists() && server.root.join("drop/b.txt").exists());
    assert!(!server.root.join("drop/c.bin").exists());
    let down = local.path().join("down");
    fs::create_dir(&down).unwrap();
    let script = "user tester secret\nlcd down\nmget drop/*.txt\ny\nn\nprompt\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &port], script, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("Interactive mode off.")
        .expect_stdout("mget drop/a.txt? ")
        .expect_stdout("mget drop/b.txt? ");
    assert_eq!(fs::read(down.join("a.txt")).unwrap(), b"a.txt");
    assert!(!down.join("b.txt").exists());
}

#[test]
fn remote_file_management_commands() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let port = server.port.to_string();
    let script = "user tester secret\nmkdir d\nrename pub/readme.txt d/r.txt\nmodtime d/r.txt\n\
                  pwd\nquote NOOP\nnlist d\ndelete d/r.txt\nrmdir d\nsystem\nfeat\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, local.path())
        .expect_code(0)
        .expect_stdout("257 \"/d\"")
        .expect_stdout("350 ")
        .expect_stdout("d/r.txt\t")
        .expect_stdout(" GMT")
        .expect_stdout("257 \"/\"")
        .expect_stdout("200 ")
        .expect_stdout("250 ")
        .expect_stdout("215 UNIX Type: L8")
        .expect_stdout("MLST type*;");
    assert!(!server.root.join("d").exists());
}

#[test]
fn pasv_private_address_is_replaced_by_the_control_address() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("f.txt"), b"through PASV\n").unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), Some("10.9.8.7")) else {
        return;
    };
    let port = server.port.to_string();
    let script = "user tester secret\nget f.txt\nbye\n";
    ferry(
        &["-n", "-p", "--no-epsv", "127.0.0.1", &port],
        script,
        local.path(),
    )
    .expect_code(0)
    .expect_stdout("227 Entering passive mode (10,9,8,7,")
    .expect_stdout("ignoring PASV address 10.9.8.7:");
    assert_eq!(
        fs::read(local.path().join("f.txt")).unwrap(),
        b"through PASV\n"
    );
}

#[test]
fn wrong_password_exits_with_login_code() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let port = server.port.to_string();
    let outcome = ferry(&["127.0.0.1", &port], "tester\nwrong\nbye\n", local.path());
    outcome
        .expect_code(4)
        .expect_stdout("530 ")
        .expect_stdout("Login failed.");
    let url = format!(
        "ftp://tester:wrong@127.0.0.1:{}/pub/readme.txt",
        server.port
    );
    ferry(&["get", &url], "", local.path()).expect_code(4);
}

#[test]
fn missing_file_exits_with_not_found_and_leaves_no_file() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let url = format!("ftp://127.0.0.1:{}/pub/nope.txt", server.port);
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(5);
    assert!(outcome.stderr.contains("nope.txt"), "{outcome}");
    assert!(!local.path().join("nope.txt").exists());
    assert!(!local.path().join("nope.txt.part").exists());
    let port = server.port.to_string();
    let session = ferry(
        &["-n", "127.0.0.1", &port],
        "user anonymous x\nget nope.txt\nbye\n",
        local.path(),
    );
    session.expect_code(5).expect_stdout("550 ");
}

#[test]
fn unknown_and_ambiguous_commands_and_help() {
    let Some((_root, local, server)) = setup() else {
        return;
    };
    let port = server.port.to_string();
    let script = "user anonymous x\nfrobnicate\nm\nhelp get\n?\nstatus\nverbose\npwd\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, local.path())
        .expect_code(1)
        .expect_stdout("?Invalid command.")
        .expect_stdout("?Ambiguous command.")
        .expect_stdout("receive file")
        .expect_stdout("Commands may be abbreviated.")
        .expect_stdout("Connected to 127.0.0.1")
        .expect_stdout("Verbose mode off.")
        .expect_stdout("Remote directory: /");
}
