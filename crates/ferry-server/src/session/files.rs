//! File and folder commands over the control connection: DELE, RMD, MKD, RNFR, RNTO
//! (RFC 959 §4.1.3), SIZE, MDTM (RFC 3659 §3-4), SITE (CHMOD, HELP).

use ferry_proto::command::TransferType;
use ferry_proto::time::format_time_val;
use ferry_proto::Reply;

use super::navigate::quote_path;
use super::{Flow, Session};
use crate::permissions::Permission;
use crate::storage::{FileKind, VirtualPath};

/// Largest file whose TYPE A size SIZE computes by reading it; larger ones are refused.
const ASCII_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

impl Session {
    /// DELE: remove a file.
    pub(super) async fn dele(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        let quota = self.quota_for(&path);
        let counted = quota.is_some();
        let removed = self.with_storage(move |s| {
            // With a quota, the size is taken first, to give back what the file used.
            let size = counted.then(|| counted_size(s, &path)).flatten();
            s.remove_file(&path).map(|()| size)
        });
        match removed.await {
            Ok(size) => {
                if let (Some(usage), Some(size)) = (quota, size) {
                    usage.adjust(-(size as i64), -1);
                }
                self.reply(250, "DELE command successful.").await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// RMD (and XRMD): remove an empty folder.
    pub(super) async fn rmd(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        match self.with_storage(move |s| s.remove_dir(&path)).await {
            Ok(()) => self.reply(250, "RMD command successful.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// MKD (and XMKD): 257 with the new folder's quoted name.
    pub(super) async fn mkd(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        let created = path.clone();
        match self
            .with_storage_quick(move |s| s.create_dir(&created))
            .await
        {
            Ok(()) => {
                self.reply(257, format!("{} created", quote_path(path.as_str())))
                    .await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// MFMT (draft-somers-ftp-mfxx): sets the modification time; `213 Modify=<time>; <path>`.
    pub(super) async fn mfmt(&mut self, unix_secs: i64, arg: &str) -> Flow {
        let path = self.resolve(arg);
        match self
            .with_storage_quick(move |s| s.set_modified(&path, unix_secs))
            .await
        {
            Ok(()) => {
                let name = arg.replace(['\r', '\n'], " ");
                self.reply(
                    213,
                    format!("Modify={}; {name}", format_time_val(unix_secs)),
                )
                .await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// AVBL (draft-peterson-streamlined-ftp-command-extensions §5): the bytes a user may still
    /// upload at a folder: the free space there, or what the quota leaves if that is less.
    pub(super) async fn avbl(&mut self, arg: Option<&str>) -> Flow {
        let path = self.resolve(arg.unwrap_or("."));
        // Those who may upload to a folder they cannot list (a drop box) may ask too.
        if !self.permitted(Permission::List, &path).await
            && !self.permitted(Permission::Upload, &path).await
        {
            return self.reply(550, "Permission denied.").await;
        }
        let probe = path.clone();
        let free = match self.with_storage(move |s| s.available_space(&probe)).await {
            Ok(free) => free,
            Err(error) => return self.reply_storage_error(&error).await,
        };
        let quota = self.quota_for(&path).and_then(|usage| usage.bytes_left());
        match (free, quota) {
            (Some(free), Some(left)) => self.reply(213, free.min(left).to_string()).await,
            (Some(bytes), None) | (None, Some(bytes)) => self.reply(213, bytes.to_string()).await,
            (None, None) => {
                self.reply(550, "The space available is not known here.")
                    .await
            }
        }
    }

    /// RNFR: remembers an existing path for RNTO.
    pub(super) async fn rnfr(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        let probe = path.clone();
        match self.with_storage_quick(move |s| s.metadata(&probe)).await {
            Ok(_) => {
                self.rename_from = Some(Box::new(path));
                self.reply(350, "Ready for RNTO.").await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// RNTO: renames what RNFR named.
    pub(super) async fn rnto(&mut self, arg: &str) -> Flow {
        let Some(from) = self.rename_from.take().map(|from| *from) else {
            return self.reply(503, "RNFR required first.").await;
        };
        let to = self.resolve(arg);
        if !self.move_keeps_rules(&from, &to).await {
            return self
                .reply(
                    550,
                    "Permission denied: the move would change what rules apply.",
                )
                .await;
        }
        // Without Overwrite, the rename happens only if the name is free, in one step.
        let replace = self.permitted(Permission::Overwrite, &to).await;
        let quota = self.quota_for(&to);
        let counted = quota.is_some() && replace;
        let renamed = self.with_storage_quick(move |s| {
            // A file replaced by the rename no longer counts against the quota.
            let replaced = counted.then(|| counted_size(s, &to)).flatten();
            match replace {
                true => s.rename(&from, &to),
                false => s.rename_new(&from, &to),
            }
            .map(|()| replaced)
        });
        match renamed.await {
            Ok(replaced) => {
                if let (Some(usage), Some(size)) = (quota, replaced) {
                    usage.adjust(-(size as i64), -1);
                }
                self.reply(250, "Rename successful.").await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// SIZE (RFC 3659 §4): the size the file would have on the wire in the current TYPE.
    pub(super) async fn size(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        let ascii = self.transfer_type == TransferType::Ascii;
        let result = self
            .with_storage(move |s| {
                let facts = s.metadata(&path)?;
                if facts.kind != FileKind::File {
                    return Ok(None);
                }
                if !ascii {
                    return Ok(Some(facts.size));
                }
                if facts.size > ASCII_SIZE_LIMIT {
                    return Ok(None);
                }
                ascii_size(s.open_read(&path, 0)?.0)
                    .map(Some)
                    .map_err(|e| crate::storage::StorageError::from_io(&path, e))
            })
            .await;
        match result {
            Ok(Some(size)) => self.reply(213, size.to_string()).await,
            Ok(None) if ascii => {
                self.reply(550, "SIZE not available in ASCII mode for this file.")
                    .await
            }
            Ok(None) => self.reply(550, "Not a plain file.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// MDTM (RFC 3659 §3): modification time, `YYYYMMDDHHMMSS` UTC.
    pub(super) async fn mdtm(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        match self.with_storage_quick(move |s| s.metadata(&path)).await {
            Ok(facts) if facts.kind == FileKind::File => {
                self.reply(213, format_time_val(facts.modified)).await
            }
            Ok(_) => self.reply(550, "Not a plain file.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// Whether moving `from` to `to` keeps the account's folder rules, both as the paths are
    /// named and where they really lead (see `AccessPolicy::may_move`).
    async fn move_keeps_rules(&self, from: &VirtualPath, to: &VirtualPath) -> bool {
        let Some(policy) = self.account().map(|a| &a.policy) else {
            return false;
        };
        if !policy.has_folder_rules() {
            return true;
        }
        let (real_from, real_to) = (self.real_path(from).await, self.real_path(to).await);
        policy.may_move(from, to) && policy.may_move(&real_from, &real_to)
    }

    /// Whether something exists at `path` (symlinks followed).
    pub(super) async fn exists(&self, path: &VirtualPath) -> bool {
        let path = path.clone();
        self.with_storage_quick(move |s| s.metadata(&path))
            .await
            .is_ok()
    }

    /// SITE (RFC 959 §4.1.3): HELP and CHMOD.
    pub(super) async fn site(&mut self, arg: &str) -> Flow {
        let (sub, rest) = arg.trim().split_once(' ').unwrap_or((arg.trim(), ""));
        match sub.to_ascii_uppercase().as_str() {
            "HELP" => {
                let lines = vec![
                    "SITE commands:".to_string(),
                    " CHMOD HELP QUOTA".to_string(),
                    "End.".to_string(),
                ];
                self.send(Reply::multi(214, lines)).await
            }
            "CHMOD" => self.chmod(rest).await,
            "QUOTA" => self.site_quota().await,
            _ => self.reply(500, "Unknown SITE command.").await,
        }
    }

    /// SITE CHMOD <octal mode> <path>.
    async fn chmod(&mut self, arg: &str) -> Flow {
        if self.storage().is_some_and(|s| !s.has_modes()) {
            return self
                .reply(
                    502,
                    "SITE CHMOD is not available: this storage has no permission bits.",
                )
                .await;
        }
        let Some((mode, path)) = arg.trim().split_once(' ') else {
            return self.reply(501, "SITE CHMOD needs a mode and a path.").await;
        };
        let Ok(mode) = u32::from_str_radix(mode, 8) else {
            return self
                .reply(501, "SITE CHMOD: the mode must be octal, like 644.")
                .await;
        };
        if mode > 0o7777 {
            return self
                .reply(501, "SITE CHMOD: the mode must be octal, like 644.")
                .await;
        }
        if mode & 0o6000 != 0 {
            return self
                .reply(550, "SITE CHMOD: setuid and setgid bits are not allowed.")
                .await;
        }
        let path = self.resolve(path);
        if crate::storage::uploads::is_private(&path) {
            return self.reply(550, "No such file or directory.").await;
        }
        if path.is_root() || !self.permitted(Permission::Chmod, &path).await {
            return self.reply(550, "Permission denied.").await;
        }
        match self
            .with_storage_quick(move |s| s.set_mode(&path, mode))
            .await
        {
            Ok(()) => self.reply(200, "SITE CHMOD command ok.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }
}

/// The TYPE A size of a file: its bytes plus one CR for every LF.
fn ascii_size(body: crate::storage::ReadBody) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file: Box<dyn Read> = match body {
        crate::storage::ReadBody::File(file) => Box::new(file),
        crate::storage::ReadBody::Stream(stream) => stream,
    };
    let mut buffer = vec![0; 64 * 1024];
    let (mut total, mut newlines) = (0u64, 0u64);
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(ferry_proto::ascii::ascii_wire_size(total, newlines));
        }
        total += read as u64;
        newlines += ferry_proto::ascii::count_newlines(&buffer[..read]);
    }
}

impl Session {
    /// SITE QUOTA: the account's usage and limits.
    async fn site_quota(&mut self) -> Flow {
        let Some(account) = self.account() else {
            return self.reply(530, "Please login with USER and PASS.").await;
        };
        match &account.quota {
            Some(usage) => {
                let lines = usage.report(&account.name);
                self.send(Reply::multi(200, lines)).await
            }
            None => self.reply(200, "No quota for this account.").await,
        }
    }
}

/// The size a quota counted for the regular file at `path`: a symlink (which leads elsewhere,
/// and which the count does not follow) counts nothing.
fn counted_size(storage: &dyn crate::storage::Storage, path: &VirtualPath) -> Option<u64> {
    let real = storage.real_path(path);
    if real != storage.real_path(&path.parent()).join(path.file_name()) {
        return None;
    }
    let facts = storage.metadata(path).ok()?;
    (facts.kind == FileKind::File).then_some(facts.size)
}
