//! Conformance of `ferryd`'s control protocol, driven by a raw client: reply codes for bad input
//! and wrong order, sequencing (REST, RNFR/RNTO, EPSV ALL), ABOR and STAT during a transfer,
//! data-connection security, timeouts, limits and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::{read_all, readme_bytes, TestServer};

#[test]
fn bad_input_gets_the_right_codes_and_the_session_survives() {
    let server = TestServer::start();
    let mut control = server.connect();
    control.expect("LIST", 530);
    control.expect("PASS x", 503);
    control.expect("FOO bar", 500);
    control.expect("", 500);
    control.expect("SMNT /", 502);
    control.expect("TYPE E", 504);
    control.expect("TYPE Q", 501);
    let mut control = server.login("ftp");
    control.expect("RETR", 501);
    control.expect("REST abc", 501);
    control.expect("PORT 1,2,3", 501);
    control.expect("EPRT |3|x|1|", 522);
    control.expect("EPRT |2|::1|5000|", 522);
    control.expect("EPSV 3", 522);
    control.expect("RNTO x", 550);
    control.expect("STRU R", 504);
    control.expect("MODE B", 504);
    control.expect("MODE S", 200);
    control.expect("STRU F", 200);
    control.expect_text("RETR readme.txt", 425, "Use PORT or PASV first.");
    control.expect("NOOP", 200);
}

#[test]
fn overlong_lines_telnet_bytes_and_nuls() {
    let server = TestServer::start();
    let mut control = server.connect();
    let long = format!("USER {}\r\n", "x".repeat(100_000));
    control.send_raw(long.as_bytes());
    control.send_raw(b"NOOP\r\n");
    assert_eq!(control.reply().code, 500, "overlong line");
    assert_eq!(control.reply().code, 200, "the next line is intact");
    control.send_raw(b"\xff\xf4\xff\xf2NO\0OP\r\n");
    assert_eq!(control.reply().code, 200);
    control.send_raw(b"NOOP\n");
    assert_eq!(control.reply().code, 200, "bare LF accepted");
    for _ in 0..2000 {
        control.send_raw(b"\x01\x02\xfe garbage \xc3\x28\r\n");
    }
    for _ in 0..2000 {
        assert_eq!(control.reply().code, 500);
    }
    control.expect_text("SYST", 215, "UNIX Type: L8");
}

#[test]
fn paths_cannot_leave_the_root() {
    let server = TestServer::start();
    std::os::unix::fs::symlink("/etc", server.root.join("etc-link")).unwrap();
    let mut control = server.login("ftp");
    control.expect("CWD ../../../..", 250);
    control.expect_text("PWD", 257, "\"/\" is the current directory");
    control.expect("SIZE ../../../etc/passwd", 550);
    control.expect("CWD etc-link", 550);
    control.expect("SIZE etc-link/passwd", 550);
    control.expect("MLST /etc-link/hostname", 550);
    control.expect("TYPE I", 200);
    control.expect("SIZE /pub/../readme.txt", 213);
}

#[test]
fn rest_resumes_downloads_and_uploads() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    control.expect("TYPE I", 200);
    std::fs::write(server.alice_root.join("r.bin"), readme_bytes()).unwrap();
    control.expect("REST 1000", 350);
    let data = control.epsv();
    control.expect("RETR r.bin", 150);
    assert_eq!(read_all(data), readme_bytes()[1000..]);
    assert_eq!(control.reply().code, 226);

    std::fs::write(server.alice_root.join("up.bin"), &readme_bytes()[..500]).unwrap();
    control.expect("REST 500", 350);
    let mut data = control.epsv();
    control.expect("STOR up.bin", 150);
    data.write_all(&readme_bytes()[500..]).unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        std::fs::read(server.alice_root.join("up.bin")).unwrap(),
        readme_bytes()
    );

    control.expect("REST 999999", 350);
    let _data = control.epsv();
    control.expect("RETR r.bin", 554);
    control.expect("REST 5000", 350);
    control.expect("STOR up.bin", 554);
    control.expect("REST 10", 350);
    control.expect("STOR missing.bin", 554);
    assert_eq!(
        std::fs::read(server.alice_root.join("up.bin")).unwrap(),
        readme_bytes(),
        "no gap filled with zeros"
    );
}

