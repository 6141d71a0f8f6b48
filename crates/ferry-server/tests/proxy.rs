//! The PROXY protocol (v1, v2) on the control listener and on passive data connections: who
//! may send a header, what happens without one, and that the header's source address is the
//! client everywhere (limits, bans, PORT, passive peer checks). Ends with HAProxy in front.
//!
//! Every address here is on loopback: headers name sources like 127.0.0.9, which active
//! connections can still reach.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ferry_server::config::Config;
use support::{Control, Ferryd, TestServer};

/// The v2 header's signature.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\x00\r\nQUIT\n";

/// A v1 header: a TCP4 connection from `source` to `destination`.
fn v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// A v2 header: a TCP over IPv4 connection from `source` to `destination` (command PROXY).
fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(from), IpAddr::V4(to)) = (source.ip(), destination.ip()) else {
        panic!("IPv4 only");
    };
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&12u16.to_be_bytes());
    header.extend_from_slice(&from.octets());
    header.extend_from_slice(&to.octets());
    header.extend_from_slice(&source.port().to_be_bytes());
    header.extend_from_slice(&destination.port().to_be_bytes());
    header
}

/// A v2 LOCAL header (HAProxy's health checks): no addresses.
fn v2_local() -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x20, 0x00, 0, 0]);
    header
}

/// A client at `ip` (port 40000), as a header names it.
fn client(ip: [u8; 4]) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(ip), 40000))
}

/// A server that requires the PROXY protocol from 127.0.0.1 (where the tests connect from).
fn proxied_server(adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|config| {
        config.proxy_protocol.from = vec!["127.0.0.1/32".into()];
        adjust(config);
    })
}

/// A control connection that sends `header` first.
fn connect_with(server: &TestServer, header: &[u8]) -> Control {
    let mut control = Control::connect(server.addr);
    control.send_raw(header);
    control
}

/// A control connection as `source` through a proxy sending a v1 header; greeting read.
fn greeted_as(server: &TestServer, source: SocketAddr) -> Control {
    let mut control = connect_with(server, &v1(source, server.addr));
    let greeting = control.reply();
    assert_eq!(greeting.code, 220, "{greeting:?}");
    control
}

/// Asserts that the server closes `stream` within `within` without sending a single byte (a
/// reset counts as closed: the server may close with the client's bytes unread).
fn assert_closed_silently(stream: &TcpStream, within: Duration) {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut bytes = [0u8; 256];
    match (&*stream).read(&mut bytes) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {:?}", String::from_utf8_lossy(&bytes[..n])),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within {within:?}: {e}"),
    }
}

/// EPSV, then a data connection to its port that starts with `header`.
fn data_with_header(control: &mut Control, header: &[u8]) -> TcpStream {
    let reply = control.expect("EPSV", 229);
    let port = ferry_proto::hostport::parse_epsv_reply(reply.text()).expect("EPSV port");
    let mut data = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to EPSV port");
    data.write_all(header).unwrap();
    data
}

#[test]
fn a_v1_header_names_the_client_for_the_per_address_limit() {
    let server = proxied_server(|config| config.limits.max_sessions_per_ip = 1);
    let nine = client([127, 0, 0, 9]);
    let mut first = greeted_as(&server, nine);
    // From the same TCP address as the first, but another client: admitted.
    let mut other = greeted_as(&server, client([127, 0, 0, 10]));
    // The same client as the first, through another proxy connection: over its limit.
    let mut again = connect_with(&server, &v1(nine, server.addr));
    let refused = again.reply();
    assert_eq!(refused.code, 421, "{refused:?}");
    assert!(
        refused.text().contains("Too many connections"),
        "{refused:?}"
    );
    first.expect("NOOP", 200);
    other.expect("NOOP", 200);
}

#[test]
fn what_follows_the_header_in_the_same_segment_is_the_first_command() {
    let server = proxied_server(|_| {});
    let mut header = v1(client([127, 0, 0, 9]), server.addr);
    header.extend_from_slice(b"NOOP\r\n");
    let mut control = connect_with(&server, &header);
    assert_eq!(control.reply().code, 220);
    assert_eq!(control.reply().code, 200);
    control.expect("STAT", 211);
}

