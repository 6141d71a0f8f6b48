//! FTP commands: the [`Command`] enum and its parser.
//!
//! One variant per verb; the `X*` aliases of RFC 775 (XCWD, XCUP, XPWD, XMKD, XRMD) parse to the
//! same variants as their RFC 959 names. Parsing checks the arguments' grammar only; whether a
//! command is allowed now (login, sequence) is the server's business.

use std::fmt;
use std::net::SocketAddr;

use crate::hostport::{self, HostPortError};

/// A password: its `Debug` and `Display` never show the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The password itself; call this only where it is checked or sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Representation type (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` / `TYPE A N`: text, CRLF line ends on the wire.
    Ascii,
    /// `TYPE I` / `TYPE L 8`: bytes as they are.
    Image,
}

/// Argument of EPSV (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// `EPSV`: any protocol.
    Any,
    /// `EPSV 1` (IPv4) or `EPSV 2` (IPv6).
    Protocol(u16),
    /// `EPSV ALL`: from now on only EPSV may set up data connections.
    All,
}

/// A parsed FTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// RFC 959 §4.1.1
    User(String),
    /// RFC 959 §4.1.1
    Pass(Secret),
    /// RFC 959 §4.1.1
    Acct(String),
    /// RFC 959 §4.1.1 (and XCWD, RFC 775)
    Cwd(String),
    /// RFC 959 §4.1.1 (and XCUP, RFC 775)
    Cdup,
    /// RFC 959 §4.1.1
    Rein,
    /// RFC 959 §4.1.1
    Quit,
    /// RFC 959 §4.1.2
    Port(SocketAddr),
    /// RFC 959 §4.1.2
    Pasv,
    /// RFC 2428 §2
    Eprt(SocketAddr),
    /// RFC 2428 §3
    Epsv(EpsvArg),
    /// RFC 959 §4.1.2: `TYPE A`, `TYPE A N`, `TYPE I`, `TYPE L 8`.
    Type(TransferType),
    /// RFC 959 §4.1.2: only `F` is supported; other codes parse and are refused by the server.
    Stru(char),
    /// RFC 959 §4.1.2: only `S` is supported.
    Mode(char),
    /// RFC 959 §4.1.3
    Retr(String),
    /// RFC 959 §4.1.3
    Stor(String),
    /// RFC 959 §4.1.3 (an argument, if sent, is ignored as RFC 1123 §4.1.2.9 allows).
    Stou,
    /// RFC 959 §4.1.3
    Appe(String),
    /// RFC 959 §4.1.3: the byte count is accepted and ignored.
    Allo,
    /// RFC 3659 §5: restart marker for STREAM mode.
    Rest(u64),
    /// RFC 959 §4.1.3
    Rnfr(String),
    /// RFC 959 §4.1.3
    Rnto(String),
    /// RFC 959 §4.1.3
    Abor,
    /// RFC 959 §4.1.3
    Dele(String),
    /// RFC 959 §4.1.3 (and XRMD)
    Rmd(String),
    /// RFC 959 §4.1.3 (and XMKD)
    Mkd(String),
    /// RFC 959 §4.1.3 (and XPWD)
    Pwd,
    /// RFC 959 §4.1.3: the raw argument, options such as `-la` included.
    List(Option<String>),
    /// RFC 959 §4.1.3
    Nlst(Option<String>),
    /// RFC 3659 §7
    Mlsd(Option<String>),
    /// RFC 3659 §7
    Mlst(Option<String>),
    /// RFC 3659 §4
    Size(String),
    /// RFC 3659 §3
    Mdtm(String),
    /// RFC 959 §4.1.3
    Site(String),
    /// RFC 959 §4.1.3
    Syst,
    /// RFC 959 §4.1.3
    Stat(Option<String>),
    /// RFC 959 §4.1.3
    Help(Option<String>),
    /// RFC 959 §4.1.3
    Noop,
    /// RFC 2389 §3
    Feat,
    /// RFC 2389 §4: the option name (upper-cased) and the rest of the line.
    Opts(String, Option<String>),
    /// RFC 4217 §4: the security mechanism, upper-cased (`TLS`, `SSL`, `TLS-C`, `TLS-P`).
    Auth(String),
    /// RFC 4217 §8 (RFC 2228 PBSZ): protection buffer size; only 0 is meaningful for TLS.
    Pbsz(u64),
    /// RFC 4217 §9 (RFC 2228 PROT): data channel protection level, `C`, `S`, `E` or `P`.
    Prot(char),
    /// RFC 4217 §6 (RFC 2228 CCC): clear the control channel.
    Ccc,
    /// draft-bryan-ftpext-hash-02 §3: the hash of a file with the selected algorithm.
    Hash(String),
    /// The legacy checksum verbs (XCRC, XMD5, XSHA1, XSHA256, XSHA512) as ProFTPD's mod_digest
    /// and FileZilla Server take them: a path, then an optional start offset and an optional
    /// end offset (exclusive).
    Checksum {
        algorithm: HashAlgorithm,
        path: String,
        start: Option<u64>,
        end: Option<u64>,
    },
    /// draft-bryan-ftp-range §3: `RANG start end`, an inclusive byte range for the next HASH;
    /// `RANG 1 0` resets it.
    Rang(u64, u64),
    /// draft-somers-ftp-mfxx §3: `MFMT time-val path` sets a file's modification time (UTC).
    Mfmt(i64, String),
    /// RFC 7151 §3: `HOST host-name`, the virtual host wanted, before login.
    Host(String),
    /// draft-peterson-streamlined-ftp-command-extensions §5: the space available for uploads.
    Avbl(Option<String>),
    /// A verb of the FTP command set that Ferry knows but does not implement (502).
    Unimplemented(String),
}

