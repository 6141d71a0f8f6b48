//! Login and logout: USER, PASS, ACCT, REIN, QUIT (RFC 959 §4.1.1).

use std::sync::Arc;

use ferry_proto::{Reply, Secret};

use super::{Account, Flow, Login, Profile, Session};
use crate::config::UnknownHost;
use crate::data::DataPlan;
use crate::limits::{CountGuard, RateLimiter, Throttle};
use crate::permissions::{AccessPolicy, Permission, PermissionSet};
use crate::storage::{Storage, VirtualPath};
use crate::users::AccountSpec;

/// User names that mean anonymous FTP (RFC 1635).
const ANONYMOUS_NAMES: [&str; 2] = ["ftp", "anonymous"];

impl Session {
    /// USER (RFC 959 §4.1.1). Every name gets 331, known or not, so names cannot be probed.
    pub(super) async fn user(&mut self, name: String) -> Flow {
        if self.logged_in() {
            return self.reply(530, "Can't change to another user.").await;
        }
        let anonymous = self.anonymous_settings().enabled
            && ANONYMOUS_NAMES
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&name));
        if self.login_needs_tls(anonymous) && !self.control.is_tls() {
            let text = if anonymous {
                "Sessions must use encryption (AUTH TLS)."
            } else {
                "Non-anonymous sessions must use encryption (AUTH TLS)."
            };
            return self.reply(530, text).await;
        }
        self.login = Login::AwaitingPassword {
            user: name,
            anonymous,
        };
        if anonymous {
            self.reply(
                331,
                "Anonymous access allowed, send identity (e-mail name) as password.",
            )
            .await
        } else {
            self.reply(331, "Please specify the password.").await
        }
    }

    /// PASS (RFC 959 §4.1.1).
    pub(super) async fn pass(&mut self, password: Secret) -> Flow {
        // A PASS after a successful login changes nothing: the session stays logged in.
        let (user, anonymous) = match &self.login {
            Login::LoggedIn(_) => return self.reply(230, "Already logged in.").await,
            Login::Anonymous => return self.reply(503, "Login with USER first.").await,
            Login::AwaitingPassword { user, anonymous } => (user.clone(), *anonymous),
        };
        self.login = Login::Anonymous;
        let ip = self.peer.ip();
        if self.context.bans.banned_for(ip).is_some() {
            // Banned meanwhile (from another session): no password is checked, and the attempt
            // still counts.
            self.context.bans.record_failure(ip);
            tracing::warn!(peer = %ip, user = %escape(&user), "login refused: address banned");
            self.reply(421, super::BANNED).await;
            return Flow::Quit;
        }
        // An anonymous user's identity, kept (at most 64 characters) for the transfer log.
        let identity: Box<str> = match anonymous {
            true => password
                .expose()
                .chars()
                .take(64)
                .collect::<String>()
                .into(),
            false => Box::default(),
        };
        if anonymous {
            tracing::debug!(identity = %escape(&identity), "anonymous identity");
            // Another session of this host's anonymous user: its profile is this one's.
            let shared = self.context.anonymous_profiles.find(self.host.vhost, &user);
            if let Some(profile) = shared {
                let account = self.new_account(profile, (None, None), identity, None);
                let welcome = self.logged_in_as(account);
                return self.send(welcome).await;
            }
        }
        // Boxed: the full login's state is large, and most anonymous logins do not need it.
        Box::pin(self.log_in(user, anonymous, identity, password)).await
    }

    /// A login that makes the account's profile: checks the password (or builds the anonymous
    /// user's rights), opens the root, counts the quota.
    async fn log_in(
        &mut self,
        user: String,
        anonymous: bool,
        identity: Box<str>,
        password: Secret,
    ) -> Flow {
        let spec = if anonymous {
            Some(self.anonymous_spec(&user))
        } else {
            self.authenticate(&user, password).await
        };
        let Some(spec) = spec else {
            return self.login_failed(&user).await;
        };
        if spec.require_tls && !self.control.is_tls() {
            // Answered like any other failure (same reply, same delay, counted), so a password
            // sent in the clear cannot be confirmed by a distinct reply.
            tracing::info!(peer = %self.peer.ip(), user = %escape(&user), "this account must use TLS; refused on a clear connection");
            return self.login_failed(&user).await;
        }
        // Counted only for accounts with a limit: anonymous logins skip the shared lock.
        let count = spec.max_sessions.map(|limit| {
            self.context
                .sessions_per_user
                .acquire(&self.account_key(&spec.name), Some(limit))
        });
        let Some(count) = count.map_or(Some(None), |held| held.map(Some)) else {
            tracing::warn!(peer = %self.peer.ip(), user = %escape(&spec.name), "too many sessions for this user");
            self.reply(421, "Too many sessions for this user; try again later.")
                .await;
            return Flow::Quit;
        };
        let Some(storage) = self.open_storage(&spec.root) else {
            return self.reply(530, "Cannot open your home folder.").await;
        };
        let quota = match self.quota_usage(&spec, anonymous, &storage).await {
            Ok(quota) => quota,
            Err(error) => {
                tracing::error!(user = %escape(&spec.name), %error, "cannot count a quota's usage");
                return self.reply(530, "Cannot count your quota's usage.").await;
            }
        };
        let rates = (spec.download_rate, spec.upload_rate);
        let profile = Arc::new(Profile {
            name: spec.name,
            anonymous,
            policy: spec.policy,
            storage,
            require_tls: spec.require_tls,
            quota,
        });
        if anonymous {
            self.context
                .anonymous_profiles
                .keep(self.host.vhost, &profile);
        }
        let account = self.new_account(profile, rates, identity, count);
        let welcome = self.logged_in_as(account);
        self.send(welcome).await
    }

    /// What anonymous users may do: read everything (or write, if configured), and upload new
    /// files to the upload folder, if there is one, without reading them back.
    fn anonymous_spec(&self, user: &str) -> AccountSpec {
        let settings = self.anonymous_settings();
        let base = if settings.writable {
            PermissionSet::ALL
        } else {
            PermissionSet::READ_ONLY
        };
        let mut policy = AccessPolicy::new(base);
        if let Some(folder) = &settings.upload_folder {
            let mut drop_box = PermissionSet::of(&[Permission::Upload]);
            if settings.upload_mkdir {
                drop_box = drop_box.with(Permission::Mkdir);
            }
            policy = policy.with_folder(VirtualPath::root().join(folder), drop_box);
        }
        AccountSpec {
            name: user.to_ascii_lowercase(),
            root: match self.vhost() {
                Some(vhost) => vhost.anonymous_root(),
                None => self.context.config.anonymous_root(),
            },
            policy,
            max_sessions: None,
            download_rate: None,
            upload_rate: None,
            require_tls: false,
            quota: crate::quota::Limits {
                bytes: settings.quota_bytes,
                files: settings.quota_files,
            },
        }
    }

    /// What tells account `name` apart from the other hosts' accounts of that name, for what
    /// its sessions share (their count, aggregate rates, quota usage): the name on the default
    /// host, `host/name` on a virtual host (its first name; no host name holds a `/`).
    fn account_key(&self, name: &str) -> String {
        match self.vhost() {
            Some(vhost) => format!("{}/{name}", vhost.names.first().map_or("", String::as_str)),
            None => name.to_string(),
        }
    }

    /// The account's quota usage, shared with its other sessions (counted at its first login).
    async fn quota_usage(
        &self,
        spec: &AccountSpec,
        anonymous: bool,
        storage: &Arc<dyn Storage>,
    ) -> Result<Option<Arc<crate::quota::Usage>>, crate::storage::StorageError> {
        if !spec.quota.is_limited() {
            return Ok(None);
        }
        let settings = self.anonymous_settings();
        let (key, scope) = match (&settings.upload_folder, anonymous) {
            (Some(folder), true) if !settings.writable => (
                format!("anonymous:{}:{folder}", spec.root.display()),
                VirtualPath::root().join(folder),
            ),
            (_, true) => (
                format!("anonymous:{}", spec.root.display()),
                VirtualPath::root(),
            ),
            (_, false) => (
                format!("user:{}", self.account_key(&spec.name)),
                VirtualPath::root(),
            ),
        };
        let (context, storage, limits) =
            (Arc::clone(&self.context), Arc::clone(storage), spec.quota);
        tokio::task::spawn_blocking(move || {
            context
                .quotas
                .usage(&key, storage.as_ref(), scope, limits)
                .map(Some)
        })
        .await
        .unwrap_or_else(|join| {
            Err(crate::storage::StorageError::new(
                crate::storage::StorageErrorKind::Other,
                &VirtualPath::root(),
                &join.to_string(),
            ))
        })
    }

    async fn authenticate(&self, user: &str, password: Secret) -> Option<AccountSpec> {
        // The accounts of the session's host.
        let authenticator = match self.vhost() {
            Some(vhost) => Arc::clone(&vhost.authenticator),
            None => Arc::clone(&self.context.authenticator),
        };
        let name = user.to_string();
        let peer = self.peer.ip();
        // argon2 is CPU-heavy: on the checker threads, never an async worker (see `checker`).
        self.context
            .password_checks
            .run(move || authenticator.authenticate(&name, password.expose(), peer))
            .await
            .flatten()
    }

    /// This session's account: `profile`, and the session's own throttles (the server's
    /// per-session rates, and the account's aggregate (download, upload) `rates` when it has
    /// them), identity and session count.
    fn new_account(
        &self,
        profile: Arc<Profile>,
        rates: (Option<u64>, Option<u64>),
        identity: Box<str>,
        count: Option<CountGuard<String>>,
    ) -> Account {
        let limits = &self.context.config.limits;
        let session_rate = |rate: u64| (rate > 0).then(|| Arc::new(RateLimiter::new(rate)));
        let (user_download, user_upload) = match rates {
            (None, None) => (None, None),
            (download, upload) => {
                let key = self.account_key(&profile.name);
                self.context.user_rates(&key, download, upload)
            }
        };
        Account {
            download: Throttle::new([session_rate(limits.download_rate), user_download]),
            upload: Throttle::new([session_rate(limits.upload_rate), user_upload]),
            profile,
            identity,
            upload_session: crate::storage::uploads::anonymous_session(),
            _session_count: count,
        }
    }

    /// A failed login: a growing pause, 530, and after too many failures the end of the session
    /// (and perhaps a ban of the address). The log line is the one fail2ban can match:
    /// `login failed peer=<address> user="<name>"`.
    async fn login_failed(&mut self, user: &str) -> Flow {
        self.failed_logins += 1;
        let ip = self.peer.ip();
        self.context
            .events
            .emit(crate::events::Event::Login(&crate::events::Login {
                session: self.id,
                peer: self.peer,
                user,
                anonymous: false,
                ok: false,
                reason: None,
            }));
        let ban = self.context.bans.record_failure(ip);
        if let Some(ban) = ban {
            tracing::warn!(peer = %ip, seconds = ban.as_secs(), "address banned after repeated failed logins");
        }
        let base = self.context.config.timeouts.failed_login_delay_ms;
        let delay = base.saturating_mul(1 << (self.failed_logins - 1).min(4));
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        if self.reply(530, "Login incorrect.").await == Flow::Quit {
            return Flow::Quit;
        }
        if ban.is_some() || self.failed_logins >= self.context.config.limits.max_login_failures {
            self.reply(421, "Too many failed logins; closing the connection.")
                .await;
            return Flow::Quit;
        }
        Flow::Continue
    }

    /// The session is logged in as `account`: told as an event, and the 230 to send.
    /// Not async: a login's future holds only the reply's sending.
    fn logged_in_as(&mut self, account: Account) -> Reply {
        let last_line = if account.anonymous {
            "Anonymous user logged in.".to_string()
        } else {
            format!("User {} logged in.", account.name)
        };
        self.context
            .events
            .emit(crate::events::Event::Login(&crate::events::Login {
                session: self.id,
                peer: self.peer,
                user: &account.name,
                anonymous: account.anonymous,
                ok: true,
                reason: None,
            }));
        self.login = Login::LoggedIn(Box::new(account));
        self.cwd = VirtualPath::root();
        let welcome = format!("Welcome to {}", self.server_name());
        Reply::multi(230, vec![welcome, last_line])
    }

    /// ACCT (RFC 959 §4.1.1): no account is ever needed.
    pub(super) async fn acct(&mut self) -> Flow {
        self.reply(202, "ACCT not needed.").await
    }

    /// REIN (RFC 959 §4.1.1): back to the state right after the greeting (a host chosen by
    /// HOST is forgotten; one chosen by the TLS server name stays).
    pub(super) async fn rein(&mut self) -> Flow {
        self.login = Login::Anonymous;
        if !self.host.by_sni {
            self.host = super::HostChoice::default();
        }
        self.host.by_host = false;
        self.login_deadline = tokio::time::Instant::now() + self.context.config.login_timeout();
        self.cwd = VirtualPath::root();
        self.tell_live(|view| {
            view.user.clear();
            view.folder = "/".into();
        });
        self.reset_transfer_parameters();
        self.reply(220, "Service ready for new user.").await
    }

    /// The 220 text of the session's host.
    pub(super) fn greeting(&self) -> String {
        self.vhost()
            .map_or_else(|| self.context.greeting.clone(), |v| v.greeting.clone())
    }

    /// HOST (RFC 7151 §3): before login, chooses the virtual host (220 with its greeting).
    pub(super) async fn host(&mut self, name: &str) -> Flow {
        if !matches!(self.login, Login::Anonymous) {
            return self
                .reply(503, "HOST must come before USER and login.")
                .await;
        }
        let found = crate::vhost::find(&self.context.vhosts, name);
        let vhost = match found {
            Some(index) => u16::try_from(index).ok(),
            None if self.context.config.unknown_host == UnknownHost::Default => None,
            None => {
                return self
                    .reply(504, format!("Unknown host {}.", escape(name)))
                    .await
            }
        };
        if self.host.by_sni && vhost != self.host.vhost {
            return self
                .reply(504, "HOST does not match the TLS server name (SNI).")
                .await;
        }
        self.host.vhost = vhost;
        self.host.by_host = true;
        let greeting = self.greeting();
        self.reply(220, greeting).await
    }

    /// After a TLS handshake on the control connection: the server name the client sent (SNI)
    /// chooses the host, or must agree with the one HOST chose. `false`: it does not (the
    /// session is then closed with 421).
    pub(super) fn choose_host_by_sni(&mut self, server_name: Option<&str>) -> bool {
        let Some(name) = server_name else {
            return true;
        };
        let vhost =
            crate::vhost::find(&self.context.vhosts, name).and_then(|i| u16::try_from(i).ok());
        if self.host.by_host {
            return vhost == self.host.vhost;
        }
        self.host.vhost = vhost;
        self.host.by_sni = true;
        true
    }

    /// QUIT (RFC 959 §4.1.1).
    pub(super) async fn quit(&mut self) -> Flow {
        let text = format!("Thank you for visiting {}.", self.server_name());
        self.control.hold_until_close();
        self.reply(221, text).await;
        Flow::Quit
    }

    /// The user's root, shared with the other sessions on the same root.
    fn open_storage(&self, root: &std::path::Path) -> Option<Arc<dyn Storage>> {
        match self.context.storage_for(root) {
            Ok(storage) => Some(storage),
            Err(error) => {
                tracing::error!(root = %root.display(), %error, "cannot open a user's root folder");
                None
            }
        }
    }

    fn reset_transfer_parameters(&mut self) {
        self.transfer_type = ferry_proto::command::TransferType::Ascii;
        self.restart_offset = 0;
        self.rename_from = None;
        self.data_plan = None::<DataPlan>;
        self.kept_passive = None;
        self.epsv_all = false;
        self.mlst_facts = None;
        self.hash_algorithm = ferry_proto::command::HashAlgorithm::Sha256;
        self.hash_range = None;
        self.deflate = None;
        self.deflate_level =
            super::DEFAULT_DEFLATE_LEVEL.min(self.context.config.data.mode_z_max_level as u8);
    }
}

pub(crate) use crate::events::escape;

#[cfg(test)]
mod tests {
    #[test]
    fn log_fields_cannot_forge_lines() {
        let forged = super::escape("bob\nINFO login peer=10.0.0.1 user=admin\u{1b}[2J");
        assert!(
            !forged.contains('\n') && !forged.contains('\u{1b}'),
            "{forged}"
        );
        assert!(forged.contains("\\n"));
    }
}
