//! The `ferry` binary and the library against Pure-FTPd (virtual users in a PureDB file, with
//! write access): the seed session in active, passive and PASV-only mode with Pure-FTPd's own
//! reply texts, one-shot downloads with resume, MLSD listings (`ls`, `mlsd`, the library's
//! entries) against LIST, uploads read back byte for byte, ASCII mode, file management, and
//! the exit codes of a missing file and a refused login.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ferry_client::{Client, ClientConfig, DataMode, EntryKind, Secret, TransferType};
use support::servers::{pure_ftpd, Server, PURE_FTPD_PASSIVE};
use support::{binary_bytes, ferry, json_lines, readme_bytes, Outcome};

/// 2024-05-01 12:00:00 UTC: the modification time of `pub/readme.txt`.
const README_MTIME: i64 = 1_714_564_800;

struct Setup {
    root: tempfile::TempDir,
    _scratch: tempfile::TempDir,
    local: tempfile::TempDir,
    server: Server,
}

impl Setup {
    fn port(&self) -> String {
        self.server.port.to_string()
    }

    fn local(&self) -> &Path {
        self.local.path()
    }

    fn url(&self, credentials: &str, path: &str) -> String {
        format!("ftp://{credentials}@127.0.0.1:{}{path}", self.server.port)
    }
}

/// A root with `pub/readme.txt` (the seed's 1715 bytes, dated [`README_MTIME`]),
/// `pub/big.bin`, `pub/dos.txt`, the folder `pub/sub` and the symlink `pub/link.txt`.
fn setup() -> Option<Setup> {
    let root = tempfile::tempdir().expect("root");
    let public = root.path().join("pub");
    fs::create_dir(&public).expect("pub");
    fs::write(public.join("readme.txt"), readme_bytes()).expect("readme");
    let readme = fs::File::options()
        .write(true)
        .open(public.join("readme.txt"))
        .expect("open readme");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(README_MTIME as u64);
    readme.set_modified(mtime).expect("date readme");
    fs::write(public.join("big.bin"), binary_bytes(200_000)).expect("big");
    fs::write(public.join("dos.txt"), b"a\nb\n").expect("dos");
    fs::create_dir(public.join("sub")).expect("sub");
    std::os::unix::fs::symlink("readme.txt", public.join("link.txt")).expect("link");
    let scratch = tempfile::tempdir().expect("scratch");
    let server = pure_ftpd(root.path(), scratch.path())?;
    Some(Setup {
        root,
        _scratch: scratch,
        local: tempfile::tempdir().expect("local"),
        server,
    })
}

/// The seed's session: USER ftp, PASS with an e-mail address, dir, cd pub, get readme.txt,
/// bye. `ftp` is a virtual user whose password is that address.
const SEED: &str = "ftp\nabc@any-domain.com\ndir\ncd pub\nget readme.txt\nbye\n";

/// Runs the seed session with `flag` and checks what every mode shares.
fn seed_session(flag: &str) -> Option<Outcome> {
    let setup = setup()?;
    let outcome = ferry(
        &["-d", flag, "127.0.0.1", &setup.port()],
        SEED,
        setup.local(),
    );
    let greeting = [
        "Connected to 127.0.0.1.",
        "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
        "220-This is a private system - No anonymous login",
        "220 You will be disconnected after 2 minutes of inactivity.",
    ];
    for line in greeting {
        outcome.expect_stdout(line);
    }
    outcome
        .expect_code(0)
        // The middle lines of a multi-line reply are shown as they came, not indented (the
        // user number counts the starter's probe connection while its process lingers).
        .expect_stdout("\n220-You are user number ")
        .expect_stdout(" of 50 allowed.\n220-Local time is now ")
        .expect_stdout("Name (127.0.0.1:tester): ")
        .expect_stdout("---> USER ftp")
        .expect_stdout("331 User ftp OK. Password required")
        .expect_stdout("Password: ")
        .expect_stdout("---> PASS XXXX")
        .expect_stdout("230 OK. Current directory is /")
        .expect_stdout("215 UNIX Type: L8")
        .expect_stdout("---> LIST\n")
        .expect_stdout(" pub\n")
        .expect_stdout("226-Options: -l \n226 1 matches total")
        .expect_stdout("---> CWD pub")
        .expect_stdout("250 OK. Current directory is /pub")
        .expect_stdout("local: readme.txt remote: readme.txt")
        .expect_stdout("---> RETR readme.txt")
        .expect_stdout("226-File successfully transferred\n226 ")
        .expect_stdout("1715 bytes received in ")
        .expect_stdout("---> QUIT")
        .expect_stdout("221-Goodbye. You uploaded 0 and downloaded 2 kbytes.\n221 Logout.");
    assert!(
        !outcome.stdout.contains("abc@any-domain.com"),
        "password shown:\n{outcome}"
    );
    assert!(!outcome.stdout.contains(" 220-"), "indented:\n{outcome}");
    let got = fs::read(setup.local().join("readme.txt")).expect("readme.txt");
    assert_eq!(got, readme_bytes());
    assert!(!setup.local().join("readme.txt.part").exists());
    Some(outcome)
}

