//! Local-side helpers: which local names a download may create, partial-download names and
//! shell-style wildcards for mget/mput.

use std::path::{Path, PathBuf};

use crate::printer::{has_control, printable};

/// A local name a download refuses to create. Local names come from remote ones (`get NAME`,
/// `mget *`, `ferry get URL`), so a hostile server could otherwise plant a file whose name
/// carries terminal escape sequences, or one named `.` or `..`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}; not creating it (give a local name: get REMOTE LOCAL, or -o FILE)", printable(.path))]
pub struct UnsafeLocalName {
    pub path: String,
    pub reason: &'static str,
}

/// Checks the local path a download is about to create: no control character anywhere (see
/// [`has_control`]), and a last component that is a file name (not empty, `.` or `..`).
/// Remote names never reach a local path with a `/` of their own: `mget` uses the last
/// component of a match, and the library drops listing entries whose name holds a `/`.
pub fn check_local_name(path: &str) -> Result<(), UnsafeLocalName> {
    let reason = if has_control(path) {
        "the name contains a control character"
    } else if matches!(split_dir(path).1, "" | "." | "..") {
        "the name is not a file name"
    } else {
        return Ok(());
    };
    Err(UnsafeLocalName {
        path: path.to_string(),
        reason,
    })
}

/// Where a download is written until the server confirms it: `NAME.part`.
pub fn part_path(local: &Path) -> PathBuf {
    let mut name = local.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Where a download is written when `NAME.part` is taken (a mirror whose source has a file of
/// that name): `NAME.ferry-part`.
pub fn part_path_besides(local: &Path) -> PathBuf {
    let mut name = local.as_os_str().to_owned();
    name.push(".ferry-part");
    PathBuf::from(name)
}

/// Whether `text` contains wildcard characters.
pub fn has_wildcards(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Splits `dir/pattern` into the directory (if any) and the last component.
pub fn split_dir(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => (Some("/"), name),
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    }
}

/// Joins a directory from [`split_dir`] and a name again.
pub fn join_dir(dir: Option<&str>, name: &str) -> String {
    match dir {
        None => name.to_string(),
        Some("/") => format!("/{name}"),
        Some(dir) => format!("{dir}/{name}"),
    }
}

/// Shell wildcard matching: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`. A leading `.` must be matched
/// literally, as in the shell.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|skip| match_from(&pattern[1..], &name[skip..])),
        Some('?') => !name.is_empty() && match_from(&pattern[1..], &name[1..]),
        Some('[') => match (name.first(), class_end(pattern)) {
            (Some(&c), Some(end)) => {
                in_class(&pattern[1..end], c) && match_from(&pattern[end + 1..], &name[1..])
            }
            (Some(&c), None) => c == '[' && match_from(&pattern[1..], &name[1..]),
            (None, _) => false,
        },
        Some(&literal) => name.first() == Some(&literal) && match_from(&pattern[1..], &name[1..]),
    }
}

/// Index of the `]` closing a class that starts at index 0 (a `]` right after `[` or `[!`
/// is a member).
fn class_end(pattern: &[char]) -> Option<usize> {
    let start = if pattern.get(1) == Some(&'!') { 2 } else { 1 };
    (start + 1..pattern.len()).find(|&i| pattern[i] == ']')
}

fn in_class(class: &[char], c: char) -> bool {
    let (negated, class) = match class.split_first() {
        Some(('!', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut found = false;
    let mut index = 0;
    while index < class.len() {
        if index + 2 < class.len() && class[index + 1] == '-' {
            found |= (class[index]..=class[index + 2]).contains(&c);
            index += 3;
        } else {
            found |= class[index] == c;
            index += 1;
        }
    }
    found != negated
}

/// The regular files a local pattern names, sorted; a pattern without wildcards names itself.
pub fn expand_local(pattern: &str) -> Vec<String> {
    if !has_wildcards(pattern) {
        return vec![pattern.to_string()];
    }
    let (dir, name_pattern) = split_dir(pattern);
    let Ok(entries) = std::fs::read_dir(dir.unwrap_or(".")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| wildcard_match(name_pattern, name))
        .map(|name| join_dir(dir, &name))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.txt", "readme.txt"));
        assert!(!wildcard_match("*.txt", "readme.txt.gz"));
        assert!(wildcard_match("file?.[ch]", "file1.c"));
        assert!(!wildcard_match("file?.[ch]", "file1.o"));
        assert!(wildcard_match("[!a]*", "bcd"));
        assert!(!wildcard_match("[!a]*", "abc"));
        assert!(wildcard_match("[a-c]x", "bx"));
        assert!(!wildcard_match("*", ".hidden"));
        assert!(wildcard_match(".*", ".hidden"));
        assert!(wildcard_match("a[", "a["));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn local_names_from_the_server_are_checked() {
        for good in ["readme.txt", "dir/Grüße.txt", "/tmp/a b", ".hidden", "..x"] {
            assert!(check_local_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a\x1b]0;x\x07",
            "a\u{9b}b",
            "del\u{7f}",
            "tab\t",
            "x/\x1b/y",
        ] {
            let error = check_local_name(bad).unwrap_err();
            assert!(error.to_string().contains("control character"), "{error}");
            assert!(!has_control(&error.to_string()), "{error}");
        }
        for bad in ["", ".", "..", "dir/", "dir/.."] {
            assert!(check_local_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            part_path(Path::new("dir/readme.txt")),
            PathBuf::from("dir/readme.txt.part")
        );
        assert_eq!(split_dir("pub/*.txt"), (Some("pub"), "*.txt"));
        assert_eq!(split_dir("/x"), (Some("/"), "x"));
        assert_eq!(split_dir("x"), (None, "x"));
        assert_eq!(join_dir(Some("/"), "x"), "/x");
        assert_eq!(join_dir(Some("pub"), "x"), "pub/x");
    }

    #[test]
    fn expands_local_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.txt", "b.txt", "c.bin"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.txt")).unwrap();
        let pattern = format!("{}/*.txt", dir.path().display());
        let found = expand_local(&pattern);
        assert_eq!(found.len(), 2);
        assert!(found[0].ends_with("/a.txt") && found[1].ends_with("/b.txt"));
    }
}