/// REST and RNFR are for the command right after them (REST: the next transfer command,
/// with PASV, PORT or TYPE between): one that is refused, or a listing, uses them up, so that
/// a later STOR does not overwrite a file from an old offset, nor a later RNTO rename a file
/// named long before.
#[test]
fn a_refused_command_uses_up_rest_and_rnfr() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    control.expect("TYPE I", 200);
    let report = server.alice_root.join("report.txt");
    std::fs::write(&report, vec![b'o'; 5000]).unwrap();
    // A RETR refused before it runs (a private upload's name).
    control.expect("REST 1000", 350);
    control.expect("RETR .x.ferry-upload", 550);
    assert_eq!(control.upload("STOR report.txt", b"new"), 226);
    assert_eq!(std::fs::read(&report).unwrap(), b"new");
    // A listing.
    control.expect("REST 2", 350);
    let data = control.epsv();
    control.expect("NLST", 150);
    read_all(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(control.upload("STOR report.txt", b"newer"), 226);
    assert_eq!(std::fs::read(&report).unwrap(), b"newer");
    // RNFR then a failed RNFR: RNTO has nothing to rename.
    control.expect("RNFR notes.txt", 350);
    control.expect("RNFR missing.txt", 550);
    control.expect("RNTO z.txt", 503);
    // A STOR refused for its form (no name) uses REST up too.
    control.expect("REST 3", 350);
    control.expect("STOR", 501);
    assert_eq!(control.upload("STOR report.txt", b"n"), 226);
    assert_eq!(std::fs::read(&report).unwrap(), b"n");
    // So does a bare RNTO after RNFR.
    control.expect("RNFR notes.txt", 350);
    control.expect("RNTO", 501);
    control.expect("RNTO z.txt", 503);
    // RNFR then an RNTO refused for its name: the next RNTO has nothing to rename either.
    control.expect("RNFR notes.txt", 350);
    control.expect("RNTO bad\u{1}name", 553);
    control.expect("RNTO c.txt", 503);
    assert!(server.alice_root.join("notes.txt").exists());
    assert!(!server.alice_root.join("z.txt").exists());
    assert!(!server.alice_root.join("c.txt").exists());
}

/// A name as long as the file system takes uploads under its private name too (atomic
/// uploads); a longer one gets 553 (a name not allowed), never 451, which clients retry.
#[test]
fn long_names_upload_whole_or_get_553() {
    let server = TestServer::start_with(|c| c.atomic_uploads = true);
    let mut control = server.login("alice");
    let name = "n".repeat(250);
    assert_eq!(control.upload(&format!("STOR {name}"), b"x"), 226);
    assert_eq!(std::fs::read(server.alice_root.join(&name)).unwrap(), b"x");
    let too_long = "n".repeat(300);
    assert_eq!(control.upload(&format!("STOR {too_long}"), b"x"), 553);
    control.expect(&format!("MKD {too_long}"), 553);
}

#[test]
fn ascii_uploads_store_lf_and_size_counts_crlf() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    let mut data = control.epsv();
    control.expect_text(
        "STOR text.txt",
        150,
        "Opening ASCII mode data connection for text.txt.",
    );
    data.write_all(b"one\r\ntwo\r\nthree\rfour\r\n").unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        std::fs::read(server.alice_root.join("text.txt")).unwrap(),
        b"one\ntwo\nthree\rfour\n"
    );
    control.expect_text("SIZE text.txt", 213, "22");
    control.expect("TYPE I", 200);
    control.expect_text("SIZE text.txt", 213, "19");
}

/// A session in the middle of sending a 64 MiB file the test does not read.
fn stuck_download(server: &TestServer) -> (support::Control, TcpStream) {
    let file = std::fs::File::create(server.root.join("huge.bin")).unwrap();
    file.set_len(64 * 1024 * 1024).unwrap();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect("RETR huge.bin", 150);
    (control, data)
}

