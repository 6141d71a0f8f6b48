//! `ferry` against our own server: `ferryd` runs in-process on a loopback port, the real `ferry`
//! binary is driven through piped stdin, and the library API is called directly. Covers the seed
//! session in passive and active mode, round trips, resume, ASCII mode, error exit codes, and
//! listing, file management and metadata through [`Client`].

mod support;

use std::fs;
use std::time::Duration;

use ferry_client::{Client, ClientConfig, DataMode, EntryKind, FtpError, Secret, TransferType};
use support::ferryd::{Ferryd, PASSWORD};
use support::{binary_bytes, ferry, readme_bytes};

const SEED: &str = "ftp\nabc@any-domain.com\ndir\ncd pub\nget readme.txt\nbye\n";

/// `user alice <password>` as a session's first line.
fn alice() -> String {
    format!("user alice \"{PASSWORD}\"\n")
}

fn seed_session(flag: &str, data_line: &str) {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let port = server.port().to_string();
    let outcome = ferry(&["-d", flag, "127.0.0.1", &port], SEED, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("Connected to 127.0.0.1.")
        .expect_stdout("220 ANY-DOMAIN.COM FTP Service\n")
        .expect_stdout("Name (127.0.0.1:tester): ")
        .expect_stdout("---> USER ftp")
        .expect_stdout("331 Anonymous access allowed, send identity (e-mail name) as password.\n")
        .expect_stdout("---> PASS XXXX")
        .expect_stdout("230-Welcome to ftp.any-domain.com\n230 Anonymous user logged in.\n")
        .expect_stdout(data_line)
        .expect_stdout("---> LIST")
        .expect_stdout("150 Opening ASCII mode data connection for /bin/ls.\n")
        .expect_stdout(" pub\n")
        .expect_stdout("226 Transfer complete.\n")
        .expect_stdout("---> CWD pub")
        .expect_stdout("250 CWD command successful.\n")
        .expect_stdout("---> RETR readme.txt")
        .expect_stdout("150 Opening BINARY mode data connection for readme.txt (1715 bytes).\n")
        .expect_stdout("1715 bytes received in ")
        .expect_stdout("---> QUIT")
        .expect_stdout("221 Thank you for visiting ftp.any-domain.com.\n");
    assert!(!outcome.stdout.contains("abc@any-domain.com"), "{outcome}");
    let transfers = outcome.stdout.matches("226 Transfer complete.").count();
    assert_eq!(transfers, 2, "{outcome}");
    assert_eq!(
        fs::read(local.path().join("readme.txt")).unwrap(),
        readme_bytes()
    );
    assert!(!local.path().join("readme.txt.part").exists());
}

#[test]
fn seed_session_passive() {
    seed_session("-p", "229 Entering Extended Passive Mode (|||");
}

#[test]
fn seed_session_active() {
    seed_session("-A", "200 PORT command successful.");
}

#[test]
fn seed_session_passive_without_epsv() {
    seed_session("--no-epsv", "227 Entering Passive Mode (127,0,0,1,");
}

#[test]
fn put_get_round_trip_as_a_read_write_user_in_both_modes() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let data = binary_bytes(300_000);
    fs::write(local.path().join("blob.bin"), &data).unwrap();
    let port = server.port().to_string();
    for mode in ["-p", "-A"] {
        let script = format!(
            "{}put blob.bin up.bin\nget up.bin back.bin\nsize up.bin\nbye\n",
            alice()
        );
        ferry(&["-n", mode, "127.0.0.1", &port], &script, local.path())
            .expect_code(0)
            .expect_stdout("300000 bytes sent in ")
            .expect_stdout("300000 bytes received in ")
            .expect_stdout("213 300000");
        let back = local.path().join("back.bin");
        assert_eq!(fs::read(&back).unwrap(), data, "{mode}");
        assert_eq!(
            fs::read(server.user_root.join("up.bin")).unwrap(),
            data,
            "{mode}"
        );
        fs::remove_file(back).unwrap();
    }
}

#[test]
fn reget_continues_a_truncated_download() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let data = binary_bytes(200_000);
    fs::write(server.user_root.join("big.bin"), &data).unwrap();
    let port = server.port().to_string();
    let script = format!("{}get big.bin\nbye\n", alice());
    ferry(&["-n", "127.0.0.1", &port], &script, local.path()).expect_code(0);
    // Cut the finished download short, as an interrupted transfer would leave it.
    let partial = local.path().join("big.bin.part");
    fs::rename(local.path().join("big.bin"), &partial).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_len(70_000)
        .unwrap();
    let script = format!("{}reget big.bin\nbye\n", alice());
    ferry(&["-n", "-d", "127.0.0.1", &port], &script, local.path())
        .expect_code(0)
        .expect_stdout("---> REST 70000")
        .expect_stdout("350 ")
        .expect_stdout("130000 bytes received in ");
    assert_eq!(fs::read(local.path().join("big.bin")).unwrap(), data);
    assert!(!partial.exists());
}

