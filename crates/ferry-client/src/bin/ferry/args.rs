//! Command-line options, in the spirit of the classic BSD `ftp`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ferry_client::{AddressFamily, ClientConfig, DataMode, ResolveOverride};

/// The `--help` text after the options.
const AFTER_HELP: &str = "\
Usage forms:
  ferry [options] [host [port]]          interactive session (commands from stdin when piped)
  ferry get ftp://[user[:pass]@]host[:port]/path [-o FILE] [-c]
  ferry put FILE ftp://[user[:pass]@]host[:port]/[path]
  ferry ls ftp://[user[:pass]@]host[:port]/[path]
Without a user in the URL, .netrc is consulted, then anonymous login (anonymous / ferry@).";

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
    /// One-shot get: where to write (`-` for standard output)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<String>,
    /// One-shot get: continue a partial download (FILE.part) with REST
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// Print the version
    #[arg(long)]
    pub version: bool,
    /// HOST PORT, or: get URL | put FILE URL | ls URL
    #[arg(value_name = "ARGS")]
    pub words: Vec<String>,
}

impl Args {
    /// The library settings these options ask for.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::default().with_timeouts(Duration::from_secs(self.timeout));
        config.data_mode = match (self.active, self.passive) {
            (true, _) => DataMode::Active,
            (false, true) => DataMode::Passive,
            (false, false) => DataMode::Auto,
        };
        config.use_epsv = !self.no_epsv;
        config.family = match (self.ipv4, self.ipv6) {
            (true, _) => AddressFamily::V4,
            (false, true) => AddressFamily::V6,
            (false, false) => AddressFamily::Any,
        };
        config.resolve_overrides = self.resolve.clone();
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
}