/// A hash function of HASH (named as in IANA's "Hash Function Textual Names") and of the
/// legacy X* verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha512,
    Sha1,
    Md5,
    Crc32,
}

impl HashAlgorithm {
    /// Every algorithm, in the order FEAT lists them.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha1,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc32,
    ];

    /// The name HASH, FEAT and OPTS HASH use.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Crc32 => "CRC32",
        }
    }

    /// An algorithm by its name, in any case.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The algorithm of a legacy verb (XCRC, XMD5, XSHA, XSHA1, XSHA256, XSHA512).
    pub fn of_legacy_verb(verb: &str) -> Option<HashAlgorithm> {
        Some(match verb {
            "XCRC" => HashAlgorithm::Crc32,
            "XMD5" => HashAlgorithm::Md5,
            "XSHA" | "XSHA1" => HashAlgorithm::Sha1,
            "XSHA256" => HashAlgorithm::Sha256,
            "XSHA512" => HashAlgorithm::Sha512,
            _ => return None,
        })
    }

    /// The legacy verb that asks for this algorithm.
    pub fn legacy_verb(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "XSHA256",
            HashAlgorithm::Sha512 => "XSHA512",
            HashAlgorithm::Sha1 => "XSHA1",
            HashAlgorithm::Md5 => "XMD5",
            HashAlgorithm::Crc32 => "XCRC",
        }
    }
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Reply 500.
    #[error("empty command line")]
    Empty,
    /// Reply 500.
    #[error("unknown command {0}")]
    Unknown(String),
    /// Reply 501: the verb is known, its arguments are not right.
    #[error("{verb}: {reason}")]
    Syntax { verb: &'static str, reason: String },
    /// Reply 504: the verb is known, this parameter is not implemented.
    #[error("{verb}: parameter not implemented")]
    Parameter { verb: &'static str },
    /// Reply 522 (RFC 2428 §2, §3): EPRT or EPSV named a network protocol other than 1 (IPv4)
    /// and 2 (IPv6).
    #[error("{verb}: network protocol not supported")]
    NetworkProtocol { verb: &'static str },
}

/// Verbs Ferry recognises but does not implement: RFC 959's, RFC 1639's and RFC 2228's.
const UNIMPLEMENTED: &[&str] = &[
    "SMNT", "LPRT", "LPSV", "ADAT", "MIC", "CONF", "ENC", "LANG", "MFCT", "MFF",
];

/// Parses one control line (without CRLF) into a command.
///
/// RFC 959 §5.3.1: `command = verb [SP argument] CRLF`; verbs are case-insensitive.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let line = line.trim_start();
    let (verb, arg) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, Some(rest)),
        None => (line, None),
    };
    if verb.is_empty() {
        return Err(ParseError::Empty);
    }
    let upper = verb.to_ascii_uppercase();
    let arg = arg.filter(|a| !a.trim().is_empty());
    parse_verb(&upper, arg)
}