#[test]
fn one_shot_get_continue_put_and_ls() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let data = binary_bytes(120_000);
    fs::write(server.user_root.join("c.bin"), &data).unwrap();
    fs::write(local.path().join("c.bin.part"), &data[..33_333]).unwrap();
    let base = format!("ftp://alice:s3cret%20pass@127.0.0.1:{}", server.port());
    ferry(&["get", &format!("{base}/c.bin"), "-c"], "", local.path()).expect_code(0);
    assert_eq!(fs::read(local.path().join("c.bin")).unwrap(), data);
    fs::write(local.path().join("new file.txt"), b"one shot\n").unwrap();
    ferry(
        &["put", "new file.txt", &format!("{base}/")],
        "",
        local.path(),
    )
    .expect_code(0);
    assert_eq!(
        fs::read(server.user_root.join("new file.txt")).unwrap(),
        b"one shot\n"
    );
    ferry(&["ls", &format!("{base}/")], "", local.path())
        .expect_code(0)
        .expect_stdout("new file.txt")
        .expect_stdout("c.bin");
    let anonymous = format!("ftp://127.0.0.1:{}/pub/readme.txt", server.port());
    ferry(
        &["get", &anonymous, "-o", "copy.txt", "-A"],
        "",
        local.path(),
    )
    .expect_code(0);
    assert_eq!(
        fs::read(local.path().join("copy.txt")).unwrap(),
        readme_bytes()
    );
}

#[test]
fn ascii_mode_converts_line_ends_both_ways() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("unix.txt"), b"one\ntwo\n").unwrap();
    let port = server.port().to_string();
    let script = format!(
        "{}ascii\nput unix.txt\nget unix.txt back.txt\nbinary\nget unix.txt raw.txt\nbye\n",
        alice()
    );
    ferry(&["-n", "127.0.0.1", &port], &script, local.path())
        .expect_code(0)
        .expect_stdout("200 Switching to ASCII mode.");
    let stored = fs::read(server.user_root.join("unix.txt")).unwrap();
    let back = fs::read(local.path().join("back.txt")).unwrap();
    let raw = fs::read(local.path().join("raw.txt")).unwrap();
    assert_eq!(
        (stored.as_slice(), back.as_slice()),
        (&b"one\ntwo\n"[..], &b"one\ntwo\n"[..])
    );
    assert_eq!(raw, b"one\ntwo\n", "the server stores LF line ends");
}

#[test]
fn missing_file_exits_with_not_found() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/pub/nope.txt", server.port());
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(5);
    assert!(outcome.stderr.contains("nope.txt"), "{outcome}");
    assert!(!local.path().join("nope.txt").exists());
    assert!(!local.path().join("nope.txt.part").exists());
    let port = server.port().to_string();
    ferry(
        &["-n", "127.0.0.1", &port],
        "user ftp x@y\nget nope.txt\nbye\n",
        local.path(),
    )
    .expect_code(5)
    .expect_stdout("550 ");
}

#[test]
fn wrong_password_exits_with_login_code() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let port = server.port().to_string();
    ferry(&["127.0.0.1", &port], "alice\nwrong\nbye\n", local.path())
        .expect_code(4)
        .expect_stdout("530 ")
        .expect_stdout("Login failed.");
    let url = format!("ftp://alice:wrong@127.0.0.1:{}/x", server.port());
    ferry(&["get", &url], "", local.path()).expect_code(4);
}

#[test]
fn read_only_user_cannot_upload() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("up.txt"), b"x").unwrap();
    let port = server.port().to_string();
    let script = format!("user bob \"{PASSWORD}\"\nput up.txt\nbye\n");
    let outcome = ferry(&["-n", "127.0.0.1", &port], &script, local.path());
    outcome.expect_code(1).expect_stdout("550 ");
    assert!(!server.user_root.join("up.txt").exists());
    let url = format!("ftp://bob:s3cret%20pass@127.0.0.1:{}/", server.port());
    ferry(&["put", "up.txt", &url], "", local.path()).expect_code(1);
    assert!(!server.user_root.join("up.txt").exists());
}

