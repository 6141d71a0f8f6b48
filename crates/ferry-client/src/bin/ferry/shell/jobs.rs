//! Shell commands that may use more than one session or try again: mirror, pget, reput,
//! get/put with `verify` on or retries set, and the `verify` setting.

use std::path::Path;

use super::{notice, Shell};
use crate::copy::{upload, CopyOptions, Upload};
use crate::mirror::{self, Request};
use crate::pget::pget;
use crate::report::FileReport;
use crate::session::{Connector, Retry, Session};
use ferry_client::TransferType;

impl Shell {
    /// What `mirror --parallel`, `pget` and retries need to open more sessions.
    async fn connector(&mut self) -> anyhow::Result<Option<Connector>> {
        let Some((user, password, account)) = self.credentials.clone() else {
            return Ok(None);
        };
        let directory = self.client()?.pwd().await.ok();
        Ok(Some(Connector {
            host: self.host.clone(),
            port: self.client()?.peer_addr().port(),
            config: self.config.clone(),
            user,
            password,
            account,
            trust: self.trust.clone(),
            directory,
        }))
    }

    fn copy_options(&self, resume: bool) -> CopyOptions {
        CopyOptions {
            resume,
            verify: self.verify,
            retry: Retry::new(self.retries),
        }
    }

    /// Lends the session's client to a job that may replace it (after reconnecting).
    async fn with_session<T>(
        &mut self,
        job: impl AsyncFnOnce(&mut Session, Option<&Connector>) -> T,
    ) -> anyhow::Result<T> {
        let connector = self.connector().await?;
        let client = self.client.take();
        let mut session = Session::new(client, connector.clone());
        let result = job(&mut session, connector.as_ref()).await;
        self.client = session.into_client();
        self.remote_names_stale = true;
        Ok(result)
    }

    /// [`Shell::with_session`] in binary mode (TYPE I): a mirror copies files as they are, and
    /// a segmented download's offsets count bytes. A shell in ASCII mode (`ascii`) is put back
    /// in it after.
    async fn with_binary_session<T>(
        &mut self,
        job: impl AsyncFnOnce(&mut Session, Option<&Connector>) -> T,
    ) -> anyhow::Result<T> {
        let ascii = self
            .client
            .as_ref()
            .is_some_and(|c| c.transfer_type() == TransferType::Ascii);
        if let Some(client) = self.client.as_mut().filter(|_| ascii) {
            client.set_type(TransferType::Image).await?;
        }
        let result = self.with_session(job).await;
        if let Some(client) = self.client.as_mut().filter(|_| ascii) {
            let restored = client.set_type(TransferType::Ascii).await;
            // The job's own error first (its connection may be what failed).
            if result.is_ok() {
                restored?;
            }
        }
        result
    }

    /// `mirror [options] REMOTE [LOCAL]`, `mirror -R [options] LOCAL [REMOTE]`.
    pub(super) async fn mirror(&mut self, args: &[String]) -> anyhow::Result<()> {
        let mut request = Request::from_shell(args, self.verify)?;
        if request.copy.retry.retries == 0 {
            request.copy.retry = Retry::new(self.retries);
        }
        request.verbose |= self.printer.verbose() && !request.json;
        self.client()?;
        let quiet = request.json || !self.printer.debug();
        self.printer.set_quiet(quiet);
        let result = self
            .with_binary_session(async |session, connector| {
                mirror::run(session, connector, &request).await
            })
            .await;
        self.printer.set_quiet(false);
        result?
    }

    /// `pget [-n N] remote-file [local-file]`.
    pub(super) async fn pget(&mut self, args: &[String]) -> anyhow::Result<()> {
        let (count, rest) = match args {
            [flag, n, rest @ ..] if flag == "-n" => match n.parse::<usize>() {
                Ok(n) if (1..=16).contains(&n) => (n, rest),
                _ => return notice("pget: -n takes a number from 1 to 16"),
            },
            rest => (4, rest),
        };
        let (remote, local) = match rest {
            [remote] => (remote.clone(), last_name(remote)),
            [remote, local] => (remote.clone(), local.clone()),
            _ => return notice("usage: pget [-n N] remote-file [local-file]"),
        };
        crate::local::check_local_name(&local)?;
        self.client()?;
        let options = self.copy_options(false);
        // The range sessions' logins and replies are not shown (unless debugging).
        self.printer.set_quiet(!self.printer.debug());
        let done = self
            .with_binary_session(async |session, connector| {
                pget(
                    session,
                    connector,
                    &remote,
                    Path::new(&local),
                    count,
                    options,
                )
                .await
            })
            .await;
        self.printer.set_quiet(false);
        let (report, result) = done?;
        self.show_report(&report);
        result
    }

    /// `reput local-file [remote-file]` (and `put -c`): continues an upload from the size the
    /// remote file has (REST+STOR, or APPE where REST is refused).
    pub(super) async fn reput(&mut self, args: &[String]) -> anyhow::Result<()> {
        let (local, remote) = match args {
            [local] => (local.clone(), last_name(local)),
            [local, remote] => (local.clone(), remote.clone()),
            _ => return notice("usage: reput local-file [remote-file]"),
        };
        self.careful_put(&local, &remote, true).await
    }

    /// `get` with `verify` on or retries set: checked, continued after a break.
    pub(super) async fn careful_get(
        &mut self,
        remote: &str,
        local: &str,
        resume: bool,
    ) -> anyhow::Result<()> {
        crate::local::check_local_name(local)?;
        self.client()?;
        let options = self.copy_options(resume);
        let (report, result) = self
            .with_session(async |session, connector| {
                pget(session, connector, remote, Path::new(local), 1, options).await
            })
            .await?;
        self.show_report(&report);
        result
    }

    /// `put` with `verify` on or retries set, and `reput`.
    pub(super) async fn careful_put(
        &mut self,
        local: &str,
        remote: &str,
        resume: bool,
    ) -> anyhow::Result<()> {
        let (local, remote) = (local.to_string(), remote.to_string());
        self.client()?;
        let options = self.copy_options(resume);
        let (report, result) = self
            .with_session(async |session, _| {
                let job = Upload {
                    local: Path::new(&local),
                    remote: &remote,
                    via_part: false,
                };
                upload(session, &job, options).await
            })
            .await?;
        self.show_report(&report);
        result
    }

    fn show_report(&self, report: &FileReport) {
        if self.printer.verbose() && report.error.is_none() {
            println!("{}", report.text());
        }
    }

    /// `verify [on | off]`.
    pub(super) fn toggle_verify(&mut self, args: &[String]) -> anyhow::Result<()> {
        self.verify = match args {
            [] => !self.verify,
            [word] if word == "on" => true,
            [word] if word == "off" => false,
            _ => return notice("usage: verify [on | off]"),
        };
        let word = if self.verify { "on" } else { "off" };
        println!("Verify transfers against the server's checksum: {word}.");
        Ok(())
    }
}

/// The last name of a path.
fn last_name(path: &str) -> String {
    crate::local::split_dir(path).1.to_string()
}
