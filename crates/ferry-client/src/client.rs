//! [`Client`]: one FTP session. Connecting, logging in, and the commands without a data
//! connection; transfers are in [`crate::transfer`].

use std::net::SocketAddr;
use std::sync::Arc;

use ferry_proto::command::{Secret, TransferType};
use ferry_proto::reply::Reply;
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::control::Control;
use crate::error::FtpError;
use crate::replies::{self, Features};
use crate::resolve::{answer_source, filter, lookup};
use crate::stream::Stream;
use crate::tls::{TlsContext, TlsInfo, TlsMode};
use crate::trace::AnswerSource;
use crate::trace::DataLink;
use crate::transcript::Transcript;

/// One FTP session over one control connection.
pub struct Client {
    pub(crate) control: Control,
    pub(crate) config: ClientConfig,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    greeting: Reply,
    features: Option<Features>,
    pub(crate) transfer_type: TransferType,
    /// The server answered EPSV or PASV with a permanent error: do not ask again.
    pub(crate) epsv_refused: bool,
    pub(crate) pasv_refused: bool,
    /// The host name or address given to connect, for TLS server names and messages.
    host: String,
    /// Set once the control connection is TLS.
    pub(crate) tls: Option<TlsContext>,
    /// PBSZ 0 and PROT P were accepted: data connections are TLS.
    pub(crate) data_protected: bool,
    pub(crate) last_data_tls: Option<TlsInfo>,
    /// How this session gets checksums: `None` until asked, then what was found.
    pub(crate) hash_method: Option<Option<crate::hash::HashMethod>>,
    /// The data connection in use, for the transcript's `data_finished`.
    pub(crate) data_link: Option<DataLink>,
    /// MODE Z: data connections carry zlib streams.
    pub(crate) mode_z: bool,
}

