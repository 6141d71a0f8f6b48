//! Shell commands about remote and local directories and files, without transfers of files.

use ferry_client::{Reply, TransferType};
use ferry_proto::time::DateTime;
use tokio::fs::File;

use super::{notice, Shell};
use crate::printer::{printable, PrintableWriter};

impl Shell {
    /// `ls`/`dir` (LIST), `nlist` (NLST), `mlsd` (MLSD): `[remote-path [local-file]]`.
    pub(super) async fn list(&mut self, args: &[String], verb: &str) -> anyhow::Result<()> {
        if let Some(("--json", rest)) = args.split_first().map(|(f, r)| (f.as_str(), r)) {
            return self.list_json(rest).await;
        }
        let (path, output) = match args {
            [] => (None, None),
            [path] => (Some(path.as_str()), None),
            [path, output] => (Some(path.as_str()), Some(output.as_str())),
            _ => return notice("usage: ls [remote-path [local-file]]"),
        };
        let client = self.client()?;
        match output.filter(|o| *o != "-") {
            None => list_verb(client, verb, path, &mut PrintableWriter::default()).await?,
            Some(output) => {
                let mut file = File::create(output).await?;
                list_verb(client, verb, path, &mut file).await?
            }
        };
        Ok(())
    }

    /// `ls --json [remote-path]`: one JSON object per entry (MLSD where the server has it).
    async fn list_json(&mut self, args: &[String]) -> anyhow::Result<()> {
        let path = match args {
            [] => None,
            [path] => Some(path.as_str()),
            _ => return notice("usage: ls --json [remote-path]"),
        };
        let client = self.client()?;
        let from_mlsd = client.features().await?.has("MLST");
        for entry in client.entries(path, super::now()).await? {
            crate::report::print_json(&crate::report::EntryReport::of(&entry, from_mlsd));
        }
        Ok(())
    }

    /// `cd remote-directory`.
    pub(super) async fn cd(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: cd remote-directory");
        };
        self.client()?.cwd(path).await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `cdup`.
    pub(super) async fn cdup(&mut self) -> anyhow::Result<()> {
        self.client()?.cdup().await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `lcd [local-directory]`: home when no directory is given.
    pub(super) fn lcd(&mut self, args: &[String]) -> anyhow::Result<()> {
        let target = match args {
            [] => std::env::var("HOME").unwrap_or_else(|_| "/".into()),
            [path] => path.clone(),
            _ => return notice("usage: lcd [local-directory]"),
        };
        std::env::set_current_dir(&target)
            .map_err(|e| anyhow::Error::new(e).context(format!("local: {target}")))?;
        let now = std::env::current_dir()?;
        println!("Local directory now {}", now.display());
        Ok(())
    }

    /// `pwd`.
    pub(super) async fn pwd(&mut self) -> anyhow::Result<()> {
        let path = self.client()?.pwd().await?;
        if !self.printer.verbose() {
            println!("Remote directory: {}", printable(&path));
        }
        Ok(())
    }

    /// `delete remote-file`.
    pub(super) async fn delete(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: delete remote-file");
        };
        self.client()?.delete(path).await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `mkdir directory-name`.
    pub(super) async fn mkdir(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: mkdir directory-name");
        };
        self.client()?.mkdir(path).await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `rmdir directory-name`.
    pub(super) async fn rmdir(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: rmdir directory-name");
        };
        self.client()?.rmdir(path).await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `rename from-name to-name`.
    pub(super) async fn rename(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [from, to] = args else {
            return notice("usage: rename from-name to-name");
        };
        self.client()?.rename(from, to).await?;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `size remote-file`.
    pub(super) async fn size(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: size remote-file");
        };
        let size = self.client()?.size(path).await?;
        if !self.printer.verbose() {
            println!("{}\t{size}", printable(path));
        }
        Ok(())
    }

    /// `checksum remote-file`: the server's checksum (HASH with SHA-256, SHA-1, MD5 or CRC32,
    /// else XSHA256, XSHA1, XMD5, XCRC): `readme.txt<TAB>SHA-256<TAB><hex>`.
    pub(super) async fn checksum(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: checksum remote-file");
        };
        match self.client()?.remote_hash(path, None).await? {
            Some(hash) => println!(
                "{}\t{}\t{}",
                printable(path),
                hash.algorithm.name(),
                hash.hex
            ),
            None => return notice("The server offers no checksum of this file."),
        }
        Ok(())
    }

