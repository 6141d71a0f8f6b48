//! Host-port encodings of the data-connection commands and replies.
//!
//! - PORT argument and PASV reply (RFC 959 §4.1.2): `h1,h2,h3,h4,p1,p2`, IPv4 only.
//! - EPRT argument (RFC 2428 §2): `<d><net-prt><d><net-addr><d><tcp-port><d>`.
//! - EPSV reply (RFC 2428 §3): `(<d><d><d><tcp-port><d>)`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// Why a host-port string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    #[error("expected six comma-separated numbers h1,h2,h3,h4,p1,p2")]
    BadPort,
    #[error("malformed EPRT argument (expected |proto|address|port|)")]
    BadEprt,
    #[error("network protocol {0} is not supported (use 1 for IPv4 or 2 for IPv6)")]
    UnsupportedProtocol(String),
    #[error("no host-port found in the reply")]
    NotFound,
}

/// Parses the argument of PORT: `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2 `<host-port>`).
pub fn parse_port_arg(text: &str) -> Result<SocketAddr, HostPortError> {
    let numbers: Vec<u8> = text
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| HostPortError::BadPort)?;
    let [h1, h2, h3, h4, p1, p2] = numbers[..] else {
        return Err(HostPortError::BadPort);
    };
    let ip = Ipv4Addr::new(h1, h2, h3, h4);
    Ok(SocketAddr::V4(SocketAddrV4::new(
        ip,
        u16::from_be_bytes([p1, p2]),
    )))
}

/// Formats an IPv4 address and port as `h1,h2,h3,h4,p1,p2`, for PORT and the 227 reply.
pub fn format_host_port(ip: Ipv4Addr, port: u16) -> String {
    let [h1, h2, h3, h4] = ip.octets();
    let [p1, p2] = port.to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// Formats the text of a 227 reply (RFC 959 §4.2: `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`).
pub fn format_pasv_reply(ip: Ipv4Addr, port: u16) -> String {
    // By hand, not `format!`: a server writes one for every passive transfer.
    let mut text = String::with_capacity(48);
    text.push_str("Entering Passive Mode (");
    let [h1, h2, h3, h4] = ip.octets();
    let [p1, p2] = port.to_be_bytes();
    for (index, number) in [h1, h2, h3, h4, p1, p2].into_iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        push_decimal(&mut text, number);
    }
    text.push_str(").");
    text
}

/// Appends `number` in decimal, without leading zeros.
fn push_decimal(text: &mut String, number: u8) {
    if number >= 100 {
        text.push(char::from(b'0' + number / 100));
    }
    if number >= 10 {
        text.push(char::from(b'0' + number / 10 % 10));
    }
    text.push(char::from(b'0' + number % 10));
}

/// Finds the host-port in a 227 reply's text. RFC 1123 §4.1.2.6: clients must scan for the six
/// numbers, as servers word the reply differently (with or without parentheses).
pub fn parse_pasv_reply(text: &str) -> Result<SocketAddr, HostPortError> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or(HostPortError::NotFound)?;
    let digits_and_commas: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == ' ')
        .collect();
    parse_port_arg(digits_and_commas.trim().trim_end_matches(','))
        .map_err(|_| HostPortError::NotFound)
}