impl Client {
    /// Resolves `host` and connects to each of its addresses in turn until one answers,
    /// then reads the greeting.
    pub async fn connect(host: &str, port: u16, config: ClientConfig) -> Result<Self, FtpError> {
        let addrs = resolve_observed(host, port, &config).await?;
        let mut last_error = None;
        for addr in addrs {
            match Self::connect_named(addr, host, config.clone()).await {
                Ok(client) => return Ok(client),
                Err(error) if error.is_fatal() || is_connect_error(&error) => {
                    last_error = Some(error)
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(FtpError::NoAddress {
            host: host.to_string(),
        }))
    }

    /// Connects to one address and reads the greeting (RFC 959 §5.4: 120 then 220, or 421).
    /// With [`crate::TlsOptions::mode`] set, TLS starts first (implicit) or after the greeting
    /// (AUTH TLS); the certificate must then be valid for the address (or
    /// [`crate::TlsOptions::server_name`]).
    pub async fn connect_addr(addr: SocketAddr, config: ClientConfig) -> Result<Self, FtpError> {
        Self::connect_named(addr, &addr.ip().to_string(), config).await
    }

    async fn connect_named(
        addr: SocketAddr,
        host: &str,
        config: ClientConfig,
    ) -> Result<Self, FtpError> {
        if let Some(transcript) = &config.transcript {
            transcript.trying(addr);
        }
        let mode = config.tls.mode;
        let context = match mode {
            TlsMode::Off => None,
            _ => Some(TlsContext::new(&config.tls, host, addr.port())?),
        };
        let tcp = match connect_stream(addr, &config).await {
            Ok(tcp) => tcp,
            Err(error) => {
                if let Some(transcript) = &config.transcript {
                    transcript.connect_failed(addr, &error.to_string());
                }
                return Err(error);
            }
        };
        let local = tcp.local_addr().map_err(FtpError::ControlIo)?;
        if let Some(transcript) = &config.transcript {
            transcript.connected(local, addr);
        }
        let (stream, tls) = match (&context, mode) {
            (Some(context), TlsMode::Implicit) => {
                let tls = context.handshake(tcp, config.connect_timeout).await?;
                (Stream::Tls(Box::new(tls)), context.clone().into())
            }
            _ => (Stream::Plain(tcp), None),
        };
        let mut control = Control::new(stream, config.control_limits(), config.transcript.clone());
        let greeting = control.read_final_reply().await?;
        if greeting.code != 220 {
            return Err(FtpError::Refused {
                command: "connect".into(),
                reply: greeting,
            });
        }
        let mut client = Client {
            control,
            config,
            peer: addr,
            local,
            greeting,
            features: None,
            transfer_type: TransferType::Ascii,
            epsv_refused: false,
            pasv_refused: false,
            host: host.to_string(),
            tls,
            data_protected: false,
            last_data_tls: None,
            hash_method: None,
            data_link: None,
            mode_z: false,
        };
        client.report_control_tls();
        client.explicit_tls(mode, context).await?;
        Ok(client)
    }

    /// AUTH TLS after the greeting for the explicit modes; an opportunistic session goes on
    /// in plain FTP when the server refuses, with a warning.
    async fn explicit_tls(
        &mut self,
        mode: TlsMode,
        context: Option<TlsContext>,
    ) -> Result<(), FtpError> {
        let Some(context) = context.filter(|_| self.tls.is_none()) else {
            return Ok(());
        };
        match (mode, self.auth_tls_with(context).await) {
            (TlsMode::Opportunistic, Err(FtpError::TlsRefused { reply })) => {
                if let Some(transcript) = &self.config.transcript {
                    let text = crate::error::summary(&reply);
                    transcript.warning(&format!(
                        "the server refuses TLS ({text}); going on WITHOUT encryption"
                    ));
                }
                Ok(())
            }
            (_, result) => result.map(|_| ()),
        }
    }

    /// Upgrades the control connection to TLS (AUTH TLS, RFC 4217 §4) with the settings of
    /// [`ClientConfig::tls`]. Call it before logging in, so the password is protected.
    pub async fn auth_tls(&mut self) -> Result<Reply, FtpError> {
        let context = TlsContext::new(&self.config.tls, &self.host, self.peer.port())?;
        self.auth_tls_with(context).await
    }

    async fn auth_tls_with(&mut self, context: TlsContext) -> Result<Reply, FtpError> {
        let reply = self.control.command_final("AUTH TLS").await?;
        if reply.code != 234 {
            return Err(FtpError::TlsRefused { reply });
        }
        let timeout = self.config.connect_timeout;
        self.control.start_tls(&context, timeout).await?;
        self.report_control_tls();
        self.tls = Some(context);
        // What the server knew of the session before TLS no longer counts (RFC 4217 §4).
        self.features = None;
        Ok(reply)
    }

    /// Tells the transcript what the control connection's TLS handshake gave, if it is TLS.
    fn report_control_tls(&self) {
        if let (Some(transcript), Some(info)) = (&self.config.transcript, self.tls_info()) {
            transcript.tls_handshake(None, &info);
        }
    }

    /// Protects data connections (PBSZ 0 then PROT P, RFC 4217 §8-9); needs TLS on the control
    /// connection. [`Client::login`] calls it, and so does the first transfer if nobody did.
    pub async fn protect_data(&mut self) -> Result<(), FtpError> {
        if self.tls.is_none() {
            return Err(FtpError::TlsSetup(
                "PROT P needs TLS on the control connection".into(),
            ));
        }
        self.expect_ok("PBSZ 0", None).await?;
        self.expect_ok("PROT P", None).await?;
        self.data_protected = true;
        Ok(())
    }

    /// Whether the control connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.control.stream().is_tls()
    }

    /// What the control connection's TLS negotiated, if it is TLS.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.control.stream().tls_connection().map(TlsInfo::of)
    }

    /// What the last data connection's TLS negotiated (`resumed` tells whether it resumed the
    /// control connection's session); `None` before any protected transfer.
    pub fn last_data_tls(&self) -> Option<&TlsInfo> {
        self.last_data_tls.as_ref()
    }

    /// The session's TLS context (for the certificate fingerprint seen), once TLS is on.
    pub fn tls_context(&self) -> Option<&TlsContext> {
        self.tls.as_ref()
    }

