//! Server configuration: the TOML file, its defaults, and validation.
//!
//! Every field has a default, so `ferryd` runs with no file at all. `ferryd.example.toml` at the
//! repository root documents each option; `main.rs` maps each one to a command-line flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::passive::{PassiveAddress, PassiveAddresses};
use crate::proxy::{Cidr, Trusted};

/// Everything `ferryd` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port of the control listener. `[::]:21` also accepts IPv4 on Linux.
    pub listen: SocketAddr,
    /// Folder served to anonymous users unless `anonymous.root` says otherwise.
    pub root: PathBuf,
    /// The name the server gives itself in its replies; defaults to the host name.
    pub server_name: Option<String>,
    /// Text of the 220 greeting; defaults to "<DOMAIN> FTP Service" (see [`Config::greeting`]).
    pub banner: Option<String>,
    /// Longest control line accepted, in bytes; longer lines get 500 and are discarded.
    pub max_line: usize,
    /// Most sessions at once; further connections get 421 and are closed.
    pub max_sessions: usize,
    /// Connections the control listener holds while they wait to be accepted (the kernel caps
    /// this at `net.core.somaxconn`). A burst of reconnecting clients overflows a small one.
    pub listen_backlog: u32,
    pub anonymous: AnonymousConfig,
    /// A TOML file of named accounts (see `users.example.toml`).
    pub users_file: Option<PathBuf>,
    pub data: DataConfig,
    pub timeouts: TimeoutConfig,
    /// How SIGTERM and SIGINT stop the server (see [`ShutdownConfig`]).
    pub shutdown: ShutdownConfig,
    pub limits: LimitsConfig,
    /// STOR writes to a hidden temporary name (`.<name>.ferry-upload`) and renames it on
    /// success, so a half-sent file never appears under its final name. REST+STOR resumes the
    /// temporary file.
    pub atomic_uploads: bool,
    pub hardening: HardeningConfig,
    pub tls: TlsConfig,
    pub proxy_protocol: ProxyProtocolConfig,
    /// How `s3://BUCKET/PREFIX` roots reach their object store.
    pub s3: S3Settings,
    pub checksums: ChecksumConfig,
    /// Virtual hosts (`[[vhost]]` tables): chosen by HOST (RFC 7151) before login, or by the
    /// TLS server name (SNI). Without either, the settings above serve.
    #[serde(rename = "vhost")]
    pub vhosts: Vec<VhostConfig>,
    /// HOST with a name no vhost has: `"refuse"` (504) or `"default"` (the settings above).
    pub unknown_host: UnknownHost,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    pub logs: LogsConfig,
    pub admin: AdminConfig,
}

/// The admin listener: `/metrics`, `/health`, `/ready` and `/status` over plain HTTP. Off
/// unless `listen` is set; keep it on loopback or a management network.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin listener listens, e.g. `127.0.0.1:9121`.
    pub listen: Option<SocketAddr>,
    /// A file holding a bearer token every request must carry (`Authorization: Bearer ...`);
    /// read at start and at each reload, surrounding whitespace trimmed.
    pub token_file: Option<PathBuf>,
}

/// Log files beside the log lines on standard error. Each reopens on SIGHUP (logrotate); a
/// file that cannot be written never stops a transfer (a warning, at most once a minute).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// An xferlog file (wu-ftpd format, as vsftpd's `xferlog_std_format`): one line per file
    /// transfer.
    pub xferlog: Option<PathBuf>,
    /// JSON lines, one object per event (see the README for the fields); `"-"` is standard
    /// error.
    pub json: Option<PathBuf>,
}

