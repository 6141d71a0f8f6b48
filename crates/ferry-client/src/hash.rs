//! Verified transfers: asking the server for a file's checksum (HASH of
//! draft-bryan-ftpext-hash-02, or the older XSHA256/XSHA1/XMD5/XCRC commands), reading the
//! reply variants servers send, and hashing a local file the same way.
//!
//! Preference: HASH with SHA-256, then SHA-1, MD5, CRC32 (whichever the FEAT `HASH` line
//! offers); without HASH, XSHA256, XSHA1, XMD5, XCRC in that order, those FEAT announces (all
//! of them when the server has no FEAT). What worked is remembered for the session.

use std::io::Read;
use std::path::Path;

use ferry_proto::reply::Reply;
use md5::Digest as _;

use crate::client::{negative, Client};
use crate::error::FtpError;

/// A checksum algorithm both sides can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha1,
    Md5,
    Crc32,
}

/// The algorithms in order of preference.
pub const PREFERENCE: [HashAlgorithm; 4] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha1,
    HashAlgorithm::Md5,
    HashAlgorithm::Crc32,
];

impl HashAlgorithm {
    /// The name HASH and FEAT use (`SHA-256`), and the one the JSON output shows.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Crc32 => "CRC32",
        }
    }

    /// The older command that answers with this algorithm's digest.
    pub fn x_command(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "XSHA256",
            HashAlgorithm::Sha1 => "XSHA1",
            HashAlgorithm::Md5 => "XMD5",
            HashAlgorithm::Crc32 => "XCRC",
        }
    }

    /// The length of the digest in hexadecimal digits.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Md5 => 32,
            HashAlgorithm::Crc32 => 8,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().trim_end_matches('*');
        PREFERENCE
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

/// How this session asks for checksums, once found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMethod {
    /// `HASH path` with this algorithm selected (by `OPTS HASH` when it was not the default).
    Hash(HashAlgorithm),
    /// `XSHA256 path` and friends.
    XCommand(HashAlgorithm),
}

impl HashMethod {
    pub fn algorithm(self) -> HashAlgorithm {
        match self {
            HashMethod::Hash(a) | HashMethod::XCommand(a) => a,
        }
    }
}

/// The server's checksum of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHash {
    pub algorithm: HashAlgorithm,
    /// Lower-case hexadecimal.
    pub hex: String,
}

/// Why a checksum reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashReplyError {
    #[error("no {0} digest in the reply")]
    NoDigest(&'static str),
    #[error("the reply covers bytes {0}-{1}, not the whole file")]
    PartialRange(u64, u64),
}

/// Reads the digest out of a HASH or X-command reply (213, or 250/251 as some servers send),
/// whatever the layout: `SHA-256 0-49 <hex> name`, `<hex>`, `<hex> name`. A byte range, when
/// there is one, must cover the whole file of `size` bytes: `0-size` and `0-(size-1)` are both
/// seen in the wild.
pub fn parse_hash_reply(
    reply: &Reply,
    algorithm: HashAlgorithm,
    size: Option<u64>,
) -> Result<String, HashReplyError> {
    let text = reply.lines.join(" ");
    let tokens: Vec<&str> = text.split_whitespace().collect();
    for token in &tokens {
        if let Some((start, end)) = parse_range(token) {
            let whole =
                start == 0 && size.is_none_or(|size| end == size || end.saturating_add(1) == size);
            if !whole {
                return Err(HashReplyError::PartialRange(start, end));
            }
        }
    }
    let is_hex = |t: &&&str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
    let exact = tokens
        .iter()
        .filter(is_hex)
        .find(|t| t.len() == algorithm.hex_len());
    // A CRC32 printed without its leading zeros, as the first word of the reply.
    let short_crc = tokens
        .first()
        .filter(|_| algorithm == HashAlgorithm::Crc32)
        .filter(is_hex)
        .filter(|t| t.len() < 8)
        .map(|t| format!("{t:0>8}"));
    match (exact, short_crc) {
        (Some(hex), _) => Ok(hex.to_ascii_lowercase()),
        (None, Some(hex)) => Ok(hex.to_ascii_lowercase()),
        (None, None) => Err(HashReplyError::NoDigest(algorithm.name())),
    }
}

