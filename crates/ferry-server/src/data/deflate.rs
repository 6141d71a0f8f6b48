//! MODE Z (draft-preston-ftpext-deflate): the data connection carries one zlib stream
//! (RFC 1950) per transfer. Downloads and listings are compressed chunk by chunk on the
//! blocking pool ([`DeflateChunks`]); uploads are inflated by the writer thread
//! ([`Inflating`]) into the file a bounded buffer at a time, so a small stream that inflates
//! to a huge one (a zip bomb) costs disk (bounded by the quota and the disk), never memory.
//!
//! TYPE A converts before compressing and after inflating: the compressed bytes are never
//! touched by the line-end conversion.

use std::io::{self, Write};

use ferry_proto::ascii::CrlfDecoder;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Chunks;

/// The compression levels OPTS MODE Z LEVEL accepts (zlib's).
pub const LEVELS: std::ops::RangeInclusive<u32> = 0..=9;

/// Output buffer of the inflater: what an upload holds of inflated bytes at a time.
const INFLATED_CHUNK: usize = 128 * 1024;

/// A source of chunks compressed into one zlib stream.
pub struct DeflateChunks {
    inner: Box<dyn Chunks>,
    compress: Compress,
    /// Uncompressed bytes from `inner` not yet given to the compressor, from `used`.
    input: Vec<u8>,
    used: usize,
    /// `inner` has no more chunks.
    input_done: bool,
    /// The stream's end is written.
    done: bool,
}

impl DeflateChunks {
    pub fn new(mut inner: Box<dyn Chunks>, level: u32) -> DeflateChunks {
        let input = inner.take_ready().unwrap_or_default();
        DeflateChunks {
            inner,
            compress: Compress::new(Compression::new(level), true),
            input,
            used: 0,
            input_done: false,
            done: false,
        }
    }
}

impl Chunks for DeflateChunks {
    /// Compresses until `chunk` holds about `size` bytes or the stream ends.
    fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> io::Result<()> {
        chunk.clear();
        let size = size.max(1024);
        chunk.reserve(size);
        while !self.done && chunk.len() < size {
            if self.used == self.input.len() && !self.input_done {
                self.used = 0;
                if self.inner.finished() {
                    self.input.clear();
                } else {
                    self.inner.fill(&mut self.input, size)?;
                }
                self.input_done = self.input.is_empty();
            }
            let flush = if self.input_done {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(&self.input[self.used..], chunk, flush)
                .map_err(io::Error::other)?;
            self.used += usize::try_from(self.compress.total_in() - before).unwrap_or(0);
            if status == Status::StreamEnd {
                self.done = true;
            }
            if chunk.len() == chunk.capacity() {
                // Full: the rest goes in the next chunk.
                break;
            }
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }
}

/// A writer that inflates a zlib stream into `inner` (converting CRLF to LF on the way for
/// TYPE A). [`Inflating::finish`] checks that the stream ended.
pub struct Inflating<W> {
    inner: W,
    decompress: Decompress,
    out: Vec<u8>,
    /// TYPE A: the decoder and its output.
    ascii: Option<(CrlfDecoder, Vec<u8>)>,
    ended: bool,
}

impl<W: Write> Inflating<W> {
    pub fn new(inner: W, ascii: bool) -> Inflating<W> {
        Inflating {
            inner,
            decompress: Decompress::new(true),
            out: Vec::with_capacity(INFLATED_CHUNK),
            ascii: ascii.then(|| (CrlfDecoder::new(), Vec::new())),
            ended: false,
        }
    }

    /// The writer back, once the zlib stream has ended; an error if it was cut short.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.ended {
            return Err(corrupt("the zlib stream ended before its end marker"));
        }
        if let Some((decoder, converted)) = &mut self.ascii {
            converted.clear();
            decoder.finish(converted);
            self.inner.write_all(converted)?;
        }
        Ok(self.inner)
    }

    fn pass_on(&mut self) -> io::Result<()> {
        match &mut self.ascii {
            Some((decoder, converted)) => {
                converted.clear();
                decoder.decode(&self.out, converted);
                self.inner.write_all(converted)
            }
            None => self.inner.write_all(&self.out),
        }
    }
}