/// One virtual host: its names, its anonymous site, its accounts, its greeting and its
/// certificate. What it does not set comes from the server's defaults (limits, timeouts, data
/// connections), which all hosts share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VhostConfig {
    /// The host name clients send in HOST or SNI.
    pub name: String,
    /// Other names of the same host.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Folder served to its anonymous users (unless `anonymous.root` says otherwise).
    pub root: PathBuf,
    /// Its anonymous settings (the same fields as the top-level `[anonymous]`).
    #[serde(default)]
    pub anonymous: AnonymousConfig,
    /// Its accounts; without one, only anonymous users log in here.
    pub users_file: Option<PathBuf>,
    /// Its 220 text; defaults to the name as for the server's own greeting.
    pub banner: Option<String>,
    /// The name it gives itself in replies; defaults to `name`.
    pub server_name: Option<String>,
    /// Its certificate chain and key (PEM), chosen by SNI; without them the server's serve.
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl VhostConfig {
    pub fn server_name(&self) -> String {
        self.server_name
            .clone()
            .unwrap_or_else(|| self.name.clone())
    }

    pub fn greeting(&self) -> String {
        self.banner
            .clone()
            .unwrap_or_else(|| greeting_for(&self.server_name()))
    }

    pub fn anonymous_root(&self) -> PathBuf {
        self.anonymous
            .root
            .clone()
            .unwrap_or_else(|| self.root.clone())
    }

    /// Its names, lower-cased: the name first, then the aliases.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|name| name.to_ascii_lowercase())
            .collect()
    }
}

/// What HOST with an unknown name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownHost {
    /// 504.
    #[default]
    Refuse,
    /// The default host's settings and greeting.
    Default,
}

/// HASH (draft-bryan-ftpext-hash) and the legacy XCRC, XMD5, XSHA1, XSHA256, XSHA512: a file's
/// digest costs the server a read of the file and CPU, so they are bounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksumConfig {
    /// The checksum commands answer (and FEAT lists them).
    pub enabled: bool,
    /// Anonymous users may ask for checksums too (off: 552).
    pub anonymous: bool,
    /// Most bytes one request hashes; a larger file or range is refused (556).
    pub max_size: u64,
    /// Hashes computed at once in the whole server; a request beyond that gets 450 (busy, try
    /// later). A session runs one command at a time, so it computes at most one.
    pub max_running: usize,
}

impl Default for ChecksumConfig {
    fn default() -> Self {
        ChecksumConfig {
            enabled: true,
            anonymous: false,
            max_size: 4 * 1024 * 1024 * 1024,
            max_running: 2,
        }
    }
}

/// The PROXY protocol (HAProxy's, v1 and v2), for a server behind a load balancer.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolConfig {
    /// Networks (`"10.0.0.0/8"`, `"fd00::/8"`, or single addresses) of the proxies. Empty: the
    /// PROXY protocol is off. Set: every control and passive data connection must come from one
    /// of them and begin with a PROXY header, whose source address is then the client's.
    pub from: Vec<String>,
}

/// The object store behind `s3://` roots. Credentials come from the standard AWS environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or from
/// `credentials_file`; they are never logged. Unset fields fall back to `AWS_ENDPOINT_URL`
/// and `AWS_REGION`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// The store's URL, like `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:3900`.
    /// A plain `http://` endpoint is accepted only when given here or in `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `https://host/BUCKET/key` rather than `https://BUCKET.host/key`; defaults to on when
    /// an endpoint is given (most stores besides AWS want it), off for AWS.
    pub path_style: Option<bool>,
    /// A file in the AWS shared-credentials format (`[default]`, `aws_access_key_id`,
    /// `aws_secret_access_key`, optional `aws_session_token`).
    pub credentials_file: Option<PathBuf>,
    /// Bytes per multipart-upload part (at least 5 MiB, S3's minimum).
    pub part_size: u64,
    /// Parts one upload holds at once, the one being filled included; the client is not read
    /// while they are all in flight, so an upload holds at most `part_size × parts_in_flight`
    /// bytes of parts.
    pub parts_in_flight: usize,
    /// Bytes of upload data the server holds in memory for object stores, all uploads together
    /// (the parts being filled and sent). When it is used, uploads wait, and their clients are
    /// slowed by TCP; an upload that waits two minutes fails with 451. At least a part and 1 MiB.
    pub upload_memory: u64,
    /// Retries of a request that failed in a way that may pass (a 5xx, a reset connection).
    pub retries: u32,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            region: None,
            path_style: None,
            credentials_file: None,
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 4,
            upload_memory: 512 * 1024 * 1024,
            retries: 3,
        }
    }
}

