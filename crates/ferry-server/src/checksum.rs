//! File checksums for HASH and the legacy X* verbs: the digest of a byte range of a storage
//! body, computed on the blocking pool under the server's limit of hashes at once.

use std::io::{self, Read, Seek, SeekFrom};

use ferry_proto::command::HashAlgorithm;
use sha2::Digest;

use crate::storage::ReadBody;

/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// A running digest of one of the algorithms.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Hasher {
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Crc32(h) => h.update(bytes),
        }
    }

    /// The digest in lower-case hexadecimal (CRC32 as 8 digits, big-endian, as `cksum -a crc32b`
    /// and ProFTPD print it).
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The digest of `len` bytes of `body` from `start` (a [`ReadBody::Stream`] already begins
/// there). A body that ends before `len` bytes is an error: the file changed under the hash.
pub fn digest_range(
    algorithm: HashAlgorithm,
    body: ReadBody,
    start: u64,
    len: u64,
) -> io::Result<String> {
    let mut reader: Box<dyn Read> = match body {
        ReadBody::File(mut file) => {
            file.seek(SeekFrom::Start(start))?;
            Box::new(file)
        }
        ReadBody::Stream(stream) => stream,
    };
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let read = match reader.read(&mut buffer[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before the range did",
                ))
            }
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        left -= read as u64;
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(algorithm: HashAlgorithm, bytes: &[u8], start: u64, len: u64) -> String {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        digest_range(algorithm, ReadBody::File(file), start, len).unwrap()
    }

    /// Known answers: the empty string and "abc" from FIPS 180 / RFC 1321 and the CRC-32 check
    /// value of "123456789".
    #[test]
    fn known_answers() {
        use HashAlgorithm as A;
        assert_eq!(
            digest_of(A::Sha256, b"abc", 0, 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest_of(A::Sha1, b"", 0, 0),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            digest_of(A::Md5, b"abc", 0, 3),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(digest_of(A::Crc32, b"123456789", 0, 9), "cbf43926");
        assert!(digest_of(A::Sha512, b"abc", 0, 3).starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn ranges_and_short_bodies() {
        use HashAlgorithm as A;
        assert_eq!(
            digest_of(A::Crc32, b"xx123456789yy", 2, 9),
            digest_of(A::Crc32, b"123456789", 0, 9)
        );
        let stream = ReadBody::Stream(Box::new(std::io::Cursor::new(b"short".to_vec())));
        let error = digest_range(A::Md5, stream, 0, 10).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
