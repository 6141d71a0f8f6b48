//! Sessions that can be opened again: how to connect and log in (for `--parallel`, `pget` and
//! reconnecting after a failure), and the retry policy (`--retries N`, doubling waits with a cap).

use std::time::Duration;

use ferry_client::{Client, ClientConfig, ErrorCategory, FtpError, Secret, TransferType};

use crate::tls::{connect, TrustStore};

/// Everything needed to open one more logged-in session in binary mode.
#[derive(Clone)]
pub struct Connector {
    pub host: String,
    pub port: u16,
    pub config: ClientConfig,
    pub user: String,
    pub password: Secret,
    pub account: Option<String>,
    pub trust: TrustStore,
    /// The remote directory the first session was in, so relative paths mean the same.
    pub directory: Option<String>,
}

impl Connector {
    /// Connects (no questions asked: an untrusted certificate fails), logs in, TYPE I, CWD.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut client = connect(
            &self.host,
            self.port,
            self.config.clone(),
            &self.trust,
            None,
        )
        .await?;
        client
            .login(&self.user, &self.password, self.account.as_deref())
            .await?;
        client.set_type(TransferType::Image).await?;
        if let Some(directory) = &self.directory {
            client.cwd(directory).await?;
        }
        Ok(client)
    }
}

/// How often and how patiently a broken transfer is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries after the first one.
    pub retries: u32,
    pub first_wait: Duration,
    pub longest_wait: Duration,
}

impl Retry {
    pub fn new(retries: u32) -> Self {
        Retry {
            retries,
            first_wait: Duration::from_millis(500),
            longest_wait: Duration::from_secs(30),
        }
    }

    /// The wait before try number `attempt` (1 for the first retry): doubling, capped.
    pub fn wait(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.first_wait
            .saturating_mul(factor)
            .min(self.longest_wait)
    }
}

/// Whether trying again could help: the connection or the transfer broke. A missing file, a
/// refusal, a local error or a checksum mismatch will not change by trying again.
pub fn retryable(error: &anyhow::Error) -> bool {
    error.downcast_ref::<FtpError>().is_some_and(|e| {
        matches!(
            e.category(),
            ErrorCategory::Connection | ErrorCategory::Transfer
        ) && !matches!(e, FtpError::TransferFailed { reply, .. } if reply.code >= 500)
    })
}

/// One session that is opened again after it broke, when a [`Connector`] is known.
pub struct Session {
    client: Option<Client>,
    connector: Option<Connector>,
}

impl Session {
    pub fn new(client: Option<Client>, connector: Option<Connector>) -> Self {
        Session { client, connector }
    }

    /// The live client, connecting first if the last one was dropped.
    pub async fn client(&mut self) -> anyhow::Result<&mut Client> {
        if self.client.is_none() {
            let Some(connector) = &self.connector else {
                anyhow::bail!("not connected");
            };
            self.client = Some(connector.connect().await?);
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => anyhow::bail!("not connected"),
        }
    }

    /// Forgets a client whose connection may be unusable (after a broken transfer).
    pub fn drop_client(&mut self) {
        self.client = None;
    }

    /// Whether a new session can be opened after this one is lost.
    pub fn can_reconnect(&self) -> bool {
        self.connector.is_some()
    }

    /// Gives the client back (to the shell that lent it).
    pub fn into_client(self) -> Option<Client> {
        self.client
    }

    /// Ends the session politely.
    pub async fn quit(self) {
        if let Some(client) = self.client {
            let _ = client.quit().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let retry = Retry::new(5);
        let waits: Vec<u64> = (1..=8).map(|n| retry.wait(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[test]
    fn only_broken_connections_and_transfers_are_retried() {
        let lost = anyhow::Error::new(FtpError::ConnectionClosed);
        assert!(retryable(&lost));
        let missing = anyhow::Error::new(FtpError::FileUnavailable {
            path: "x".into(),
            reply: ferry_client::Reply::new(550, "No such file"),
        });
        assert!(!retryable(&missing));
        assert!(!retryable(&anyhow::anyhow!("local")));
    }
}