/// Limits against abuse (RFC 2577): sessions per address, failed logins, bans, bandwidth.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most sessions from one IP address; 0 is unlimited.
    pub max_sessions_per_ip: usize,
    /// Failed logins one session may make before it is closed.
    pub max_login_failures: u32,
    /// Failed logins from one address within `ban_window` seconds that get it banned; 0 is never.
    pub ban_after_failures: u32,
    pub ban_window: u64,
    /// How long a ban lasts, in seconds.
    pub ban_seconds: u64,
    /// Bytes per second for each session's downloads; 0 is unlimited.
    pub download_rate: u64,
    /// Bytes per second for each session's uploads; 0 is unlimited.
    pub upload_rate: u64,
}

/// FTPS (RFC 4217): certificates, where TLS is required, and implicit FTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub certificate: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Without certificate and key: generate a self-signed certificate at start (clients must
    /// pin it or skip verification; a warning says so).
    pub self_signed: bool,
    /// TLS on the control connection (AUTH TLS): off, optional or required.
    pub control: TlsPolicy,
    /// TLS on data connections (PROT P): off, optional or required.
    pub data: TlsPolicy,
    /// Anonymous sessions may go without TLS even where it is required.
    pub anonymous_exempt: bool,
    /// A data connection must resume the control connection's TLS session (as vsftpd's
    /// require_ssl_reuse); a client that does not is refused with 425.
    pub require_session_reuse: bool,
    /// Listen for implicit FTPS (TLS from the first byte, port 990 by convention) here too.
    pub implicit_listen: Option<SocketAddr>,
    /// Allow CCC (going back to a clear control connection after login).
    pub allow_ccc: bool,
}

/// Whether TLS is refused, offered or demanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicy {
    Off,
    Optional,
    Required,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: None,
            key: None,
            self_signed: false,
            control: TlsPolicy::Optional,
            data: TlsPolicy::Optional,
            anonymous_exempt: true,
            require_session_reuse: true,
            implicit_listen: None,
            allow_ccc: false,
        }
    }
}

impl TlsConfig {
    /// Whether a certificate is configured (or generated), so TLS can be offered at all.
    pub fn has_certificate(&self) -> bool {
        (self.certificate.is_some() && self.key.is_some()) || self.self_signed
    }
}

/// Optional process hardening on Linux, applied after the listener is bound.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HardeningConfig {
    /// Switch to this user (and its group) after binding, when started as root.
    pub run_as_user: Option<String>,
    /// Restrict the process's file-system access to the served roots with Landlock, where the
    /// kernel supports it.
    pub landlock: bool,
}

/// Anonymous FTP (RFC 1635).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousConfig {
    pub enabled: bool,
    /// Defaults to the server's `root`.
    pub root: Option<PathBuf>,
    /// Anonymous users may upload, delete, rename and make folders. Off by default.
    pub writable: bool,
    /// A folder (as users see it, e.g. "/incoming") where anonymous users may upload new files
    /// that they cannot then list, download or overwrite, until an operator moves them.
    pub upload_folder: Option<String>,
    /// Anonymous users may also make folders in the upload folder.
    pub upload_mkdir: bool,
    /// Most bytes anonymous uploads may keep: under the upload folder when there is one (and
    /// the root is not writable), else under the anonymous root.
    pub quota_bytes: Option<u64>,
    /// Most files, likewise.
    pub quota_files: Option<u64>,
}

/// Where the server's data connections go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Passive ports, `"start-end"`; empty means any port the system gives.
    pub passive_ports: Option<String>,
    /// Address advertised in 227 replies (for a server behind NAT): an IPv4 address, a host
    /// name (resolved at start and on reload), or a table of client networks to addresses with
    /// an optional `default`. Defaults to the control connection's local address.
    pub passive_address: Option<PassiveAddress>,
    /// `"adjacent"`: active data connections come from the control port minus one (port 20 when
    /// listening on 21), as RFC 959 says; `"ephemeral"`: from any port.
    pub active_source: ActiveSource,
    pub active_enabled: bool,
    pub passive_enabled: bool,
    /// Let PORT/EPRT name another host than the client's (FXP, server-to-server). Off: such
    /// commands are refused before any connection is tried (RFC 2577 bounce attacks).
    pub allow_fxp: bool,
    /// MODE Z (deflate-compressed data connections) is offered.
    pub mode_z: bool,
    /// The highest zlib level (0-9) a client may ask for with `OPTS MODE Z LEVEL`; the default
    /// level is 6, or this if lower. Higher levels cost the server more CPU per byte.
    pub mode_z_max_level: u32,
}

