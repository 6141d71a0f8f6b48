//! Command-line options, in the spirit of the classic BSD `ftp`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ferry_client::tls::{Roots, TrustPolicy};
use ferry_client::{
    AddressFamily, ClientConfig, DataMode, Fingerprint, ResolveOverride, TlsMode, TlsOptions,
    TlsVersions,
};

/// The `--help` text after the options.
const AFTER_HELP: &str = "\
Usage forms:
  ferry [options] [host [port]]          interactive session (commands from stdin when piped)
  ferry get ftp://[user[:pass]@]host[:port]/path [-o FILE] [-c]
  ferry put FILE ftp://[user[:pass]@]host[:port]/[path]
  ferry ls ftp://[user[:pass]@]host[:port]/[path] [--json]
  ferry get --segments N [--verify] [--retries N] URL      (ranges over N sessions)
  ferry put -c FILE URL                    continue an upload (SIZE, then REST+STOR or APPE)
  ferry mirror [options] URL [LOCAL]       make LOCAL like the remote folder
  ferry mirror -R [options] LOCAL URL      make the remote folder like LOCAL
Without a user in the URL, .netrc is consulted, then anonymous login (anonymous / ferry@).
ftps:// URLs use implicit FTPS (TLS from the first byte, port 990 by default).

FTPS: --tls asks for TLS with AUTH TLS and fails (exit 9) if the server refuses; --tls=try goes
on without encryption then, with a warning. The server's certificate is checked against the
system's roots (or --cacert). For a self-signed server, pass --pin with its fingerprint, or
accept it once in an interactive session: it is then remembered in the known-hosts file
(~/.config/ferry/known_hosts, or --known-hosts) as a `host:port SHA256:<hex>` line.";

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    about = "Ferry FTP client",
    disable_version_flag = true,
    after_help = format!("{AFTER_HELP}\n\n{}", crate::exit::HELP)
)]
pub struct Args {
    /// Active mode: the server connects back (PORT/EPRT)
    #[arg(short = 'A', long)]
    pub active: bool,
    /// Passive mode only, no fallback to active
    #[arg(short = 'p', long)]
    pub passive: bool,
    /// Debug: show the commands sent (`---> USER ftp`)
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// No auto-login on connect
    #[arg(short = 'n', long = "no-login")]
    pub no_login: bool,
    /// Verbose: show every server reply (the default in sessions)
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Not verbose
    #[arg(short = 'V', long = "quiet")]
    pub quiet: bool,
    /// No prompting for each file of mget, mput and mdelete
    #[arg(short = 'i', long = "no-prompt")]
    pub no_prompt: bool,
    /// IPv4 addresses only
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 addresses only
    #[arg(short = '6')]
    pub ipv6: bool,
    /// The .netrc file to use (default $NETRC, then ~/.netrc)
    #[arg(short = 'N', long, value_name = "FILE")]
    pub netrc: Option<PathBuf>,
    /// Pin a host name to an address, like curl: HOST:ADDR or HOST:PORT:ADDR
    #[arg(long, value_name = "HOST:[PORT:]ADDR")]
    pub resolve: Vec<ResolveOverride>,
    /// Seconds to wait for a connection, a reply or data before giving up
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Do not try EPSV/EPRT; use PASV/PORT only
    #[arg(long = "no-epsv")]
    pub no_epsv: bool,
    /// Connect to the address a PASV reply names (by default, to the server's own address at
    /// the reply's port)
    #[arg(long = "trust-pasv-address")]
    pub trust_pasv_address: bool,
    /// One-shot get: where to write (`-` for standard output)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<String>,
    /// One-shot get: continue a partial download (FILE.part) with REST
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// FTPS: AUTH TLS before logging in, then PBSZ 0 and PROT P (data encrypted too).
    /// `--tls=try` goes on unencrypted, with a warning, when the server refuses
    #[arg(long, value_name = "WHEN", num_args = 0..=1, require_equals = true,
          default_missing_value = "require", value_enum)]
    pub tls: Option<TlsWhen>,
    /// Implicit FTPS: TLS from the first byte, port 990 by default (as ftps:// URLs)
    #[arg(long)]
    pub implicit: bool,
    /// Trust the CA certificates in this PEM file instead of the system's
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Require the server's certificate to have this SHA-256 fingerprint
    #[arg(long, value_name = "SHA256:HEX")]
    pub pin: Option<Fingerprint>,
    /// The file of trusted certificate fingerprints (default ~/.config/ferry/known_hosts)
    #[arg(long = "known-hosts", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Do not check the server's certificate at all (a warning is printed; prefer --pin)
    #[arg(long)]
    pub insecure: bool,
    /// Testing: offer only this TLS version (1.2 or 1.3)
    #[arg(long = "tls-version", value_name = "VERSION", hide = true)]
    pub tls_version: Option<TlsVersions>,
    /// Check each transfer against the server's checksum (HASH, XSHA256, XSHA1, XMD5, XCRC);
    /// a mismatch exits with code 11 and a download stays NAME.part
    #[arg(long)]
    pub verify: bool,
    /// MODE Z: compress data connections with zlib, when the server offers it (FEAT MODE Z)
    #[arg(short = 'z', long = "mode-z")]
    pub mode_z: bool,
    /// Machine output: JSON lines for ls, transfers and mirror (fields in the README)
    #[arg(long)]
    pub json: bool,
    /// After a broken transfer or connection, reconnect and continue up to N times
    /// (waits 0.5 s, doubling, at most 30 s)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// One-shot get: N ranges over N sessions at once (as the shell's pget -n N)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub segments: usize,
    #[command(flatten)]
    pub mirror: crate::mirror::MirrorFlags,
    /// Record the session and draw it as a sequence diagram in FILE when done: SVG for
    /// FILE.svg, text for FILE.txt
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Print the version
    #[arg(long)]
    pub version: bool,
    /// Packaging: write the man page ferry.1 into this folder, and exit
    #[arg(long = "generate-man", value_name = "FOLDER", hide = true)]
    pub generate_man: Option<PathBuf>,
    /// Packaging: write bash, zsh and fish completions into this folder, and exit
    #[arg(long = "generate-completions", value_name = "FOLDER", hide = true)]
    pub generate_completions: Option<PathBuf>,
    /// HOST PORT, or: get URL | put FILE URL | ls URL
    #[arg(value_name = "ARGS")]
    pub words: Vec<String>,
}

