//! Directory listings as the server sends them: `ls -l` lines for LIST, bare names for NLST, and
//! MLSx fact lines (RFC 3659 §7) for MLSD and MLST.

use crate::time::{DateTime, MONTHS};

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// Everything a listing line says about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Seconds since the epoch, UTC.
    pub modified: i64,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    pub links: u64,
    pub owner: String,
    pub group: String,
    /// For a symlink, where it points.
    pub link_target: Option<String>,
}

/// Six months, the age past which `ls -l` shows the year instead of the time.
const RECENT_SECS: i64 = 182 * 86_400;

/// The MLSx facts Ferry supports, in the order FEAT lists them.
pub const MLST_FACTS: [&str; 5] = ["type", "size", "modify", "perm", "unix.mode"];

/// Formats one `ls -l` line in the shape vsftpd prints (no CRLF):
/// `-rw-r--r--    1 1000     1000         1715 Nov 24 23:31 readme.txt`.
pub fn format_ls_line(facts: &FileFacts, now: i64) -> String {
    let mut line = String::with_capacity(64 + facts.name.len());
    write_ls_line(&mut line, facts, now);
    line
}

/// Appends the `ls -l` line of [`format_ls_line`] to `out`, without allocating for it.
pub fn write_ls_line(out: &mut String, facts: &FileFacts, now: i64) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{} {:>4} {:<8} {:<8} {:>8} ",
        mode_string(facts.kind, facts.mode),
        facts.links,
        facts.owner,
        facts.group,
        facts.size,
    );
    write_ls_date(out, facts.modified, now);
    out.push(' ');
    out.push_str(&facts.name);
    if let (FileKind::Symlink, Some(target)) = (facts.kind, &facts.link_target) {
        out.push_str(" -> ");
        out.push_str(target);
    }
}

