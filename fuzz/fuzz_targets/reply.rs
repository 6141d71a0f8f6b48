//! `ReplyParser` on arbitrary lines, and `Reply::to_wire` → `ReplyParser` round trips.
//!
//! Input: `[code_low, code_high, flags, text...]`.
//! - The text, split at LF, is fed line by line to a parser allowing `1 + flags / 2` lines: no
//!   panic, and every reply it returns has a code in 100..=999, at least one line, and no more
//!   lines than allowed.
//! - A reply is built with code `100 + u16(code_low, code_high) % 500` (100..=599) and the text's
//!   lines as its lines (split at LF, or at NUL when `flags` is odd, so texts may hold CR and LF).
//!   Its wire form, split at CRLF, must parse back to exactly one reply with the same code and
//!   the same number of lines, whose texts are what the formatter promises:
//!     - CR and LF inside a text become spaces (the formatter's `sanitize`);
//!     - a middle line loses one leading space (the formatter indents middle lines that start
//!       with a digit, and the parser strips one leading space from every middle line, so a
//!       middle line that itself starts with a space, such as a FEAT line, comes back without
//!       it);
//!     - the first and last lines come back unchanged.
#![no_main]

use ferry_proto::reply::{Reply, ReplyParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [code_low, code_high, flags, ref text @ ..] = *data else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    parse_arbitrary_lines(&text, 1 + usize::from(flags / 2));

    let code = 100 + u16::from_le_bytes([code_low, code_high]) % 500;
    let separator = if flags % 2 == 1 { '\0' } else { '\n' };
    let lines: Vec<String> = text.split(separator).map(str::to_string).collect();
    round_trip(Reply::multi(code, lines));
});

fn parse_arbitrary_lines(text: &str, max_lines: usize) {
    let mut parser = ReplyParser::new(max_lines);
    for line in text.split('\n') {
        if let Ok(Some(reply)) = parser.push_line(line) {
            assert!((100..=999).contains(&reply.code), "code {}", reply.code);
            assert!(!reply.lines.is_empty());
            assert!(
                reply.lines.len() <= max_lines,
                "{} lines parsed with a limit of {max_lines}",
                reply.lines.len()
            );
        }
    }
}

fn round_trip(reply: Reply) {
    let wire = String::from_utf8(reply.to_wire()).expect("the wire form of UTF-8 text is UTF-8");
    let body = wire
        .strip_suffix("\r\n")
        .expect("the wire form ends in CRLF");
    let mut parser = ReplyParser::new(reply.lines.len());
    let mut parsed = Vec::new();
    for line in body.split("\r\n") {
        assert!(
            parsed.is_empty(),
            "reply ended before its last line: {wire:?}"
        );
        match parser.push_line(line) {
            Ok(Some(done)) => parsed.push(done),
            Ok(None) => {}
            Err(error) => panic!("{error} in {wire:?}"),
        }
    }
    let [parsed] = &parsed[..] else {
        panic!("no reply parsed from {wire:?}");
    };
    assert_eq!(parsed.code, reply.code);
    assert_eq!(parsed.lines.len(), reply.lines.len(), "{wire:?}");
    assert_eq!(parsed.lines, expected_lines(&reply.lines), "{wire:?}");
}

fn expected_lines(lines: &[String]) -> Vec<String> {
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let line = line.replace(['\r', '\n'], " ");
            match line.strip_prefix(' ') {
                Some(rest) if index != 0 && index != last => rest.to_string(),
                _ => line,
            }
        })
        .collect()
}
