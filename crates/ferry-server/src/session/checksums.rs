//! Checksums: HASH and OPTS HASH (draft-bryan-ftpext-hash-02), RANG for HASH
//! (draft-bryan-ftp-range), and the legacy XCRC, XMD5, XSHA1, XSHA256 and XSHA512 (as ProFTPD's
//! mod_digest answers them).
//!
//! A checksum reads the file on the blocking pool, under the server's limit of hashes at once
//! (`checksums.max_running`, 450 beyond it) and a size cap (`checksums.max_size`, 556 beyond it).

use ferry_proto::command::HashAlgorithm;

use super::{Flow, Session};
use crate::storage::{FileKind, StorageErrorKind};

/// Which reply a computed checksum gets.
enum Style {
    /// `213 <algorithm> <start>-<end> <hex> <path>`, the end inclusive.
    Hash,
    /// `213 <hex>`.
    Legacy,
}

impl Session {
    /// HASH: the selected algorithm's digest of the file, or of the range RANG set.
    pub(super) async fn hash(&mut self, arg: &str) -> Flow {
        let range = self.hash_range.take().map(|range| *range);
        let algorithm = self.hash_algorithm;
        self.checksum(
            arg,
            algorithm,
            range.map(|(start, end)| (start, Some(end.saturating_add(1)))),
            Style::Hash,
        )
        .await
    }

    /// XCRC, XMD5, XSHA1, XSHA256, XSHA512: `path [start [end]]`, the end exclusive.
    pub(super) async fn legacy_checksum(
        &mut self,
        algorithm: HashAlgorithm,
        arg: &str,
        start: Option<u64>,
        end: Option<u64>,
    ) -> Flow {
        let range = start.map(|start| (start, end));
        self.checksum(arg, algorithm, range, Style::Legacy).await
    }

    /// RANG (for HASH): remembers an inclusive range for the next HASH; `RANG 1 0` forgets it.
    pub(super) async fn rang(&mut self, start: u64, end: u64) -> Flow {
        if (start, end) == (1, 0) {
            self.hash_range = None;
            return self
                .reply(350, "Restarting at 0. End byte range reset.")
                .await;
        }
        self.hash_range = Some(Box::new((start, end)));
        self.reply(
            350,
            format!("Restarting at {start}. End byte range at {end}."),
        )
        .await
    }

    /// OPTS HASH: shows or selects the algorithm of HASH.
    pub(super) async fn opts_hash(&mut self, value: Option<&str>) -> Flow {
        if !self.context.config.checksums.enabled {
            return self.reply(501, "Option HASH not understood.").await;
        }
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => self.reply(200, self.hash_algorithm.name()).await,
            Some(name) => match HashAlgorithm::from_name(name) {
                Some(algorithm) => {
                    self.hash_algorithm = algorithm;
                    self.reply(200, algorithm.name()).await
                }
                None => {
                    self.reply(501, "Unknown algorithm, current selection not changed.")
                        .await
                }
            },
        }
    }

    /// FEAT's lines for the checksum commands, when they are on.
    pub(super) fn checksum_features(&self) -> Vec<String> {
        if !self.context.config.checksums.enabled {
            return Vec::new();
        }
        let names: Vec<String> = HashAlgorithm::ALL
            .iter()
            .map(|&a| {
                let star = if a == self.hash_algorithm { "*" } else { "" };
                format!("{}{star}", a.name())
            })
            .collect();
        let mut lines = vec![format!("HASH {}", names.join(";"))];
        lines.extend(
            HashAlgorithm::ALL
                .iter()
                .map(|a| a.legacy_verb().to_string()),
        );
        lines
    }

    /// Checks, limits and computes a checksum of `arg` over `range` (start, exclusive end; the
    /// whole file when `None`, to its end when the end is `None`), and replies.
    async fn checksum(
        &mut self,
        arg: &str,
        algorithm: HashAlgorithm,
        range: Option<(u64, Option<u64>)>,
        style: Style,
    ) -> Flow {
        let settings = &self.context.config.checksums;
        if !settings.enabled {
            return self.reply(502, "Checksums are turned off.").await;
        }
        if self.account().is_some_and(|a| a.anonymous) && !settings.anonymous {
            return self
                .reply(552, "Checksums are not available to anonymous users.")
                .await;
        }
        let max_size = settings.max_size;
        let path = self.resolve(arg);
        let probe = path.clone();
        let facts = match self.with_storage_quick(move |s| s.metadata(&probe)).await {
            Ok(facts) => facts,
            Err(error) => return self.reply_storage_error(&error).await,
        };
        if facts.kind == FileKind::Directory {
            return self
                .reply(553, "The hash of a folder is not defined.")
                .await;
        }
        let size = facts.size;
        let (start, end) = match range {
            None => (0, size),
            Some((start, end)) => (start, end.unwrap_or(size).min(size)),
        };
        if start > end || (start == end && start != 0 && start >= size) {
            return self
                .reply(501, format!("Range {start}-{end} is outside the file."))
                .await;
        }
        let len = end - start;
        if len > max_size {
            return self
                .reply(
                    556,
                    format!("Checksums are limited to {max_size} bytes; this range has {len}."),
                )
                .await;
        }
        let Ok(permit) = std::sync::Arc::clone(&self.context.hashing).try_acquire_owned() else {
            return self
                .reply(450, "Busy computing other checksums; try again later.")
                .await;
        };
        let target = path.clone();
        let computed = self
            .with_storage(move |s| {
                let _permit = permit;
                let (body, _) = s.open_read(&target, start)?;
                crate::checksum::digest_range(algorithm, body, start, len)
                    .map_err(|e| crate::storage::StorageError::from_io(&target, e))
            })
            .await;
        match computed {
            Ok(hex) => match style {
                Style::Hash => {
                    let last = end.saturating_sub(1).max(start);
                    let name = arg.replace(['\r', '\n'], " ");
                    self.reply(
                        213,
                        format!("{} {start}-{last} {hex} {name}", algorithm.name()),
                    )
                    .await
                }
                Style::Legacy => self.reply(213, hex).await,
            },
            Err(error) if error.kind == StorageErrorKind::Other => {
                self.reply(451, "Could not read the whole range; try again.")
                    .await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }
}
