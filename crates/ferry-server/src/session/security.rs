//! FTPS on the control connection and the policy for data connections: AUTH, PBSZ, PROT, CCC
//! (RFC 4217, RFC 2228), implicit FTPS, and where TLS is required.

use super::{Flow, Login, Session};
use crate::config::TlsPolicy;
use crate::data::DataTls;
use crate::tls::{SessionAcceptors, TlsSettings};

/// One session's FTPS state, made when TLS starts (AUTH, or implicit FTPS): a plain session
/// carries none of it.
pub(super) struct SessionTls {
    /// This session's acceptors: their own TLS session cache, shared by its control and data
    /// connections.
    acceptors: SessionAcceptors,
    implicit: bool,
    /// PBSZ was given (after AUTH).
    buffer_size_set: bool,
    /// PROT P: data connections are TLS.
    protect_data: bool,
}

impl SessionTls {
    /// The session came in on the implicit FTPS port.
    pub(super) fn implicit(&self) -> bool {
        self.implicit
    }

    pub(super) fn new(settings: &TlsSettings, implicit: bool) -> Self {
        SessionTls {
            acceptors: settings.session_acceptors(),
            implicit,
            buffer_size_set: implicit,
            protect_data: implicit,
        }
    }
}

impl Session {
    /// Implicit FTPS: the TLS handshake comes before the greeting. Returns false when it failed.
    pub(super) async fn start_implicit_tls(&mut self) -> bool {
        let Some(tls) = self.tls.as_ref().filter(|t| t.implicit) else {
            return true;
        };
        let acceptor = tls.acceptors.control.clone();
        let limit = self.context.config.login_timeout();
        let handshake = self.control.start_tls(&acceptor, limit).await;
        self.tell_handshake(false, handshake.is_ok(), self.control.tls_resumed());
        match handshake {
            Ok(server_name) => self.choose_host_by_sni(server_name.as_deref()),
            Err(error) => {
                tracing::info!(peer = %self.peer.ip(), %error, "implicit TLS handshake failed");
                false
            }
        }
    }

    /// AUTH TLS, AUTH SSL (RFC 4217 §4): 234, then the TLS handshake on the control connection.
    pub(super) async fn auth(&mut self, mechanism: &str) -> Flow {
        let Some(settings) = self.context.tls.as_ref().filter(|_| self.tls_offered()) else {
            return self
                .reply(502, "AUTH not available: TLS is not configured.")
                .await;
        };
        let acceptor = match &self.tls {
            Some(tls) => tls.acceptors.control.clone(),
            None => {
                let tls = SessionTls::new(settings, false);
                let acceptor = tls.acceptors.control.clone();
                self.tls = Some(tls);
                acceptor
            }
        };
        if !matches!(mechanism, "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            return self
                .reply(504, "Security mechanism not understood; use AUTH TLS.")
                .await;
        }
        if self.control.is_tls() {
            return self.reply(503, "Already using TLS.").await;
        }
        // Commands that arrived in the clear behind AUTH (queued while a transfer ran) are
        // dropped with the rest of the plaintext: none may be answered over TLS.
        self.queued.clear();
        if self
            .reply(234, format!("AUTH {mechanism} successful."))
            .await
            == Flow::Quit
        {
            return Flow::Quit;
        }
        let limit = self.context.config.login_timeout();
        let handshake = self.control.start_tls(&acceptor, limit).await;
        self.tell_handshake(false, handshake.is_ok(), self.control.tls_resumed());
        let server_name = match handshake {
            Ok(server_name) => server_name,
            Err(error) => {
                tracing::info!(peer = %self.peer.ip(), %error, "TLS handshake failed");
                return Flow::Quit;
            }
        };
        if !self.choose_host_by_sni(server_name.as_deref()) {
            self.reply(421, "The TLS server name (SNI) does not match HOST.")
                .await;
            return Flow::Quit;
        }
        if let Some(tls) = self.tls.as_mut() {
            // The old AUTH SSL and TLS-P also protect data connections (RFC 4217 §4).
            tls.protect_data |= matches!(mechanism, "SSL" | "TLS-P");
        }
        Flow::Continue
    }