fn parse_verb(verb: &str, arg: Option<&str>) -> Result<Command, ParseError> {
    use Command as C;
    Ok(match verb {
        "USER" => C::User(required("USER", arg)?.to_string()),
        "PASS" => C::Pass(Secret::new(arg.unwrap_or(""))),
        "ACCT" => C::Acct(required("ACCT", arg)?.to_string()),
        "CWD" | "XCWD" => C::Cwd(required("CWD", arg)?.to_string()),
        "CDUP" | "XCUP" => C::Cdup,
        "REIN" => C::Rein,
        "QUIT" => C::Quit,
        "PORT" => C::Port(host_port("PORT", arg, hostport::parse_port_arg)?),
        "PASV" => C::Pasv,
        "EPRT" => C::Eprt(host_port("EPRT", arg, hostport::parse_eprt_arg)?),
        "EPSV" => C::Epsv(epsv_arg(arg)?),
        "TYPE" => C::Type(type_code(required("TYPE", arg)?)?),
        "STRU" => C::Stru(single_letter("STRU", arg)?),
        "MODE" => C::Mode(single_letter("MODE", arg)?),
        "RETR" => C::Retr(required("RETR", arg)?.to_string()),
        "STOR" => C::Stor(required("STOR", arg)?.to_string()),
        "STOU" => C::Stou,
        "APPE" => C::Appe(required("APPE", arg)?.to_string()),
        "ALLO" => C::Allo,
        "REST" => C::Rest(restart_marker(arg)?),
        "RNFR" => C::Rnfr(required("RNFR", arg)?.to_string()),
        "RNTO" => C::Rnto(required("RNTO", arg)?.to_string()),
        "ABOR" => C::Abor,
        "DELE" => C::Dele(required("DELE", arg)?.to_string()),
        "RMD" | "XRMD" => C::Rmd(required("RMD", arg)?.to_string()),
        "MKD" | "XMKD" => C::Mkd(required("MKD", arg)?.to_string()),
        "PWD" | "XPWD" => C::Pwd,
        "LIST" => C::List(arg.map(str::to_string)),
        "NLST" => C::Nlst(arg.map(str::to_string)),
        "MLSD" => C::Mlsd(arg.map(str::to_string)),
        "MLST" => C::Mlst(arg.map(str::to_string)),
        "SIZE" => C::Size(required("SIZE", arg)?.to_string()),
        "MDTM" => C::Mdtm(required("MDTM", arg)?.to_string()),
        "SITE" => C::Site(required("SITE", arg)?.to_string()),
        "SYST" => C::Syst,
        "STAT" => C::Stat(arg.map(str::to_string)),
        "HELP" => C::Help(arg.map(|a| a.trim().to_string())),
        "NOOP" => C::Noop,
        "FEAT" => C::Feat,
        "OPTS" => opts(required("OPTS", arg)?),
        "AUTH" => C::Auth(required("AUTH", arg)?.trim().to_ascii_uppercase()),
        "PBSZ" => C::Pbsz(buffer_size(arg)?),
        "PROT" => C::Prot(single_letter("PROT", arg)?),
        "CCC" => C::Ccc,
        "HASH" => C::Hash(required("HASH", arg)?.to_string()),
        "RANG" => rang(arg)?,
        "MFMT" => mfmt(arg)?,
        "HOST" => C::Host(host_name(arg)?),
        "AVBL" => C::Avbl(arg.map(str::to_string)),
        "XCRC" | "XMD5" | "XSHA" | "XSHA1" | "XSHA256" | "XSHA512" => checksum(verb, arg)?,
        _ if UNIMPLEMENTED.contains(&verb) => C::Unimplemented(verb.to_string()),
        _ => return Err(ParseError::Unknown(verb.to_string())),
    })
}

fn required<'a>(verb: &'static str, arg: Option<&'a str>) -> Result<&'a str, ParseError> {
    arg.ok_or_else(|| ParseError::Syntax {
        verb,
        reason: "argument required".into(),
    })
}

fn host_port(
    verb: &'static str,
    arg: Option<&str>,
    parse: fn(&str) -> Result<SocketAddr, HostPortError>,
) -> Result<SocketAddr, ParseError> {
    parse(required(verb, arg)?.trim()).map_err(|e| match e {
        HostPortError::UnsupportedProtocol(_) => ParseError::NetworkProtocol { verb },
        e => ParseError::Syntax {
            verb,
            reason: e.to_string(),
        },
    })
}