    /// `mode [stream | z]`: MODE S, or MODE Z (deflate-compressed data connections).
    pub(super) async fn mode(&mut self, args: &[String]) -> anyhow::Result<()> {
        let on = match args {
            [] => {
                let mode = match self.client()?.mode_z() {
                    true => "z (deflate)",
                    false => "stream",
                };
                println!("Using {mode} mode to transfer files.");
                return Ok(());
            }
            [word] if matches!(word.to_ascii_lowercase().as_str(), "s" | "stream") => false,
            [word] if matches!(word.to_ascii_lowercase().as_str(), "z" | "deflate") => true,
            _ => return notice("usage: mode [stream | z]"),
        };
        self.client()?.set_mode_z(on).await?;
        Ok(())
    }

    /// `modtime remote-file`: `readme.txt<TAB>11/24/2026 23:31:00 GMT`.
    pub(super) async fn modtime(&mut self, args: &[String]) -> anyhow::Result<()> {
        let [path] = args else {
            return notice("usage: modtime remote-file");
        };
        let time = DateTime::from_unix(self.client()?.mdtm(path).await?);
        let path = printable(path);
        println!(
            "{path}\t{:02}/{:02}/{:04} {:02}:{:02}:{:02} GMT",
            time.month, time.day, time.year, time.hour, time.minute, time.second
        );
        Ok(())
    }

    /// `binary`/`image` and `ascii`.
    pub(super) async fn set_type(&mut self, transfer_type: TransferType) -> anyhow::Result<()> {
        self.client()?.set_type(transfer_type).await?;
        Ok(())
    }

    /// `type [ascii|binary|image]`.
    pub(super) async fn type_command(&mut self, args: &[String]) -> anyhow::Result<()> {
        match args {
            [] => {
                let name = match self.client()?.transfer_type() {
                    TransferType::Ascii => "ascii",
                    TransferType::Image => "binary",
                };
                println!("Using {name} mode to transfer files.");
                Ok(())
            }
            [kind] if kind == "ascii" => self.set_type(TransferType::Ascii).await,
            [kind] if kind == "binary" || kind == "image" => {
                self.set_type(TransferType::Image).await
            }
            [kind] => notice(format!("{kind}: unknown mode.")),
            _ => notice("usage: type [ascii | binary]"),
        }
    }

    /// `system`.
    pub(super) async fn system(&mut self) -> anyhow::Result<()> {
        let reply = self.client()?.system().await?;
        self.show_if_not_verbose(&reply);
        Ok(())
    }

    /// `features`.
    pub(super) async fn features(&mut self) -> anyhow::Result<()> {
        let reply = self.client()?.raw("FEAT").await?;
        self.show_if_not_verbose(&reply);
        Ok(())
    }

    /// `quote line...`: any command, its reply shown.
    pub(super) async fn quote(&mut self, args: &[String]) -> anyhow::Result<()> {
        if args.is_empty() {
            return notice("usage: quote line-to-send");
        }
        let reply = self.client()?.raw(&args.join(" ")).await?;
        self.show_if_not_verbose(&reply);
        self.remote_names_stale = true;
        Ok(())
    }

    /// `site arguments...`.
    pub(super) async fn site(&mut self, args: &[String]) -> anyhow::Result<()> {
        if args.is_empty() {
            return notice("usage: site line-to-send");
        }
        let reply = self.client()?.site(&args.join(" ")).await?;
        self.show_if_not_verbose(&reply);
        Ok(())
    }

    /// Commands whose whole point is the reply show it even when not verbose.
    fn show_if_not_verbose(&self, reply: &Reply) {
        if !self.printer.verbose() && reply.class() < 4 {
            self.printer.show_reply(reply);
        }
    }
}

async fn list_verb<W: tokio::io::AsyncWrite + Unpin>(
    client: &mut ferry_client::Client,
    verb: &str,
    path: Option<&str>,
    writer: &mut W,
) -> anyhow::Result<u64> {
    let count = match verb {
        "NLST" => client.nlst_into(path, writer).await?,
        "MLSD" => client.mlsd_into(path, writer).await?,
        _ => client.list_into(path, writer).await?,
    };
    Ok(count)
}