    /// After a successful login: PBSZ/PROT when TLS is on and data is to be protected.
    async fn after_login(&mut self) -> Result<(), FtpError> {
        if self.tls.is_some() && self.config.tls.protect_data && !self.data_protected {
            self.protect_data().await?;
        }
        Ok(())
    }

    /// The server's 220 greeting.
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes the settings; the connection's limits stay as they were at connect time.
    pub fn config_mut(&mut self) -> &mut ClientConfig {
        &mut self.config
    }

    /// Replaces the observer of the control connection.
    pub fn set_transcript(&mut self, transcript: Option<Arc<dyn Transcript>>) {
        self.control.set_transcript(transcript.clone());
        self.config.transcript = transcript;
    }

    /// Logs in with USER and PASS (and ACCT if asked for), RFC 959 §4.1.1.
    /// Returns the final reply, usually 230 with the server's welcome text.
    pub async fn login(
        &mut self,
        user: &str,
        password: &Secret,
        account: Option<&str>,
    ) -> Result<Reply, FtpError> {
        let mut reply = self.control.command_final(&format!("USER {user}")).await?;
        if reply.code == 331 {
            let line = format!("PASS {}", password.expose());
            reply = self.control.command_final(&line).await?;
        }
        if let (332, Some(account)) = (reply.code, account) {
            reply = self
                .control
                .command_final(&format!("ACCT {account}"))
                .await?;
        }
        if reply.class() != 2 {
            return Err(FtpError::LoginRefused { reply });
        }
        self.after_login().await?;
        Ok(reply)
    }

    /// Sends USER only (for a caller that prompts for the password after seeing the reply).
    pub async fn user(&mut self, user: &str) -> Result<Reply, FtpError> {
        let reply = self.control.command_final(&format!("USER {user}")).await?;
        self.login_step(reply).await
    }

    /// Sends PASS only; see [`Client::user`].
    pub async fn pass(&mut self, password: &Secret) -> Result<Reply, FtpError> {
        let line = format!("PASS {}", password.expose());
        let reply = self.control.command_final(&line).await?;
        self.login_step(reply).await
    }

    /// Sends ACCT (RFC 959 §4.1.1).
    pub async fn account(&mut self, account: &str) -> Result<Reply, FtpError> {
        let reply = self
            .control
            .command_final(&format!("ACCT {account}"))
            .await?;
        self.login_step(reply).await
    }

    /// A reply to USER, PASS or ACCT: 2yz logs in (then data protection follows), 3yz asks
    /// for more, anything else refuses.
    async fn login_step(&mut self, reply: Reply) -> Result<Reply, FtpError> {
        match reply.class() {
            2 => {
                self.after_login().await?;
                Ok(reply)
            }
            3 => Ok(reply),
            _ => Err(FtpError::LoginRefused { reply }),
        }
    }

    /// The server's extensions (FEAT, RFC 2389). The answer is remembered once the server
    /// gave one (or said FEAT is not implemented: no extensions); a refusal such as 530 before
    /// login is not remembered.
    pub async fn features(&mut self) -> Result<Features, FtpError> {
        if let Some(features) = &self.features {
            return Ok(features.clone());
        }
        let reply = self.control.command_final("FEAT").await?;
        let features = Features::from_reply(&reply);
        if reply.class() == 2 || matches!(reply.code, 500 | 502) {
            self.features = Some(features.clone());
        }
        Ok(features)
    }

    /// The current remote directory (PWD, RFC 959 §4.1.3).
    pub async fn pwd(&mut self) -> Result<String, FtpError> {
        let reply = self.expect_ok("PWD", None).await?;
        replies::parse_257_path(&reply.text()).ok_or(FtpError::UnexpectedReply {
            command: "PWD".into(),
            reply,
        })
    }

    /// Changes the remote directory (CWD, RFC 959 §4.1.1).
    pub async fn cwd(&mut self, path: &str) -> Result<Reply, FtpError> {
        self.expect_ok(&format!("CWD {path}"), Some(path)).await
    }

