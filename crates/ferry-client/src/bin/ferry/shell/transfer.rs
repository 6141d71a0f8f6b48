//! Shell commands that move files: get/recv, reget, put/send, append, mget, mput, mdelete.

use std::io::IsTerminal;

use ferry_client::EntryKind;

use super::{notice, now, Shell};
use crate::files::{download, local_size, upload};
use crate::local::{expand_local, has_wildcards, join_dir, split_dir, wildcard_match};
use crate::printer::printable;
use crate::progress::{summary, Display};

/// An answer to "mget name? ".
enum Answer {
    Yes,
    No,
    /// Stop asking and do all the rest.
    All,
    /// Stop the whole command.
    Quit,
}

impl Shell {
    /// `get remote-file [local-file]`, and `reget` (resume) with `resume`.
    pub(super) async fn get(&mut self, args: &[String], resume: bool) -> anyhow::Result<()> {
        if let [flag, count, rest @ ..] = args {
            if flag == "--segments" && !resume {
                let mut pget_args = vec!["-n".to_string(), count.clone()];
                pget_args.extend(rest.iter().cloned());
                return self.pget(&pget_args).await;
            }
        }
        let (remote, local) = match args {
            [remote] => (remote, remote),
            [remote, local] => (remote, local),
            _ => return notice("usage: get remote-file [local-file]"),
        };
        self.receive(remote, local, resume).await
    }

    async fn receive(&mut self, remote: &str, local: &str, resume: bool) -> anyhow::Result<()> {
        if (self.verify || self.retries > 0) && local != "-" {
            return self.careful_get(remote, local, resume).await;
        }
        let verbose = self.printer.verbose();
        if verbose {
            println!("local: {} remote: {}", printable(local), printable(remote));
        }
        let expected = self.expected_size(remote, local != "-").await;
        let display = self.display(local != "-", expected);
        let moved = download(self.client()?, remote, local, resume, display).await?;
        if verbose {
            println!("{}", summary(moved.bytes, "received", moved.elapsed));
        }
        Ok(())
    }

    /// `put local-file [remote-file]`, and `append` with `append`.
    pub(super) async fn put(&mut self, args: &[String], append: bool) -> anyhow::Result<()> {
        if let (Some("-c"), false) = (args.first().map(String::as_str), append) {
            return self.reput(&args[1..]).await;
        }
        let (local, remote) = match args {
            [local] => (local, local),
            [local, remote] => (local, remote),
            _ if append => return notice("usage: append local-file [remote-file]"),
            _ => return notice("usage: put local-file [remote-file]"),
        };
        self.send(local, remote, append).await
    }

    async fn send(&mut self, local: &str, remote: &str, append: bool) -> anyhow::Result<()> {
        if (self.verify || self.retries > 0) && !append {
            return self.careful_put(local, remote, false).await;
        }
        let verbose = self.printer.verbose();
        if verbose {
            println!("local: {} remote: {}", printable(local), printable(remote));
        }
        let display = self.display(true, local_size(local));
        let moved = upload(self.client()?, local, remote, append, display).await?;
        self.remote_names_stale = true;
        if verbose {
            println!("{}", summary(moved.bytes, "sent", moved.elapsed));
        }
        Ok(())
    }

    /// `mget remote-files...`: wildcards are matched here against the directory's entries.
    pub(super) async fn mget(&mut self, args: &[String]) -> anyhow::Result<()> {
        if args.is_empty() {
            return notice("usage: mget remote-files");
        }
        let mut asking = self.prompting;
        for pattern in args {
            for remote in self.remote_matches(pattern).await? {
                match self.confirm("mget", &remote, &mut asking) {
                    Answer::Quit => return Ok(()),
                    Answer::No => continue,
                    Answer::Yes | Answer::All => {}
                }
                let local = split_dir(&remote).1.to_string();
                if let Err(error) = self.receive(&remote, &local, false).await {
                    self.fail(error);
                }
            }
        }
        Ok(())
    }