impl<W: Write> Write for Inflating<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut used = 0;
        while used < bytes.len() || self.out.len() == self.out.capacity() {
            if self.ended {
                return Err(corrupt("data after the end of the zlib stream"));
            }
            self.out.clear();
            let before = self.decompress.total_in();
            let status = self
                .decompress
                .decompress_vec(&bytes[used..], &mut self.out, FlushDecompress::None)
                .map_err(|e| corrupt(&format!("corrupt zlib stream: {e}")))?;
            let taken = usize::try_from(self.decompress.total_in() - before).unwrap_or(0);
            used += taken;
            self.pass_on()?;
            if status == Status::StreamEnd {
                self.ended = true;
                if used < bytes.len() {
                    return Err(corrupt("data after the end of the zlib stream"));
                }
                break;
            }
            if taken == 0 && self.out.is_empty() {
                // No progress with input left would drop it silently: refuse the stream.
                if used < bytes.len() {
                    return Err(corrupt("the zlib stream stopped taking input"));
                }
                break;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A MODE Z upload that is not a well-formed zlib stream.
fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("MODE Z: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of a fixed byte string.
    struct Bytes(Vec<u8>, usize);

    impl Chunks for Bytes {
        fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> io::Result<()> {
            let end = (self.1 + size).min(self.0.len());
            chunk.clear();
            chunk.extend_from_slice(&self.0[self.1..end]);
            self.1 = end;
            Ok(())
        }
    }

    fn compressed(data: &[u8], level: u32, size: usize) -> Vec<u8> {
        let mut chunks = DeflateChunks::new(Box::new(Bytes(data.to_vec(), 0)), level);
        let mut all = Vec::new();
        let mut chunk = Vec::new();
        for _ in 0..100_000 {
            chunks.fill(&mut chunk, size).unwrap();
            all.extend_from_slice(&chunk);
            if chunks.finished() {
                return all;
            }
        }
        panic!("the stream never ended");
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| format!("line {i} of the sample\n").into_bytes())
            .collect()
    }

    #[test]
    fn deflated_chunks_inflate_back_through_the_writer() {
        let data = sample();
        for (level, size) in [(0, 1024), (6, 32 * 1024), (9, 1 << 20)] {
            let wire = compressed(&data, level, size);
            let mut inflating = Inflating::new(Vec::new(), false);
            // Odd-sized writes, as the network delivers them.
            for piece in wire.chunks(7777) {
                inflating.write_all(piece).unwrap();
            }
            assert_eq!(inflating.finish().unwrap(), data, "level {level}");
        }
        assert!(compressed(&data, 6, 65536).len() < data.len() / 5);
    }

    #[test]
    fn an_empty_source_is_a_valid_empty_stream() {
        let wire = compressed(b"", 6, 1024);
        let mut inflating = Inflating::new(Vec::new(), false);
        inflating.write_all(&wire).unwrap();
        assert!(inflating.finish().unwrap().is_empty());
    }

    #[test]
    fn truncated_corrupt_and_trailing_data_are_errors() {
        let wire = compressed(&sample(), 6, 65536);
        let mut cut = Inflating::new(Vec::new(), false);
        cut.write_all(&wire[..wire.len() / 2]).unwrap();
        assert_eq!(cut.finish().unwrap_err().kind(), io::ErrorKind::InvalidData);

        let mut bad = wire.clone();
        bad[0] ^= 0xff;
        let mut corrupt = Inflating::new(Vec::new(), false);
        assert!(corrupt.write_all(&bad).is_err());

        let mut trailing = wire.clone();
        trailing.extend_from_slice(b"junk");
        let mut extra = Inflating::new(Vec::new(), false);
        assert!(extra.write_all(&trailing).is_err());
    }

    #[test]
    fn type_a_converts_after_inflating() {
        let text = b"one\r\ntwo\r\n".repeat(1000);
        let wire = compressed(&text, 6, 4096);
        let mut inflating = Inflating::new(Vec::new(), true);
        inflating.write_all(&wire).unwrap();
        assert_eq!(inflating.finish().unwrap(), b"one\ntwo\n".repeat(1000));
    }

    /// A zip bomb: a few kilobytes that inflate to 64 MiB pass through a bounded buffer.
    #[test]
    fn a_bomb_is_written_through_in_bounded_pieces() {
        struct Counting {
            total: u64,
            largest: usize,
        }
        impl Write for Counting {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.total += bytes.len() as u64;
                self.largest = self.largest.max(bytes.len());
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let zeros = vec![0u8; 64 << 20];
        let wire = compressed(&zeros, 9, 1 << 20);
        assert!(wire.len() < 100_000, "{}", wire.len());
        let mut inflating = Inflating::new(
            Counting {
                total: 0,
                largest: 0,
            },
            false,
        );
        inflating.write_all(&wire).unwrap();
        let sink = inflating.finish().unwrap();
        assert_eq!(sink.total, 64 << 20);
        assert!(sink.largest <= INFLATED_CHUNK, "{}", sink.largest);
    }
}
