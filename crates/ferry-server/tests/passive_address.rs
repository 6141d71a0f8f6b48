//! `data.passive_address` behind NAT, against the real ferryd: a per-client-network map (with
//! a host name) gives clients on different networks different PASV answers, and a bad map is
//! refused at start with a message naming the entry.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use support::{run_tool_with_code, skip, Ferryd};

/// A control connection from `source` (a loopback address), logged in anonymously.
struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    source: Ipv4Addr,
}

impl Client {
    fn connect(server: SocketAddr, source: Ipv4Addr) -> Option<Client> {
        let stream = connect_from(source, server)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            source,
        };
        assert_eq!(client.reply().0, 220);
        assert_eq!(client.command("USER anonymous").0, 331);
        assert_eq!(client.command("PASS ferry@").0, 230);
        assert_eq!(client.command("TYPE I").0, 200);
        Some(client)
    }

    /// One reply's code and last line (a multi-line reply's others are skipped).
    fn reply(&mut self) -> (u16, String) {
        for _ in 0..100 {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if line.as_bytes().get(3) == Some(&b' ') {
                return (code, line.trim_end().to_string());
            }
        }
        panic!("a reply of more than 100 lines");
    }

    fn command(&mut self, line: &str) -> (u16, String) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// PASV's advertised address and port.
    fn pasv(&mut self) -> SocketAddr {
        let (code, text) = self.command("PASV");
        assert_eq!(code, 227, "{text}");
        ferry_proto::hostport::parse_pasv_reply(&text[4..]).unwrap()
    }
}

/// A TCP connection to `server` from `source` (port 0), or `None` if `source` cannot be bound.
fn connect_from(source: Ipv4Addr, server: SocketAddr) -> Option<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).ok()?;
    socket
        .connect_timeout(&server.into(), Duration::from_secs(10))
        .unwrap();
    Some(socket.into())
}

fn write_config(folder: &Path, data: &str) -> String {
    let path = folder.join("ferryd.toml");
    std::fs::write(&path, format!("[data]\n{data}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn clients_on_different_networks_get_their_own_passive_address() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("hello.txt"), "hello\n").unwrap();
    // 127.0.0.2 is "the LAN": it gets the host name's address (127.0.0.1, where ferryd
    // listens); everyone else gets the default, "the NAT's public address".
    let config = write_config(
        folder.path(),
        r#"passive_address = { "127.0.0.2/32" = "localhost", "127.0.0.0/8" = "127.0.0.8", default = "127.0.0.9" }"#,
    );
    let ferryd = Ferryd::start(folder.path(), &["--config", &config]);
    let Some(mut lan) = Client::connect(ferryd.addr, [127, 0, 0, 2].into()) else {
        return skip("cannot bind 127.0.0.2");
    };
    let mut other = Client::connect(ferryd.addr, [127, 0, 0, 1].into()).unwrap();
    let advertised = lan.pasv();
    assert_eq!(
        advertised.ip(),
        Ipv4Addr::LOCALHOST,
        "the most specific network wins"
    );
    // The LAN client can use what it was told.
    let mut data = connect_from(lan.source, advertised).expect("connect to the PASV address");
    assert_eq!(lan.command("RETR hello.txt").0, 150);
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, b"hello\n");
    assert_eq!(lan.reply().0, 226);
    assert_eq!(other.pasv().ip(), Ipv4Addr::new(127, 0, 0, 8));
    // EPSV names no address, so the map does not touch it.
    let (code, text) = other.command("EPSV");
    assert!(code == 229 && text.contains("(|||"), "{text}");
}

#[test]
fn the_default_answers_clients_no_network_matches() {
    let folder = tempfile::tempdir().unwrap();
    let ferryd = Ferryd::start(folder.path(), &["--passive-address", "127.0.0.9"]);
    let mut client = Client::connect(ferryd.addr, Ipv4Addr::LOCALHOST).unwrap();
    assert_eq!(client.pasv().ip(), Ipv4Addr::new(127, 0, 0, 9));
}

#[test]
fn a_bad_map_is_refused_at_start_naming_the_entry() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path().to_str().unwrap();
    for (data, expected) in [
        (
            r#"passive_address = { "10.0.0.0/33" = "10.0.0.5" }"#,
            "\"10.0.0.0/33\"",
        ),
        (
            r#"passive_address = { "10.0.0.0/8" = "10.0.0.5", default = "bad host!" }"#,
            "data.passive_address.\"default\" = \"bad host!\"",
        ),
        (
            r#"passive_address = "2001:db8::1""#,
            "PASV advertises IPv4 addresses only",
        ),
    ] {
        let config = write_config(folder.path(), data);
        let (code, stdout, stderr) = run_tool_with_code(
            env!("CARGO_BIN_EXE_ferryd"),
            &[
                "--config",
                &config,
                "--root",
                root,
                "--listen",
                "127.0.0.1:0",
            ],
            None,
            None,
        );
        assert_eq!(code, Some(1), "{data}: {stdout} {stderr}");
        assert!(stderr.contains(expected), "{data}: {stderr}");
        assert!(stdout.is_empty(), "it must not have started: {stdout}");
    }
}
