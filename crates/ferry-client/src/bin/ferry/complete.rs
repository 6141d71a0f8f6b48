//! TAB completion for the line editor: command names, local paths for local commands, and
//! remote names (from the listing of the current remote directory the shell keeps fresh).

use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::commands::{lookup, Verb, COMMANDS};

/// The rustyline helper of the `ftp>` prompt.
pub struct FerryHelper {
    remote_names: Arc<Mutex<Vec<String>>>,
}

impl FerryHelper {
    pub fn new(remote_names: Arc<Mutex<Vec<String>>>) -> Self {
        FerryHelper { remote_names }
    }

    fn remote(&self, word: &str) -> Vec<String> {
        let names = self
            .remote_names
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default();
        names.into_iter().filter(|n| n.starts_with(word)).collect()
    }
}

/// Whether a command's arguments are local paths.
fn takes_local_paths(verb: Verb) -> bool {
    matches!(
        verb,
        Verb::Lcd | Verb::Put | Verb::Mput | Verb::Append | Verb::Shell
    )
}

fn complete_command(word: &str) -> Vec<String> {
    COMMANDS
        .iter()
        .map(|(name, _, _)| name.to_string())
        .filter(|name| name.starts_with(word))
        .collect()
}

/// Local names completing `word`, directories with a trailing `/`.
fn complete_local(word: &str) -> Vec<String> {
    let (dir, prefix) = match word.rsplit_once('/') {
        Some((dir, prefix)) => (format!("{dir}/"), prefix),
        None => (String::new(), word),
    };
    let read_from = if dir.is_empty() { "." } else { dir.as_str() };
    let Ok(entries) = std::fs::read_dir(read_from) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let slash = if entry.path().is_dir() { "/" } else { "" };
            name.starts_with(prefix)
                .then(|| format!("{dir}{name}{slash}"))
        })
        .collect();
    names.sort();
    names
}

impl Completer for FerryHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |space| space + 1);
        let word = &before[start..];
        let candidates = if start == 0 {
            complete_command(word)
        } else {
            let command = before.split_whitespace().next().unwrap_or_default();
            match lookup(command) {
                Ok(verb) if takes_local_paths(verb) => complete_local(word),
                _ => self.remote(word),
            }
        };
        let pairs = candidates
            .into_iter()
            .map(|name| Pair {
                display: name.clone(),
                replacement: name,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for FerryHelper {
    type Hint = String;
}

impl Highlighter for FerryHelper {}

impl Validator for FerryHelper {}

impl Helper for FerryHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_complete_by_prefix() {
        assert_eq!(complete_command("mg"), vec!["mget"]);
        assert!(complete_command("c").contains(&"cdup".to_string()));
    }

    #[test]
    fn local_paths_complete_with_slashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("same.txt"), b"").unwrap();
        let prefix = format!("{}/s", dir.path().display());
        let found = complete_local(&prefix);
        assert_eq!(found.len(), 2);
        assert!(found[0].ends_with("/same.txt") && found[1].ends_with("/sub/"));
    }
}