async fn logged_in(server: &Ferryd, mode: DataMode) -> Client {
    let mut config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    config.data_mode = mode;
    let mut client = Client::connect_addr(server.addr, config).await.unwrap();
    assert_eq!(client.greeting().text(), "ANY-DOMAIN.COM FTP Service");
    let welcome = client
        .login("alice", &Secret::new(PASSWORD), None)
        .await
        .unwrap();
    assert_eq!(welcome.code, 230);
    client.set_type(TransferType::Image).await.unwrap();
    client
}

#[tokio::test]
async fn library_store_retrieve_append_and_resume() {
    let server = Ferryd::start();
    for mode in [DataMode::Passive, DataMode::Active] {
        let mut client = logged_in(&server, mode).await;
        let data = binary_bytes(90_000);
        let sent = client
            .store("f.bin", &mut &data[..50_000], 0)
            .await
            .unwrap();
        assert_eq!(sent, 50_000);
        client
            .store("f.bin", &mut &data[50_000..], 50_000)
            .await
            .unwrap();
        client.append("f.bin", &mut &b"tail"[..]).await.unwrap();
        let mut expected = data.clone();
        expected.extend_from_slice(b"tail");
        let mut back = Vec::new();
        client.retrieve("f.bin", &mut back, 0).await.unwrap();
        assert_eq!(back, expected, "{mode:?}");
        let mut tail = Vec::new();
        client.retrieve("f.bin", &mut tail, 89_000).await.unwrap();
        assert_eq!(tail, expected[89_000..], "{mode:?}");
        assert_eq!(client.size("f.bin").await.unwrap(), 90_004);
        client.delete("f.bin").await.unwrap();
        client.quit().await.unwrap();
    }
}

#[tokio::test]
async fn library_listings_management_and_metadata() {
    let server = Ferryd::start();
    fs::write(server.user_root.join("a.txt"), b"hello").unwrap();
    let mut client = logged_in(&server, DataMode::Auto).await;
    client.mkdir("sub dir").await.unwrap();
    client.rename("a.txt", "sub dir/b.txt").await.unwrap();
    client.cwd("sub dir").await.unwrap();
    assert_eq!(client.pwd().await.unwrap(), "/sub dir");
    let entries = client.entries(None, 0).await.unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["b.txt"]);
    assert_eq!(
        (entries[0].kind.clone(), entries[0].size),
        (EntryKind::File, Some(5))
    );
    assert_eq!(client.size("b.txt").await.unwrap(), 5);
    let modified = client.mdtm("b.txt").await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - modified).abs() < 600, "MDTM {modified} vs now {now}");
    assert_eq!(client.nlst(None).await.unwrap(), vec!["b.txt"]);
    client.cdup().await.unwrap();
    let listing = client.list(None).await.unwrap();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub dir")),
        "{listing}"
    );
    client.delete("sub dir/b.txt").await.unwrap();
    client.rmdir("sub dir").await.unwrap();
    assert!(!server.user_root.join("sub dir").exists());
    client.quit().await.unwrap();
}

#[tokio::test]
async fn library_parses_mlsd_and_list_sizes() {
    let server = Ferryd::start();
    fs::write(server.user_root.join("big.bin"), binary_bytes(123_456)).unwrap();
    fs::create_dir(server.user_root.join("folder")).unwrap();
    let mut client = logged_in(&server, DataMode::Passive).await;
    let mlsd = client.mlsd(None).await.unwrap();
    let file = mlsd
        .iter()
        .find(|e| e.name == "big.bin")
        .expect("big.bin in MLSD");
    assert_eq!(
        (file.kind.clone(), file.size),
        (EntryKind::File, Some(123_456))
    );
    let folder = mlsd
        .iter()
        .find(|e| e.name == "folder")
        .expect("folder in MLSD");
    assert_eq!(folder.kind, EntryKind::Directory);
    let list = client.list(None).await.unwrap();
    let parsed = ferry_proto::list_parse::parse_list(&list, 0);
    let file = parsed
        .iter()
        .find(|e| e.name == "big.bin")
        .expect("big.bin in LIST");
    assert_eq!(file.size, Some(123_456), "{list}");
    client.quit().await.unwrap();
}

