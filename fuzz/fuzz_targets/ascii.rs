//! TYPE A conversion: `CrlfDecoder` gives the same output however its input is split, and
//! `lf_to_crlf` followed by decoding gives back exactly the original bytes, with the wire size
//! `ascii_wire_size` predicts.
//!
//! Input: `[chunk_seed, bytes...]`.
#![no_main]

use ferry_proto::ascii::{ascii_wire_size, count_newlines, lf_to_crlf, CrlfDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [chunk_seed, ref bytes @ ..] = *data else {
        return;
    };
    let reads = ferry_fuzz::chunks(chunk_seed, bytes);
    assert_eq!(
        decode(&[bytes]),
        decode(&reads),
        "decoding depends on the chunking"
    );

    let mut wire = Vec::new();
    for read in &reads {
        lf_to_crlf(read, &mut wire);
    }
    let size = ascii_wire_size(bytes.len() as u64, count_newlines(bytes));
    assert_eq!(wire.len() as u64, size);
    assert_eq!(decode(&ferry_fuzz::chunks(chunk_seed, &wire)), bytes);
});

fn decode(reads: &[&[u8]]) -> Vec<u8> {
    let mut decoder = CrlfDecoder::new();
    let mut out = Vec::new();
    for read in reads {
        decoder.decode(read, &mut out);
    }
    decoder.finish(&mut out);
    out
}