/// The ports after each `marker` in `text`: `(|||port|)` for EPSV, the last two numbers of
/// `h1,h2,h3,h4,p1,p2` otherwise.
fn ports_after(text: &str, marker: &str) -> Vec<u16> {
    text.match_indices(marker)
        .map(|(at, _)| {
            let rest = &text[at + marker.len()..];
            let field: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .collect();
            let numbers: Vec<u16> = field.split(',').map(|n| n.parse().unwrap()).collect();
            match numbers.as_slice() {
                [port] => *port,
                [.., high, low] => high * 256 + low,
                [] => panic!("no port after {marker:?} in {rest:?}"),
            }
        })
        .collect()
}

fn in_passive_range(ports: &[u16], outcome: &Outcome) {
    let (first, last) = PURE_FTPD_PASSIVE;
    assert_eq!(ports.len(), 2, "one per transfer:\n{outcome}");
    for port in ports {
        assert!(
            (first..=last).contains(port),
            "port {port} outside -p {first}:{last}:\n{outcome}"
        );
    }
}

#[test]
fn seed_session_active_like_the_seed() {
    let Some(outcome) = seed_session("-A") else {
        return;
    };
    outcome.expect_stdout("200 PORT command successful");
    // Pure-FTPd names the port it connects to: the one each PORT command gave.
    let given = ports_after(&outcome.stdout, "---> PORT 127,0,0,1,");
    let connected = ports_after(&outcome.stdout, "150 Connecting to port ");
    assert_eq!(given.len(), 2, "{outcome}");
    assert_eq!(given, connected, "{outcome}");
    assert!(!outcome.stdout.contains("EPSV") && !outcome.stdout.contains("PASV"));
}

/// The seed session in passive mode (`flag`): `sent` opens each data connection, its reply
/// (`reply` then the port) names a port of Pure-FTPd's passive range, and `never` is not sent.
fn passive_seed_session(flag: &str, sent: &str, reply: &str, never: &str) {
    let Some(outcome) = seed_session(flag) else {
        return;
    };
    outcome
        .expect_stdout(sent)
        .expect_stdout("150 Accepted data connection");
    let ports = ports_after(&outcome.stdout, reply);
    in_passive_range(&ports, &outcome);
    assert!(!outcome.stdout.contains(never), "{outcome}");
}

#[test]
fn seed_session_passive() {
    passive_seed_session(
        "-p",
        "---> EPSV",
        "229 Extended Passive mode OK (|||",
        "---> PORT",
    );
}

#[test]
fn pasv_without_epsv() {
    passive_seed_session(
        "--no-epsv",
        "---> PASV",
        "227 Entering Passive Mode (127,0,0,1,",
        "EPSV",
    );
}