#[test]
fn abor_during_a_transfer_keeps_the_session() {
    let server = TestServer::start();
    let (mut control, data) = stuck_download(&server);
    let status = control.expect("STAT", 213);
    assert!(
        status.text().starts_with("Status: RETR /huge.bin"),
        "{status:?}"
    );
    control.expect("NOOP", 200);
    control.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(control.reply().code, 426);
    assert_eq!(control.reply().code, 226);
    drop(data);
    control.expect("PWD", 257);
    let data = control.epsv();
    control.expect("RETR readme.txt", 150);
    assert_eq!(read_all(data), readme_bytes());
    assert_eq!(control.reply().code, 226);
    control.expect("ABOR", 225);
}

/// Sends STAT until the running upload has received `bytes` (at most 10 s).
fn wait_until_received(control: &mut support::Control, bytes: usize) {
    let wanted = format!(", {bytes} bytes received.");
    for _ in 0..1000 {
        if control.expect("STAT", 213).text().ends_with(&wanted) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the server never received {bytes} bytes");
}

#[test]
fn abor_during_a_binary_upload_stops_writing_and_the_upload_resumes() {
    let server = TestServer::start();
    let path = server.alice_root.join("part.bin");
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut control = server.login("alice");
    control.expect("TYPE I", 200);
    let mut data = control.epsv();
    control.expect("STOR part.bin", 150);
    data.write_all(&body[..1 << 20]).unwrap();
    wait_until_received(&mut control, 1 << 20);
    control.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(control.reply().code, 426);
    assert_eq!(control.reply().code, 226);
    let kept = std::fs::metadata(&path).unwrap().len() as usize;
    assert_eq!(kept, 1 << 20, "everything received before ABOR is written");
    // What the client still sends on the aborted connection goes nowhere.
    let _ = data.write_all(&body[kept..2 << 20]);
    drop(data);
    control.expect("NOOP", 200);
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, kept);

    control.expect(&format!("REST {kept}"), 350);
    let mut data = control.epsv();
    control.expect("STOR part.bin", 150);
    data.write_all(&body[kept..]).unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert!(
        std::fs::read(&path).unwrap() == body,
        "resumed upload differs"
    );
}

#[test]
fn a_stalled_upload_gets_426_and_keeps_what_arrived() {
    let server = TestServer::start_with(|c| c.timeouts.stalled_transfer = 1);
    let mut control = server.login("alice");
    control.expect("TYPE I", 200);
    let mut data = control.epsv();
    control.expect("STOR slow.bin", 150);
    data.write_all(b"the first bytes").unwrap();
    let started = std::time::Instant::now();
    assert_eq!(control.reply().code, 426);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        std::fs::read(server.alice_root.join("slow.bin")).unwrap(),
        b"the first bytes"
    );
    control.expect("NOOP", 200);
}

/// A download is sent whether the client connects to the passive port before RETR (sent at
/// once, 150 and 226 together) or only after the 150 (sent by a transfer task), and with a
/// REST offset either way.
#[test]
fn passive_downloads_work_whenever_the_client_connects() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect_text(
        "RETR readme.txt",
        150,
        "Opening BINARY mode data connection for readme.txt (1715 bytes).",
    );
    assert_eq!(read_all(data), readme_bytes());
    assert_eq!(control.reply().code, 226);

    let reply = control.expect("EPSV", 229);
    let port = ferry_proto::hostport::parse_epsv_reply(reply.text()).unwrap();
    control.expect("REST 1000", 350);
    control.expect("RETR readme.txt", 150);
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_all(data), readme_bytes()[1000..]);
    assert_eq!(control.reply().code, 226);

    control.expect("REST 1715", 350);
    let data = control.epsv();
    control.expect("RETR readme.txt", 150);
    assert!(read_all(data).is_empty());
    assert_eq!(control.reply().code, 226);
}

#[test]
fn commands_sent_during_a_transfer_are_answered_after_it() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect("RETR big.bin", 150);
    control.send("PWD");
    let body = read_all(data);
    assert_eq!(body.len(), 4 * 1024 * 1024);
    assert_eq!(control.reply().code, 226);
    assert_eq!(control.reply().code, 257);
}