    /// `mput local-files...`: local wildcards, each file stored under its own name.
    pub(super) async fn mput(&mut self, args: &[String]) -> anyhow::Result<()> {
        if args.is_empty() {
            return notice("usage: mput local-files");
        }
        let mut asking = self.prompting;
        for pattern in args {
            for local in expand_local(pattern) {
                match self.confirm("mput", &local, &mut asking) {
                    Answer::Quit => return Ok(()),
                    Answer::No => continue,
                    Answer::Yes | Answer::All => {}
                }
                let remote = split_dir(&local).1.to_string();
                if let Err(error) = self.send(&local, &remote, false).await {
                    self.fail(error);
                }
            }
        }
        Ok(())
    }

    /// `mdelete remote-files...`.
    pub(super) async fn mdelete(&mut self, args: &[String]) -> anyhow::Result<()> {
        if args.is_empty() {
            return notice("usage: mdelete remote-files");
        }
        let mut asking = self.prompting;
        for pattern in args {
            for remote in self.remote_matches(pattern).await? {
                match self.confirm("mdelete", &remote, &mut asking) {
                    Answer::Quit => return Ok(()),
                    Answer::No => continue,
                    Answer::Yes | Answer::All => {}
                }
                if let Err(error) = self.client()?.delete(&remote).await {
                    self.fail(error.into());
                }
            }
        }
        self.remote_names_stale = true;
        Ok(())
    }

    /// The remote files a pattern names: itself without wildcards, else the matching
    /// non-directory entries of its directory (MLSD or parsed LIST; NLST as a last resort).
    async fn remote_matches(&mut self, pattern: &str) -> anyhow::Result<Vec<String>> {
        if !has_wildcards(pattern) {
            return Ok(vec![pattern.to_string()]);
        }
        let (dir, name_pattern) = split_dir(pattern);
        self.printer.set_quiet(true);
        let names = self.remote_names_in(dir).await;
        self.printer.set_quiet(false);
        let mut names: Vec<String> = names?
            .into_iter()
            .filter(|name| wildcard_match(name_pattern, name))
            .map(|name| join_dir(dir, &name))
            .collect();
        names.sort();
        if names.is_empty() {
            println!("No files matching {}.", printable(pattern));
        }
        Ok(names)
    }

    async fn remote_names_in(&mut self, dir: Option<&str>) -> anyhow::Result<Vec<String>> {
        let client = self.client()?;
        let entries = client.entries(dir, now()).await.unwrap_or_default();
        if !entries.is_empty() {
            return Ok(entries
                .into_iter()
                .filter(|entry| entry.kind != EntryKind::Directory)
                .map(|entry| entry.name)
                .collect());
        }
        let names = client.nlst(dir).await?;
        Ok(names
            .into_iter()
            .map(|name| split_dir(&name).1.to_string())
            .collect())
    }

    /// Asks `mget name? ` when prompting is on; `a` answers yes for the rest, `q` stops.
    fn confirm(&mut self, command: &str, name: &str, asking: &mut bool) -> Answer {
        if !*asking {
            return Answer::Yes;
        }
        let Some(answer) = self.input.answer(&format!("{command} {name}? ")) else {
            return Answer::Quit;
        };
        match answer.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
            Some('n') => Answer::No,
            Some('q') => Answer::Quit,
            Some('a') => {
                *asking = false;
                Answer::All
            }
            _ => Answer::Yes,
        }
    }

    /// The remote file's size for a progress bar or the size of hash marks, asked quietly,
    /// only when one will show.
    async fn expected_size(&mut self, remote: &str, bar_allowed: bool) -> Option<u64> {
        let scaled_marks = self.hash && self.hash_size.is_none();
        if !self.wants_bar(bar_allowed) && !scaled_marks {
            return None;
        }
        self.printer.set_quiet(true);
        let size = match self.client.as_mut() {
            Some(client) => client.size(remote).await.ok(),
            None => None,
        };
        self.printer.set_quiet(false);
        size
    }

    fn wants_bar(&self, bar_allowed: bool) -> bool {
        bar_allowed && !self.hash && std::io::stderr().is_terminal() && self.input.is_terminal()
    }

    /// Hash marks if `hash` is on, else a bar when stderr is a terminal and the output is not
    /// standard output.
    fn display(&self, bar_allowed: bool, expected: Option<u64>) -> Display {
        match (self.hash, self.hash_size) {
            (true, Some(mark)) => Display::marks(mark),
            _ => Display::new(self.hash, self.wants_bar(bar_allowed), expected),
        }
    }
}