#[test]
fn one_shot_get_resume_and_missing_file() {
    let Some(setup) = setup() else { return };
    let local = setup.local();
    let data = binary_bytes(200_000);
    fs::write(local.join("big.bin.part"), &data[..77_777]).unwrap();
    let url = setup.url("tester:secret", "/pub/big.bin");
    let outcome = ferry(&["get", &url, "-c", "-A", "--json"], "", local);
    outcome.expect_code(0);
    assert_eq!(fs::read(local.join("big.bin")).unwrap(), data);
    assert!(!local.join("big.bin.part").exists());
    let records = json_lines(&outcome.stdout);
    assert_eq!(records.len(), 1, "{outcome}");
    assert_eq!(records[0]["resumed_from"], 77_777, "{outcome}");
    assert_eq!(records[0]["bytes"], 200_000 - 77_777, "{outcome}");
    assert_eq!(records[0]["result"], "ok", "{outcome}");
    // The seed's user, its password (an e-mail address) percent-encoded in the URL.
    let seed = setup.url("ftp:abc%40any-domain.com", "/pub/readme.txt");
    ferry(&["get", &seed, "-o", "seed.txt"], "", local).expect_code(0);
    assert_eq!(fs::read(local.join("seed.txt")).unwrap(), readme_bytes());
    let missing = setup.url("tester:secret", "/pub/missing.bin");
    let outcome = ferry(&["get", &missing], "", local);
    outcome.expect_code(5);
    assert!(
        outcome.stderr.contains("550 Can't open") && outcome.stderr.contains("missing.bin"),
        "{outcome}"
    );
    assert!(!local.join("missing.bin").exists() && !local.join("missing.bin.part").exists());
}

#[test]
fn reget_continues_a_partial_download() {
    let Some(setup) = setup() else { return };
    let data = binary_bytes(200_000);
    fs::write(setup.local().join("big.bin.part"), &data[..40_000]).unwrap();
    let script = "user tester secret\ncd pub\nreget big.bin\nbye\n";
    ferry(
        &["-n", "-d", "127.0.0.1", &setup.port()],
        script,
        setup.local(),
    )
    .expect_code(0)
    .expect_stdout("---> REST 40000")
    .expect_stdout("350 Restarting at 40000")
    .expect_stdout("160000 bytes received in ");
    assert_eq!(fs::read(setup.local().join("big.bin")).unwrap(), data);
    assert!(!setup.local().join("big.bin.part").exists());
}

#[test]
fn one_shot_ls_uses_mlsd() {
    let Some(setup) = setup() else { return };
    let url = setup.url("tester:secret", "/pub");
    let outcome = ferry(&["ls", "--json", &url], "", setup.local());
    outcome.expect_code(0);
    let entries = json_lines(&outcome.stdout);
    let documented = support::documented_fields();
    for entry in &entries {
        support::expect_fields(entry, &documented.entry);
        assert_eq!(entry["source"], "mlsd", "{entry}");
        assert_eq!(entry["modify_precision"], "second", "{entry}");
    }
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["big.bin", "dos.txt", "link.txt", "readme.txt", "sub"]
    );
    let find = |name: &str| entries.iter().find(|e| e["name"] == name).unwrap();
    let readme = find("readme.txt");
    assert_eq!(readme["type"], "file");
    assert_eq!(readme["size"], 1715);
    assert_eq!(readme["modify"], "2024-05-01T12:00:00Z");
    assert_eq!(readme["permissions"], "0644");
    assert_eq!(find("big.bin")["size"], 200_000);
    assert_eq!(find("sub")["type"], "dir");
    assert_eq!(find("sub")["permissions"], "0755");
    // Pure-FTPd writes `type=OS.unix=slink:` with no target.
    let link = find("link.txt");
    assert_eq!(
        (&link["type"], &link["target"]),
        (&"link".into(), &None::<String>.into())
    );
    // Without --json, `ls` shows the server's LIST.
    ferry(&["ls", &url], "", setup.local())
        .expect_code(0)
        .expect_stdout("link.txt -> readme.txt")
        .expect_stdout("1715 May  1  2024 readme.txt");
}

#[test]
fn shell_listings_dir_mlsd_and_nlist() {
    let Some(setup) = setup() else { return };
    let script = "user ftp abc@any-domain.com\ndir pub\nmlsd pub\nnlist pub\nbye\n";
    let outcome = ferry(
        &["-n", "-d", "127.0.0.1", &setup.port()],
        script,
        setup.local(),
    );
    outcome
        .expect_code(0)
        .expect_stdout("---> LIST pub")
        .expect_stdout("-rw-r--r--    1 65534      nogroup          1715 May  1  2024 readme.txt")
        .expect_stdout("226 5 matches total")
        .expect_stdout("---> MLSD pub")
        .expect_stdout("type=file;size=1715;modify=20240501120000;UNIX.mode=0644;")
        .expect_stdout("type=OS.unix=slink:;size=10;")
        .expect_stdout("type=dir;sizd=")
        .expect_stdout("type=cdir;")
        .expect_stdout("226 7 matches total")
        .expect_stdout("---> NLST pub")
        .expect_stdout("\npub/readme.txt\n");
}

