//! MODE Z on the client's side (draft-preston-ftpext-deflate): a download's bytes are one zlib
//! stream to inflate, an upload's one to make. Both work a chunk at a time, so memory stays
//! bounded however much a stream inflates to.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::FtpError;

/// Output made per call, at most.
const OUT: usize = 64 * 1024;

/// Inflates a download.
pub(crate) struct Inflater {
    inner: Decompress,
    ended: bool,
}

impl Inflater {
    pub(crate) fn new() -> Inflater {
        Inflater {
            inner: Decompress::new(true),
            ended: false,
        }
    }

    /// Inflates `input` into `out` (cleared first); calls `sink` with each piece.
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        mut sink: impl FnMut(&[u8]) -> Result<(), FtpError>,
    ) -> Result<(), FtpError> {
        loop {
            if self.ended {
                return match input.is_empty() {
                    true => Ok(()),
                    false => Err(corrupt("bytes after the end of the zlib stream")),
                };
            }
            out.clear();
            out.reserve(OUT);
            let before = self.inner.total_in();
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|e| corrupt(&format!("corrupt zlib stream: {e}")))?;
            let taken = (self.inner.total_in() - before) as usize;
            input = &input[taken..];
            sink(out)?;
            self.ended = status == Status::StreamEnd;
            let full = out.len() == out.capacity();
            if (input.is_empty() && !full) || (taken == 0 && out.is_empty()) {
                return Ok(());
            }
        }
    }

    /// At the end of the data: an error unless the zlib stream ended.
    pub(crate) fn finish(&self) -> Result<(), FtpError> {
        match self.ended {
            true => Ok(()),
            false => Err(corrupt("the zlib stream was cut short")),
        }
    }
}

/// Deflates an upload.
pub(crate) struct Deflater {
    inner: Compress,
}

impl Deflater {
    pub(crate) fn new() -> Deflater {
        Deflater {
            inner: Compress::new(Compression::default(), true),
        }
    }

    /// Compresses `input` into `out` (cleared first); with `last`, ends the stream.
    pub(crate) fn deflate(&mut self, mut input: &[u8], out: &mut Vec<u8>, last: bool) {
        out.clear();
        let flush = if last {
            FlushCompress::Finish
        } else {
            FlushCompress::None
        };
        loop {
            out.reserve(OUT);
            let before = self.inner.total_in();
            let status = self.inner.compress_vec(input, out, flush);
            input = &input[(self.inner.total_in() - before) as usize..];
            match status {
                Ok(Status::StreamEnd) => return,
                Ok(_) if input.is_empty() && !last && out.len() < out.capacity() => return,
                Ok(_) => {}
                // Compressing memory into memory does not fail; stop rather than spin.
                Err(_) => return,
            }
        }
    }
}

fn corrupt(what: &str) -> FtpError {
    FtpError::Local(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("MODE Z: {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deflated_stream_inflates_back_in_pieces() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        let mut deflater = Deflater::new();
        let mut wire = Vec::new();
        let mut out = Vec::new();
        for (i, piece) in data.chunks(10_000).enumerate() {
            deflater.deflate(piece, &mut out, false);
            wire.extend_from_slice(&out);
            assert!(i < 1000);
        }
        deflater.deflate(&[], &mut out, true);
        wire.extend_from_slice(&out);
        assert!(wire.len() < data.len() / 2);
        let mut inflater = Inflater::new();
        let mut back = Vec::new();
        for piece in wire.chunks(999) {
            inflater
                .inflate(piece, &mut out, |bytes| {
                    back.extend_from_slice(bytes);
                    Ok(())
                })
                .unwrap();
        }
        inflater.finish().unwrap();
        assert_eq!(back, data);
        let mut cut = Inflater::new();
        cut.inflate(&wire[..wire.len() / 2], &mut out, |_| Ok(()))
            .unwrap();
        assert!(cut.finish().is_err());
    }
}