/// The source port of active-mode data connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveSource {
    Adjacent,
    Ephemeral,
}

/// How the server stops on SIGTERM or SIGINT, in seconds counted from the signal: it says it is
/// not ready at once, accepts new connections for `accept_grace` more (a load balancer needs that
/// long to notice), then closes its listeners and its idle sessions (421), and breaks off the
/// transfers still running at `deadline` (426).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds the listeners keep accepting after the signal (0: they close at once).
    pub accept_grace: u64,
    /// Seconds after the signal when running transfers are broken off; unset, the older
    /// `timeouts.shutdown_grace` (10 by default) says it.
    pub deadline: Option<u64>,
}

/// Time limits, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// A session with no command and no transfer for this long is closed (421).
    pub idle: u64,
    /// A session that has not logged in after this long is closed (421).
    pub login: u64,
    /// Waiting for a data connection to be accepted or connected.
    pub data_connect: u64,
    /// A transfer that moves no byte for this long is broken off (426).
    pub stalled_transfer: u64,
    /// On SIGINT/SIGTERM, how long running transfers may go on before the server closes them:
    /// the older name of `shutdown.deadline`, used when that is not set.
    pub shutdown_grace: u64,
    /// Pause before answering a failed login, in milliseconds.
    pub failed_login_delay_ms: u64,
    /// An upload's private file (`.NAME.OWNER.ferry-upload`, left by a broken upload or a
    /// crash) not written to for this long is removed, at start and every hour (when anyone can
    /// upload); 0 keeps them.
    pub abandoned_upload: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 21)),
            root: PathBuf::from("."),
            server_name: None,
            banner: None,
            max_line: 4096,
            max_sessions: 1000,
            listen_backlog: 1024,
            anonymous: AnonymousConfig::default(),
            users_file: None,
            data: DataConfig::default(),
            timeouts: TimeoutConfig::default(),
            shutdown: ShutdownConfig::default(),
            limits: LimitsConfig::default(),
            atomic_uploads: false,
            hardening: HardeningConfig::default(),
            tls: TlsConfig::default(),
            proxy_protocol: ProxyProtocolConfig::default(),
            s3: S3Settings::default(),
            checksums: ChecksumConfig::default(),
            vhosts: Vec::new(),
            unknown_host: UnknownHost::Refuse,
            log_level: "info".into(),
            logs: LogsConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl AdminConfig {
    /// The bearer token from `token_file`, if one is set: an unreadable or empty file is an
    /// error.
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "admin.token_file {}: the file is empty",
                path.display()
            )));
        }
        Ok(Some(token.to_string()))
    }
}

