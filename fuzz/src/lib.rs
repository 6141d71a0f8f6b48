//! Helpers shared by the fuzz targets: splitting one input into reads of fuzzer-chosen sizes,
//! and, for the `session` target, the folders it serves ([`fixture`]) and its reading of the
//! control connection ([`replies`]).

pub mod fixture;
pub mod replies;

/// Splits `data` into consecutive chunks whose sizes are drawn from `seed`.
///
/// Seed 0 gives the whole input as one chunk. Otherwise the seed's low five bits bound the
/// chunk size (0 ..= low bits + 1, so empty reads happen too) and a xorshift generator seeded by the
/// whole byte picks each size: the same seed always gives the same chunking.
pub fn chunks(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    if seed == 0 {
        return vec![data];
    }
    let bound = u64::from(seed & 0x1f) + 2;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(seed);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = ((state % bound) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        out.push(chunk);
        rest = tail;
    }
    out
}