#[test]
fn a_v2_header_names_the_client_for_port_and_active_transfers() {
    let server = proxied_server(|_| {});
    let nine = client([127, 0, 0, 9]);
    let mut control = connect_with(&server, &v2(nine, server.addr));
    assert_eq!(control.reply().code, 220);
    control.expect("USER ftp", 331);
    control.expect("PASS a@b.c", 230);
    // The TCP peer's address is not the client's any more.
    let refused = control.expect("PORT 127,0,0,1,156,64", 500);
    assert!(refused.text().contains("must be yours"), "{refused:?}");
    // The header's is, and ferryd connects to it.
    let listener = TcpListener::bind("127.0.0.9:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    control.expect(&format!("EPRT |1|127.0.0.9|{port}|"), 200);
    control.expect("TYPE I", 200);
    control.send("RETR readme.txt");
    let (data, from) = listener.accept().unwrap();
    assert_eq!(from.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_eq!(support::read_all(data), support::readme_bytes());
    assert_eq!(control.reply().code, 150);
    assert_eq!(control.reply().code, 226);
}

#[test]
fn failed_logins_ban_the_header_address() {
    let server = proxied_server(|config| {
        config.limits.max_login_failures = 1;
        config.limits.ban_after_failures = 2;
    });
    let nine = client([127, 0, 0, 9]);
    for _ in 0..2 {
        let mut control = greeted_as(&server, nine);
        control.expect("USER alice", 331);
        control.expect("PASS wrong", 530);
        // One failure per session here: closed after it.
        assert_eq!(control.reply().code, 421);
        assert!(control.is_closed());
    }
    let mut banned = connect_with(&server, &v1(nine, server.addr));
    let refused = banned.reply();
    assert_eq!(refused.code, 421, "{refused:?}");
    assert!(refused.text().contains("failed logins"), "{refused:?}");
    // Another client behind the same proxy is not banned.
    let mut other = greeted_as(&server, client([127, 0, 0, 10]));
    other.expect("USER alice", 331);
    other.expect(&format!("PASS {}", support::PASSWORD), 230);
}

#[test]
fn a_connection_without_a_header_gets_no_greeting() {
    let server = proxied_server(|config| config.timeouts.login = 1);
    let started = Instant::now();
    let silent = TcpStream::connect(server.addr).unwrap();
    assert_closed_silently(&silent, Duration::from_secs(10));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the login timeout: {:?}",
        started.elapsed()
    );
    // A client that speaks FTP straight away is closed at once, not at the timeout.
    let server = proxied_server(|_| {});
    let mut eager = TcpStream::connect(server.addr).unwrap();
    eager.write_all(b"USER ftp\r\n").unwrap();
    assert_closed_silently(&eager, Duration::from_secs(5));
}

#[test]
fn malformed_headers_are_closed_without_a_greeting() {
    let server = proxied_server(|_| {});
    let mut bad_version = v2(client([127, 0, 0, 9]), server.addr);
    bad_version[12] = 0x31;
    let mut too_long = b"PROXY TCP4 ".to_vec();
    too_long.extend_from_slice(&[b'1'; 120]);
    for garbage in [
        b"PROXY TCP4 127.0.0.9 nonsense 1 2\r\n".to_vec(),
        b"PROXY SCTP 127.0.0.9 127.0.0.1 1 2\r\n".to_vec(),
        bad_version,
        too_long,
    ] {
        let control = connect_with(&server, &garbage);
        assert_closed_silently(&control.stream, Duration::from_secs(5));
    }
    // The server is still well.
    greeted_as(&server, client([127, 0, 0, 9])).expect("NOOP", 200);
}

#[test]
fn a_header_from_an_untrusted_address_is_refused() {
    let server = TestServer::start_with(|config| {
        config.proxy_protocol.from = vec!["127.0.0.2/32".into()];
    });
    // From 127.0.0.1, with a perfectly good header.
    let control = connect_with(&server, &v2(client([127, 0, 0, 9]), server.addr));
    assert_closed_silently(&control.stream, Duration::from_secs(5));
    let plain = TcpStream::connect(server.addr).unwrap();
    assert_closed_silently(&plain, Duration::from_secs(5));
}

#[test]
fn health_checks_are_closed_quietly() {
    let server = proxied_server(|_| {});
    for header in [v2_local(), b"PROXY UNKNOWN\r\n".to_vec()] {
        let control = connect_with(&server, &header);
        assert_closed_silently(&control.stream, Duration::from_secs(5));
    }
    greeted_as(&server, client([127, 0, 0, 9])).expect("NOOP", 200);
}

#[test]
fn without_trusted_networks_a_header_is_just_a_bad_command() {
    let server = TestServer::start();
    let mut control = server.connect();
    control.send_raw(&v1(client([127, 0, 0, 9]), server.addr));
    assert_eq!(control.reply().code, 500);
    control.expect("NOOP", 200);
    // v2's signature holds a QUIT line, there so that a server that does not expect the
    // header ends the session: ferryd then does.
    let mut binary = server.connect();
    binary.send_raw(&v2(client([127, 0, 0, 9]), server.addr));
    let mut codes = Vec::new();
    for _ in 0..5 {
        let code = binary.reply().code;
        codes.push(code);
        if code == 221 {
            break;
        }
    }
    assert_eq!(codes.last(), Some(&221), "{codes:?}");
    assert!(binary.is_closed());
}

#[test]
fn passive_data_connections_must_name_the_controls_client() {
    let server = proxied_server(|config| config.timeouts.data_connect = 2);
    let nine = client([127, 0, 0, 9]);
    let mut control = greeted_as(&server, nine);
    control.expect("USER ftp", 331);
    control.expect("PASS a@b.c", 230);
    control.expect("TYPE I", 200);

    // Another client's header: dropped, as a connection from another address is.
    let stranger = data_with_header(&mut control, &v2(client([127, 0, 0, 10]), server.addr));
    control.send("RETR readme.txt");
    assert_closed_silently(&stranger, Duration::from_secs(5));
    assert_eq!(control.reply().code, 150);
    assert_eq!(control.reply().code, 425);

    // No header at all, from the trusted address: dropped too.
    let bare = data_with_header(&mut control, b"");
    control.send("RETR readme.txt");
    assert_closed_silently(&bare, Duration::from_secs(5));
    assert_eq!(control.reply().code, 150);
    assert_eq!(control.reply().code, 425);

    // The client's own: served, byte for byte (v2 and v1).
    let big = std::fs::read(server.root.join("big.bin")).unwrap();
    let data = data_with_header(&mut control, &v2(nine, server.addr));
    control.send("RETR big.bin");
    assert_eq!(support::read_all(data), big);
    assert_eq!(control.reply().code, 150);
    assert_eq!(control.reply().code, 226);
    let data = data_with_header(&mut control, &v1(nine, server.addr));
    control.send("RETR readme.txt");
    assert_eq!(support::read_all(data), support::readme_bytes());
    assert_eq!(control.reply().code, 150);
    assert_eq!(control.reply().code, 226);
}

#[test]
fn an_upload_sent_with_its_header_in_one_segment_arrives_whole() {
    let server = proxied_server(|_| {});
    let nine = client([127, 0, 0, 9]);
    let mut control = greeted_as(&server, nine);
    control.expect("USER alice", 331);
    control.expect(&format!("PASS {}", support::PASSWORD), 230);
    control.expect("TYPE I", 200);
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut first_write = v2(nine, server.addr);
    first_write.extend_from_slice(&content[..1000]);
    let mut data = data_with_header(&mut control, &first_write);
    control.send("STOR upload.bin");
    assert_eq!(control.reply().code, 150);
    data.write_all(&content[1000..]).unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    let stored = std::fs::read(server.alice_root.join("upload.bin")).unwrap();
    assert!(stored == content, "upload differs ({} bytes)", stored.len());
}

/// Ten consecutive ports free on both 127.0.0.1 (HAProxy's side) and 127.0.0.2 (ferryd's).
fn free_port_range() -> (u16, u16) {
    let seed = std::process::id() as u16;
    for attempt in 0..200u16 {
        let start = 20000 + (seed.wrapping_mul(31).wrapping_add(attempt * 97)) % 30000;
        let all_free = (start..start + 10).all(|port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.2", port)).is_ok()
        });
        if all_free {
            return (start, start + 9);
        }
    }
    panic!("no free range of ten ports");
}