fn parse_range(token: &str) -> Option<(u64, u64)> {
    let (start, end) = token.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

/// The algorithms a FEAT `HASH SHA-256*;SHA-1;MD5` line offers, and the selected one (`*`).
pub fn offered_by_feat(line: &str) -> (Vec<HashAlgorithm>, Option<HashAlgorithm>) {
    let list = line.split_once(' ').map(|(_, rest)| rest).unwrap_or("");
    let mut offered = Vec::new();
    let mut selected = None;
    for name in list.split(';').filter(|n| !n.trim().is_empty()) {
        if let Some(algorithm) = HashAlgorithm::from_name(name) {
            offered.push(algorithm);
            if name.trim().ends_with('*') {
                selected = Some(algorithm);
            }
        }
    }
    (offered, selected)
}

/// A running checksum of bytes fed to it.
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    pub fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Crc32(h) => h.update(bytes),
        }
    }

    /// The digest in lower-case hexadecimal.
    pub fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => to_hex(&h.finalize()),
            Hasher::Sha1(h) => to_hex(&h.finalize()),
            Hasher::Md5(h) => to_hex(&h.finalize()),
            Hasher::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum of a local file (blocking: call it from a blocking thread for big files).
pub fn hash_file(path: &Path, algorithm: HashAlgorithm) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..read]);
    }
}

impl Client {
    /// The server's checksum of `path` (`size` bytes, when known, to check the reply's range);
    /// `Ok(None)` when the server offers no checksum command.
    pub async fn remote_hash(
        &mut self,
        path: &str,
        size: Option<u64>,
    ) -> Result<Option<RemoteHash>, FtpError> {
        let method = match self.hash_method {
            Some(method) => method,
            None => {
                let found = self.find_hash_method(path).await?;
                self.hash_method = Some(found);
                found
            }
        };
        let Some(method) = method else {
            return Ok(None);
        };
        let Some(reply) = self.hash_command(method, path).await? else {
            return Ok(None);
        };
        let algorithm = method.algorithm();
        match parse_hash_reply(&reply, algorithm, size) {
            Ok(hex) => Ok(Some(RemoteHash { algorithm, hex })),
            Err(_) => Err(FtpError::UnexpectedReply {
                command: command_verb(method).into(),
                reply,
            }),
        }
    }

    /// The checksum reply; `None` (with a warning) when the server refuses this one for a
    /// reason other than a missing file (ferryd's 552 for anonymous users, a size cap).
    async fn hash_command(
        &mut self,
        method: HashMethod,
        path: &str,
    ) -> Result<Option<Reply>, FtpError> {
        let verb = command_verb(method);
        let reply = self
            .control
            .command_final(&format!("{verb} {path}"))
            .await?;
        match reply.code {
            213 | 250 | 251 => Ok(Some(reply)),
            450 | 550 => Err(negative(reply, "RETR", Some(path))),
            _ => {
                if let Some(transcript) = &self.config.transcript {
                    let text = crate::error::summary(&reply);
                    transcript.warning(&format!("{verb} {path}: no checksum ({text})"));
                }
                Ok(None)
            }
        }
    }