#[test]
fn port_to_another_host_or_a_low_port_is_refused_before_connecting() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    let Ok(elsewhere) = TcpListener::bind("127.0.0.2:0") else {
        support::skip("127.0.0.2 not available");
        return;
    };
    elsewhere.set_nonblocking(true).unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    control.expect(&format!("PORT 127,0,0,2,{},{}", port >> 8, port & 255), 500);
    control.expect(&format!("EPRT |1|127.0.0.2|{port}|"), 500);
    control.expect("PORT 127,0,0,1,0,21", 500);
    control.expect("NLST", 425);
    assert!(
        elsewhere.accept().is_err(),
        "no connection may reach the third party"
    );
}

#[test]
fn passive_connections_from_other_addresses_are_dropped() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let reply = control.expect("EPSV", 229);
    let port = ferry_proto::hostport::parse_epsv_reply(reply.text()).unwrap();
    let socket = socket_from("127.0.0.2");
    let Some(socket) = socket else {
        support::skip("127.0.0.2 not available");
        return;
    };
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut thief = socket.connect(target).expect("connect from 127.0.0.2");
    let right = TcpStream::connect(target).unwrap();
    control.expect("RETR readme.txt", 150);
    assert_eq!(read_all(right), readme_bytes());
    assert_eq!(control.reply().code, 226);
    let mut stolen = Vec::new();
    thief
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = thief.read_to_end(&mut stolen);
    assert!(stolen.is_empty(), "no byte goes to another address");
}

fn socket_from(ip: &str) -> Option<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let local: SocketAddr = format!("{ip}:0").parse().ok()?;
    socket.bind(&local.into()).ok()?;
    Some(socket)
}

trait ConnectExt {
    fn connect(self, target: SocketAddr) -> std::io::Result<TcpStream>;
}

impl ConnectExt for socket2::Socket {
    fn connect(self, target: SocketAddr) -> std::io::Result<TcpStream> {
        socket2::Socket::connect(&self, &target.into())?;
        Ok(self.into())
    }
}

#[test]
fn epsv_all_locks_out_port_and_pasv() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    control.expect("PASV", 227);
    control.expect("EPSV ALL", 200);
    control.expect("PASV", 503);
    control.expect("PORT 127,0,0,1,200,1", 503);
    let data = control.epsv();
    control.expect("NLST", 150);
    let names = String::from_utf8(read_all(data)).unwrap();
    assert_eq!(names, "big.bin\r\nmy file ü.txt\r\npub\r\nreadme.txt\r\n");
    assert_eq!(control.reply().code, 226);
}

#[test]
fn pasv_reply_and_port_range() {
    let server = TestServer::start_with(|c| c.data.passive_ports = Some("41000-41010".into()));
    let mut control = server.login("ftp");
    for _ in 0..5 {
        let reply = control.expect("PASV", 227);
        assert!(
            reply
                .text()
                .starts_with("Entering Passive Mode (127,0,0,1,"),
            "{reply:?}"
        );
        let addr = ferry_proto::hostport::parse_pasv_reply(reply.text()).unwrap();
        assert!((41000..=41010).contains(&addr.port()), "{addr}");
    }
}

#[test]
fn a_session_gets_its_passive_port_again_and_stale_connections_are_dropped() {
    let server = TestServer::start_with(|c| c.data.passive_ports = Some("41020-41030".into()));
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let first = control.expect("EPSV", 229);
    let port = ferry_proto::hostport::parse_epsv_reply(first.text()).unwrap();
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    control.expect("RETR readme.txt", 150);
    assert_eq!(read_all(data), readme_bytes());
    assert_eq!(control.reply().code, 226);

    // The next EPSV offers the same port; a connection made for it but not used (the RETR
    // fails) must not become the data connection of the transfer after.
    let again = control.expect("EPSV", 229);
    assert_eq!(
        ferry_proto::hostport::parse_epsv_reply(again.text()).ok(),
        Some(port)
    );
    let stale = TcpStream::connect(("127.0.0.1", port)).unwrap();
    control.expect("RETR no-such-file", 550);
    let third = control.expect("EPSV", 229);
    assert_eq!(
        ferry_proto::hostport::parse_epsv_reply(third.text()).ok(),
        Some(port)
    );
    let fresh = TcpStream::connect(("127.0.0.1", port)).unwrap();
    control.expect("RETR readme.txt", 150);
    assert_eq!(read_all(fresh), readme_bytes());
    assert_eq!(control.reply().code, 226);
    assert!(
        read_all(stale).is_empty(),
        "the stale connection is closed, not served"
    );
}