/// RFC 2428 §3: `EPSV [<net-prt> | ALL]`.
fn epsv_arg(arg: Option<&str>) -> Result<EpsvArg, ParseError> {
    let Some(arg) = arg.map(str::trim) else {
        return Ok(EpsvArg::Any);
    };
    if arg.eq_ignore_ascii_case("ALL") {
        return Ok(EpsvArg::All);
    }
    match arg.parse::<u16>() {
        Ok(protocol @ (1 | 2)) => Ok(EpsvArg::Protocol(protocol)),
        Ok(_) => Err(ParseError::NetworkProtocol { verb: "EPSV" }),
        Err(_) => Err(ParseError::Syntax {
            verb: "EPSV",
            reason: format!("bad network protocol {arg:?}"),
        }),
    }
}

/// RFC 959 §5.3.2: `<type-code> ::= A [<sp> <form-code>] | E [...] | I | L <sp> <byte-size>`.
fn type_code(arg: &str) -> Result<TransferType, ParseError> {
    // Compared in place (no uppercased copies): clients send TYPE before every transfer.
    let mut words = arg.split_whitespace();
    let (first, second, more) = (words.next(), words.next(), words.next().is_some());
    let is = |word: Option<&str>, text: &str| word.is_some_and(|w| w.eq_ignore_ascii_case(text));
    let two_at_most = !more;
    if two_at_most && is(first, "A") && (second.is_none() || is(second, "N")) {
        return Ok(TransferType::Ascii);
    }
    if two_at_most && ((is(first, "I") && second.is_none()) || (is(first, "L") && is(second, "8")))
    {
        return Ok(TransferType::Image);
    }
    let unsupported = is(first, "E")
        || (two_at_most && is(first, "A") && (is(second, "T") || is(second, "C")))
        || (two_at_most && is(first, "L") && second.is_some());
    match unsupported {
        true => Err(ParseError::Parameter { verb: "TYPE" }),
        false => Err(ParseError::Syntax {
            verb: "TYPE",
            reason: format!("unrecognised type {arg:?}"),
        }),
    }
}

fn single_letter(verb: &'static str, arg: Option<&str>) -> Result<char, ParseError> {
    let arg = required(verb, arg)?.trim();
    let mut chars = arg.chars();
    match (chars.next(), chars.next()) {
        (Some(letter), None) => Ok(letter.to_ascii_uppercase()),
        _ => Err(ParseError::Syntax {
            verb,
            reason: format!("expected one letter, got {arg:?}"),
        }),
    }
}

/// RFC 3659 §5.2: in STREAM mode the marker is a decimal byte offset.
fn restart_marker(arg: Option<&str>) -> Result<u64, ParseError> {
    let arg = required("REST", arg)?.trim();
    arg.parse().map_err(|_| ParseError::Syntax {
        verb: "REST",
        reason: format!("restart marker must be a byte offset, got {arg:?}"),
    })
}

/// RFC 2228 §3: `PBSZ <decimal-integer>`, a 32-bit unsigned number.
fn buffer_size(arg: Option<&str>) -> Result<u64, ParseError> {
    let arg = required("PBSZ", arg)?.trim();
    arg.parse::<u32>()
        .map(u64::from)
        .map_err(|_| ParseError::Syntax {
            verb: "PBSZ",
            reason: format!("buffer size must be a 32-bit number, got {arg:?}"),
        })
}

/// RFC 2389 §4: `opts = opts-cmd SP command-name [ SP command-options ]`.
fn opts(arg: &str) -> Command {
    let arg = arg.trim();
    match arg.split_once(' ') {
        Some((name, rest)) => Command::Opts(name.to_ascii_uppercase(), Some(rest.to_string())),
        None => Command::Opts(arg.to_ascii_uppercase(), None),
    }
}

/// draft-bryan-ftp-range §3.1: `RANG SP start-point SP end-point`, both decimal; the end is
/// inclusive and not below the start, except `RANG 1 0`, which resets.
fn rang(arg: Option<&str>) -> Result<Command, ParseError> {
    let syntax = |reason: &str| ParseError::Syntax {
        verb: "RANG",
        reason: reason.to_string(),
    };
    let arg = required("RANG", arg)?.trim();
    let (start, end) = arg
        .split_once(' ')
        .ok_or_else(|| syntax("expected a start and an end"))?;
    let start: u64 = start
        .trim()
        .parse()
        .map_err(|_| syntax("bad start point"))?;
    let end: u64 = end.trim().parse().map_err(|_| syntax("bad end point"))?;
    if end < start && (start, end) != (1, 0) {
        return Err(syntax("the end point is before the start point"));
    }
    Ok(Command::Rang(start, end))
}