/// Parses the argument of EPRT: `|1|132.235.1.2|6275|` or `|2|1080::8:800:200C:417A|5282|`.
/// Any printable ASCII character other than a digit may be the delimiter.
pub fn parse_eprt_arg(text: &str) -> Result<SocketAddr, HostPortError> {
    let delimiter = text.chars().next().ok_or(HostPortError::BadEprt)?;
    if !(33..=126).contains(&(delimiter as u32)) || delimiter.is_ascii_digit() {
        return Err(HostPortError::BadEprt);
    }
    let fields: Vec<&str> = text.split(delimiter).collect();
    let ["", protocol, address, port, ""] = fields[..] else {
        return Err(HostPortError::BadEprt);
    };
    let port: u16 = port.parse().map_err(|_| HostPortError::BadEprt)?;
    let ip: IpAddr = match protocol {
        "1" => IpAddr::V4(address.parse().map_err(|_| HostPortError::BadEprt)?),
        "2" => IpAddr::V6(address.parse().map_err(|_| HostPortError::BadEprt)?),
        other => return Err(HostPortError::UnsupportedProtocol(other.to_string())),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Formats an EPRT argument, `|1|a.b.c.d|port|` or `|2|v6addr|port|`.
pub fn format_eprt_arg(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("|1|{ip}|{}|", addr.port()),
        IpAddr::V6(ip) => format!("|2|{ip}|{}|", addr.port()),
    }
}

/// Formats the text of a 229 reply: `Entering Extended Passive Mode (|||port|)`.
pub fn format_epsv_reply(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// Finds the port in a 229 reply's text: `(<d><d><d><port><d>)`.
pub fn parse_epsv_reply(text: &str) -> Result<u16, HostPortError> {
    let open = text.find('(').ok_or(HostPortError::NotFound)?;
    let inner = &text[open + 1..];
    let close = inner.find(')').ok_or(HostPortError::NotFound)?;
    let inner = &inner[..close];
    let delimiter = inner.chars().next().ok_or(HostPortError::NotFound)?;
    let fields: Vec<&str> = inner.split(delimiter).collect();
    match fields[..] {
        ["", "", "", port, ""] => port.parse().map_err(|_| HostPortError::NotFound),
        _ => Err(HostPortError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_reply_text() {
        let text = format_pasv_reply(Ipv4Addr::new(192, 0, 2, 255), 0x0a00);
        assert_eq!(text, "Entering Passive Mode (192,0,2,255,10,0).");
        assert_eq!(
            parse_pasv_reply(&text),
            Ok("192.0.2.255:2560".parse().unwrap())
        );
        let text = format_pasv_reply(Ipv4Addr::new(7, 10, 99, 100), 65535);
        assert_eq!(text, "Entering Passive Mode (7,10,99,100,255,255).");
    }

    #[test]
    fn port_round_trip() {
        let addr = parse_port_arg("192,168,0,2,19,137").unwrap();
        assert_eq!(addr, "192.168.0.2:5001".parse().unwrap());
        assert_eq!(
            format_host_port(Ipv4Addr::new(192, 168, 0, 2), 5001),
            "192,168,0,2,19,137"
        );
    }

    #[test]
    fn port_rejects_bad_input() {
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "256,0,0,1,1,1",
            "a,b,c,d,e,f",
            "1,2,3,4,5,-6",
        ] {
            assert_eq!(parse_port_arg(bad), Err(HostPortError::BadPort), "{bad}");
        }
    }

    #[test]
    fn pasv_reply_is_found_in_any_wording() {
        let expected: SocketAddr = "127.0.0.1:2121".parse().unwrap();
        let text = format_pasv_reply(Ipv4Addr::LOCALHOST, 2121);
        assert_eq!(text, "Entering Passive Mode (127,0,0,1,8,73).");
        assert_eq!(parse_pasv_reply(&text), Ok(expected));
        assert_eq!(
            parse_pasv_reply("Entering Passive Mode 127,0,0,1,8,73"),
            Ok(expected)
        );
        assert_eq!(parse_pasv_reply("=127,0,0,1,8,73"), Ok(expected));
        assert!(parse_pasv_reply("Entering Passive Mode").is_err());
    }

    #[test]
    fn eprt_examples_from_rfc_2428() {
        assert_eq!(
            parse_eprt_arg("|1|132.235.1.2|6275|"),
            Ok("132.235.1.2:6275".parse().unwrap())
        );
        assert_eq!(
            parse_eprt_arg("|2|1080::8:800:200C:417A|5282|"),
            Ok("[1080::8:800:200c:417a]:5282".parse().unwrap())
        );
        assert_eq!(
            parse_eprt_arg("!1!10.0.0.1!21!"),
            Ok("10.0.0.1:21".parse().unwrap())
        );
        assert_eq!(
            parse_eprt_arg("|3|x|1|"),
            Err(HostPortError::UnsupportedProtocol("3".into()))
        );
        for bad in [
            "",
            "|1|1.2.3.4|",
            "|1|::1|21|",
            "|2|1.2.3.4|21|",
            "|1|1.2.3.4|99999|",
        ] {
            assert!(parse_eprt_arg(bad).is_err(), "{bad}");
        }
        let v6: SocketAddr = "[::1]:6446".parse().unwrap();
        assert_eq!(parse_eprt_arg(&format_eprt_arg(v6)), Ok(v6));
    }

    #[test]
    fn epsv_reply() {
        let text = format_epsv_reply(6446);
        assert_eq!(text, "Entering Extended Passive Mode (|||6446|)");
        assert_eq!(parse_epsv_reply(&text), Ok(6446));
        assert_eq!(parse_epsv_reply("Extended (!!!80!)"), Ok(80));
        assert!(parse_epsv_reply("Entering (|1|2|3|)").is_err());
        assert!(parse_epsv_reply("no parens").is_err());
    }
}