    /// HASH when FEAT offers it (selecting the best algorithm with OPTS HASH), else the first
    /// X-command the server answers for `path`.
    async fn find_hash_method(&mut self, path: &str) -> Result<Option<HashMethod>, FtpError> {
        let features = self.features().await?;
        let hash_line = features
            .lines()
            .iter()
            .find(|l| l.to_ascii_uppercase().starts_with("HASH"))
            .cloned();
        if let Some(line) = hash_line {
            if let Some(method) = self.select_hash(&line).await? {
                return Ok(Some(method));
            }
        }
        // The X-commands a FEAT reply announces; a server that answered no FEAT (or an empty
        // one) is asked for each in turn.
        let probe_all = features.lines().is_empty();
        let candidates = PREFERENCE
            .into_iter()
            .filter(|a| probe_all || features.has(a.x_command()));
        for algorithm in candidates {
            let verb = algorithm.x_command();
            let reply = self
                .control
                .command_final(&format!("{verb} {path}"))
                .await?;
            if matches!(reply.code, 213 | 250 | 251) {
                return Ok(Some(HashMethod::XCommand(algorithm)));
            }
            if matches!(reply.code, 450 | 550) {
                return Err(negative(reply, "RETR", Some(path)));
            }
        }
        Ok(None)
    }

    async fn select_hash(&mut self, line: &str) -> Result<Option<HashMethod>, FtpError> {
        let (offered, selected) = offered_by_feat(line);
        let Some(best) = PREFERENCE.into_iter().find(|a| offered.contains(a)) else {
            return Ok(None);
        };
        if selected != Some(best) {
            let reply = self
                .control
                .command_final(&format!("OPTS HASH {}", best.name()))
                .await?;
            if reply.class() != 2 {
                return Ok(selected.map(HashMethod::Hash));
            }
        }
        Ok(Some(HashMethod::Hash(best)))
    }
}

fn command_verb(method: HashMethod) -> &'static str {
    match method {
        HashMethod::Hash(_) => "HASH",
        HashMethod::XCommand(algorithm) => algorithm.x_command(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hash_reply_variants() {
        let draft = Reply::new(213, format!("SHA-256 0-3 {SHA256_ABC} abc.txt"));
        assert_eq!(
            parse_hash_reply(&draft, HashAlgorithm::Sha256, Some(3)),
            Ok(SHA256_ABC.into())
        );
        let minus_one = Reply::new(213, format!("SHA-256 0-2 {} abc.txt", SHA256_ABC));
        assert!(parse_hash_reply(&minus_one, HashAlgorithm::Sha256, Some(3)).is_ok());
        let partial = Reply::new(213, format!("SHA-256 5-9 {SHA256_ABC} abc.txt"));
        assert_eq!(
            parse_hash_reply(&partial, HashAlgorithm::Sha256, Some(10)),
            Err(HashReplyError::PartialRange(5, 9))
        );
        let serv_u = Reply::new(250, "900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(
            parse_hash_reply(&serv_u, HashAlgorithm::Md5, None),
            Ok("900150983cd24fb0d6963f7d28e17f72".into())
        );
        let short_crc = Reply::new(213, "1c291ca");
        assert_eq!(
            parse_hash_reply(&short_crc, HashAlgorithm::Crc32, None),
            Ok("01c291ca".into())
        );
        let nothing = Reply::new(213, "File status okay");
        assert!(parse_hash_reply(&nothing, HashAlgorithm::Md5, None).is_err());
    }

    #[test]
    fn local_digests_match_known_values() {
        let digest = |algorithm| {
            let mut hasher = Hasher::new(algorithm);
            hasher.update(b"abc");
            hasher.finish()
        };
        assert_eq!(digest(HashAlgorithm::Sha256), SHA256_ABC);
        assert_eq!(
            digest(HashAlgorithm::Sha1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest(HashAlgorithm::Md5),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(digest(HashAlgorithm::Crc32), "352441c2");
    }

    #[test]
    fn feat_line_offers() {
        let (offered, selected) = offered_by_feat("HASH SHA-1;SHA-256*;MD5;CRC32;SHA-512");
        assert_eq!(offered.len(), 4);
        assert_eq!(selected, Some(HashAlgorithm::Sha256));
        assert_eq!(offered_by_feat("HASH").0, Vec::new());
    }
}