/// draft-somers-ftp-mfxx §3.1: `MFMT SP time-val SP pathname`.
fn mfmt(arg: Option<&str>) -> Result<Command, ParseError> {
    let arg = required("MFMT", arg)?;
    let (time, path) = arg.split_once(' ').ok_or_else(|| ParseError::Syntax {
        verb: "MFMT",
        reason: "expected a time and a path".into(),
    })?;
    let secs = crate::time::parse_time_val(time).ok_or_else(|| ParseError::Syntax {
        verb: "MFMT",
        reason: format!("bad time {:?}", time.chars().take(20).collect::<String>()),
    })?;
    if path.trim().is_empty() {
        return Err(ParseError::Syntax {
            verb: "MFMT",
            reason: "path required".into(),
        });
    }
    Ok(Command::Mfmt(secs, path.to_string()))
}

/// RFC 7151 §3: `HOST SP host`, a domain name or an address literal (`[...]`); compared
/// case-insensitively, so it is lower-cased here.
fn host_name(arg: Option<&str>) -> Result<String, ParseError> {
    let name = required("HOST", arg)?.trim();
    let valid = name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    if !valid {
        return Err(ParseError::Syntax {
            verb: "HOST",
            reason: "not a host name".into(),
        });
    }
    Ok(name.to_ascii_lowercase())
}

/// `XCRC path [start [end]]` and its kin: a path, optionally quoted (`"my file"`), then up to
/// two decimal offsets. Unquoted, trailing numbers are offsets only when a path remains
/// before them.
fn checksum(verb: &str, arg: Option<&str>) -> Result<Command, ParseError> {
    let Some(algorithm) = HashAlgorithm::of_legacy_verb(verb) else {
        return Err(ParseError::Unknown(verb.to_string()));
    };
    let static_verb = algorithm.legacy_verb();
    let syntax = |reason: &str| ParseError::Syntax {
        verb: static_verb,
        reason: reason.to_string(),
    };
    let arg = required(static_verb, arg)?;
    let (path, numbers): (String, Vec<&str>) = if let Some(quoted) = arg.strip_prefix('"') {
        let (path, rest) = quoted
            .split_once('"')
            .ok_or_else(|| syntax("unterminated quoted path"))?;
        (path.to_string(), rest.split_whitespace().collect())
    } else {
        let mut words: Vec<&str> = arg.split(' ').collect();
        let mut numbers = Vec::new();
        while numbers.len() < 2
            && words.len() > 1
            && words
                .last()
                .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        {
            numbers.insert(0, words.pop().expect("a word"));
        }
        (words.join(" "), numbers)
    };
    if path.is_empty() {
        return Err(syntax("path required"));
    }
    let mut offsets = numbers.iter().map(|n| n.parse::<u64>());
    let start = offsets
        .next()
        .transpose()
        .map_err(|_| syntax("bad start offset"))?;
    let end = offsets
        .next()
        .transpose()
        .map_err(|_| syntax("bad end offset"))?;
    if offsets.next().is_some() {
        return Err(syntax("too many arguments"));
    }
    if let (Some(start), Some(end)) = (start, end) {
        if end < start {
            return Err(syntax("the end offset is before the start"));
        }
    }
    Ok(Command::Checksum {
        algorithm,
        path,
        start,
        end,
    })
}