/// A library client logged in to the test's Pure-FTPd as `user`, in TYPE I.
async fn logged_in(setup: &Setup, user: &str, password: &str) -> Client {
    let config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    let mut client = Client::connect("127.0.0.1", setup.server.port, config)
        .await
        .unwrap();
    client
        .login(user, &Secret::new(password), None)
        .await
        .unwrap();
    client.set_type(TransferType::Image).await.unwrap();
    client
}

#[tokio::test]
async fn library_lists_with_mlsd_and_agrees_with_list() {
    let Some(setup) = setup() else { return };
    let mut client = logged_in(&setup, "ftp", "abc@any-domain.com").await;
    let features = client.features().await.unwrap();
    assert!(features.has("MLST") && features.has("MLSD") && features.has("MFMT"));
    // MLSD, as FEAT announces MLST; "." and ".." left out.
    let mut entries = client.entries(Some("pub"), 0).await.unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["big.bin", "dos.txt", "link.txt", "readme.txt", "sub"]
    );
    let readme = &entries[3];
    assert_eq!(readme.kind, EntryKind::File);
    assert_eq!(
        (readme.size, readme.modified, readme.mode),
        (Some(1715), Some(README_MTIME), Some(0o644))
    );
    assert_eq!(entries[2].kind, EntryKind::Symlink { target: None });
    assert_eq!(entries[4].kind, EntryKind::Directory);
    // LIST of the same folder, parsed as `ls -l`: the same names, kinds and file sizes; the
    // link's target shown; a date of another year known to the day only.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let text = client.list(Some("pub")).await.unwrap();
    let mut listed = ferry_proto::list_parse::parse_list(&text, now);
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed.len(), entries.len(), "{text}");
    for (mlsd, list) in entries.iter().zip(&listed) {
        assert_eq!(mlsd.name, list.name, "{text}");
        assert_eq!(mlsd.mode, list.mode.map(|m| m & 0o7777), "{text}");
        match (&mlsd.kind, &list.kind) {
            (EntryKind::Symlink { .. }, EntryKind::Symlink { target }) => {
                assert_eq!(target.as_deref(), Some("readme.txt"));
            }
            (a, b) => assert_eq!(a, b, "{}", mlsd.name),
        }
        if mlsd.kind == EntryKind::File {
            assert_eq!(mlsd.size, list.size, "{}", mlsd.name);
        }
    }
    assert_eq!(listed[3].modified, Some(README_MTIME - 12 * 3600));
    client.cwd("pub").await.unwrap();
    assert_eq!(client.pwd().await.unwrap(), "/pub");
    assert_eq!(client.size("big.bin").await.unwrap(), 200_000);
    assert_eq!(client.mdtm("readme.txt").await.unwrap(), README_MTIME);
    client.config_mut().data_mode = DataMode::Active;
    support::check_resumed_tail(&mut client, "big.bin", 200_000, 199_000).await;
    // Pure-FTPd's NLST names "." and ".." too.
    let mut names = client.nlst(None).await.unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            ".",
            "..",
            "big.bin",
            "dos.txt",
            "link.txt",
            "readme.txt",
            "sub"
        ]
    );
    client.quit().await.unwrap();
}

