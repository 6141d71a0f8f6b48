//! The seed session (`shared/seed/ftp-session-sequence.txt`), replayed command by command in
//! active mode against `ferryd`: every reply code and text, and data connections that come from
//! the control port minus one.

mod support;

use std::net::TcpListener;

use support::{read_all, readme_bytes, TestServer};

/// PORT for a listener: `h1,h2,h3,h4,p1,p2`.
fn port_command(listener: &TcpListener) -> String {
    let addr = listener.local_addr().unwrap();
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        panic!("IPv4 expected")
    };
    format!(
        "PORT {}",
        ferry_proto::hostport::format_host_port(ip, addr.port())
    )
}

/// Accepts the server's data connection and checks it comes from port L-1.
fn accept_from_adjacent_port(listener: &TcpListener, control_port: u16) -> std::net::TcpStream {
    let (stream, from) = listener.accept().expect("server connects for the data");
    assert_eq!(
        from.port(),
        control_port - 1,
        "data connection must come from L-1"
    );
    stream
}

#[test]
fn seed_session_replays_exactly() {
    let server = TestServer::start();
    let mut control = support::Control::connect(server.addr);
    let greeting = control.reply();
    assert_eq!(greeting.lines, vec!["220 ANY-DOMAIN.COM FTP Service"]);

    control.expect_text(
        "USER ftp",
        331,
        "Anonymous access allowed, send identity (e-mail name) as password.",
    );
    let welcome = control.expect("PASS abc@any-domain.com", 230);
    assert_eq!(
        welcome.lines,
        vec![
            "230-Welcome to ftp.any-domain.com",
            "230 Anonymous user logged in."
        ]
    );

    // dir: PORT, LIST, 150, the listing from port L-1, 226.
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    control.expect_text(&port_command(&data), 200, "PORT command successful.");
    control.expect_text(
        "LIST",
        150,
        "Opening ASCII mode data connection for /bin/ls.",
    );
    let listing = read_all(accept_from_adjacent_port(&data, server.port()));
    let listing = String::from_utf8(listing).unwrap();
    assert!(
        listing.ends_with("\r\n") && !listing.replace("\r\n", "").contains('\n'),
        "{listing:?}"
    );
    assert!(
        listing.lines().any(|l| l.starts_with("-rw-r--r--")
            && l.contains(" 1715 ")
            && l.ends_with(" readme.txt")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(" pub")),
        "{listing}"
    );
    assert_eq!(control.reply().lines, vec!["226 Transfer complete."]);

    control.expect_text("CWD pub", 250, "CWD command successful.");

    // get readme.txt: PORT, RETR, 150 with the size, the data from port L-1, 226.
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    control.expect_text(&port_command(&data), 200, "PORT command successful.");
    control.expect_text(
        "RETR readme.txt",
        150,
        "Opening ASCII mode data connection for readme.txt (1715 bytes).",
    );
    let body = read_all(accept_from_adjacent_port(&data, server.port()));
    let mut expected = Vec::new();
    ferry_proto::ascii::lf_to_crlf(&readme_bytes(), &mut expected);
    assert_eq!(body, expected, "TYPE A sends CRLF line ends");
    assert_eq!(control.reply().lines, vec!["226 Transfer complete."]);

    control.expect_text("QUIT", 221, "Thank you for visiting ftp.any-domain.com.");
    assert!(
        control.is_closed(),
        "server closes the control connection after 221"
    );
}

#[test]
fn binary_retr_says_binary_and_is_byte_exact() {
    let server = TestServer::start();
    let mut control = server.login("anonymous");
    control.expect_text("TYPE I", 200, "Switching to Binary mode.");
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    control.expect(&port_command(&data), 200);
    control.expect_text(
        "RETR readme.txt",
        150,
        "Opening BINARY mode data connection for readme.txt (1715 bytes).",
    );
    let body = read_all(accept_from_adjacent_port(&data, server.port()));
    assert_eq!(body, readme_bytes());
    assert_eq!(control.reply().code, 226);
}

#[test]
fn ephemeral_active_source_is_configurable() {
    let server = TestServer::start_with(|c| {
        c.data.active_source = ferry_server::config::ActiveSource::Ephemeral
    });
    let mut control = server.login("ftp");
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    control.expect(&port_command(&data), 200);
    control.expect("NLST", 150);
    let (stream, from) = data.accept().unwrap();
    assert_ne!(from.port(), server.port() - 1);
    let names = String::from_utf8(read_all(stream)).unwrap();
    assert!(names.contains("readme.txt\r\n"), "{names}");
    assert_eq!(control.reply().code, 226);
}