impl Command {
    /// The RFC verb, for logs, metrics and STAT's view of a running transfer.
    pub fn verb(&self) -> &'static str {
        use Command as C;
        match self {
            C::User(_) => "USER",
            C::Pass(_) => "PASS",
            C::Acct(_) => "ACCT",
            C::Cwd(_) => "CWD",
            C::Cdup => "CDUP",
            C::Rein => "REIN",
            C::Quit => "QUIT",
            C::Port(_) => "PORT",
            C::Pasv => "PASV",
            C::Eprt(_) => "EPRT",
            C::Epsv(_) => "EPSV",
            C::Type(_) => "TYPE",
            C::Stru(_) => "STRU",
            C::Mode(_) => "MODE",
            C::Retr(_) => "RETR",
            C::Stor(_) => "STOR",
            C::Stou => "STOU",
            C::Appe(_) => "APPE",
            C::Allo => "ALLO",
            C::Rest(_) => "REST",
            C::Rnfr(_) => "RNFR",
            C::Rnto(_) => "RNTO",
            C::Abor => "ABOR",
            C::Dele(_) => "DELE",
            C::Rmd(_) => "RMD",
            C::Mkd(_) => "MKD",
            C::Pwd => "PWD",
            C::List(_) => "LIST",
            C::Nlst(_) => "NLST",
            C::Mlsd(_) => "MLSD",
            C::Mlst(_) => "MLST",
            C::Size(_) => "SIZE",
            C::Mdtm(_) => "MDTM",
            C::Site(_) => "SITE",
            C::Syst => "SYST",
            C::Stat(_) => "STAT",
            C::Help(_) => "HELP",
            C::Noop => "NOOP",
            C::Feat => "FEAT",
            C::Opts(..) => "OPTS",
            C::Auth(_) => "AUTH",
            C::Pbsz(_) => "PBSZ",
            C::Prot(_) => "PROT",
            C::Ccc => "CCC",
            C::Hash(_) => "HASH",
            C::Checksum { algorithm, .. } => algorithm.legacy_verb(),
            C::Rang(..) => "RANG",
            C::Mfmt(..) => "MFMT",
            C::Host(_) => "HOST",
            C::Avbl(_) => "AVBL",
            C::Unimplemented(verb) => UNIMPLEMENTED
                .iter()
                .find(|known| **known == verb.as_str())
                .copied()
                .unwrap_or("UNKNOWN"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_session() {
        assert_eq!(parse("USER ftp"), Ok(Command::User("ftp".into())));
        assert_eq!(
            parse("PASS abc@any-domain.com"),
            Ok(Command::Pass(Secret::new("abc@any-domain.com")))
        );
        assert_eq!(
            parse("PORT 192,168,0,2,19,137"),
            Ok(Command::Port("192.168.0.2:5001".parse().unwrap()))
        );
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("CWD pub"), Ok(Command::Cwd("pub".into())));
        assert_eq!(
            parse("RETR readme.txt"),
            Ok(Command::Retr("readme.txt".into()))
        );
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn verbs_are_case_insensitive_and_aliases_map() {
        assert_eq!(parse("xpwd"), Ok(Command::Pwd));
        assert_eq!(parse("XMkd new dir"), Ok(Command::Mkd("new dir".into())));
        assert_eq!(parse("cdup"), Ok(Command::Cdup));
    }

    #[test]
    fn path_arguments_keep_spaces_and_utf8() {
        assert_eq!(
            parse("RETR my file  ü.txt"),
            Ok(Command::Retr("my file  ü.txt".into()))
        );
    }

    #[test]
    fn type_codes() {
        use TransferType::*;
        assert_eq!(parse("TYPE A"), Ok(Command::Type(Ascii)));
        assert_eq!(parse("TYPE a n"), Ok(Command::Type(Ascii)));
        assert_eq!(parse("TYPE I"), Ok(Command::Type(Image)));
        assert_eq!(parse("TYPE L 8"), Ok(Command::Type(Image)));
        assert_eq!(parse("TYPE E"), Err(ParseError::Parameter { verb: "TYPE" }));
        assert!(matches!(parse("TYPE Q"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse("TYPE"), Err(ParseError::Syntax { .. })));
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("FOO bar"), Err(ParseError::Unknown("FOO".into())));
        assert_eq!(parse("SMNT /x"), Ok(Command::Unimplemented("SMNT".into())));
        assert!(matches!(parse("REST abc"), Err(ParseError::Syntax { .. })));
        assert!(matches!(
            parse("PORT 1,2,3"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(parse("RETR"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse("RETR   "), Err(ParseError::Syntax { .. })));
    }

    #[test]
    fn epsv_and_opts() {
        assert_eq!(parse("EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(parse("EPSV all"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(parse("EPSV 2"), Ok(Command::Epsv(EpsvArg::Protocol(2))));
        assert_eq!(
            parse("EPSV 3"),
            Err(ParseError::NetworkProtocol { verb: "EPSV" })
        );
        assert_eq!(
            parse("EPRT |3|x|1|"),
            Err(ParseError::NetworkProtocol { verb: "EPRT" })
        );
        assert_eq!(
            parse("OPTS utf8 ON"),
            Ok(Command::Opts("UTF8".into(), Some("ON".into())))
        );
        assert_eq!(
            parse("EPRT |2|::1|6446|"),
            Ok(Command::Eprt("[::1]:6446".parse().unwrap()))
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let text = format!("{:?}", parse("PASS hunter2").unwrap());
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn security_commands_of_rfc_4217() {
        assert_eq!(parse("AUTH tls"), Ok(Command::Auth("TLS".into())));
        assert_eq!(parse("PBSZ 0"), Ok(Command::Pbsz(0)));
        assert!(matches!(parse("PBSZ -1"), Err(ParseError::Syntax { .. })));
        assert!(matches!(
            parse("PBSZ 99999999999"),
            Err(ParseError::Syntax { .. })
        ));
        assert_eq!(parse("PROT p"), Ok(Command::Prot('P')));
        assert_eq!(parse("CCC"), Ok(Command::Ccc));
        assert!(matches!(parse("AUTH"), Err(ParseError::Syntax { .. })));
    }

    #[test]
    fn hash_commands() {
        assert_eq!(parse("HASH a b.txt"), Ok(Command::Hash("a b.txt".into())));
        assert!(matches!(parse("HASH"), Err(ParseError::Syntax { .. })));
        assert_eq!(parse("RANG 0 49"), Ok(Command::Rang(0, 49)));
        assert_eq!(parse("RANG 1 0"), Ok(Command::Rang(1, 0)));
        assert!(matches!(parse("RANG 5 4"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse("RANG 5"), Err(ParseError::Syntax { .. })));
        assert_eq!(
            HashAlgorithm::from_name("sha-256"),
            Some(HashAlgorithm::Sha256)
        );
        assert_eq!(HashAlgorithm::from_name("CRC-37"), None);
    }

    #[test]
    fn legacy_checksum_verbs_take_optional_offsets() {
        let checksum = |path: &str, start, end| Command::Checksum {
            algorithm: HashAlgorithm::Crc32,
            path: path.into(),
            start,
            end,
        };
        assert_eq!(parse("XCRC a.txt"), Ok(checksum("a.txt", None, None)));
        assert_eq!(parse("XCRC a.txt 5"), Ok(checksum("a.txt", Some(5), None)));
        assert_eq!(
            parse("XCRC my file 5 10"),
            Ok(checksum("my file", Some(5), Some(10)))
        );
        assert_eq!(
            parse("XCRC \"2024 10\" 0 3"),
            Ok(checksum("2024 10", Some(0), Some(3)))
        );
        // A name that is all digits is a name, not an offset.
        assert_eq!(parse("XCRC 2024"), Ok(checksum("2024", None, None)));
        assert!(matches!(
            parse("XCRC a 9 3"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            parse("XCRC \"a 1"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            parse("XSHA256 a.txt"),
            Ok(Command::Checksum {
                algorithm: HashAlgorithm::Sha256,
                ..
            })
        ));
        assert_eq!(parse("xsha1 x").unwrap().verb(), "XSHA1");
    }

    #[test]
    fn mfmt_host_avbl() {
        assert_eq!(
            parse("MFMT 20261124233100 a b.txt"),
            Ok(Command::Mfmt(1_795_563_060, "a b.txt".into()))
        );
        assert!(matches!(
            parse("MFMT 2026 a.txt"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            parse("MFMT 20261124233100"),
            Err(ParseError::Syntax { .. })
        ));
        assert_eq!(
            parse("HOST Ftp.Example.COM"),
            Ok(Command::Host("ftp.example.com".into()))
        );
        assert_eq!(parse("HOST [::1]"), Ok(Command::Host("[::1]".into())));
        assert!(matches!(parse("HOST a/b"), Err(ParseError::Syntax { .. })));
        assert_eq!(parse("AVBL"), Ok(Command::Avbl(None)));
        assert_eq!(parse("AVBL pub"), Ok(Command::Avbl(Some("pub".into()))));
    }

    #[test]
    fn rest_offsets() {
        assert_eq!(parse("REST 0"), Ok(Command::Rest(0)));
        assert_eq!(parse("REST 1715"), Ok(Command::Rest(1715)));
    }
}