#[tokio::test]
async fn library_uploads_and_manages_files() {
    let Some(setup) = setup() else { return };
    let mut client = logged_in(&setup, "tester", "secret").await;
    let data = binary_bytes(123_456);
    client.mkdir("made").await.unwrap();
    client
        .store("made/lib.bin", &mut &data[..], 0)
        .await
        .unwrap();
    assert_eq!(
        fs::read(setup.root.path().join("made/lib.bin")).unwrap(),
        data
    );
    client
        .append("made/lib.bin", &mut &b"tail"[..])
        .await
        .unwrap();
    assert_eq!(client.size("made/lib.bin").await.unwrap(), 123_460);
    assert!(client
        .set_modified("made/lib.bin", README_MTIME)
        .await
        .unwrap());
    let modified = fs::metadata(setup.root.path().join("made/lib.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        modified,
        SystemTime::UNIX_EPOCH + Duration::from_secs(README_MTIME as u64)
    );
    client
        .rename("made/lib.bin", "made/renamed.bin")
        .await
        .unwrap();
    let mut back = Vec::new();
    client
        .retrieve("made/renamed.bin", &mut back, 0)
        .await
        .unwrap();
    assert_eq!(&back[..123_456], &data[..]);
    assert_eq!(&back[123_456..], b"tail");
    client.delete("made/renamed.bin").await.unwrap();
    client.rmdir("made").await.unwrap();
    assert!(!setup.root.path().join("made").exists());
    let error = client.delete("made").await.unwrap_err();
    assert!(error.to_string().contains("550"), "{error}");
    client.quit().await.unwrap();
}

#[test]
fn put_then_get_round_trip_is_byte_exact_in_both_modes() {
    let Some(setup) = setup() else { return };
    let data = binary_bytes(300_000);
    fs::write(setup.local().join("blob.bin"), &data).unwrap();
    for mode in ["-p", "-A"] {
        let script =
            "user tester secret\nput blob.bin up.bin\nget up.bin back.bin\nsize up.bin\nbye\n";
        let outcome = ferry(
            &["-n", "-d", mode, "127.0.0.1", &setup.port()],
            script,
            setup.local(),
        );
        outcome
            .expect_code(0)
            .expect_stdout("---> STOR up.bin")
            .expect_stdout("300000 bytes sent in ")
            .expect_stdout("\n150 293.0 kbytes to download\n")
            .expect_stdout("300000 bytes received in ")
            .expect_stdout("213 300000")
            .expect_stdout("221-Goodbye. You uploaded 293 and downloaded 293 kbytes.");
        assert_eq!(
            fs::read(setup.local().join("back.bin")).unwrap(),
            data,
            "{mode}"
        );
        let stored = setup.root.path().join("up.bin");
        assert_eq!(fs::read(&stored).unwrap(), data, "{mode}");
        // Written by the virtual user, as the uid its PureDB entry names.
        let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&stored).unwrap());
        assert_eq!(owner, 65534, "{mode}");
        fs::remove_file(setup.local().join("back.bin")).unwrap();
    }
}

#[test]
fn ascii_mode_both_ways() {
    let Some(setup) = setup() else { return };
    fs::write(setup.local().join("unix.txt"), b"one\ntwo\n").unwrap();
    let script = "user tester secret\nascii\nput unix.txt\nget pub/dos.txt dos.txt\nbye\n";
    ferry(&["-n", "127.0.0.1", &setup.port()], script, setup.local())
        .expect_code(0)
        .expect_stdout("200 TYPE is now ASCII")
        .expect_stdout("226-Warning: client is in ASCII mode - Assuming data is plain text");
    // Pure-FTPd puts a CR before each LF it sends in ASCII mode and drops every CR it gets:
    // the download's CRs reached the client, which dropped them. (What the client sends in
    // ASCII mode is checked byte for byte against a fake server in hostile.rs.)
    assert_eq!(
        fs::read(setup.root.path().join("unix.txt")).unwrap(),
        b"one\ntwo\n"
    );
    assert_eq!(fs::read(setup.local().join("dos.txt")).unwrap(), b"a\nb\n");
}

