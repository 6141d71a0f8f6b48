//! Login and logout: USER, PASS, ACCT, REIN, QUIT (RFC 959 §4.1.1).

use std::sync::Arc;

use ferry_proto::{Reply, Secret};

use super::{Account, Flow, Login, Session};
use crate::data::DataPlan;
use crate::storage::{LocalFs, Storage, VirtualPath};

/// User names that mean anonymous FTP (RFC 1635).
const ANONYMOUS_NAMES: [&str; 2] = ["ftp", "anonymous"];

impl Session {
    /// USER (RFC 959 §4.1.1). Every name gets 331, known or not, so names cannot be probed.
    pub(super) async fn user(&mut self, name: String) -> Flow {
        if self.logged_in() {
            return self.reply(530, "Can't change to another user.").await;
        }
        let anonymous = self.context.config.anonymous.enabled
            && ANONYMOUS_NAMES
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&name));
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
        let Login::AwaitingPassword { user, anonymous } =
            std::mem::replace(&mut self.login, Login::Anonymous)
        else {
            return if self.logged_in() {
                self.reply(230, "Already logged in.").await
            } else {
                self.reply(503, "Login with USER first.").await
            };
        };
        let account = if anonymous {
            self.anonymous_account(&user, &password)
        } else {
            self.named_account(&user, password).await
        };
        match account {
            Some(account) => self.logged_in_as(account).await,
            None => {
                tracing::warn!(peer = %self.peer, user = %escape(&user), "login failed");
                let delay = std::time::Duration::from_millis(
                    self.context.config.timeouts.failed_login_delay_ms,
                );
                tokio::time::sleep(delay).await;
                self.reply(530, "Login incorrect.").await
            }
        }
    }

    fn anonymous_account(&self, user: &str, password: &Secret) -> Option<Account> {
        let root = self.context.config.anonymous_root();
        let storage = open_storage(&root)?;
        tracing::debug!(identity = %escape(password.expose()), "anonymous identity");
        Some(Account {
            name: user.to_ascii_lowercase(),
            anonymous: true,
            writable: self.context.config.anonymous.writable,
            storage,
        })
    }

    async fn named_account(&self, user: &str, password: Secret) -> Option<Account> {
        let context = Arc::clone(&self.context);
        let name = user.to_string();
        // argon2 is CPU-heavy: keep it off the async workers.
        let found = tokio::task::spawn_blocking(move || {
            context.users.authenticate(&name, password.expose())
        })
        .await
        .ok()??;
        Some(Account {
            storage: open_storage(&found.root)?,
            name: found.name,
            anonymous: false,
            writable: found.writable,
        })
    }

    async fn logged_in_as(&mut self, account: Account) -> Flow {
        let last_line = if account.anonymous {
            "Anonymous user logged in.".to_string()
        } else {
            format!("User {} logged in.", account.name)
        };
        tracing::info!(peer = %self.peer, user = %escape(&account.name), anonymous = account.anonymous, "login");
        self.login = Login::LoggedIn(account);
        self.cwd = VirtualPath::root();
        let welcome = format!("Welcome to {}", self.context.server_name);
        self.send(Reply::multi(230, vec![welcome, last_line])).await
    }

    /// ACCT (RFC 959 §4.1.1): no account is ever needed.
    pub(super) async fn acct(&mut self) -> Flow {
        self.reply(202, "ACCT not needed.").await
    }

    /// REIN (RFC 959 §4.1.1): back to the state right after the greeting.
    pub(super) async fn rein(&mut self) -> Flow {
        self.login = Login::Anonymous;
        self.cwd = VirtualPath::root();
        self.reset_transfer_parameters();
        self.reply(220, "Service ready for new user.").await
    }

    /// QUIT (RFC 959 §4.1.1).
    pub(super) async fn quit(&mut self) -> Flow {
        let text = format!("Thank you for visiting {}.", self.context.server_name);
        self.reply(221, text).await;
        Flow::Quit
    }

    fn reset_transfer_parameters(&mut self) {
        self.transfer_type = ferry_proto::command::TransferType::Ascii;
        self.restart_offset = 0;
        self.rename_from = None;
        self.data_plan = None::<DataPlan>;
        self.epsv_all = false;
        self.mlst_facts = ferry_proto::listing::MLST_FACTS.to_vec();
    }
}

fn open_storage(root: &std::path::Path) -> Option<Arc<dyn Storage>> {
    match LocalFs::open(root) {
        Ok(fs) => Some(Arc::new(fs)),
        Err(error) => {
            tracing::error!(root = %root.display(), %error, "cannot open a user's root folder");
            None
        }
    }
}

/// Escapes control characters in client-supplied text before it goes into a log line.
pub(crate) fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}
