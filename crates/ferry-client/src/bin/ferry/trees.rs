//! The two sides of a mirror as trees of entries: a remote folder listed recursively (MLSD,
//! else LIST) and a local folder walked without following links. Names that must not become
//! local paths (control characters, `/`, `.`, `..`) are skipped with a warning.

use std::path::Path;

use anyhow::Context;
use ferry_client::mirror::{Entry, Filter, Kind, TimePrecision, Tree};
use ferry_client::{Client, EntryKind, FtpError};

use crate::copy::local_time;
use crate::printer::{has_control, printable};

/// At most this many directories are listed, this deep, on either side.
const MAX_DIRECTORIES: usize = 100_000;
const MAX_DEPTH: usize = 64;

/// A remote tree, and how many LIST lines in it could not be read as entries.
pub struct RemoteTree {
    /// `None`: the root is missing (only when it is the target, -R).
    pub tree: Option<Tree>,
    pub unread: usize,
}

/// Lists `root` recursively; a missing root is `None` when it is the target (-R).
pub async fn remote_tree(
    client: &mut Client,
    root: &str,
    filter: &Filter,
    is_target: bool,
) -> anyhow::Result<RemoteTree> {
    let mut unread = 0;
    let from_mlsd = client.features().await?.has("MLST");
    let now = crate::shell::now();
    let mut tree = Tree::new();
    let mut pending = vec![String::new()];
    let mut listed = 0;
    while let Some(dir) = pending.pop() {
        listed += 1;
        if listed > MAX_DIRECTORIES {
            anyhow::bail!(
                "{}: more than {MAX_DIRECTORIES} directories",
                printable(root)
            );
        }
        let path = join_remote(root, &dir);
        let entries = match client
            .entries_counted(
                Some(&path).filter(|p| !p.is_empty()).map(|p| p.as_str()),
                now,
            )
            .await
        {
            Ok((entries, lines)) => {
                if lines > 0 {
                    eprintln!(
                        "ferry: warning: {}: {lines} line(s) of the listing could not be read",
                        printable(&path)
                    );
                }
                unread += lines;
                entries
            }
            // A missing target root: 550 from most servers, 501 from pyftpdlib. It is made
            // with MKD before anything else; if the listing failed for another reason, that
            // MKD fails and says so.
            Err(FtpError::FileUnavailable { .. } | FtpError::Refused { .. })
                if is_target && dir.is_empty() =>
            {
                return Ok(RemoteTree { tree: None, unread })
            }
            Err(error) => return Err(error.into()),
        };
        for remote in entries {
            let Some(rel) = child_path(&dir, &remote.name) else {
                continue;
            };
            let entry = match remote.kind {
                EntryKind::File => Entry {
                    path: rel.clone(),
                    kind: Kind::File,
                    size: remote.size,
                    modified: remote.modified,
                    precision: match from_mlsd {
                        true => TimePrecision::Second,
                        false => remote
                            .modified
                            .map_or(TimePrecision::Second, TimePrecision::of_list_time),
                    },
                },
                EntryKind::Directory => Entry::dir(&rel),
                _ => continue,
            };
            if entry.kind == Kind::Dir && filter.allows(&rel, Kind::Dir) && depth(&rel) < MAX_DEPTH
            {
                pending.push(rel.clone());
            }
            tree.insert(rel, entry);
        }
    }
    Ok(RemoteTree {
        tree: Some(tree),
        unread,
    })
}

/// `dir/name`, or `None` (with a warning) for a name that must not become a local path.
fn child_path(dir: &str, name: &str) -> Option<String> {
    if has_control(name)
        || name.contains('/')
        || name.contains('\\')
        || matches!(name, "" | "." | "..")
    {
        eprintln!(
            "ferry: warning: skipping the entry {:?} (not a safe file name)",
            printable(name)
        );
        return None;
    }
    Some(match dir.is_empty() {
        true => name.to_string(),
        false => format!("{dir}/{name}"),
    })
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// A remote path under `root`.
pub fn join_remote(root: &str, rel: &str) -> String {
    match (root.trim_end_matches('/'), rel) {
        (root, "") => root.to_string(),
        ("", rel) if root.starts_with('/') => format!("/{rel}"),
        ("", rel) => rel.to_string(),
        (root, rel) => format!("{root}/{rel}"),
    }
}

/// Lists a local folder recursively (links are not followed and not mirrored).
pub fn local_tree(root: &Path, filter: &Filter) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        if tree.len() > MAX_DIRECTORIES * 10 {
            anyhow::bail!("{}: too many entries", root.display());
        }
        let folder = root.join(&dir);
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("{}: cannot list", folder.display()))?;
        for item in entries {
            let item = item.with_context(|| format!("{}: cannot list", folder.display()))?;
            let Ok(name) = item.file_name().into_string() else {
                eprintln!(
                    "ferry: warning: skipping a name that is not UTF-8 in {}",
                    folder.display()
                );
                continue;
            };
            let Some(rel) = child_path(&dir, &name) else {
                continue;
            };
            let file_type = item
                .file_type()
                .with_context(|| format!("{}: cannot stat", item.path().display()))?;
            if file_type.is_dir() {
                if filter.allows(&rel, Kind::Dir) && depth(&rel) < MAX_DEPTH {
                    pending.push(rel.clone());
                }
                tree.insert(rel.clone(), Entry::dir(&rel));
            } else if file_type.is_file() {
                let size = item.metadata().map(|m| m.len()).unwrap_or(0);
                tree.insert(
                    rel.clone(),
                    Entry::file(&rel, size, local_time(&item.path())),
                );
            }
        }
    }
    Ok(tree)
}