#[test]
fn mput_and_mget_with_wildcards() {
    let Some(setup) = setup() else { return };
    let local = setup.local();
    let up = local.join("up");
    fs::create_dir(&up).unwrap();
    for name in ["a.txt", "b.txt", "c.bin"] {
        fs::write(up.join(name), name.as_bytes()).unwrap();
    }
    let script = "user tester secret\nmkdir drop\ncd drop\nmkdir sub\nmput up/*.txt\nbye\n";
    ferry(&["-n", "-i", "127.0.0.1", &setup.port()], script, local)
        .expect_code(0)
        .expect_stdout("local: up/a.txt remote: a.txt")
        .expect_stdout("local: up/b.txt remote: b.txt");
    let drop = setup.root.path().join("drop");
    assert_eq!(fs::read(drop.join("a.txt")).unwrap(), b"a.txt");
    assert_eq!(fs::read(drop.join("b.txt")).unwrap(), b"b.txt");
    assert!(!drop.join("c.bin").exists());
    // mget matches its pattern against the MLSD entries, folders left out (Pure-FTPd's NLST
    // would also give ".", ".." and "sub").
    let down = local.join("down");
    fs::create_dir(&down).unwrap();
    let script = "user tester secret\nlcd down\nmget drop/*\ny\nn\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &setup.port()], script, local);
    outcome
        .expect_code(0)
        .expect_stdout("mget drop/a.txt? ")
        .expect_stdout("mget drop/b.txt? ");
    assert_eq!(outcome.stdout.matches("mget drop/").count(), 2, "{outcome}");
    let mut got: Vec<_> = fs::read_dir(&down)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["a.txt"]);
}

#[test]
fn remote_file_management_commands() {
    let Some(setup) = setup() else { return };
    let script = "user tester secret\nmkdir d\nrename pub/readme.txt d/r.txt\nmodtime d/r.txt\n\
                  pwd\nquote NOOP\nnlist d\ndelete d/r.txt\nrmdir d\nsystem\nfeat\nbye\n";
    ferry(&["-n", "127.0.0.1", &setup.port()], script, setup.local())
        .expect_code(0)
        .expect_stdout("257 \"d\" : The directory was successfully created")
        .expect_stdout("350 RNFR accepted - file exists, ready for destination")
        .expect_stdout("250 File successfully renamed or moved")
        .expect_stdout("d/r.txt\t05/01/2024 12:00:00 GMT")
        .expect_stdout("257 \"/\" is your current location")
        .expect_stdout("200 Zzz...")
        .expect_stdout("\nd/r.txt\n")
        .expect_stdout("250 Deleted d/r.txt")
        .expect_stdout("250 The directory was successfully removed")
        .expect_stdout("215 UNIX Type: L8")
        .expect_stdout("211-Extensions supported:")
        .expect_stdout("MLST type*;size*;sizd*;modify*;UNIX.mode*;");
    assert!(!setup.root.path().join("d").exists());
    assert!(!setup.root.path().join("pub/readme.txt").exists());
}

#[test]
fn wrong_password_exits_with_login_code() {
    let Some(setup) = setup() else { return };
    let outcome = ferry(
        &["127.0.0.1", &setup.port()],
        "tester\nwrong\nbye\n",
        setup.local(),
    );
    outcome
        .expect_code(4)
        .expect_stdout("530 Login authentication failed")
        .expect_stdout("Login failed.");
    let url = setup.url("tester:wrong", "/pub/readme.txt");
    let outcome = ferry(&["get", &url], "", setup.local());
    outcome.expect_code(4);
    assert!(
        outcome.stderr.contains("530 Login authentication failed"),
        "{outcome}"
    );
    // No anonymous login: the URL without a user is refused the same way.
    let anonymous = format!("ftp://127.0.0.1:{}/pub/readme.txt", setup.server.port);
    ferry(&["get", &anonymous], "", setup.local()).expect_code(4);
    assert!(!setup.local().join("readme.txt").exists());
}

#[test]
fn missing_file_in_a_session_exits_with_not_found() {
    let Some(setup) = setup() else { return };
    let script = "user ftp abc@any-domain.com\ncd pub\nget nope.txt\nbye\n";
    let outcome = ferry(&["-n", "127.0.0.1", &setup.port()], script, setup.local());
    outcome
        .expect_code(5)
        .expect_stdout("550 Can't open nope.txt: No such file or directory");
    assert!(!setup.local().join("nope.txt").exists());
    assert!(!setup.local().join("nope.txt.part").exists());
    let script = "user ftp abc@any-domain.com\ncd nowhere\nbye\n";
    ferry(&["-n", "127.0.0.1", &setup.port()], script, setup.local())
        .expect_code(5)
        .expect_stdout("550 Can't change directory to nowhere: No such file or directory");
}
