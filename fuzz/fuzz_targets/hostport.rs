//! Host-port encodings: the parsers never panic on any text, whatever they accept formats and
//! parses back to the same address, and every address formats and parses back to itself.
//!
//! Input: `[address material (18 bytes), text...]`. Bytes 0..4 and 0..16 are an IPv4 and an
//! IPv6 address, bytes 16..18 the port (missing bytes count as zero); the whole input, read as
//! UTF-8 with invalid sequences replaced, is the text handed to the parsers.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use ferry_proto::hostport::{
    format_eprt_arg, format_epsv_reply, format_host_port, format_pasv_reply, parse_eprt_arg,
    parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse_and_reformat(&String::from_utf8_lossy(data));

    let mut material = [0u8; 18];
    let length = data.len().min(material.len());
    material[..length].copy_from_slice(&data[..length]);
    let port = u16::from_be_bytes([material[16], material[17]]);
    let v4 = Ipv4Addr::from(<[u8; 4]>::try_from(&material[..4]).unwrap());
    let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(&material[..16]).unwrap());
    round_trip(v4, v6, port);
});

fn parse_and_reformat(text: &str) {
    for parsed in [parse_port_arg(text), parse_pasv_reply(text)] {
        if let Ok(SocketAddr::V4(addr)) = parsed {
            assert_eq!(
                parse_port_arg(&format_host_port(*addr.ip(), addr.port())),
                Ok(SocketAddr::V4(addr))
            );
        } else if let Ok(addr) = parsed {
            panic!("PORT/PASV text {text:?} gave an IPv6 address {addr}");
        }
    }
    if let Ok(addr) = parse_eprt_arg(text) {
        assert_eq!(parse_eprt_arg(&format_eprt_arg(addr)), Ok(addr));
    }
    if let Ok(port) = parse_epsv_reply(text) {
        assert_eq!(parse_epsv_reply(&format_epsv_reply(port)), Ok(port));
    }
}

fn round_trip(v4: Ipv4Addr, v6: Ipv6Addr, port: u16) {
    let expected = SocketAddr::from((v4, port));
    assert_eq!(parse_port_arg(&format_host_port(v4, port)), Ok(expected));
    assert_eq!(parse_pasv_reply(&format_pasv_reply(v4, port)), Ok(expected));
    assert_eq!(parse_eprt_arg(&format_eprt_arg(expected)), Ok(expected));
    let expected = SocketAddr::from((v6, port));
    assert_eq!(parse_eprt_arg(&format_eprt_arg(expected)), Ok(expected));
    assert_eq!(parse_epsv_reply(&format_epsv_reply(port)), Ok(port));
}
