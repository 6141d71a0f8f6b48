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

/// Appends the `ls -l` line of [`format_ls_line`] to `out`, without allocating for it. Written
/// byte by byte rather than with `write!`: a big listing is tens of thousands of these lines,
/// and `core::fmt`'s padding machinery was a sixth of such a listing's CPU time.
pub fn write_ls_line(out: &mut String, facts: &FileFacts, now: i64) {
    push_mode(out, facts.kind, facts.mode);
    out.push(' ');
    push_right(out, facts.links, 4);
    out.push(' ');
    push_left(out, &facts.owner, 8);
    out.push(' ');
    push_left(out, &facts.group, 8);
    out.push(' ');
    push_right(out, facts.size, 8);
    out.push(' ');
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
    let mut text = String::with_capacity(10);
    push_mode(&mut text, kind, mode);
    text
}

/// Appends the ten characters of [`mode_string`].
fn push_mode(out: &mut String, kind: FileKind, mode: u32) {
    out.push(match kind {
        FileKind::File => '-',
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
    });
    let specials = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (index, (special_bit, set, unset)) in specials.into_iter().enumerate() {
        let bits = mode >> (6 - 3 * index);
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (mode & special_bit != 0, bits & 1 != 0) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
}

/// `Nov 24 23:31` for recent files, `Jan  5  2024` for others.
pub fn ls_date(modified: i64, now: i64) -> String {
    let mut date = String::with_capacity(12);
    write_ls_date(&mut date, modified, now);
    date
}

fn write_ls_date(out: &mut String, modified: i64, now: i64) {
    let t = DateTime::from_unix(modified);
    out.push_str(MONTHS[(t.month - 1) as usize]);
    out.push(' ');
    push_right(out, u64::from(t.day), 2);
    out.push(' ');
    let recent = modified > now - RECENT_SECS && modified <= now + 3600;
    if recent {
        push_zeros(out, u64::from(t.hour), 2);
        out.push(':');
        push_zeros(out, u64::from(t.minute), 2);
    } else if t.year < 0 {
        // Not a date a file system gives; shown as it is, never in a panic.
        out.push_str(&format!("{:>5}", t.year));
    } else {
        push_right(out, t.year.unsigned_abs(), 5);
    }
}

/// The decimal digits of `value`, in a buffer that fits any `u64`; the digits are its tail.
fn digits(value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    let mut rest = value;
    loop {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buffer[start..]
}

/// `value` right-aligned in `width` columns (`{:>width}`).
fn push_right(out: &mut String, value: u64, width: usize) {
    let mut buffer = [0u8; 20];
    let text = digits(value, &mut buffer);
    push_repeated(out, ' ', width.saturating_sub(text.len()));
    push_ascii(out, text);
}

/// `value` with leading zeros to `width` digits (`{:0width}`).
pub(crate) fn push_zeros(out: &mut String, value: u64, width: usize) {
    let mut buffer = [0u8; 20];
    let text = digits(value, &mut buffer);
    push_repeated(out, '0', width.saturating_sub(text.len()));
    push_ascii(out, text);
}

/// Appends ASCII digits a character at a time: for a few bytes, cheaper than checking them as
/// UTF-8 and calling `memcpy`.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    for &byte in ascii {
        out.push(char::from(byte));
    }
}

/// `text` left-aligned in `width` columns (`{:<width}`; columns are characters, as `fmt` counts).
fn push_left(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    push_repeated(out, ' ', width.saturating_sub(text.chars().count()));
}

fn push_repeated(out: &mut String, fill: char, count: usize) {
    for _ in 0..count {
        out.push(fill);
    }
}

/// Formats one MLSx entry (RFC 3659 §7.2): `type=file;size=1715;modify=...; name`.
/// `enabled` names the facts to include (see OPTS MLST); unknown names are ignored. `perm` is
/// the value of the `perm` fact (RFC 3659 §7.5.5), which depends on who asks: the caller's.
pub fn format_mlsx_line(facts: &FileFacts, enabled: &[&str], perm: &str) -> String {
    let mut line = String::with_capacity(96 + facts.name.len());
    write_mlsx_line(&mut line, facts, enabled, perm);
    line
}

/// Appends the line of [`format_mlsx_line`] to `out`, without allocating for it (nor going
/// through `core::fmt`, as [`write_ls_line`]).
pub fn write_mlsx_line(out: &mut String, facts: &FileFacts, enabled: &[&str], perm: &str) {
    for fact in MLST_FACTS.iter().filter(|f| enabled.contains(f)) {
        out.push_str(fact);
        out.push('=');
        match *fact {
            "type" => out.push_str(mlsx_type(facts.kind)),
            "size" => push_zeros(out, facts.size, 1),
            "modify" => crate::time::write_time_val(out, facts.modified),
            "perm" => out.push_str(perm),
            _ => push_octal(out, facts.mode & 0o7777),
        }
        out.push(';');
    }
    out.push(' ');
    out.push_str(&facts.name);
}

/// The four octal digits of a `0o7777` mode, as `{:04o}` writes them: the special bits, then
/// owner, group and other.
fn push_octal(out: &mut String, mode: u32) {
    for shift in [9, 6, 3, 0] {
        out.push(char::from(b'0' + ((mode >> shift) & 7) as u8));
    }
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

    /// The hand-written padding agrees with `core::fmt`'s, which it replaces.
    #[test]
    fn padding_matches_fmt() {
        for value in [0, 7, 10, 99, 1715, 12_345_678, 123_456_789, u64::MAX] {
            let mut right = String::new();
            push_right(&mut right, value, 8);
            assert_eq!(right, format!("{value:>8}"));
            let mut zeros = String::new();
            push_zeros(&mut zeros, value, 4);
            assert_eq!(zeros, format!("{value:04}"));
        }
        for text in ["", "ftp", "12345678", "a-long-owner-name", "ünï"] {
            let mut left = String::new();
            push_left(&mut left, text, 8);
            assert_eq!(left, format!("{text:<8}"));
        }
        for mode in [0, 0o644, 0o7777, 0o1755] {
            let mut octal = String::new();
            push_octal(&mut octal, mode);
            assert_eq!(octal, format!("{mode:04o}"));
        }
        assert_eq!(
            ls_date(-62_000_000_000, NOW).len(),
            12,
            "a far past date, still 12 wide"
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
