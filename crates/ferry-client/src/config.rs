//! Settings of a client: data-connection mode, timeouts, limits, name resolution.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::control::ControlLimits;
use crate::resolve::{AddressFamily, ResolveOverride};
use crate::tls::TlsOptions;
use crate::transcript::Transcript;

/// How data connections are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// Passive (EPSV, then PASV); active (EPRT/PORT) when passive fails.
    Auto,
    /// Passive only.
    Passive,
    /// Active only: the client listens and the server connects.
    Active,
}

/// Everything a [`crate::Client`] needs to know before connecting.
#[derive(Clone)]
pub struct ClientConfig {
    pub data_mode: DataMode,
    /// Try EPSV (passive) and EPRT (active, IPv4) before PASV and PORT.
    pub use_epsv: bool,
    /// Connect to the address a 227 (PASV) reply names. Off (as curl): the data connection
    /// goes to the control connection's server, at the port the reply names, so that a
    /// server cannot send the client's data to another host.
    pub trust_pasv_address: bool,
    pub connect_timeout: Duration,
    /// How long to wait for a reply on the control connection.
    pub reply_timeout: Duration,
    /// How long to wait for the server to connect (active) and for data to move.
    pub data_timeout: Duration,
    pub max_line: usize,
    pub max_reply_lines: usize,
    /// Largest listing kept in memory by the `list`/`nlst`/`mlsd` calls.
    pub max_listing: usize,
    pub family: AddressFamily,
    pub resolve_overrides: Vec<ResolveOverride>,
    pub transcript: Option<Arc<dyn Transcript>>,
    /// FTPS: off by default.
    pub tls: TlsOptions,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            data_mode: DataMode::Auto,
            use_epsv: true,
            trust_pasv_address: false,
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(60),
            max_line: 8 * 1024,
            max_reply_lines: 1000,
            max_listing: 64 * 1024 * 1024,
            family: AddressFamily::Any,
            resolve_overrides: Vec::new(),
            transcript: None,
            tls: TlsOptions::default(),
        }
    }
}

impl ClientConfig {
    /// Sets every timeout (connect, reply, data) to `timeout`.
    pub fn with_timeouts(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self.reply_timeout = timeout;
        self.data_timeout = timeout;
        self
    }

    pub(crate) fn control_limits(&self) -> ControlLimits {
        ControlLimits {
            max_line: self.max_line,
            max_reply_lines: self.max_reply_lines,
            reply_timeout: self.reply_timeout,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("data_mode", &self.data_mode)
            .field("use_epsv", &self.use_epsv)
            .field("trust_pasv_address", &self.trust_pasv_address)
            .field("connect_timeout", &self.connect_timeout)
            .field("reply_timeout", &self.reply_timeout)
            .field("data_timeout", &self.data_timeout)
            .field("family", &self.family)
            .field("resolve_overrides", &self.resolve_overrides)
            .field("transcript", &self.transcript.is_some())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}