/// A HAProxy process, killed when dropped.
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HAProxy on 127.0.0.1: `front` forwards to ferryd's control port and the passive range to the
/// same ports on ferryd's address, each with a v2 header, connecting from 127.0.0.3.
fn start_haproxy(
    dir: &std::path::Path,
    front: u16,
    ferryd: SocketAddr,
    range: (u16, u16),
) -> Haproxy {
    let config = format!(
        "global\n    maxconn 100\n\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n\
         frontend control\n    bind 127.0.0.1:{front}\n    default_backend ferryd_control\n\n\
         backend ferryd_control\n    server ferryd {ferryd} send-proxy-v2 source 127.0.0.3\n\n\
         frontend passive\n    bind 127.0.0.1:{start}-{end}\n    default_backend ferryd_passive\n\n\
         backend ferryd_passive\n    server ferryd {ip} send-proxy-v2 source 127.0.0.3\n",
        start = range.0,
        end = range.1,
        ip = ferryd.ip(),
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    let child = std::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start haproxy");
    Haproxy(child)
}

/// Waits (bounded) until a greeting comes through HAProxy.
fn wait_for_greeting(front: u16, dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", front)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut greeting = [0u8; 3];
            if stream.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
    panic!("no greeting through haproxy; its log:\n{log}");
}

#[test]
fn curl_through_haproxy_with_send_proxy_v2() {
    if !support::run_tool("haproxy", &["-v"], None, None).0 {
        support::skip("haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let file: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("file.bin"), &file).unwrap();
    std::fs::write(root.join("notes.txt"), "notes\n").unwrap();
    let range = free_port_range();
    let ports = format!("{}-{}", range.0, range.1);
    let ferryd = Ferryd::start_on(
        "127.0.0.2:0",
        &root,
        &[
            "--proxy-protocol-from",
            "127.0.0.3/32",
            "--passive-ports",
            &ports,
            "--passive-address",
            "127.0.0.1",
            "--tls-self-signed",
        ],
    );
    let front = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _haproxy = start_haproxy(dir.path(), front, ferryd.addr, range);
    wait_for_greeting(front, dir.path());

    let url = format!("ftp://127.0.0.1:{front}/");
    let (ok, listing, stderr) = support::run_tool("curl", &["-s", "-S", &url], None, None);
    assert!(ok, "curl LIST: {stderr}");
    assert!(
        listing.contains("file.bin") && listing.contains("notes.txt"),
        "{listing}"
    );
    // EPSV (curl's first choice), then PASV, whose 227 names the proxy; then FTPS, whose TLS
    // handshakes follow the headers on control and data connections.
    let out = dir.path().join("out.bin");
    let ways: [&[&str]; 3] = [&[], &["--disable-epsv"], &["--ssl-reqd", "-k"]];
    for extra in ways {
        let _ = std::fs::remove_file(&out);
        let mut args = vec!["-s", "-S", "-o", out.to_str().unwrap()];
        args.extend(extra);
        let file_url = format!("{url}file.bin");
        args.push(&file_url);
        let (ok, _, stderr) = support::run_tool("curl", &args, None, None);
        assert!(ok, "curl {extra:?}: {stderr}");
        assert!(
            std::fs::read(&out).unwrap() == file,
            "download differs ({extra:?})"
        );
    }
    let log = ferryd.log();
    assert!(log.contains("connect peer=127.0.0.1:"), "{log}");
    assert!(
        !log.contains("peer=127.0.0.3"),
        "the proxy's address was taken for the client's:\n{log}"
    );
    assert!(!log.contains("dropped a passive data connection"), "{log}");
    let transfers = log.lines().filter(|line| {
        line.contains("transfer peer=127.0.0.1:")
            && line.contains("file.bin")
            && line.contains("bytes=300000")
    });
    assert_eq!(transfers.count(), 3, "{log}");
}
