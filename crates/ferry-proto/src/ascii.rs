//! TYPE A end-of-line conversion (RFC 959 §3.1.1.1).
//!
//! On the wire, text lines end in CRLF; on a Unix host they end in LF. Sending turns every LF into
//! CRLF (a CR already in the file stays a CR, so the receiver gets back exactly the file's bytes);
//! receiving turns every CRLF into LF and keeps a CR that is not followed by LF. Both directions
//! work on chunks of any size: a CR at the end of one chunk is held until the next.
//!
//! Both directions find line ends with `memchr` (SIMD) and copy the runs between them whole,
//! appending to a buffer the caller reuses: no allocation per line, and no work per byte.

use memchr::{memchr, memchr_iter};

/// Appends `input` to `out` with every LF turned into CRLF.
pub fn lf_to_crlf(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() + input.len() / 32);
    let mut start = 0;
    for newline in memchr_iter(b'\n', input) {
        out.extend_from_slice(&input[start..newline]);
        out.extend_from_slice(b"\r\n");
        start = newline + 1;
    }
    out.extend_from_slice(&input[start..]);
}

/// The size a file of `binary_size` bytes with `newlines` LF bytes has on the wire in TYPE A.
pub fn ascii_wire_size(binary_size: u64, newlines: u64) -> u64 {
    binary_size + newlines
}

/// Counts LF bytes, for [`ascii_wire_size`].
pub fn count_newlines(bytes: &[u8]) -> u64 {
    memchr_iter(b'\n', bytes).count() as u64
}

/// Streaming CRLF → LF decoder for TYPE A uploads and downloads.
#[derive(Debug, Default)]
pub struct CrlfDecoder {
    pending_cr: bool,
}

impl CrlfDecoder {
    pub fn new() -> Self {
        CrlfDecoder::default()
    }

    /// Decodes one chunk, appending to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        let mut start = 0;
        if self.pending_cr {
            match input.first() {
                None => return,
                Some(b'\n') => {
                    out.push(b'\n');
                    start = 1;
                }
                // A CR not followed by LF stays; a CR after it is looked at below.
                Some(_) => out.push(b'\r'),
            }
            self.pending_cr = false;
        }
        while let Some(found) = memchr(b'\r', &input[start..]) {
            let cr = start + found;
            out.extend_from_slice(&input[start..cr]);
            match input.get(cr + 1) {
                None => {
                    self.pending_cr = true;
                    return;
                }
                Some(b'\n') => {
                    out.push(b'\n');
                    start = cr + 2;
                }
                Some(_) => {
                    out.push(b'\r');
                    start = cr + 1;
                }
            }
        }
        out.extend_from_slice(&input[start..]);
    }

    /// Flushes a CR held back at the very end of the stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_chunks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut decoder = CrlfDecoder::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            decoder.decode(piece, &mut out);
        }
        decoder.finish(&mut out);
        out
    }

    #[test]
    fn encodes_every_lf() {
        let mut out = Vec::new();
        lf_to_crlf(b"one\ntwo\n\nthree", &mut out);
        assert_eq!(out, b"one\r\ntwo\r\n\r\nthree");
    }

    #[test]
    fn decodes_crlf_and_keeps_lone_cr() {
        assert_eq!(
            decode_in_chunks(b"a\r\nb\rc\r\r\nd\r", 100),
            b"a\nb\rc\r\nd\r"
        );
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let wire = b"line one\r\nline two\r\n\r\r\nend\r";
        let whole = decode_in_chunks(wire, wire.len());
        for chunk in 1..wire.len() {
            assert_eq!(decode_in_chunks(wire, chunk), whole, "chunk size {chunk}");
        }
    }

    /// The byte-at-a-time decoder the fast one replaced: the specification.
    fn decode_bytewise(input: &[u8], chunk: usize) -> Vec<u8> {
        let (mut out, mut pending_cr) = (Vec::new(), false);
        for piece in input.chunks(chunk) {
            for &byte in piece {
                match (pending_cr, byte) {
                    (true, b'\n') => {
                        out.push(b'\n');
                        pending_cr = false;
                    }
                    (true, b'\r') => out.push(b'\r'),
                    (true, _) => {
                        out.extend_from_slice(&[b'\r', byte]);
                        pending_cr = false;
                    }
                    (false, b'\r') => pending_cr = true,
                    (false, _) => out.push(byte),
                }
            }
        }
        if pending_cr {
            out.push(b'\r');
        }
        out
    }

    /// Bytes from a small alphabet heavy in CR and LF, from a fixed seed.
    fn line_end_soup(length: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..length)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                b"\r\n\r\nab\r"[(state >> 59) as usize % 7]
            })
            .collect()
    }

    #[test]
    fn decoder_matches_the_bytewise_specification() {
        for seed in 0..50 {
            let wire = line_end_soup(200, seed);
            for chunk in [1, 2, 3, 7, 64, 200] {
                assert_eq!(
                    decode_in_chunks(&wire, chunk),
                    decode_bytewise(&wire, chunk),
                    "seed {seed}, chunk size {chunk}"
                );
            }
        }
    }

    #[test]
    fn encoder_turns_each_lf_into_crlf_and_nothing_else() {
        for seed in 0..50 {
            let file = line_end_soup(300, seed);
            let mut wire = Vec::new();
            lf_to_crlf(&file, &mut wire);
            let bytewise: Vec<u8> = file
                .iter()
                .flat_map(|&byte| match byte {
                    b'\n' => b"\r\n".to_vec(),
                    other => vec![other],
                })
                .collect();
            assert_eq!(wire, bytewise, "seed {seed}");
            assert_eq!(
                count_newlines(&file),
                file.iter().filter(|&&b| b == b'\n').count() as u64
            );
        }
    }

    #[test]
    fn encoder_appends_to_what_is_there() {
        let mut out = b"kept".to_vec();
        lf_to_crlf(b"\n\nx", &mut out);
        assert_eq!(out, b"kept\r\n\r\nx");
    }

    #[test]
    fn round_trip_is_exact_for_any_bytes() {
        let file: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut wire = Vec::new();
        lf_to_crlf(&file, &mut wire);
        assert_eq!(
            wire.len() as u64,
            ascii_wire_size(file.len() as u64, count_newlines(&file))
        );
        assert_eq!(decode_in_chunks(&wire, 333), file);
    }
}