/// `drwxr-xr-x`, with setuid/setgid/sticky shown as `s`/`S`/`t`/`T`.
pub fn mode_string(kind: FileKind, mode: u32) -> String {
    let type_char = match kind {
        FileKind::File => '-',
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
    };
    let mut text = String::with_capacity(10);
    text.push(type_char);
    let specials = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (index, (special_bit, set, unset)) in specials.into_iter().enumerate() {
        let bits = mode >> (6 - 3 * index);
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(match (mode & special_bit != 0, bits & 1 != 0) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

/// `Nov 24 23:31` for recent files, `Jan  5  2024` for others.
pub fn ls_date(modified: i64, now: i64) -> String {
    let mut date = String::with_capacity(12);
    write_ls_date(&mut date, modified, now);
    date
}

fn write_ls_date(out: &mut String, modified: i64, now: i64) {
    use std::fmt::Write;
    let t = DateTime::from_unix(modified);
    let month = MONTHS[(t.month - 1) as usize];
    let recent = modified > now - RECENT_SECS && modified <= now + 3600;
    let _ = if recent {
        write!(out, "{month} {:>2} {:02}:{:02}", t.day, t.hour, t.minute)
    } else {
        write!(out, "{month} {:>2} {:>5}", t.day, t.year)
    };
}

/// Formats one MLSx entry (RFC 3659 §7.2): `type=file;size=1715;modify=...; name`.
/// `enabled` names the facts to include (see OPTS MLST); unknown names are ignored. `perm` is
/// the value of the `perm` fact (RFC 3659 §7.5.5), which depends on who asks: the caller's.
pub fn format_mlsx_line(facts: &FileFacts, enabled: &[&str], perm: &str) -> String {
    let mut line = String::with_capacity(96 + facts.name.len());
    write_mlsx_line(&mut line, facts, enabled, perm);
    line
}

/// Appends the line of [`format_mlsx_line`] to `out`, without allocating for it.
pub fn write_mlsx_line(out: &mut String, facts: &FileFacts, enabled: &[&str], perm: &str) {
    use std::fmt::Write;
    for fact in MLST_FACTS.iter().filter(|f| enabled.contains(f)) {
        out.push_str(fact);
        out.push('=');
        let _ = match *fact {
            "type" => write!(out, "{}", mlsx_type(facts.kind)),
            "size" => write!(out, "{}", facts.size),
            "modify" => write!(out, "{}", crate::time::format_time_val(facts.modified)),
            "perm" => write!(out, "{perm}"),
            _ => write!(out, "{:04o}", facts.mode & 0o7777),
        };
        out.push(';');
    }
    out.push(' ');
    out.push_str(&facts.name);
}

fn mlsx_type(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Directory => "dir",
        FileKind::Symlink => "OS.unix=symlink",
        FileKind::Other => "OS.unix=special",
    }
}

/// Parses the argument of `OPTS MLST fact;fact;...;` into the supported facts it names
/// (case-insensitive, unknown facts dropped), RFC 3659 §7.9.
pub fn select_mlst_facts(arg: &str) -> Vec<&'static str> {
    let wanted: Vec<String> = arg
        .split(';')
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    MLST_FACTS
        .into_iter()
        .filter(|f| wanted.iter().any(|w| w == f))
        .collect()
}

/// The FEAT line for MLST: supported facts, the enabled ones marked with `*`.
pub fn feat_mlst_line(enabled: &[&str]) -> String {
    let mut line = String::from("MLST ");
    for fact in MLST_FACTS {
        line.push_str(fact);
        if enabled.contains(&fact) {
            line.push('*');
        }
        line.push(';');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_563_060; // 2026-11-24 23:31:00 UTC

    fn readme() -> FileFacts {
        FileFacts {
            name: "readme.txt".into(),
            kind: FileKind::File,
            size: 1715,
            modified: NOW,
            mode: 0o644,
            links: 1,
            owner: "1000".into(),
            group: "1000".into(),
            link_target: None,
        }
    }

    #[test]
    fn ls_line_has_vsftpd_shape() {
        assert_eq!(
            format_ls_line(&readme(), NOW),
            "-rw-r--r--    1 1000     1000         1715 Nov 24 23:31 readme.txt"
        );
    }

    #[test]
    fn old_files_show_the_year() {
        let mut dir = readme();
        dir.kind = FileKind::Directory;
        dir.mode = 0o755;
        dir.name = "pub dir".into();
        dir.modified = 1_704_412_800; // 2024-01-05
        assert_eq!(
            format_ls_line(&dir, NOW),
            "drwxr-xr-x    1 1000     1000         1715 Jan  5  2024 pub dir"
        );
    }

    #[test]
    fn symlinks_show_their_target() {
        let mut link = readme();
        link.kind = FileKind::Symlink;
        link.mode = 0o777;
        link.link_target = Some("readme.txt".into());
        link.name = "latest".into();
        assert!(format_ls_line(&link, NOW).ends_with("latest -> readme.txt"));
        assert!(format_ls_line(&link, NOW).starts_with("lrwxrwxrwx"));
    }

    #[test]
    fn special_mode_bits() {
        assert_eq!(mode_string(FileKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileKind::Directory, 0o1776), "drwxrwxrwT");
        assert_eq!(mode_string(FileKind::File, 0o2640), "-rw-r-S---");
    }

    #[test]
    fn mlsx_line_with_all_and_some_facts() {
        assert_eq!(
            format_mlsx_line(&readme(), &MLST_FACTS, "r"),
            "type=file;size=1715;modify=20261124233100;perm=r;unix.mode=0644; readme.txt"
        );
        assert_eq!(
            format_mlsx_line(&readme(), &["size", "type"], "adfrw"),
            "type=file;size=1715; readme.txt"
        );
    }

    #[test]
    fn opts_mlst_selects_known_facts() {
        assert_eq!(select_mlst_facts("Size;TYPE;bogus;"), vec!["type", "size"]);
        assert!(select_mlst_facts("").is_empty());
        assert_eq!(
            feat_mlst_line(&["type", "size"]),
            "MLST type*;size*;modify;perm;unix.mode;"
        );
    }
}