    /// Goes to the parent directory (CDUP, RFC 959 §4.1.1).
    pub async fn cdup(&mut self) -> Result<Reply, FtpError> {
        self.expect_ok("CDUP", None).await
    }

    /// Creates a directory (MKD, RFC 959 §4.1.3).
    pub async fn mkdir(&mut self, path: &str) -> Result<Reply, FtpError> {
        self.expect_ok(&format!("MKD {path}"), Some(path)).await
    }

    /// Removes a directory (RMD, RFC 959 §4.1.3).
    pub async fn rmdir(&mut self, path: &str) -> Result<Reply, FtpError> {
        self.expect_ok(&format!("RMD {path}"), Some(path)).await
    }

    /// Deletes a file (DELE, RFC 959 §4.1.3).
    pub async fn delete(&mut self, path: &str) -> Result<Reply, FtpError> {
        self.expect_ok(&format!("DELE {path}"), Some(path)).await
    }

    /// Renames `from` to `to` (RNFR then RNTO, RFC 959 §4.1.3).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<Reply, FtpError> {
        let reply = self.control.command_final(&format!("RNFR {from}")).await?;
        if reply.code != 350 {
            return Err(negative(reply, "RNFR", Some(from)));
        }
        self.expect_ok(&format!("RNTO {to}"), Some(to)).await
    }

    /// The size of a file in the current TYPE (SIZE, RFC 3659 §4).
    pub async fn size(&mut self, path: &str) -> Result<u64, FtpError> {
        let reply = self.expect_ok(&format!("SIZE {path}"), Some(path)).await?;
        replies::parse_size(&reply).ok_or(FtpError::UnexpectedReply {
            command: "SIZE".into(),
            reply,
        })
    }

    /// Sets a file's modification time (MFMT, draft-somers-ftp-mfxx-04 §3): `Ok(false)` when
    /// the server has no MFMT (500/502), an error when it refuses for another reason.
    pub async fn set_modified(&mut self, path: &str, time: i64) -> Result<bool, FtpError> {
        let stamp = ferry_proto::time::format_time_val(time);
        let reply = self.raw(&format!("MFMT {stamp} {path}")).await?;
        match reply.code {
            213 | 200 | 250 => Ok(true),
            500 | 502 | 504 => Ok(false),
            _ => Err(negative(reply, "MFMT", Some(path))),
        }
    }

    /// A file's modification time in seconds since the epoch, UTC (MDTM, RFC 3659 §3).
    pub async fn mdtm(&mut self, path: &str) -> Result<i64, FtpError> {
        let reply = self.expect_ok(&format!("MDTM {path}"), Some(path)).await?;
        replies::parse_mdtm(&reply).ok_or(FtpError::UnexpectedReply {
            command: "MDTM".into(),
            reply,
        })
    }

    /// Sets the representation type (TYPE, RFC 959 §4.1.2).
    /// MODE Z (draft-preston-ftpext-deflate) or MODE S: with Z, transfers and listings carry
    /// zlib streams, inflated and deflated here. A server without it answers 504 (an error).
    pub async fn set_mode_z(&mut self, on: bool) -> Result<Reply, FtpError> {
        let line = if on { "MODE Z" } else { "MODE S" };
        let reply = self.control.command_final(line).await?;
        if reply.class() != 2 {
            return Err(negative(reply, "MODE", None));
        }
        self.mode_z = on;
        Ok(reply)
    }

    /// Whether MODE Z is on.
    pub fn mode_z(&self) -> bool {
        self.mode_z
    }

    pub async fn set_type(&mut self, transfer_type: TransferType) -> Result<Reply, FtpError> {
        let line = match transfer_type {
            TransferType::Ascii => "TYPE A",
            TransferType::Image => "TYPE I",
        };
        let reply = self.expect_ok(line, None).await?;
        self.transfer_type = transfer_type;
        Ok(reply)
    }

    /// The representation type transfers use now.
    pub fn transfer_type(&self) -> TransferType {
        self.transfer_type
    }

    /// The server's operating system (SYST, RFC 959 §4.1.3).
    pub async fn system(&mut self) -> Result<Reply, FtpError> {
        self.expect_ok("SYST", None).await
    }

    /// A SITE command (RFC 959 §4.1.3); the reply is returned whatever its code.
    pub async fn site(&mut self, arguments: &str) -> Result<Reply, FtpError> {
        self.raw(&format!("SITE {arguments}")).await
    }

    /// Sends any command line and returns its final reply, whatever its code.
    pub async fn raw(&mut self, line: &str) -> Result<Reply, FtpError> {
        self.control.command_final(line).await
    }

    /// Keeps the connection alive (NOOP, RFC 959 §4.1.3).
    pub async fn noop(&mut self) -> Result<Reply, FtpError> {
        self.expect_ok("NOOP", None).await
    }

    /// Ends the session (QUIT, RFC 959 §4.1.1).
    pub async fn quit(mut self) -> Result<Reply, FtpError> {
        self.control.command_final("QUIT").await
    }

    /// Sends `line` and wants a 2yz final reply; `path` names the file in errors.
    pub(crate) async fn expect_ok(
        &mut self,
        line: &str,
        path: Option<&str>,
    ) -> Result<Reply, FtpError> {
        let reply = self.control.command_final(line).await?;
        if reply.class() == 2 {
            return Ok(reply);
        }
        let verb = line.split(' ').next().unwrap_or(line);
        Err(negative(reply, verb, path))
    }
}