impl Default for AnonymousConfig {
    fn default() -> Self {
        AnonymousConfig {
            enabled: true,
            root: None,
            writable: false,
            upload_folder: None,
            upload_mkdir: false,
            quota_bytes: None,
            quota_files: None,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            passive_ports: None,
            passive_address: None,
            active_source: ActiveSource::Adjacent,
            active_enabled: true,
            passive_enabled: true,
            allow_fxp: false,
            mode_z: true,
            mode_z_max_level: 9,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_sessions_per_ip: 20,
            max_login_failures: 3,
            ban_after_failures: 10,
            ban_window: 600,
            ban_seconds: 900,
            download_rate: 0,
            upload_rate: 0,
        }
    }
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            idle: 300,
            login: 60,
            data_connect: 30,
            stalled_transfer: 300,
            shutdown_grace: 10,
            failed_login_delay_ms: 1000,
            abandoned_upload: 86400,
        }
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A root is a local folder or an object store's `s3://BUCKET/PREFIX`.
pub fn check_root(name: &str, root: &std::path::Path) -> Result<(), ConfigError> {
    match crate::storage::ObjectRoot::parse(root) {
        Some(Ok(_)) => Ok(()),
        Some(Err(message)) => Err(ConfigError::Invalid(format!(
            "{name} {}: {message}",
            root.display()
        ))),
        None if root.is_dir() => Ok(()),
        None => Err(ConfigError::Invalid(format!(
            "{name} {} is not a folder",
            root.display()
        ))),
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, folders, timeouts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.max_line < 64 {
            return invalid(format!(
                "max_line = {} is too small (at least 64)",
                self.max_line
            ));
        }
        if self.max_sessions == 0 {
            return invalid("max_sessions must be at least 1".into());
        }
        if self.listen_backlog == 0 || self.listen_backlog > 65535 {
            return invalid(format!(
                "listen_backlog = {} is out of range (1 to 65535)",
                self.listen_backlog
            ));
        }
        if self.data.mode_z_max_level > 9 {
            return invalid(format!(
                "data.mode_z_max_level = {} is out of range (0 to 9)",
                self.data.mode_z_max_level
            ));
        }
        if self.checksums.enabled && self.checksums.max_running == 0 {
            return invalid(
                "checksums.max_running must be at least 1 (or set checksums.enabled = false)"
                    .into(),
            );
        }
        self.passive_port_range()?;
        self.validate_vhosts()?;
        if self.admin.token_file.is_some() && self.admin.listen.is_none() {
            return invalid("admin.token_file is set but admin.listen is not".into());
        }
        check_root("root", &self.root)?;
        if let Some(root) = &self.anonymous.root {
            check_root("anonymous.root", root)?;
        }
        if self.s3.part_size < crate::storage::object::MIN_PART as u64
            || self.s3.part_size > 512 * 1024 * 1024
        {
            return invalid(format!(
                "s3.part_size = {} is out of range (5 MiB to 512 MiB)",
                self.s3.part_size
            ));
        }
        if self.s3.parts_in_flight == 0 || self.s3.parts_in_flight > 64 {
            return invalid(format!(
                "s3.parts_in_flight = {} is out of range (1 to 64)",
                self.s3.parts_in_flight
            ));
        }
        let least = self.s3.part_size + crate::storage::upload_memory::FIRST_ROOM as u64;
        if self.s3.upload_memory < least {
            return invalid(format!(
                "s3.upload_memory = {} is too small: at least s3.part_size and 1 MiB ({least})",
                self.s3.upload_memory
            ));
        }
        if self.s3.retries > 10 {
            return invalid(format!(
                "s3.retries = {} is too many (at most 10)",
                self.s3.retries
            ));
        }
        let t = &self.timeouts;
        for (name, value) in [
            ("timeouts.idle", t.idle),
            ("timeouts.login", t.login),
            ("timeouts.data_connect", t.data_connect),
            ("timeouts.stalled_transfer", t.stalled_transfer),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be at least 1 second"));
            }
        }
        if t.abandoned_upload != 0 && t.abandoned_upload < t.stalled_transfer {
            return invalid(format!(
                "timeouts.abandoned_upload = {} would remove uploads that are still running: 0, or at least timeouts.stalled_transfer ({})",
                t.abandoned_upload, t.stalled_transfer
            ));
        }
        if let Some(folder) = &self.anonymous.upload_folder {
            if !folder.starts_with('/') {
                return invalid(format!(
                    "anonymous.upload_folder {folder:?} must start with /"
                ));
            }
        }
        self.validate_tls()?;
        self.validate_shutdown()?;
        self.proxy_trust()?;
        if self.limits.max_login_failures == 0 {
            return invalid("limits.max_login_failures must be at least 1".into());
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return invalid(format!(
                "log_level {:?} is not one of error, warn, info, debug, trace",
                self.log_level
            ));
        }
        Ok(())
    }

    /// Every vhost: a valid name no other has, a root, a certificate with its key.
    fn validate_vhosts(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let mut seen = std::collections::HashSet::new();
        for vhost in &self.vhosts {
            for name in vhost.names() {
                let valid = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                if !valid {
                    return invalid(format!("vhost name {name:?} is not a host name"));
                }
                if !seen.insert(name.clone()) {
                    return invalid(format!("vhost name {name:?} is given twice"));
                }
            }
            check_root(&format!("vhost {:?} root", vhost.name), &vhost.root)?;
            if let Some(root) = &vhost.anonymous.root {
                check_root(&format!("vhost {:?} anonymous.root", vhost.name), root)?;
            }
            if vhost.certificate.is_some() != vhost.key.is_some() {
                return invalid(format!(
                    "vhost {:?}: certificate and key go together",
                    vhost.name
                ));
            }
            if vhost.certificate.is_some() && !self.tls.has_certificate() {
                return invalid(format!(
                    "vhost {:?} has a certificate but the server has none: set tls.certificate and tls.key (the certificate for clients that send no server name)",
                    vhost.name
                ));
            }
        }
        Ok(())
    }

    /// Times and counts too large to be meant, which would overflow where they are added to a
    /// clock or sized (a year and more is "never" for every one of them).
    fn validate_magnitudes(&self) -> Result<(), ConfigError> {
        const YEAR: u64 = 365 * 24 * 3600;
        let t = &self.timeouts;
        let seconds = [
            ("timeouts.idle", t.idle),
            ("timeouts.login", t.login),
            ("timeouts.data_connect", t.data_connect),
            ("timeouts.stalled_transfer", t.stalled_transfer),
            ("timeouts.shutdown_grace", t.shutdown_grace),
            ("timeouts.abandoned_upload", t.abandoned_upload),
            (
                "timeouts.failed_login_delay_ms",
                t.failed_login_delay_ms / 1000,
            ),
            ("limits.ban_window", self.limits.ban_window),
            ("limits.ban_seconds", self.limits.ban_seconds),
            ("shutdown.accept_grace", self.shutdown.accept_grace),
            ("shutdown.deadline", self.shutdown.deadline.unwrap_or(0)),
        ];
        for (name, value) in seconds {
            if value > 10 * YEAR {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {value} is more than ten years"
                )));
            }
        }
        if self.checksums.max_running > 65_536 {
            return Err(ConfigError::Invalid(format!(
                "checksums.max_running = {} is too many (at most 65536)",
                self.checksums.max_running
            )));
        }
        Ok(())
    }

    fn validate_shutdown(&self) -> Result<(), ConfigError> {
        self.validate_magnitudes()?;
        let deadline = self.shutdown_deadline().as_secs();
        if self.shutdown.accept_grace > deadline {
            return Err(ConfigError::Invalid(format!(
                "shutdown.accept_grace = {} is longer than the shutdown deadline ({deadline}, shutdown.deadline or timeouts.shutdown_grace): both count from the signal",
                self.shutdown.accept_grace
            )));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        if tls.certificate.is_some() != tls.key.is_some() {
            return invalid("tls.certificate and tls.key go together: set both or neither");
        }
        let wants_tls = tls.control == TlsPolicy::Required
            || tls.data == TlsPolicy::Required
            || tls.implicit_listen.is_some();
        if wants_tls && !tls.has_certificate() {
            return invalid("TLS is required or implicit FTPS is on, but there is no certificate: set tls.certificate and tls.key, or tls.self_signed = true");
        }
        if tls.data == TlsPolicy::Required && tls.control == TlsPolicy::Off {
            return invalid(
                "tls.data = \"required\" needs TLS on the control connection (tls.control is off)",
            );
        }
        Ok(())
    }

    /// The passive port range, if one is set.
    pub fn passive_port_range(&self) -> Result<Option<(u16, u16)>, ConfigError> {
        let Some(text) = &self.data.passive_ports else {
            return Ok(None);
        };
        parse_port_range(text).map(Some).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "data.passive_ports {text:?} is not a range like \"50000-50100\" (1024..65535, start <= end)"
            ))
        })
    }

    /// What PASV advertises to each client, host names resolved now; `None` when unset.
    pub fn passive_addresses(&self) -> Result<Option<PassiveAddresses>, ConfigError> {
        self.data
            .passive_address
            .as_ref()
            .map(PassiveAddresses::resolve)
            .transpose()
    }

    /// The networks trusted to send PROXY headers; `None` when the PROXY protocol is off.
    pub fn proxy_trust(&self) -> Result<Option<Trusted>, ConfigError> {
        if self.proxy_protocol.from.is_empty() {
            return Ok(None);
        }
        let networks = self
            .proxy_protocol
            .from
            .iter()
            .map(|text| text.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| ConfigError::Invalid(format!("proxy_protocol.from: {reason}")))?;
        Ok(Some(Trusted::new(networks)))
    }

    /// The server's name: `server_name`, else the host name, else "localhost".
    pub fn server_name(&self) -> String {
        self.server_name.clone().unwrap_or_else(host_name)
    }

    /// The 220 text: `banner`, else the name without a leading "ftp.", upper-cased, and
    /// " FTP Service" (so `ftp.any-domain.com` greets as "ANY-DOMAIN.COM FTP Service").
    pub fn greeting(&self) -> String {
        if let Some(banner) = &self.banner {
            return banner.clone();
        }
        greeting_for(&self.server_name())
    }

    pub fn anonymous_root(&self) -> PathBuf {
        self.anonymous
            .root
            .clone()
            .unwrap_or_else(|| self.root.clone())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.idle)
    }

    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.login)
    }

    pub fn data_connect_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.data_connect)
    }

    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.stalled_transfer)
    }

    /// How old an abandoned upload's private file is when it is removed (`None`: never).
    pub fn abandoned_upload(&self) -> Option<Duration> {
        (self.timeouts.abandoned_upload > 0)
            .then(|| Duration::from_secs(self.timeouts.abandoned_upload))
    }

    /// How long after SIGTERM/SIGINT running transfers are broken off: `shutdown.deadline`,
    /// else `timeouts.shutdown_grace`.
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(
            self.shutdown
                .deadline
                .unwrap_or(self.timeouts.shutdown_grace),
        )
    }

    /// How long after SIGTERM/SIGINT the listeners keep accepting.
    pub fn accept_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown.accept_grace)
    }
}

