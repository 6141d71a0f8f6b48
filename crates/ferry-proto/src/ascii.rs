//! TYPE A end-of-line conversion (RFC 959 §3.1.1.1).
//!
//! On the wire, text lines end in CRLF; on a Unix host they end in LF. Sending turns every LF into
//! CRLF (a CR already in the file stays a CR, so the receiver gets back exactly the file's bytes);
//! receiving turns every CRLF into LF and keeps a CR that is not followed by LF. Both directions
//! work on chunks of any size: a CR at the end of one chunk is held until the next.

/// Appends `input` to `out` with every LF turned into CRLF.
pub fn lf_to_crlf(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() + input.len() / 32);
    let mut rest = input;
    while let Some(position) = rest.iter().position(|&b| b == b'\n') {
        out.extend_from_slice(&rest[..position]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[position + 1..];
    }
    out.extend_from_slice(rest);
}

/// The size a file of `binary_size` bytes with `newlines` LF bytes has on the wire in TYPE A.
pub fn ascii_wire_size(binary_size: u64, newlines: u64) -> u64 {
    binary_size + newlines
}

/// Counts LF bytes, for [`ascii_wire_size`].
pub fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
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
        for &byte in input {
            match (self.pending_cr, byte) {
                (true, b'\n') => {
                    out.push(b'\n');
                    self.pending_cr = false;
                }
                (true, b'\r') => out.push(b'\r'),
                (true, _) => {
                    out.extend_from_slice(&[b'\r', byte]);
                    self.pending_cr = false;
                }
                (false, b'\r') => self.pending_cr = true,
                (false, _) => out.push(byte),
            }
        }
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