/// Verbs whose 450/550 reply means the named file is missing or unavailable; for the others
/// (STOR, APPE, MKD, RNTO) it means the server refuses to create it.
const READS_EXISTING: &[&str] = &[
    "RETR", "SIZE", "MDTM", "CWD", "DELE", "RMD", "RNFR", "LIST", "NLST", "MLSD",
];

/// The error for a negative reply to `verb`: missing-file errors name the file.
pub(crate) fn negative(reply: Reply, verb: &str, path: Option<&str>) -> FtpError {
    match (reply.code, path) {
        (450 | 550, Some(path)) if READS_EXISTING.contains(&verb) => FtpError::FileUnavailable {
            path: path.to_string(),
            reply,
        },
        (100..=399, _) => FtpError::UnexpectedReply {
            command: verb.to_string(),
            reply,
        },
        _ => FtpError::Refused {
            command: verb.to_string(),
            reply,
        },
    }
}

impl Drop for Client {
    /// The control connection closes with the client (after QUIT, or on any error).
    fn drop(&mut self) {
        if let Some(transcript) = &self.config.transcript {
            transcript.closed(self.local, self.peer);
        }
    }
}

/// Resolves `host` as [`crate::resolve::resolve`] does, telling the transcript what was asked
/// and what came back.
async fn resolve_observed(
    host: &str,
    port: u16,
    config: &ClientConfig,
) -> Result<Vec<SocketAddr>, FtpError> {
    let transcript = config.transcript.as_deref();
    let overrides = &config.resolve_overrides;
    if let Some(transcript) = transcript {
        // Only the resolver sends a query; pins and addresses are answers of their own.
        if answer_source(host, port, overrides) == AnswerSource::Resolver {
            transcript.resolving(host);
        }
    }
    let found = lookup(host, port, &config.resolve_overrides).await;
    match (&found, transcript) {
        (Ok((addrs, source)), Some(transcript)) => transcript.resolved(host, addrs, *source),
        (Err(error), Some(transcript)) => transcript.resolve_failed(host, &error.to_string()),
        _ => {}
    }
    filter(host, found?.0, config.family)
}

fn is_connect_error(error: &FtpError) -> bool {
    matches!(
        error,
        FtpError::Connect { .. } | FtpError::ConnectTimeout { .. }
    )
}

async fn connect_stream(addr: SocketAddr, config: &ClientConfig) -> Result<TcpStream, FtpError> {
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(FtpError::Connect { addr, error }),
        Err(_) => Err(FtpError::ConnectTimeout {
            addr,
            seconds: timeout.as_secs(),
        }),
    }
}