#[test]
fn data_connection_that_never_comes_gets_425() {
    let server = TestServer::start_with(|c| c.timeouts.data_connect = 1);
    let mut control = server.login("ftp");
    control.expect("EPSV", 229);
    control.expect("RETR readme.txt", 150);
    assert_eq!(control.reply().code, 425);
    control.expect("NOOP", 200);
}

#[test]
fn mlst_mlsd_feat_and_opts() {
    let server = TestServer::start();
    let mut control = server.login("ftp");
    let feat = control.expect("FEAT", 211);
    assert_eq!(
        feat.lines,
        vec![
            "211-Features:",
            " EPRT",
            " EPSV",
            " MDTM",
            " MFMT",
            " MLST type*;size*;modify*;perm*;unix.mode*;",
            " MODE Z",
            " PASV",
            " REST STREAM",
            " SIZE",
            " TVFS",
            " UTF8",
            " HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32",
            " XSHA256",
            " XSHA512",
            " XSHA1",
            " XMD5",
            " XCRC",
            "211 End"
        ]
    );
    control.expect("OPTS UTF8 ON", 200);
    let mlst = control.expect("MLST readme.txt", 250);
    assert_eq!(mlst.lines.len(), 3, "{mlst:?}");
    assert_eq!(mlst.lines[0], "250-Listing /readme.txt");
    assert!(
        mlst.lines[1].starts_with(" type=file;size=1715;modify="),
        "{mlst:?}"
    );
    assert!(
        mlst.lines[1].ends_with(";perm=r;unix.mode=0644; /readme.txt"),
        "{mlst:?}"
    );
    control.expect_text("OPTS MLST size;type;", 200, "MLST OPTS type;size;");
    let mlst = control.expect("MLST pub", 250);
    assert_eq!(mlst.lines[1], " type=dir;size=4096; /pub");
    let data = control.epsv();
    control.expect("MLSD pub", 150);
    let body = String::from_utf8(read_all(data)).unwrap();
    assert_eq!(
        body,
        "type=file;size=1715; readme.txt\r\ntype=dir;size=4096; sub\r\n"
    );
    assert_eq!(control.reply().code, 226);
    let _data = control.epsv();
    control.expect("MLSD readme.txt", 501);
    control.expect("MDTM pub", 550);
    let mdtm = control.expect("MDTM readme.txt", 213);
    assert_eq!(mdtm.text().len(), 14);
}

#[test]
fn list_options_patterns_and_single_files() {
    let server = TestServer::start();
    std::fs::write(server.root.join(".hidden"), "x").unwrap();
    let mut control = server.login("ftp");
    let listing = |control: &mut support::Control, command: &str| {
        let data = control.epsv();
        control.expect(command, 150);
        let body = String::from_utf8(read_all(data)).unwrap();
        assert_eq!(control.reply().code, 226);
        body
    };
    assert!(!listing(&mut control, "LIST").contains(".hidden"));
    assert!(listing(&mut control, "LIST -la").contains(" .hidden\r\n"));
    assert_eq!(
        listing(&mut control, "NLST *.txt"),
        "my file ü.txt\r\nreadme.txt\r\n"
    );
    assert_eq!(
        listing(&mut control, "NLST pub/*.txt"),
        "pub/readme.txt\r\n"
    );
    let single = listing(&mut control, "LIST my file ü.txt");
    assert!(
        single.ends_with(" my file ü.txt\r\n") && single.lines().count() == 1,
        "{single}"
    );
    let data = control.epsv();
    control.expect("LIST nothing-here", 550);
    drop(data);
}