#[tokio::test]
async fn library_errors_are_typed() {
    let server = Ferryd::start();
    let config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    let mut client = Client::connect_addr(server.addr, config).await.unwrap();
    let refused = client.login("alice", &Secret::new("wrong"), None).await;
    assert!(
        matches!(refused, Err(FtpError::LoginRefused { .. })),
        "{refused:?}"
    );
    let mut client = logged_in(&server, DataMode::Auto).await;
    let missing = client.retrieve("missing", &mut Vec::new(), 0).await;
    assert!(
        matches!(missing, Err(FtpError::FileUnavailable { .. })),
        "{missing:?}"
    );
    let no_dir = client.cwd("nowhere").await;
    assert!(
        matches!(no_dir, Err(FtpError::FileUnavailable { .. })),
        "{no_dir:?}"
    );
    assert_eq!(client.pwd().await.unwrap(), "/");
    client.quit().await.unwrap();
}

/// FTPS with ferryd, which requires every data connection to resume the control connection's
/// TLS session: twelve downloads, uploads and listings in one session, over TLS 1.3 and 1.2.
/// (A rustls client uses each TLS 1.3 ticket once, so this needs the server to keep handing
/// them out.)
#[test]
fn many_transfers_over_ftps_resume_every_data_connection() {
    for version in ["1.3", "1.2"] {
        let server = Ferryd::start_with(|config| {
            config.tls.self_signed = true;
            config.tls.data = ferry_server::config::TlsPolicy::Required;
        });
        fs::write(server.user_root.join("notes.txt"), "alice's notes\n").unwrap();
        let local = tempfile::tempdir().unwrap();
        fs::write(local.path().join("up.txt"), "uploaded over FTPS\n").unwrap();
        let mut script = alice();
        for round in 0..4 {
            script.push_str(&format!(
                "get notes.txt copy{round}.txt\nput up.txt up{round}.txt\nls\n"
            ));
        }
        script.push_str("bye\n");
        let port = server.port().to_string();
        let args = [
            "--tls",
            "--insecure",
            "--tls-version",
            version,
            "-n",
            "127.0.0.1",
            &port,
        ];
        let outcome = ferry(&args, &script, local.path());
        outcome.expect_code(0);
        for round in 0..4 {
            let copy = fs::read(local.path().join(format!("copy{round}.txt"))).unwrap();
            assert_eq!(
                copy,
                fs::read(server.user_root.join("notes.txt")).unwrap(),
                "{version}"
            );
            let sent = fs::read(server.user_root.join(format!("up{round}.txt"))).unwrap();
            assert_eq!(sent, b"uploaded over FTPS\n", "{version}");
        }
    }
}

/// A server that dies in the middle of a download (it sends part of the file, then both its
/// connections close without a final reply): `ferry` exits with 6, keeps what arrived as
/// `NAME.part` and makes no `NAME`; `reget` against a server that has the file finishes it byte
/// for byte.
#[test]
fn a_server_killed_mid_download_leaves_a_part_file_that_reget_finishes() {
    use std::io::Write;
    use support::fake::{accept_data, fake_server};
    let data = binary_bytes(300_000);
    let first_part = data[..100_000].to_vec();
    let fake = fake_server(move |conn| {
        conn.reply("220 About to die.");
        let mut listener = None;
        for _ in 0..20 {
            let Some(line) = conn.serve_until_other() else {
                return;
            };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EPSV" => listener = Some(conn.answer_epsv()),
                "SIZE" => conn.reply("213 300000"),
                "RETR" => break,
                _ => conn.reply("502 Not here."),
            }
        }
        let Some(listener) = listener else {
            return;
        };
        conn.reply("150 Opening BINARY mode data connection for big.bin (300000 bytes).");
        if let Some(mut data) = accept_data(&listener) {
            let _ = data.write_all(&first_part);
        }
        // Killed: the data and control connections close, no 226.
    });
    let local = tempfile::tempdir().unwrap();
    let port = fake.port.to_string();
    let script = "user u p\nbinary\nget big.bin\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, local.path()).expect_code(6);
    let partial = local.path().join("big.bin.part");
    assert_eq!(fs::read(&partial).unwrap(), &data[..100_000]);
    assert!(!local.path().join("big.bin").exists());
    let server = Ferryd::start();
    fs::write(server.user_root.join("big.bin"), &data).unwrap();
    let script = format!("{}reget big.bin\nbye\n", alice());
    let port = server.port().to_string();
    ferry(&["-n", "-d", "127.0.0.1", &port], &script, local.path())
        .expect_code(0)
        .expect_stdout("---> REST 100000");
    assert_eq!(fs::read(local.path().join("big.bin")).unwrap(), data);
    assert!(!partial.exists());
}