    /// PBSZ (RFC 4217 §8): only 0 makes sense with TLS.
    pub(super) async fn pbsz(&mut self, _size: u64) -> Flow {
        match self.tls.as_mut().filter(|_| self.control.is_tls()) {
            Some(tls) => {
                tls.buffer_size_set = true;
                self.reply(200, "PBSZ=0").await
            }
            None => {
                self.reply(503, "PBSZ needs a TLS control connection (AUTH TLS first).")
                    .await
            }
        }
    }

    /// PROT (RFC 4217 §9): C (clear) or P (private) data connections.
    pub(super) async fn prot(&mut self, level: char) -> Flow {
        let data_policy = self.context.config.tls.data;
        let required = self.data_tls_required();
        let Some(tls) = self.tls.as_mut().filter(|t| t.buffer_size_set) else {
            return self.reply(503, "PROT needs PBSZ first.").await;
        };
        match level {
            'C' if required => {
                self.reply(534, "Data connections must be protected (PROT P).")
                    .await
            }
            'C' => {
                tls.protect_data = false;
                self.reply(200, "Protection level set to C.").await
            }
            'P' if data_policy == TlsPolicy::Off => {
                self.reply(534, "Data connections cannot be protected here.")
                    .await
            }
            'P' => {
                tls.protect_data = true;
                self.reply(200, "Protection level set to P.").await
            }
            'S' | 'E' => {
                self.reply(536, "Only protection levels C and P are supported.")
                    .await
            }
            _ => self.reply(504, "Unknown protection level.").await,
        }
    }

    /// CCC (RFC 4217 §6): back to a clear control connection, where allowed.
    pub(super) async fn ccc(&mut self) -> Flow {
        if !self.control.is_tls() {
            return self
                .reply(533, "The control connection is not protected.")
                .await;
        }
        // An account (or a server) that requires TLS never goes back to a clear connection.
        let tls_required = self.account().is_some_and(|a| a.require_tls)
            || self.context.config.tls.control == TlsPolicy::Required;
        if !self.context.config.tls.allow_ccc || tls_required {
            return self.reply(534, "CCC is not allowed by policy.").await;
        }
        if self.reply(200, "CCC command successful.").await == Flow::Quit {
            return Flow::Quit;
        }
        match self
            .control
            .end_tls(self.context.config.login_timeout())
            .await
        {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Quit,
        }
    }

    /// Whether AUTH TLS is offered: a certificate, and control TLS not switched off.
    pub(super) fn tls_offered(&self) -> bool {
        self.context.tls.is_some() && self.context.config.tls.control != TlsPolicy::Off
    }

    /// Whether this user must log in over TLS: control TLS required, unless anonymous users
    /// are exempt and this is one.
    pub(super) fn login_needs_tls(&self, anonymous: bool) -> bool {
        let tls = &self.context.config.tls;
        tls.control == TlsPolicy::Required && !(anonymous && tls.anonymous_exempt)
    }

    /// Whether data connections must be TLS for the logged-in user.
    pub(super) fn data_tls_required(&self) -> bool {
        let tls = &self.context.config.tls;
        let anonymous = match &self.login {
            Login::LoggedIn(account) => account.anonymous,
            Login::AwaitingPassword { anonymous, .. } => *anonymous,
            Login::Anonymous => false,
        };
        let account_requires = self.account().is_some_and(|a| a.require_tls);
        account_requires
            || (tls.data == TlsPolicy::Required && !(anonymous && tls.anonymous_exempt))
    }

    /// TLS for the next data connection, if PROT P is in force.
    pub(super) fn data_tls(&self, upload: bool) -> Option<DataTls> {
        let tls = self.tls.as_ref().filter(|t| t.protect_data)?;
        let acceptors = &tls.acceptors;
        Some(DataTls {
            acceptor: if upload {
                acceptors.upload.clone()
            } else {
                acceptors.download.clone()
            },
            require_reuse: self.context.config.tls.require_session_reuse,
        })
    }

    /// Whether the data-protection policy lets a transfer start now.
    pub(super) fn data_protection_ok(&self) -> bool {
        !self.data_tls_required() || self.tls.as_ref().is_some_and(|t| t.protect_data)
    }

    /// FEAT lines for FTPS, when it is offered.
    pub(super) fn tls_features(&self) -> Vec<&'static str> {
        if self.tls_offered() {
            vec!["AUTH TLS", "PBSZ", "PROT"]
        } else {
            Vec::new()
        }
    }
}