#[test]
fn accounts_and_permissions() {
    let server = TestServer::start();
    let mut control = server.connect();
    control.expect("USER alice", 331);
    control.expect_text("PASS wrong", 530, "Login incorrect.");
    control.expect("USER nobody", 331);
    control.expect_text("PASS wrong", 530, "Login incorrect.");
    control.expect("USER alice", 331);
    let welcome = control.expect(&format!("PASS {}", support::PASSWORD), 230);
    assert_eq!(welcome.lines[1], "230 User alice logged in.");
    control.expect("USER bob", 530);
    control.expect("RNTO x", 503);
    control.expect("RNFR notes.txt", 350);
    control.expect("NOOP", 200);
    control.expect("RNTO x", 503);
    control.expect_text("MKD new dir", 257, "\"/new dir\" created");
    control.expect("CWD new dir", 250);
    control.expect_text("PWD", 257, "\"/new dir\" is the current directory");
    control.expect("CDUP", 250);
    control.expect("RNFR new dir", 350);
    control.expect("RNTO renamed", 250);
    control.expect("RMD renamed", 250);
    control.expect("RMD renamed", 550);
    control.expect("SITE CHMOD 600 notes.txt", 200);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.alice_root.join("notes.txt"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    control.expect("SITE CHMOD 99 notes.txt", 501);
    control.expect("DELE notes.txt", 250);
    assert!(!server.alice_root.join("notes.txt").exists());

    let mut bob = server.login("bob");
    for command in [
        "STOR x",
        "APPE x",
        "STOU",
        "DELE notes.txt",
        "MKD d",
        "RMD d",
        "RNFR notes.txt",
        "SITE CHMOD 777 .",
    ] {
        bob.expect(command, 550);
    }
    let mut anonymous = server.login("anonymous");
    anonymous.expect("STOR readme.txt", 550);
    anonymous.expect("DELE readme.txt", 550);
    assert_eq!(
        std::fs::read(server.root.join("readme.txt")).unwrap(),
        readme_bytes()
    );
}

#[test]
fn stou_appe_and_rein() {
    let server = TestServer::start();
    let mut control = server.login("alice");
    let mut data = control.epsv();
    let reply = control.expect("STOU", 150);
    let name = reply
        .text()
        .strip_prefix("FILE: ")
        .expect("150 FILE: name")
        .to_string();
    data.write_all(b"unique").unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        std::fs::read(server.alice_root.join(&name)).unwrap(),
        b"unique"
    );
    let mut data = control.epsv();
    control.expect(&format!("APPE {name}"), 150);
    data.write_all(b" and more").unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        std::fs::read(server.alice_root.join(&name)).unwrap(),
        b"unique and more"
    );
    control.expect("REIN", 220);
    control.expect("PWD", 530);
}

#[test]
fn help_stat_and_syst() {
    let server = TestServer::start();
    let mut control = server.connect();
    let help = control.expect("HELP", 214);
    assert!(help.lines.iter().any(|l| l.contains("RETR")), "{help:?}");
    control.expect("HELP RETR", 214);
    control.expect("HELP SMNT", 502);
    let stat = control.expect("STAT", 211);
    assert!(
        stat.lines.iter().any(|l| l.contains("Not logged in")),
        "{stat:?}"
    );
    let mut control = server.login("ftp");
    let stat = control.expect("STAT readme.txt", 213);
    assert!(
        stat.lines.iter().any(|l| l.ends_with(" readme.txt")),
        "{stat:?}"
    );
    let stat = control.expect("STAT", 211);
    assert!(
        stat.lines.iter().any(|l| l.contains("Logged in as ftp")),
        "{stat:?}"
    );
}

