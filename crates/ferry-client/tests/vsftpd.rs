//! The `ferry` binary and the library against vsftpd (anonymous, read-only): the seed session
//! in active and passive mode, one-shot download with resume, ASCII mode, missing files, and
//! LIST parsing (vsftpd has no MLSD).

mod support;

use std::fs;

use ferry_client::{Client, ClientConfig, DataMode, EntryKind, Secret, TransferType};
use support::servers::{vsftpd, Server};
use support::{binary_bytes, ferry, readme_bytes};

struct Setup {
    _root: tempfile::TempDir,
    _scratch: tempfile::TempDir,
    local: tempfile::TempDir,
    server: Server,
}

fn setup() -> Option<Setup> {
    let root = tempfile::tempdir().expect("root");
    fs::create_dir(root.path().join("pub")).expect("pub");
    fs::write(root.path().join("pub/readme.txt"), readme_bytes()).expect("readme");
    fs::write(root.path().join("pub/big.bin"), binary_bytes(200_000)).expect("big");
    fs::write(root.path().join("pub/dos.txt"), b"a\nb\n").expect("dos");
    let scratch = tempfile::tempdir().expect("scratch");
    let server = vsftpd(root.path(), scratch.path())?;
    Some(Setup {
        _root: root,
        _scratch: scratch,
        local: tempfile::tempdir().expect("local"),
        server,
    })
}

const SEED: &str = "ftp\nabc@any-domain.com\ndir\ncd pub\nget readme.txt\nbye\n";

fn seed_session(flag: &str, data_line: &str) {
    let Some(setup) = setup() else { return };
    let port = setup.server.port.to_string();
    let outcome = ferry(&["-d", flag, "127.0.0.1", &port], SEED, setup.local.path());
    outcome
        .expect_code(0)
        .expect_stdout("220 ANY-DOMAIN.COM FTP Service")
        .expect_stdout("Name (127.0.0.1:tester): ")
        .expect_stdout("---> USER ftp")
        .expect_stdout("331 Please specify the password.")
        .expect_stdout("---> PASS XXXX")
        .expect_stdout("230 Login successful.")
        .expect_stdout(data_line)
        .expect_stdout("150 Here comes the directory listing.")
        .expect_stdout(" pub\n")
        .expect_stdout("226 Directory send OK.")
        .expect_stdout("250 Directory successfully changed.")
        .expect_stdout("150 Opening BINARY mode data connection for readme.txt (1715 bytes).")
        .expect_stdout("226 Transfer complete.")
        .expect_stdout("1715 bytes received in ")
        .expect_stdout("221 Goodbye.");
    let got = fs::read(setup.local.path().join("readme.txt")).unwrap();
    assert_eq!(got, readme_bytes());
}

#[test]
fn seed_session_active_like_the_seed() {
    seed_session("-A", "200 PORT command successful.");
}

#[test]
fn seed_session_passive() {
    seed_session("-p", "229 Entering Extended Passive Mode (|||");
}

#[test]
fn pasv_without_epsv() {
    seed_session("--no-epsv", "227 Entering Passive Mode (127,0,0,1,");
}

#[test]
fn one_shot_get_resume_and_missing_file() {
    let Some(setup) = setup() else { return };
    let local = setup.local.path();
    let data = binary_bytes(200_000);
    fs::write(local.join("big.bin.part"), &data[..77_777]).unwrap();
    let url = format!("ftp://127.0.0.1:{}/pub/big.bin", setup.server.port);
    ferry(&["get", &url, "-c", "-A"], "", local).expect_code(0);
    assert_eq!(fs::read(local.join("big.bin")).unwrap(), data);
    let missing = format!("ftp://127.0.0.1:{}/pub/missing.bin", setup.server.port);
    ferry(&["get", &missing], "", local).expect_code(5);
    assert!(!local.join("missing.bin").exists() && !local.join("missing.bin.part").exists());
}