/// When `--tls` asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsWhen {
    /// Fail when the server refuses AUTH TLS.
    Require,
    /// Go on without TLS, with a warning, when the server refuses AUTH TLS.
    Try,
}

impl Args {
    /// The TLS mode these options ask for; `implicit` is also set by an `ftps://` URL.
    pub fn tls_mode(&self, implicit: bool) -> TlsMode {
        match (self.implicit || implicit, self.tls) {
            (true, _) => TlsMode::Implicit,
            (false, Some(TlsWhen::Require)) => TlsMode::Explicit,
            (false, Some(TlsWhen::Try)) => TlsMode::Opportunistic,
            (false, None) => TlsMode::Off,
        }
    }

    /// The port used when none is given: 990 for implicit FTPS, else 21.
    pub fn default_port(&self) -> u16 {
        if self.implicit {
            990
        } else {
            21
        }
    }

    /// The TLS settings of these options (known hosts are added per server when connecting).
    pub fn tls_options(&self, implicit: bool) -> TlsOptions {
        TlsOptions {
            mode: self.tls_mode(implicit),
            roots: match &self.cacert {
                Some(path) => Roots::PemFile(path.clone()),
                None => Roots::System,
            },
            trust: TrustPolicy {
                pin: self.pin,
                known: Vec::new(),
                insecure: self.insecure,
            },
            versions: self.tls_version.unwrap_or_default(),
            ..TlsOptions::default()
        }
    }

    /// The library settings these options ask for.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::default().with_timeouts(Duration::from_secs(self.timeout));
        config.data_mode = match (self.active, self.passive) {
            (true, _) => DataMode::Active,
            (false, true) => DataMode::Passive,
            (false, false) => DataMode::Auto,
        };
        config.use_epsv = !self.no_epsv;
        config.trust_pasv_address = self.trust_pasv_address;
        config.family = match (self.ipv4, self.ipv6) {
            (true, _) => AddressFamily::V4,
            (false, true) => AddressFamily::V6,
            (false, false) => AddressFamily::Any,
        };
        config.resolve_overrides = self.resolve.clone();
        config.tls = self.tls_options(false);
        config
    }

    /// The .netrc these options point at.
    pub fn load_netrc(&self) -> ferry_client::netrc::Netrc {
        match &self.netrc {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| ferry_client::netrc::Netrc::parse(&text))
                .unwrap_or_default(),
            None => ferry_client::netrc::Netrc::load_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_flags() {
        let args = Args::try_parse_from(["ferry", "-A", "-d", "-n", "-4", "host", "2121"]).unwrap();
        let config = args.client_config();
        assert_eq!(config.data_mode, DataMode::Active);
        assert_eq!(config.family, AddressFamily::V4);
        assert!(args.debug && args.no_login);
        assert_eq!(args.words, vec!["host", "2121"]);
    }

    #[test]
    fn one_shot_flags_after_the_url() {
        let args = Args::try_parse_from([
            "ferry",
            "get",
            "ftp://h/f",
            "-o",
            "out",
            "-c",
            "--resolve",
            "h:127.0.0.1",
        ])
        .unwrap();
        assert_eq!(args.output.as_deref(), Some("out"));
        assert!(args.resume);
        assert_eq!(args.resolve.len(), 1);
        assert!(Args::try_parse_from(["ferry", "--resolve", "bad", "h"]).is_err());
    }

    #[test]
    fn tls_flags() {
        let plain = Args::try_parse_from(["ferry", "h"]).unwrap();
        assert_eq!(plain.tls_mode(false), TlsMode::Off);
        assert_eq!(plain.tls_mode(true), TlsMode::Implicit);
        let explicit = Args::try_parse_from(["ferry", "--tls", "h"]).unwrap();
        assert_eq!(explicit.tls_mode(false), TlsMode::Explicit);
        assert_eq!(explicit.words, vec!["h"]);
        let opportunistic = Args::try_parse_from(["ferry", "--tls=try", "h"]).unwrap();
        assert_eq!(opportunistic.tls_mode(false), TlsMode::Opportunistic);
        let implicit = Args::try_parse_from(["ferry", "--implicit", "--tls-version", "1.2", "h"]);
        let implicit = implicit.unwrap();
        assert_eq!(
            (implicit.tls_mode(false), implicit.default_port()),
            (TlsMode::Implicit, 990)
        );
        assert_eq!(implicit.tls_options(false).versions, TlsVersions::Tls12Only);
        let pin = format!("SHA256:{}", "ab".repeat(32));
        let pinned = Args::try_parse_from(["ferry", "--pin", &pin, "h"]).unwrap();
        assert_eq!(pinned.pin.map(|p| p.to_string()), Some(pin));
        assert!(Args::try_parse_from(["ferry", "--pin", "SHA256:00", "h"]).is_err());
        assert!(Args::try_parse_from(["ferry", "--tls=maybe", "h"]).is_err());
    }
}