#[test]
fn idle_and_login_timeouts_close_the_session() {
    use std::time::{Duration, Instant};
    let server = TestServer::start_with(|c| {
        c.timeouts.idle = 3;
        c.timeouts.login = 2;
    });
    let connected = Instant::now();
    let mut waiting = server.connect();
    let mut idle = server.login("ftp");
    // Commands do not extend the time a client has to log in: after NOOPs until about 1 s, the
    // session still ends 2 s after it connected, not 2 s after its last NOOP (as it would if
    // each command restarted the clock), nor 3 s after it (the idle timeout). The bound is
    // taken from the last NOOP, so that a slow machine cannot make it fail.
    let mut last_noop = Duration::ZERO;
    for _ in 0..10 {
        if connected.elapsed() >= Duration::from_millis(1000) {
            break;
        }
        waiting.expect("NOOP", 200);
        last_noop = connected.elapsed();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(waiting.reply().code, 421);
    let waited = connected.elapsed();
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(
        waited < last_noop + Duration::from_secs(2),
        "closed after {waited:?}, last NOOP at {last_noop:?}"
    );
    assert!(waiting.is_closed());
    // The logged-in session ends after 3 s without a command.
    assert_eq!(idle.reply().code, 421);
    let idled = connected.elapsed();
    assert!(idled >= Duration::from_millis(2900), "{idled:?}");
    assert!(idle.is_closed());
}

/// The idle timeout counts from a logged-in session's last command or the end of its last
/// transfer, however many commands it sent before (each used to move the deadline later when
/// the timer went off, so that such a session never timed out).
#[test]
fn a_session_that_worked_then_idles_times_out() {
    use std::time::{Duration, Instant};
    let server = TestServer::start_with(|c| c.timeouts.idle = 1);
    let mut session = server.login("ftp");
    for _ in 0..3 {
        session.expect("NOOP", 200);
        std::thread::sleep(Duration::from_millis(400));
    }
    let data = session.epsv();
    // Before LIST: the server's idle time starts after its 226, later than this.
    let listed = Instant::now();
    session.expect("LIST", 150);
    assert!(!read_all(data).is_empty());
    assert_eq!(session.reply().code, 226);
    assert_eq!(session.reply().code, 421);
    let idled = listed.elapsed();
    assert!(idled >= Duration::from_millis(1000), "{idled:?}");
    assert!(idled < Duration::from_secs(5), "{idled:?}");
    assert!(session.is_closed());
}

/// A command that runs longer than the idle timeout (here a HASH of a sparse file of 1 GiB or
/// more) is not followed at once by a 421: the idle time counts from its reply.
#[test]
fn the_idle_time_counts_from_the_end_of_a_long_command() {
    use std::time::{Duration, Instant};
    let server = TestServer::start_with(|c| c.timeouts.idle = 1);
    let file = std::fs::File::create(server.alice_root.join("sparse.bin")).unwrap();
    let mut session = server.login("alice");
    // 1 GiB takes about 3 s here; a machine with SHA instructions may need more to outlast
    // the idle timeout (up to 3.5 GiB, under the checksums' size limit).
    let mut answered = Instant::now();
    let mut outlasted = false;
    for size in [1u64 << 30, 7 << 29] {
        file.set_len(size).unwrap();
        let asked = Instant::now();
        session.expect("HASH sparse.bin", 213);
        answered = Instant::now();
        if answered - asked > Duration::from_millis(1200) {
            outlasted = true;
            break;
        }
        session.expect("NOOP", 200);
    }
    assert!(
        outlasted,
        "the HASH must outlast the idle timeout for this test to mean anything"
    );
    session.expect("NOOP", 200);
    assert_eq!(session.reply().code, 421);
    let idled = answered.elapsed();
    assert!(idled >= Duration::from_millis(900), "{idled:?}");
}

#[test]
fn too_many_sessions_get_421() {
    let server = TestServer::start_with(|c| c.max_sessions = 2);
    let _one = server.connect();
    let _two = server.connect();
    let mut three = support::Control::connect(server.addr);
    let reply = three.reply();
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(three.is_closed());
}

#[test]
fn graceful_shutdown_lets_transfers_finish() {
    let mut server = TestServer::start();
    let mut idle = server.login("ftp");
    let mut busy = server.login("ftp");
    busy.expect("TYPE I", 200);
    let data = busy.epsv();
    busy.expect("RETR big.bin", 150);
    let addr = server.addr;
    let stopper = std::thread::spawn(move || {
        server.stop();
        server
    });
    assert_eq!(idle.reply().lines, vec!["421 Server shutting down."]);
    assert_eq!(
        read_all(data).len(),
        4 * 1024 * 1024,
        "the running transfer finishes"
    );
    assert_eq!(busy.reply().code, 226);
    assert_eq!(busy.reply().code, 421);
    let _server = stopper.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}

#[test]
fn ipv6_listener_with_eprt_and_epsv() {
    let Ok(probe) = TcpListener::bind("[::1]:0") else {
        support::skip("::1 not available");
        return;
    };
    drop(probe);
    let server = TestServer::start_on("[::1]:0", |_| {});
    let mut control = server.login("ftp");
    control.expect("PASV", 522);
    control.expect("EPSV 1", 522);
    let data = control.epsv();
    control.expect("RETR readme.txt", 150);
    assert_eq!(
        read_all(data).len(),
        1715 + readme_bytes().iter().filter(|&&b| b == b'\n').count()
    );
    assert_eq!(control.reply().code, 226);
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    control.expect_text(
        &format!("EPRT |2|::1|{port}|"),
        200,
        "EPRT command successful.",
    );
    control.expect("TYPE I", 200);
    control.expect("RETR readme.txt", 150);
    let (stream, from) = listener.accept().unwrap();
    assert_eq!(from.port(), server.port() - 1);
    assert_eq!(read_all(stream), readme_bytes());
    assert_eq!(control.reply().code, 226);
}

#[test]
fn pasv_advertises_the_configured_address() {
    let server =
        TestServer::start_with(|c| c.data.passive_address = Some("127.0.0.3".parse().unwrap()));
    let mut control = server.login("ftp");
    let reply = control.expect("PASV", 227);
    assert!(
        reply
            .text()
            .starts_with("Entering Passive Mode (127,0,0,3,"),
        "{reply:?}"
    );
}

#[test]
fn the_idle_timeout_never_ends_a_running_transfer() {
    let server = TestServer::start_with(|c| {
        c.timeouts.idle = 1;
        // 4 MiB at 1 MiB/s (with 1 MiB of burst): about three seconds, three idle timeouts.
        c.limits.download_rate = 1024 * 1024;
    });
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect("RETR big.bin", 150);
    assert_eq!(read_all(data).len(), 4 * 1024 * 1024);
    assert_eq!(control.reply().code, 226);
    assert_eq!(
        control.reply().code,
        421,
        "idle again after the transfer: the timeout applies"
    );
}

#[test]
fn a_client_that_never_reads_its_replies_is_disconnected() {
    let server = TestServer::start_with(|c| c.timeouts.stalled_transfer = 1);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = ConnectExt::connect(socket, server.addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let batch = "NOOP\r\n".repeat(10_000);
    let mut ended = None;
    for _ in 0..400 {
        if let Err(error) = stream.write_all(batch.as_bytes()) {
            ended = Some(error.kind());
            break;
        }
    }
    // The server closed the connection (reset or broken pipe); our own write timeout (a
    // server that just stopped reading) would be WouldBlock or TimedOut.
    let kind = ended.expect("the server kept reading a client that never reads");
    assert!(
        !matches!(
            kind,
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{kind:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// ABOR sent as TCP urgent data (as Python's ftplib sends it: the whole line with MSG_OOB, so
/// its last byte is the urgent one) stays in the command stream, also on a connection that
/// queued before the server started on a listener it did not bind (as with systemd's socket
/// activation): the options a control connection needs are set on each such connection.
#[test]
fn urgent_abor_stays_inline_on_connections_queued_before_the_server_started() {
    let root = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let early = TcpStream::connect(addr).unwrap();
    let config = ferry_server::Config {
        root: root.path().to_path_buf(),
        ..ferry_server::Config::default()
    };
    let context = std::sync::Arc::new(ferry_server::Context::new(config).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ferry_server::run(listener, context, async {
                let _ = stopped.await;
            })
            .await;
        });
    });
    let late = TcpStream::connect(addr).unwrap();
    for (name, stream) in [("queued", early), ("late", late)] {
        let urgent = stream.try_clone().unwrap();
        let mut control = support::Control::over(stream);
        assert_eq!(control.reply().code, 220, "{name}");
        control.expect("USER ftp", 331);
        control.expect("PASS guest@", 230);
        socket2::SockRef::from(&urgent)
            .send_out_of_band(b"ABOR\r\n")
            .unwrap();
        let abor = control.reply();
        assert_eq!(abor.code, 225, "{name}: {abor:?}");
        control.expect("NOOP", 200);
    }
    stop.send(()).unwrap();
    serving.join().unwrap();
}
