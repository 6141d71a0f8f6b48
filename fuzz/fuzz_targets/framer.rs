//! `LineFramer`: no panic, bounded lines without LF or NUL, result independent of how the
//! stream is split into reads, and equal to a straightforward reference model.
//!
//! Input: `[limit_low, limit_high, chunk_seed, bytes...]`; the limit is 64..=4096.
#![no_main]

use ferry_proto::framer::{Frame, LineFramer};
use libfuzzer_sys::fuzz_target;

const IAC: u8 = 255;

fuzz_target!(|data: &[u8]| {
    let [low, high, chunk_seed, ref stream @ ..] = *data else {
        return;
    };
    let max_line = 64 + usize::from(u16::from_le_bytes([low, high])) % (4096 - 64 + 1);

    let whole = frame(max_line, &[stream]);
    let chunked = frame(max_line, &ferry_fuzz::chunks(chunk_seed, stream));
    assert_eq!(whole, chunked, "framing depends on the chunking");

    for frame in &whole {
        if let Frame::Line(line) = frame {
            assert!(
                line.len() <= max_line,
                "line of {} > {max_line}",
                line.len()
            );
            assert!(!line.contains(&b'\n'), "line holds LF");
            assert!(!line.contains(&0), "line holds NUL");
        }
    }
    assert_eq!(
        whole,
        reference(max_line, stream),
        "differs from the reference model"
    );
});

fn frame(max_line: usize, reads: &[&[u8]]) -> Vec<Frame> {
    let mut framer = LineFramer::new(max_line);
    let mut frames = Vec::new();
    for read in reads {
        framer.push(read, &mut frames);
    }
    frames
}

/// The framer's documented behaviour written the obvious way, with unbounded memory: strip
/// Telnet sequences and NULs, split at LF, drop one CR before the LF, and report lines over the
/// limit as `Overlong`. A partial last line yields no frame.
fn reference(max_line: usize, stream: &[u8]) -> Vec<Frame> {
    let mut data = Vec::new();
    let mut bytes = stream.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != IAC {
            data.push(byte);
            continue;
        }
        match bytes.next() {
            Some(IAC) => data.push(IAC),
            // WILL, WONT, DO, DONT: skip the option byte too.
            Some(251..=254) => {
                bytes.next();
            }
            Some(240..=250) | None => {}
            Some(other) => data.push(other),
        }
    }
    data.retain(|&byte| byte != 0);
    let mut lines: Vec<&[u8]> = data.split(|&byte| byte == b'\n').collect();
    lines.pop(); // Bytes after the last LF (or everything, if there is none) are not a line yet.
    lines
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > max_line {
                Frame::Overlong
            } else {
                Frame::Line(line.to_vec())
            }
        })
        .collect()
}