/// A partial download longer than the server's file (which changed since) is not passed off
/// as the whole file: vsftpd answers a REST past the end with no byte and 226. `get -c` and
/// the shell's reget say why they cannot resume (exit 6, as curl's -C refuses) and leave the
/// local files as they were.
#[test]
fn a_part_longer_than_the_servers_file_is_not_taken_for_it() {
    let Some(setup) = setup() else { return };
    let local = setup.local.path();
    fs::write(local.join("big.bin.part"), vec![9u8; 250_000]).unwrap();
    let url = format!("ftp://127.0.0.1:{}/pub/big.bin", setup.server.port);
    let outcome = ferry(&["get", &url, "-c", "-A"], "", local);
    outcome.expect_code(6);
    assert!(
        outcome.stderr.contains("cannot resume from byte 250000"),
        "{outcome}"
    );
    assert!(!local.join("big.bin").exists());
    assert_eq!(fs::read(local.join("big.bin.part")).unwrap().len(), 250_000);
    // A mirror that continues starts such a file over, and gets it whole.
    let copy = local.join("copy");
    fs::create_dir(&copy).unwrap();
    fs::write(copy.join("big.bin.part"), vec![9u8; 250_000]).unwrap();
    let site = format!("ftp://127.0.0.1:{}/pub", setup.server.port);
    ferry(&["mirror", "-c", &site, "copy"], "", local).expect_code(0);
    assert!(fs::read(copy.join("big.bin")).unwrap() == binary_bytes(200_000));
    assert!(!copy.join("big.bin.part").exists());

    let stale = vec![b'x'; 3000];
    fs::write(local.join("readme.txt"), &stale).unwrap();
    let port = setup.server.port.to_string();
    let script = "user ftp x\ncd pub\nbinary\nreget readme.txt\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &port], script, local);
    outcome.expect_code(6);
    assert!(
        outcome.stderr.contains("cannot resume") || outcome.stdout.contains("cannot resume"),
        "{outcome}"
    );
    assert_eq!(fs::read(local.join("readme.txt")).unwrap(), stale);
    assert!(!local.join("readme.txt.part").exists());
}

#[test]
fn ascii_get_from_vsftpd() {
    let Some(setup) = setup() else { return };
    let port = setup.server.port.to_string();
    let script = "user ftp x\ncd pub\nascii\nget dos.txt\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, setup.local.path())
        .expect_code(0)
        .expect_stdout("200 Switching to ASCII mode.")
        .expect_stdout("150 Opening ASCII mode data connection for dos.txt (4 bytes).");
    assert_eq!(
        fs::read(setup.local.path().join("dos.txt")).unwrap(),
        b"a\nb\n"
    );
}

#[test]
fn read_only_server_refuses_upload_with_a_clear_exit() {
    let Some(setup) = setup() else { return };
    let local = setup.local.path();
    fs::write(local.join("up.txt"), b"x").unwrap();
    let port = setup.server.port.to_string();
    let outcome = ferry(
        &["-n", "127.0.0.1", &port],
        "user ftp x\nput up.txt\nbye\n",
        local,
    );
    outcome
        .expect_code(1)
        .expect_stdout("550 Permission denied.");
}

#[tokio::test]
async fn library_lists_and_reads_vsftpd_through_list_parsing() {
    let Some(setup) = setup() else { return };
    let config = ClientConfig::default().with_timeouts(std::time::Duration::from_secs(20));
    let mut client = Client::connect("127.0.0.1", setup.server.port, config)
        .await
        .unwrap();
    client.login("ftp", &Secret::new("x"), None).await.unwrap();
    client.set_type(TransferType::Image).await.unwrap();
    assert!(!client.features().await.unwrap().has("MLST"));
    let entries = client.entries(Some("pub"), 0).await.unwrap();
    let readme = entries.iter().find(|e| e.name == "readme.txt").unwrap();
    assert_eq!(
        (readme.kind.clone(), readme.size),
        (EntryKind::File, Some(1715))
    );
    client.cwd("pub").await.unwrap();
    assert_eq!(client.pwd().await.unwrap(), "/pub");
    assert_eq!(client.size("big.bin").await.unwrap(), 200_000);
    client.config_mut().data_mode = DataMode::Active;
    support::check_resumed_tail(&mut client, "big.bin", 200_000, 199_000).await;
    let mut names = client.nlst(None).await.unwrap();
    names.sort();
    assert_eq!(names, vec!["big.bin", "dos.txt", "readme.txt"]);
    client.quit().await.unwrap();
}