/// `"50000-50100"` → `(50000, 50100)`.
/// The default greeting of a server called `name`.
fn greeting_for(name: &str) -> String {
    let domain = name.strip_prefix("ftp.").unwrap_or(name);
    format!("{} FTP Service", domain.to_uppercase())
}

pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-')?;
    let start: u16 = start.trim().parse().ok()?;
    let end: u16 = end.trim().parse().ok()?;
    (start >= 1024 && start <= end).then_some((start, end))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.listen.port(), 21);
        assert!(config.anonymous.enabled && !config.anonymous.writable);
        assert_eq!(config.data.active_source, ActiveSource::Adjacent);
    }

    #[test]
    fn greeting_follows_the_seed() {
        let config = Config {
            server_name: Some("ftp.any-domain.com".into()),
            ..Config::default()
        };
        assert_eq!(config.greeting(), "ANY-DOMAIN.COM FTP Service");
    }

    #[test]
    fn unknown_and_mistyped_options_are_reported() {
        let err = toml::from_str::<Config>("lisen = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = toml::from_str::<Config>("[data]\nactive_source = \"port20\"").unwrap_err();
        assert!(err.to_string().contains("active_source") || err.to_string().contains("port20"));
        let err = toml::from_str::<Config>("listen = \"1.2.3.4\"").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn validation_explains_bad_values() {
        let mut config = Config::default();
        config.data.passive_ports = Some("6000-5000".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("passive_ports"), "{err}");
        config.data.passive_ports = Some("50000-50010".into());
        config.timeouts.idle = 0;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("timeouts.idle"));
        config.timeouts.idle = 5;
        config.s3.part_size = 16 * 1024 * 1024;
        config.s3.upload_memory = 16 * 1024 * 1024;
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("s3.upload_memory") && err.contains("17825792"),
            "{err}"
        );
        config.s3.upload_memory = 17 * 1024 * 1024;
        config.root = "/definitely/not/here".into();
        assert!(config.validate().unwrap_err().to_string().contains("root"));
    }

    /// Values past any meaning are refused here, not met as an overflow (a panic) when a
    /// session adds them to the clock.
    #[test]
    fn huge_times_and_counts_are_refused() {
        let valid = || Config {
            root: std::env::temp_dir(),
            ..Config::default()
        };
        assert!(valid().validate().is_ok());
        let refused = |change: fn(&mut Config), name: &str| {
            let mut config = valid();
            change(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        };
        refused(|c| c.timeouts.idle = u64::MAX, "timeouts.idle");
        refused(|c| c.timeouts.login = u64::MAX / 2, "timeouts.login");
        refused(|c| c.limits.ban_seconds = u64::MAX, "limits.ban_seconds");
        refused(
            |c| c.shutdown.deadline = Some(u64::MAX),
            "shutdown.deadline",
        );
        refused(
            |c| c.checksums.max_running = usize::MAX,
            "checksums.max_running",
        );
        let mut year = valid();
        year.limits.ban_seconds = 365 * 24 * 3600;
        assert!(year.validate().is_ok());
    }

    #[test]
    fn vhosts_are_checked_whole() {
        let tmp = std::env::temp_dir();
        let vhost = |name: &str| -> String {
            format!(
                "[[vhost]]\nname = \"{name}\"\nroot = \"{}\"\n",
                tmp.display()
            )
        };
        let parse = |text: &str| -> Config {
            let mut config: Config = toml::from_str(text).unwrap();
            config.root = std::env::temp_dir();
            config
        };
        assert!(parse(&format!("{}{}", vhost("a.test"), vhost("b.test")))
            .validate()
            .is_ok());
        let twice = parse(&format!("{}{}", vhost("a.test"), vhost("A.test")));
        let err = twice.validate().unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
        let err = parse(&vhost("a/b")).validate().unwrap_err().to_string();
        assert!(err.contains("not a host name"), "{err}");
        let lone = parse(&format!("{}certificate = \"/x.pem\"\n", vhost("a.test")));
        let err = lone.validate().unwrap_err().to_string();
        assert!(err.contains("certificate and key"), "{err}");
        let no_default = parse(&format!(
            "{}certificate = \"/x.pem\"\nkey = \"/x.key\"\n",
            vhost("a.test")
        ));
        let err = no_default.validate().unwrap_err().to_string();
        assert!(err.contains("tls.certificate"), "{err}");
        assert!(toml::from_str::<Config>("unknown_host = \"maybe\"").is_err());
        let fallback: Config = toml::from_str("unknown_host = \"default\"").unwrap();
        assert_eq!(fallback.unknown_host, UnknownHost::Default);
    }

    #[test]
    fn proxy_protocol_networks_are_checked() {
        let mut config = Config {
            root: std::env::temp_dir(),
            ..Config::default()
        };
        assert_eq!(config.proxy_trust().unwrap(), None, "off by default");
        config.proxy_protocol.from = vec!["127.0.0.1/32".into(), "fd00::/8".into()];
        config.validate().unwrap();
        let trusted = config.proxy_trust().unwrap().unwrap();
        assert!(trusted.trusts("127.0.0.1".parse().unwrap()));
        assert!(!trusted.trusts("127.0.0.2".parse().unwrap()));
        config.proxy_protocol.from.push("10.0.0.0/40".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("proxy_protocol.from: \"10.0.0.0/40\"") && err.contains("prefix"),
            "{err}"
        );
        let file: Config = toml::from_str("[proxy_protocol]\nfrom = [\"192.0.2.0/24\"]").unwrap();
        assert_eq!(file.proxy_protocol.from, ["192.0.2.0/24"]);
        let err = toml::from_str::<Config>("[proxy_protocol]\nfrm = []").unwrap_err();
        assert!(err.to_string().contains("frm"), "{err}");
    }

    #[test]
    fn shutdown_deadline_falls_back_to_the_older_name() {
        let mut config = Config {
            root: std::env::temp_dir(),
            ..Config::default()
        };
        assert_eq!(config.shutdown_deadline(), Duration::from_secs(10));
        assert_eq!(config.accept_grace(), Duration::ZERO);
        config.timeouts.shutdown_grace = 3;
        assert_eq!(config.shutdown_deadline(), Duration::from_secs(3));
        config.shutdown.deadline = Some(7);
        assert_eq!(config.shutdown_deadline(), Duration::from_secs(7));
        config.shutdown.accept_grace = 8;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("shutdown.accept_grace = 8"), "{err}");
        let file: Config = toml::from_str("[shutdown]\naccept_grace = 2\ndeadline = 5").unwrap();
        assert_eq!(file.accept_grace(), Duration::from_secs(2));
        assert_eq!(file.shutdown_deadline(), Duration::from_secs(5));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("50000-50100"), Some((50000, 50100)));
        assert_eq!(parse_port_range("80-90"), None);
        assert_eq!(parse_port_range("x-1"), None);
    }
}
