//! Client-side parsers for the directory listings FTP servers send: `LIST` lines (Unix `ls -l`,
//! DOS/IIS, EPLF) and `MLSD`/`MLST` entry lines (RFC 3659 §7).
//!
//! Everything here is sans-IO: callers pass in text already read from a data connection (or the
//! control connection, for `MLST`), plus "now" where a Unix `ls -l` date leaves the year out.
//! Times are seconds since the Unix epoch. `MLSx` and EPLF times are UTC by definition; Unix and
//! DOS listings print the server's local time with no zone, and these parsers read it as UTC.
//!
//! No parser panics on any input: text that is not an entry gives `None`. Names are returned as
//! the server sent them, including `.` and `..` when a server lists those; callers filter them.

use crate::time::{days_from_civil, parse_time_val, DateTime, MONTHS};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Bound applied to "now" (about 34,000 years either side of 1970) so date arithmetic cannot
/// overflow whatever clock value a caller passes.
const NOW_LIMIT: i64 = 1 << 40;

/// What kind of file system object a listing entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory (for `MLSx`, also the `cdir` and `pdir` entries).
    Directory,
    /// A symbolic link, with its target when the listing shows it.
    Symlink { target: Option<String> },
    /// Anything else: devices, pipes, sockets, unknown types.
    Other,
}

/// One entry of a remote directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The entry's name, exactly as listed (never empty).
    pub name: String,
    /// What kind of object the entry is.
    pub kind: EntryKind,
    /// Size in bytes, when the listing tells it.
    pub size: Option<u64>,
    /// seconds since the Unix epoch, UTC, when the listing tells it
    pub modified: Option<i64>,
    /// Unix permission bits (e.g. 0o644) when the listing tells them (ls -l mode string, or
    /// MLSx unix.mode)
    pub mode: Option<u32>,
}

impl RemoteEntry {
    /// An entry with only a name and a kind known.
    fn new(name: &str, kind: EntryKind) -> Self {
        RemoteEntry {
            name: name.to_owned(),
            kind,
            size: None,
            modified: None,
            mode: None,
        }
    }
}

/// Parses one line of a LIST reply in any format this module knows (Unix ls -l, DOS/IIS, EPLF),
/// trying each; None for lines that are not entries ("total 12", blank, garbage).
///
/// `now` (seconds since the Unix epoch) decides the year of Unix `Mon DD HH:MM` dates, as
/// [`parse_unix_line`] describes.
pub fn parse_list_line(line: &str, now: i64) -> Option<RemoteEntry> {
    parse_eplf_line(line)
        .or_else(|| parse_unix_line(line, now))
        .or_else(|| parse_dos_line(line))
}

/// Parses a whole LIST body (CRLF or LF separated), skipping non-entry lines.
pub fn parse_list(body: &str, now: i64) -> Vec<RemoteEntry> {
    parse_list_counted(body, now).0
}

/// [`parse_list`], and how many lines looked like entries but could not be read (not blank,
/// not `total N`): a listing with such lines may lack entries it has.
pub fn parse_list_counted(body: &str, now: i64) -> (Vec<RemoteEntry>, usize) {
    let mut unread = 0;
    let entries = body
        .lines()
        .filter_map(|line| {
            let entry = parse_list_line(line, now);
            let blank = line.trim().is_empty();
            let total = line
                .get(..6)
                .is_some_and(|start| start.eq_ignore_ascii_case("total "));
            if entry.is_none() && !blank && !total {
                unread += 1;
            }
            entry
        })
        .collect();
    (entries, unread)
}

/// Parses a whole MLSD body (CRLF or LF separated), skipping lines that are not entries, and
/// the `cdir` and `pdir` lines, which name the folder listed and its parent, not entries of it
/// (RFC 3659 §7.5.1: `MLSD media-types` may give `type=cdir; media-types`).
pub fn parse_mlsd(body: &str) -> Vec<RemoteEntry> {
    body.lines()
        .filter(|line| !names_the_listing(line))
        .filter_map(parse_mlsx_line)
        .collect()
}

/// Whether an MLSx line's `type` fact is `cdir` or `pdir`.
fn names_the_listing(line: &str) -> bool {
    let facts = line
        .trim_start()
        .split_once("; ")
        .map_or("", |(facts, _)| facts);
    facts.split(';').any(|fact| {
        fact.split_once('=').is_some_and(|(key, value)| {
            key.eq_ignore_ascii_case("type")
                && (value.eq_ignore_ascii_case("cdir") || value.eq_ignore_ascii_case("pdir"))
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// A blank-separated field of a line, with its byte offset in the line.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    start: usize,
    text: &'a str,
}

impl Field<'_> {
    /// Byte offset just past the field.
    fn end(&self) -> usize {
        self.start + self.text.len()
    }
}

/// Splits `line` at runs of spaces and tabs, remembering where each field starts so the rest of
/// the line (a name that may hold spaces) can be taken verbatim.
fn fields(line: &str) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in line.char_indices() {
        match (is_blank(c), start) {
            (true, Some(from)) => {
                out.push(Field {
                    start: from,
                    text: &line[from..at],
                });
                start = None;
            }
            (false, None) => start = Some(at),
            _ => {}
        }
    }
    if let Some(from) = start {
        out.push(Field {
            start: from,
            text: &line[from..],
        });
    }
    out
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Drops a trailing CR and/or LF.
fn trim_eol(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// True for a non-empty run of ASCII digits (unlike `str::parse`, no sign allowed).
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number with digits only.
fn parse_decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    is_digits(text).then(|| text.parse().ok()).flatten()
}

/// An octal number with octal digits only, such as a `unix.mode` fact.
fn parse_octal(text: &str) -> Option<u32> {
    let octal = !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    octal.then(|| u32::from_str_radix(text, 8).ok()).flatten()
}

/// `Some(name)` unless `name` is empty.
fn non_empty(name: &str) -> Option<&str> {
    (!name.is_empty()).then_some(name)
}

/// Strips `prefix` from `text`, ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Number of days in a month (1..=12) of a proleptic Gregorian year.
fn days_in_month(year: i64, month: u32) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(next_year, next_month, 1) - days_from_civil(year, month, 1)
}

/// Seconds since the epoch for a UTC civil time; `None` for impossible dates such as Feb 30.
fn civil_to_unix(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || i64::from(day) > days_in_month(year, month) {
        return None;
    }
    let time = DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second: 0,
    };
    time.to_unix()
}

/// `HH:MM` with a 24-hour clock.
fn parse_clock(text: &str) -> Option<(u32, u32)> {
    let (hour, minute) = text.split_once(':')?;
    let small = |t: &str| (1..=2).contains(&t.len());
    if !small(hour) || !small(minute) {
        return None;
    }
    let (hour, minute) = (parse_decimal(hour)?, parse_decimal(minute)?);
    (hour < 24 && minute < 60).then_some((hour, minute))
}

// ---------------------------------------------------------------------------------------------
// Unix `ls -l`
// ---------------------------------------------------------------------------------------------

/// The date columns of an `ls -l` line: either a time (recent files) or a year.
#[derive(Debug, Clone, Copy)]
enum YearOrClock {
    Year(i64),
    Clock(u32, u32),
}

/// Parses one Unix `ls -l` style line, as most servers (vsftpd, ProFTPD, Pure-FTPd, ...) send.
///
/// Accepts a missing link count or group column, mode strings with a trailing `+`, `@` or `.`,
/// setuid/setgid/sticky letters, device files (`1, 3` instead of a size; kind
/// [`EntryKind::Other`], no size), names with spaces and `name -> target` symlinks.
///
/// A `Mon DD HH:MM` date gets the year that puts it within the past year of `now` (seconds since
/// the Unix epoch), allowing up to one day in the future for clock skew; if no such year makes a
/// valid date (Feb 29), `modified` is `None`. A `Mon DD YYYY` date is taken as midnight.
pub fn parse_unix_line(line: &str, now: i64) -> Option<RemoteEntry> {
    let line = trim_eol(line);
    let fields = fields(line);
    let (type_char, mode) = parse_mode(fields.first()?.text)?;
    let at = find_date(&fields)?;
    let (month, day, when) = parse_date(&fields[at..at + 3])?;
    let rest = &line[fields[at + 2].end()..];
    let name = non_empty(rest.strip_prefix([' ', '\t'])?)?;
    let mut entry = unix_entry(type_char, name)?;
    entry.size = unix_size(type_char, fields[at - 1].text);
    entry.modified = unix_modified(month, day, when, now);
    entry.mode = Some(mode);
    Some(entry)
}

/// Reads a mode string such as `drwxr-sr-t+` into its type letter and permission bits.
fn parse_mode(text: &str) -> Option<(u8, u32)> {
    let bytes = text.as_bytes();
    let suffix_ok = match bytes.len() {
        10 => true,
        11 => b"+@.".contains(&bytes[10]),
        _ => false,
    };
    if !suffix_ok || !b"-dlbcpsD".contains(&bytes[0]) {
        return None;
    }
    let mut mode = 0;
    for (class, triplet) in bytes[1..10].chunks(3).enumerate() {
        mode |= triplet_bits(triplet, class)?;
    }
    Some((bytes[0], mode))
}

/// Permission bits of one `rwx` triplet; `class` is 0 for user, 1 for group, 2 for others.
fn triplet_bits(triplet: &[u8], class: usize) -> Option<u32> {
    let special = [0o4000, 0o2000, 0o1000][class];
    let (with_exec, without_exec) = if class == 2 {
        (b't', b'T')
    } else {
        (b's', b'S')
    };
    let (exec, extra) = match triplet[2] {
        b'-' => (0, 0),
        b'x' => (1, 0),
        c if c == with_exec => (1, special),
        c if c == without_exec => (0, special),
        _ => return None,
    };
    let read = flag(triplet[0], b'r')?;
    let write = flag(triplet[1], b'w')?;
    let shift = 3 * (2 - class as u32);
    Some(((read << 2 | write << 1 | exec) << shift) | extra)
}

/// 1 if `c` is `letter`, 0 if it is `-`.
fn flag(c: u8, letter: u8) -> Option<u32> {
    match c {
        b'-' => Some(0),
        _ if c == letter => Some(1),
        _ => None,
    }
}

/// Index of the month field: the first `Mon DD HH:MM|YYYY` run preceded by a size column.
fn find_date(fields: &[Field]) -> Option<usize> {
    (2..fields.len().saturating_sub(2)).find(|&at| {
        is_size_column(fields[at - 1].text) && parse_date(&fields[at..at + 3]).is_some()
    })
}

/// A size, or a device's `major,minor` written without a space.
fn is_size_column(text: &str) -> bool {
    match text.split_once(',') {
        Some((major, minor)) => is_digits(major) && is_digits(minor),
        None => is_digits(text),
    }
}

/// Reads the three date fields `Mon`, `DD`, `HH:MM` or `YYYY`.
fn parse_date(fields: &[Field]) -> Option<(u32, u32, YearOrClock)> {
    let month = month_number(fields.first()?.text)?;
    let day = fields.get(1)?.text;
    let day: u32 = parse_decimal(day).filter(|d| (1..=31).contains(d) && day.len() <= 2)?;
    let last = fields.get(2)?.text;
    let when = match parse_clock(last) {
        Some((hour, minute)) => YearOrClock::Clock(hour, minute),
        None if last.len() == 4 => YearOrClock::Year(parse_decimal(last)?),
        None => return None,
    };
    Some((month, day, when))
}

/// 1..=12 for an English three-letter month name, any case.
fn month_number(text: &str) -> Option<u32> {
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(text))?;
    Some(index as u32 + 1)
}

/// The name and kind an `ls -l` line describes, splitting `name -> target` for symlinks.
fn unix_entry(type_char: u8, name: &str) -> Option<RemoteEntry> {
    let (name, kind) = match type_char {
        b'-' => (name, EntryKind::File),
        b'd' => (name, EntryKind::Directory),
        b'l' => match name.split_once(" -> ") {
            Some((link, target)) => (link, symlink_to(target)),
            None => (name, EntryKind::Symlink { target: None }),
        },
        _ => (name, EntryKind::Other),
    };
    Some(RemoteEntry::new(non_empty(name)?, kind))
}

/// A symlink kind; an empty target counts as unknown.
fn symlink_to(target: &str) -> EntryKind {
    EntryKind::Symlink {
        target: non_empty(target).map(str::to_owned),
    }
}

/// The size column, except for block and character devices, whose column holds device numbers.
fn unix_size(type_char: u8, text: &str) -> Option<u64> {
    if matches!(type_char, b'b' | b'c') {
        return None;
    }
    parse_decimal(text)
}

fn unix_modified(month: u32, day: u32, when: YearOrClock, now: i64) -> Option<i64> {
    match when {
        YearOrClock::Year(year) => civil_to_unix(year, month, day, 0, 0),
        YearOrClock::Clock(hour, minute) => recent_time(month, day, hour, minute, now),
    }
}

/// The time `Mon DD HH:MM` in the year that puts it within the year before `now` (plus a day
/// of allowed clock skew).
fn recent_time(month: u32, day: u32, hour: u32, minute: u32, now: i64) -> Option<i64> {
    let latest = now.clamp(-NOW_LIMIT, NOW_LIMIT) + DAY;
    let earliest = latest - 366 * DAY;
    let year = DateTime::from_unix(latest).year;
    [year, year - 1]
        .into_iter()
        .filter_map(|y| civil_to_unix(y, month, day, hour, minute))
        .find(|&t| t <= latest && t > earliest)
}

// ---------------------------------------------------------------------------------------------
// DOS / IIS
// ---------------------------------------------------------------------------------------------

/// Parses one DOS-style line, as IIS (and some Windows servers) send:
/// `MM-DD-YY  HH:MM(AM|PM)  (<DIR>|size)  name`.
///
/// Accepts 2- or 4-digit years (2-digit years below 70 are 20xx, the rest 19xx), 12- or 24-hour
/// times, `/` as the date separator, and thousands separators in sizes. Other `<...>` markers
/// (such as `<JUNCTION>`) give kind [`EntryKind::Other`]. The time is read as UTC.
pub fn parse_dos_line(line: &str) -> Option<RemoteEntry> {
    let line = trim_eol(line);
    let fields = fields(line);
    let (year, month, day) = dos_date(fields.first()?.text)?;
    let (hour, minute) = dos_clock(fields.get(1)?.text)?;
    let (kind, size) = dos_kind_and_size(fields.get(2)?.text)?;
    let name = &line[fields.get(3)?.start..];
    let mut entry = RemoteEntry::new(name, kind);
    entry.size = size;
    entry.modified = civil_to_unix(year, month, day, hour, minute);
    Some(entry)
}

/// `MM-DD-YY`, `MM-DD-YYYY` (or with `/`) as (year, month, day).
fn dos_date(text: &str) -> Option<(i64, u32, u32)> {
    let mut parts = text.split(['-', '/']);
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || month.len() > 2 || day.len() > 2 {
        return None;
    }
    let month: u32 = parse_decimal(month).filter(|m| (1..=12).contains(m))?;
    let day: u32 = parse_decimal(day).filter(|d| (1..=31).contains(d))?;
    Some((dos_year(year)?, month, day))
}

/// A 4-digit year, or a 2-digit one windowed to 1970..=2069.
fn dos_year(text: &str) -> Option<i64> {
    let year: i64 = parse_decimal(text)?;
    match text.len() {
        2 if year < 70 => Some(2000 + year),
        2 => Some(1900 + year),
        4 => Some(year),
        _ => None,
    }
}

/// `HH:MM` (24-hour) or `HH:MMAM` / `HH:MMPM` (12-hour) as (hour, minute) on a 24-hour clock.
fn dos_clock(text: &str) -> Option<(u32, u32)> {
    let split = text
        .len()
        .checked_sub(2)
        .and_then(|at| text.split_at_checked(at));
    let meridiem = split.and_then(|(clock, suffix)| {
        let pm = suffix.eq_ignore_ascii_case("PM");
        (pm || suffix.eq_ignore_ascii_case("AM")).then_some((clock, pm))
    });
    let Some((clock, pm)) = meridiem else {
        return parse_clock(text);
    };
    let (hour, minute) = parse_clock(clock)?;
    let hour = (1..=12).contains(&hour).then_some(hour % 12)?;
    Some((if pm { hour + 12 } else { hour }, minute))
}

/// `<DIR>` for directories, another `<...>` marker for other kinds, else a file size.
fn dos_kind_and_size(text: &str) -> Option<(EntryKind, Option<u64>)> {
    if text.eq_ignore_ascii_case("<DIR>") {
        return Some((EntryKind::Directory, None));
    }
    if text.len() > 2 && text.starts_with('<') && text.ends_with('>') {
        return Some((EntryKind::Other, None));
    }
    if text.starts_with(',') || text.ends_with(',') {
        return None;
    }
    let size = parse_decimal(&text.replace(',', ""))?;
    Some((EntryKind::File, Some(size)))
}

// ---------------------------------------------------------------------------------------------
// EPLF
// ---------------------------------------------------------------------------------------------

/// Parses one EPLF line (D. J. Bernstein's Easily Parsed LIST Format):
/// `+fact,fact,...,<TAB>name`.
///
/// Facts used: `/` (directory), `r` (retrievable: a file), `s` size, `m` modification time in
/// seconds since the epoch, `up` octal permissions; others (such as the `i` identifier) are
/// ignored. An entry with neither `/` nor `r` has kind [`EntryKind::Other`].
pub fn parse_eplf_line(line: &str) -> Option<RemoteEntry> {
    let line = trim_eol(line);
    let (facts, name) = line.strip_prefix('+')?.split_once('\t')?;
    let mut entry = RemoteEntry::new(non_empty(name)?, EntryKind::Other);
    for fact in facts.split(',') {
        apply_eplf_fact(&mut entry, fact);
    }
    Some(entry)
}

fn apply_eplf_fact(entry: &mut RemoteEntry, fact: &str) {
    if fact == "/" {
        entry.kind = EntryKind::Directory;
    } else if fact == "r" && entry.kind == EntryKind::Other {
        entry.kind = EntryKind::File;
    } else if let Some(mode) = fact.strip_prefix("up") {
        entry.mode = parse_octal(mode);
    } else if let Some(size) = fact.strip_prefix('s') {
        entry.size = parse_decimal(size);
    } else if let Some(time) = fact.strip_prefix('m') {
        entry.modified = parse_decimal(time);
    }
}

// ---------------------------------------------------------------------------------------------
// MLSD / MLST
// ---------------------------------------------------------------------------------------------

/// Parses one MLSD / MLST entry line (RFC 3659 §7): "fact=value;fact=value; name" (MLST lines
/// over the control connection start with a single space, accept that).
///
/// Facts used (names in any case): `type` (`file`, `dir`, `cdir`, `pdir`, `OS.unix=slink:target`
/// or `OS.unix=symlink`; anything else is [`EntryKind::Other`]), `size`, `sizd` (used when `size`
/// is absent), `modify` (fractional seconds dropped) and `unix.mode` (octal). Entries of type
/// cdir/pdir are returned with their kind Directory and name as given; the caller filters them.
/// Lines without facts, or with a fact lacking `=`, give `None`.
pub fn parse_mlsx_line(line: &str) -> Option<RemoteEntry> {
    let line = trim_eol(line);
    let line = line.strip_prefix(' ').unwrap_or(line);
    let (facts, name) = line.split_once("; ")?;
    let mut entry = RemoteEntry::new(non_empty(name)?, EntryKind::Other);
    let mut sizd = None;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        non_empty(key)?;
        apply_mlsx_fact(&mut entry, &mut sizd, key, value);
    }
    entry.size = entry.size.or(sizd);
    Some(entry)
}

fn apply_mlsx_fact(entry: &mut RemoteEntry, sizd: &mut Option<u64>, key: &str, value: &str) {
    let key = key.to_ascii_lowercase();
    match key.as_str() {
        "type" => entry.kind = mlsx_kind(value),
        "size" => entry.size = parse_decimal(value),
        "sizd" => *sizd = parse_decimal(value),
        "modify" => entry.modified = parse_time_val(value),
        "unix.mode" => entry.mode = parse_octal(value),
        _ => {}
    }
}

/// The kind a `type` fact value names.
fn mlsx_kind(value: &str) -> EntryKind {
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "file" => EntryKind::File,
        "dir" | "cdir" | "pdir" => EntryKind::Directory,
        _ => unix_link_kind(value).unwrap_or(EntryKind::Other),
    }
}

/// `OS.unix=slink[:target]` or `OS.unix=symlink[:target]`, as servers write symlinks.
fn unix_link_kind(value: &str) -> Option<EntryKind> {
    let rest = strip_prefix_ignore_case(value, "os.unix=")?;
    let (what, target) = rest.split_once(':').unwrap_or((rest, ""));
    let link = what.eq_ignore_ascii_case("slink") || what.eq_ignore_ascii_case("symlink");
    link.then(|| symlink_to(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 12:00:00 UTC, the "now" of most Unix tests.
    const NOW: i64 = 1_795_608_000;
    /// 2026-11-24 23:31:00 UTC.
    const NOV_24_2331: i64 = 1_795_563_060;

    fn entry(name: &str, kind: EntryKind, size: Option<u64>) -> RemoteEntry {
        RemoteEntry {
            name: name.to_owned(),
            kind,
            size,
            modified: None,
            mode: None,
        }
    }

    fn with(mut e: RemoteEntry, modified: Option<i64>, mode: Option<u32>) -> RemoteEntry {
        e.modified = modified;
        e.mode = mode;
        e
    }

    fn link(target: &str) -> EntryKind {
        EntryKind::Symlink {
            target: Some(target.to_owned()),
        }
    }

    fn unix(line: &str) -> RemoteEntry {
        parse_unix_line(line, NOW).unwrap_or_else(|| panic!("not parsed: {line:?}"))
    }

    #[test]
    fn vsftpd_file_line() {
        let e = unix("-rw-r--r--    1 1000     1000         1715 Nov 24 23:31 readme.txt");
        let want = entry("readme.txt", EntryKind::File, Some(1715));
        assert_eq!(e, with(want, Some(NOV_24_2331), Some(0o644)));
    }

    #[test]
    fn proftpd_directory_with_year() {
        let e = unix("drwxr-xr-x   2 ftp      ftp          4096 Jan  5  2024 pub");
        let want = entry("pub", EntryKind::Directory, Some(4096));
        // 2024-01-05 00:00:00 UTC
        assert_eq!(e, with(want, Some(1_704_412_800), Some(0o755)));
        let short = unix("drwxr-xr-x   2 ftp ftp 4096 Jan  5  2024 pub");
        assert_eq!(short, e);
    }

    #[test]
    fn pure_ftpd_lines() {
        let e = unix("-rw-r--r--    1 1000       1000             1715 Nov 24 23:31 readme.txt");
        assert_eq!(e.size, Some(1715));
        assert_eq!(e.modified, Some(NOV_24_2331));
        let d = unix("drwxr-xr-x    3 ftpuser    ftpgroup         4096 Mar  7  2019 archive");
        assert_eq!(d.kind, EntryKind::Directory);
        // 2019-03-07 00:00:00 UTC = 2019-03-07 09:15 (1551950100) minus 9h15m
        assert_eq!(d.modified, Some(1_551_950_100 - 9 * 3600 - 15 * 60));
    }

    #[test]
    fn names_with_spaces_and_utf8() {
        let e = unix("-rw-r--r-- 1 user group 10 Nov 24 23:31 my file.txt");
        assert_eq!(e.name, "my file.txt");
        assert_eq!(e.size, Some(10));
        let e = unix("-rw-r--r-- 1 user group 10 Nov 24 23:31  leading space");
        assert_eq!(e.name, " leading space");
        let e = unix("-rw-r--r-- 1 user group 10 Nov 24 23:31 Grüße.txt");
        assert_eq!(e.name, "Grüße.txt");
        let e = unix("-rw-r--r-- 1 ユーザー グループ 10 Nov 24 23:31 日本語.txt");
        assert_eq!(e.name, "日本語.txt");
        let e = unix("-rw-r--r-- 1 user group 10 Nov 24 23:31 Jan  5  2024 x");
        assert_eq!(e.name, "Jan  5  2024 x");
    }

    #[test]
    fn symlinks() {
        let e = unix("lrwxrwxrwx 1 0 0 7 Nov 24 23:31 link -> target");
        let want = entry("link", link("target"), Some(7));
        assert_eq!(e, with(want, Some(NOV_24_2331), Some(0o777)));
        let e = unix("lrwxrwxrwx    1 ftp      ftp            19 Jan  5  2024 my link -> ../a b/c");
        assert_eq!(e.name, "my link");
        assert_eq!(e.kind, link("../a b/c"));
        let e = unix("lrwxrwxrwx 1 0 0 7 Nov 24 23:31 dangling");
        assert_eq!(e.kind, EntryKind::Symlink { target: None });
        let e = unix("-rw-r--r-- 1 0 0 7 Nov 24 23:31 not -> a link");
        assert_eq!(
            (e.name.as_str(), e.kind),
            ("not -> a link", EntryKind::File)
        );
    }

    #[test]
    fn missing_group_and_link_count() {
        let e = unix("-rw-r--r-- 1 owner 1715 Nov 24 23:31 f");
        let want = entry("f", EntryKind::File, Some(1715));
        assert_eq!(e, with(want, Some(NOV_24_2331), Some(0o644)));
        let e = unix("-rw-r--r-- owner group 1715 Nov 24 23:31 f");
        assert_eq!((e.name.as_str(), e.size), ("f", Some(1715)));
    }

    #[test]
    fn mode_suffixes_and_special_bits() {
        for suffix in ["+", "@", "."] {
            let e = unix(&format!("-rw-r-----{suffix} 1 a b 1 Nov 24 23:31 f"));
            assert_eq!(e.mode, Some(0o640), "{suffix}");
        }
        assert_eq!(unix("-rwsr-xr-x 1 0 0 1 Nov 24 23:31 f").mode, Some(0o4755));
        assert_eq!(unix("-rwSr--r-- 1 0 0 1 Nov 24 23:31 f").mode, Some(0o4644));
        assert_eq!(unix("drwxr-sr-x 1 0 0 1 Nov 24 23:31 f").mode, Some(0o2755));
        assert_eq!(unix("-rw-r-Sr-- 1 0 0 1 Nov 24 23:31 f").mode, Some(0o2644));
        assert_eq!(
            unix("drwxrwxrwt 1 0 0 1 Nov 24 23:31 tmp").mode,
            Some(0o1777)
        );
        assert_eq!(unix("drwxrwxr-T 1 0 0 1 Nov 24 23:31 f").mode, Some(0o1774));
        assert_eq!(unix("---------- 1 0 0 1 Nov 24 23:31 f").mode, Some(0));
        assert_eq!(
            parse_unix_line("-rw-r--r--x 1 0 0 1 Nov 24 23:31 f", NOW),
            None
        );
        assert_eq!(
            parse_unix_line("-rwtr--r-- 1 0 0 1 Nov 24 23:31 f", NOW),
            None
        );
        assert_eq!(
            parse_unix_line("-rw-r--r-s 1 0 0 1 Nov 24 23:31 f", NOW),
            None
        );
        assert_eq!(
            parse_unix_line("xrw-r--r-- 1 0 0 1 Nov 24 23:31 f", NOW),
            None
        );
    }

    #[test]
    fn device_files_and_other_types() {
        let e = unix("crw-rw-rw- 1 0 0 1, 3 Nov 24 23:31 null");
        let want = entry("null", EntryKind::Other, None);
        assert_eq!(e, with(want, Some(NOV_24_2331), Some(0o666)));
        let e = unix("brw-rw---- 1 root disk 8,   0 Nov 24 23:31 sda");
        assert_eq!(
            (e.name.as_str(), e.kind, e.size),
            ("sda", EntryKind::Other, None)
        );
        let e = unix("crw--w---- 1 root tty 136,0 Nov 24 23:31 0");
        assert_eq!((e.name.as_str(), e.size), ("0", None));
        let e = unix("prw-r--r-- 1 0 0 0 Nov 24 23:31 fifo");
        assert_eq!((e.kind, e.size), (EntryKind::Other, Some(0)));
        let e = unix("srwxrwxrwx 1 0 0 0 Nov 24 23:31 sock");
        assert_eq!(e.kind, EntryKind::Other);
    }

    #[test]
    fn year_inference_for_recent_dates() {
        let at = |date: &str| unix(&format!("-rw-r--r-- 1 0 0 1 {date} f")).modified;
        assert_eq!(at("Nov 24 23:31"), Some(NOV_24_2331));
        // 2026-11-24 00:05 UTC, earlier the same year.
        assert_eq!(at("nov 24 00:05"), Some(1_795_478_700));
        // Up to a day ahead of "now" is clock skew: 2026-11-26 10:00 UTC.
        assert_eq!(at("Nov 26 10:00"), Some(1_795_687_200));
        // More than a day ahead means last year: 2025-11-26 13:00 UTC.
        assert_eq!(at("Nov 26 13:00"), Some(1_764_158_400 + 3600));
        // 2025-12-01 10:00 UTC.
        assert_eq!(at("Dec  1 10:00"), Some(1_764_583_200));
        // 2026-01-02 03:04 UTC.
        assert_eq!(at("Jan  2 03:04"), Some(1_767_323_040));
    }

    #[test]
    fn year_inference_on_leap_days_and_year_ends() {
        let line = "-rw-r--r-- 1 0 0 1 Feb 29 12:00 f";
        // now = 2025-01-10: the Feb 29 within the past year is 2024-02-29 12:00 UTC.
        let e = parse_unix_line(line, 1_736_467_200).unwrap();
        assert_eq!(e.modified, Some(1_709_208_000));
        // now = 2026-06-01: no Feb 29 in the past year, so the time is unknown.
        let e = parse_unix_line(line, 1_780_272_000).unwrap();
        assert_eq!((e.name.as_str(), e.modified), ("f", None));
        // now = 2026-12-31 12:00, "Jan 1 00:00" is within a day ahead: 2027-01-01 00:00 UTC.
        let new_year = days_from_civil(2027, 1, 1) * DAY;
        let e = parse_unix_line("-rw-r--r-- 1 0 0 1 Jan  1 00:00 f", new_year - 12 * 3600);
        assert_eq!(e.unwrap().modified, Some(new_year));
        // Absurd clocks do not overflow.
        for now in [i64::MIN, i64::MAX, 0, -1] {
            let e = parse_unix_line("-rw-r--r-- 1 0 0 1 Dec 31 23:59 f", now).unwrap();
            assert!(e.modified.is_some());
        }
    }

    #[test]
    fn impossible_dates_keep_the_entry() {
        let e = unix("-rw-r--r-- 1 0 0 1 Feb 30  2024 f");
        assert_eq!((e.name.as_str(), e.modified), ("f", None));
    }

    #[test]
    fn unix_non_entries() {
        for line in [
            "total 12",
            "",
            "   ",
            "-rw-r--r-- 1 0 0 1 Nov 24 23:31",
            "-rw-r--r-- 1 0 0 1 Nov 24 23:31 ",
            "-rw-r--r-- 1 0 0 1 Nov 32 23:31 f",
            "-rw-r--r-- 1 0 0 1 Nox 24 23:31 f",
            "-rw-r--r-- 1 0 0 1 Nov 24 24:00 f",
            "-rw-r--r-- 1 0 0 +1 Nov 24 23:31 f",
            "-rw-r--r-- 1 0 0 1 Nov 24 202 f",
            "lrwxrwxrwx 1 0 0 1 Nov 24 23:31  -> x",
            "drwxr-xr-x 2 ftp ftp Nov 24 23:31 x",
        ] {
            assert_eq!(parse_unix_line(line, NOW), None, "{line:?}");
        }
    }

    #[test]
    fn dos_and_iis_lines() {
        // 2026-11-24 23:31 UTC
        let e = parse_dos_line("11-24-26  11:31PM       <DIR>          pub").unwrap();
        let want = entry("pub", EntryKind::Directory, None);
        assert_eq!(e, with(want, Some(NOV_24_2331), None));
        let e = parse_dos_line("11-24-26  11:31PM                 1715 readme.txt").unwrap();
        let want = entry("readme.txt", EntryKind::File, Some(1715));
        assert_eq!(e, with(want, Some(NOV_24_2331), None));
        let e = parse_dos_line("11-24-2026  23:31                 1715 readme.txt").unwrap();
        assert_eq!((e.size, e.modified), (Some(1715), Some(NOV_24_2331)));
        // 2026-11-24 11:31 UTC, then 00:31 UTC.
        let e = parse_dos_line("11-24-26  11:31AM  12 a b.txt\r\n").unwrap();
        assert_eq!(
            (e.name.as_str(), e.modified),
            ("a b.txt", Some(1_795_519_860))
        );
        let e = parse_dos_line("11/24/2026  12:31am  1,715 x").unwrap();
        assert_eq!((e.modified, e.size), (Some(1_795_480_260), Some(1715)));
        // 12 PM is noon: 2026-11-24 12:00 UTC.
        let e = parse_dos_line("11-24-26  12:00PM  0 noon").unwrap();
        assert_eq!(e.modified, Some(1_795_521_600));
        let e = parse_dos_line("06-25-09  02:41PM       <JUNCTION>     j").unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::Other, None));
    }

    #[test]
    fn dos_two_digit_year_window() {
        // 1997-08-14 13:51 UTC
        let e = parse_dos_line("08-14-97  01:51PM  5 old.txt").unwrap();
        assert_eq!(e.modified, Some(871_566_660));
        // 1999-12-31 12:00 UTC
        let e = parse_dos_line("12-31-99  12:00PM  5 y2k.txt").unwrap();
        assert_eq!(e.modified, Some(946_641_600));
        // 2069 / 1970 boundaries.
        let e = parse_dos_line("01-01-69  00:00  5 a").unwrap();
        assert_eq!(e.modified, Some(days_from_civil(2069, 1, 1) * DAY));
        let e = parse_dos_line("01-01-70  00:00  5 a").unwrap();
        assert_eq!(e.modified, Some(0));
    }

    #[test]
    fn dos_non_entries() {
        for line in [
            "11-24-26  11:31PM       <DIR>",
            "13-24-26  11:31PM  5 a",
            "11-24-126  11:31PM  5 a",
            "11-24-26  13:31PM  5 a",
            "11-24-26  00:31AM  5 a",
            "11-24-26  11:31XM  5 a",
            "11-24-26  11:31PM  -5 a",
            "11-24-26  11:31PM  ,5 a",
            "11-24-26-1  11:31PM  5 a",
            " Volume in drive C has no label.",
        ] {
            assert_eq!(parse_dos_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn eplf_lines_from_the_spec() {
        let e = parse_eplf_line("+i8388621.29609,m824255902,/,\tdev").unwrap();
        // 1996-02-13 23:58:22 UTC
        let want = entry("dev", EntryKind::Directory, None);
        assert_eq!(e, with(want, Some(824_255_902), None));
        let e = parse_eplf_line("+i8388621.44468,m839956783,r,s10376,\tRFCEPLF").unwrap();
        let want = entry("RFCEPLF", EntryKind::File, Some(10376));
        assert_eq!(e, with(want, Some(839_956_783), None));
        let e = parse_eplf_line("+i8388621.48598,m824253270,r,s612,up644,\t514 file\r").unwrap();
        let want = entry("514 file", EntryKind::File, Some(612));
        assert_eq!(e, with(want, Some(824_253_270), Some(0o644)));
        let e = parse_eplf_line("+m1,\tnothing known").unwrap();
        assert_eq!(e.kind, EntryKind::Other);
        assert_eq!(parse_eplf_line("+r,s1,\t"), None);
        assert_eq!(parse_eplf_line("+r,s1, no tab"), None);
        assert_eq!(parse_eplf_line("r,s1,\tno plus"), None);
    }

    #[test]
    fn mlsd_lines_from_pyftpdlib() {
        let e = parse_mlsx_line(
            "type=file;size=1715;modify=20261124233100;perm=r;unix.mode=0644; readme.txt",
        );
        let want = entry("readme.txt", EntryKind::File, Some(1715));
        assert_eq!(e, Some(with(want, Some(NOV_24_2331), Some(0o644))));
        let line = "type=dir;sizd=4096;modify=20261124233100.250;perm=flcdmpe;unix.mode=0755; pub";
        let want = entry("pub", EntryKind::Directory, Some(4096));
        assert_eq!(
            parse_mlsx_line(line),
            Some(with(want, Some(NOV_24_2331), Some(0o755)))
        );
    }

    #[test]
    fn mlsd_lines_from_proftpd_and_pure_ftpd() {
        let line = "modify=20261124233100;perm=adfr;size=1715;type=file;unique=FD00U2A0001;\
                    UNIX.group=1000;UNIX.groupname=user;UNIX.mode=0644;UNIX.owner=1000;\
                    UNIX.ownername=user; my file.txt";
        let want = entry("my file.txt", EntryKind::File, Some(1715));
        assert_eq!(
            parse_mlsx_line(line),
            Some(with(want, Some(NOV_24_2331), Some(0o644)))
        );
        let line = "modify=20261124233100;perm=adfr;size=7;type=OS.unix=slink:/srv/a b;\
                    UNIX.mode=0777; link";
        assert_eq!(parse_mlsx_line(line).unwrap().kind, link("/srv/a b"));
        let line = "type=OS.unix=symlink;size=7; link";
        let kind = parse_mlsx_line(line).unwrap().kind;
        assert_eq!(kind, EntryKind::Symlink { target: None });
        let line = "type=file;size=1715;modify=20261124233100;UNIX.mode=0644;UNIX.uid=1000;\
                    UNIX.gid=1000;unique=801g2a7; Grüße.txt\r\n";
        assert_eq!(parse_mlsx_line(line).unwrap().name, "Grüße.txt");
        let kind = parse_mlsx_line("type=OS.unix=chr-1/3; null").unwrap().kind;
        assert_eq!(kind, EntryKind::Other);
    }

    #[test]
    fn mlst_line_and_fact_case() {
        let line = " Type=FILE;Size=1715;Modify=20261124233100;Unix.Mode=644; /pub/readme.txt";
        let want = entry("/pub/readme.txt", EntryKind::File, Some(1715));
        assert_eq!(
            parse_mlsx_line(line),
            Some(with(want, Some(NOV_24_2331), Some(0o644)))
        );
    }

    #[test]
    fn unreadable_list_lines_are_counted() {
        let body = "total 8\r\n\
                    -rw-r--r--   1 ftp ftp  1715 Nov 24 23:31 readme.txt\r\n\
                    2024-01-05 12:34 4 iso.txt\r\n\
                    \r\n\
                    janvier 5 12:34 french.txt\r\n";
        let (entries, unread) = parse_list_counted(body, NOV_24_2331);
        assert_eq!(entries.len(), 1);
        assert_eq!(unread, 2);
    }

    #[test]
    fn mlsd_body_leaves_out_cdir_and_pdir() {
        let body = "type=cdir;modify=20261124233100;perm=flcdmpe; .\r\n\
                    type=pdir;modify=20261124233100;perm=flcdmpe; ..\r\n\
                    Type=cdir;Perm=el;Unique=keVO1+ZF4; media-types\r\n\
                    type=PDIR; /pub\r\n\
                    type=file;size=0;modify=20261124233100;perm=r; empty\r\n\
                    type=dir; cdir\r\n\
                    garbage line\r\n\r\n";
        let names: Vec<_> = parse_mlsd(body)
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        let want = [
            ("empty".to_owned(), EntryKind::File),
            ("cdir".to_owned(), EntryKind::Directory),
        ];
        assert_eq!(names, want);
        // MLST of a folder names the folder itself: kept.
        let mlst = parse_mlsx_line(" type=cdir;perm=el; /pub").unwrap();
        assert_eq!(mlst.kind, EntryKind::Directory);
    }

    #[test]
    fn mlsx_non_entries_and_bad_values() {
        for line in [
            "",
            " ",
            "readme.txt",
            "type=file; ",
            "type; x",
            "=file; x",
            "a;b; x",
        ] {
            assert_eq!(parse_mlsx_line(line), None, "{line:?}");
        }
        let e = parse_mlsx_line("size=-1;modify=2026;unix.mode=0899;type=weird; x").unwrap();
        assert_eq!(e, entry("x", EntryKind::Other, None));
    }

    #[test]
    fn list_body_in_every_format() {
        let body = "total 12\r\n\
                    drwxr-xr-x   2 ftp      ftp          4096 Jan  5  2024 pub\r\n\
                    -rw-r--r--    1 1000     1000         1715 Nov 24 23:31 readme.txt\r\n\
                    \r\n\
                    11-24-26  11:31PM       <DIR>          iis dir\r\n\
                    +i8388621.29609,m824255902,/,\tdev\n\
                    garbage\n";
        let got: Vec<_> = parse_list(body, NOW).into_iter().map(|e| e.name).collect();
        assert_eq!(got, ["pub", "readme.txt", "iis dir", "dev"]);
        let e = parse_list_line(
            "+i1,m824255902,r,s3,\t-rw-r--r-- 1 0 0 1 Nov 24 23:31 f",
            NOW,
        );
        assert_eq!(e.unwrap().size, Some(3));
    }

    const SAMPLES: &[&str] = &[
        "-rw-r--r--    1 1000     1000         1715 Nov 24 23:31 readme.txt",
        "drwxr-xr-x   2 ftp ftp 4096 Jan  5  2024 pub",
        "lrwxrwxrwx 1 0 0 7 Nov 24 23:31 link -> target",
        "crw-rw-rw- 1 0 0 1, 3 Nov 24 23:31 null",
        "-rw-r--r-- 1 ユーザー グループ 10 Nov 24 23:31 日本語.txt",
        "-rwsr-xr-x+ 1 owner 1715 Nov 24 23:31 Grüße.txt",
        "11-24-26  11:31PM       <DIR>          pub",
        "11-24-2026  23:31                 1715 readme.txt",
        "+i8388621.44468,m839956783,r,s10376,up644,\tRFCEPLF",
        "type=file;size=1715;modify=20261124233100.5;perm=r;unix.mode=0644; readme.txt",
        " type=OS.unix=slink:日本;UNIX.mode=0777; Grüße",
    ];

    fn run_all(line: &str) {
        let _ = parse_list_line(line, NOW);
        let _ = parse_unix_line(line, i64::MAX);
        let _ = parse_unix_line(line, i64::MIN);
        let _ = parse_dos_line(line);
        let _ = parse_eplf_line(line);
        let _ = parse_mlsx_line(line);
    }

    #[test]
    fn every_prefix_and_suffix_of_the_samples_is_safe() {
        for sample in SAMPLES {
            assert!(parse_list_line(sample, NOW).is_some() || parse_mlsx_line(sample).is_some());
            for (at, _) in sample.char_indices() {
                run_all(&sample[..at]);
                run_all(&sample[at..]);
            }
        }
        let _ = parse_list(&SAMPLES.concat(), NOW);
        let _ = parse_mlsd(&SAMPLES.join("\r\n"));
    }

    #[test]
    fn random_bytes_and_shuffled_fields_are_safe() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words: Vec<&str> = SAMPLES
            .iter()
            .flat_map(|s| s.split([' ', ';', ',']))
            .collect();
        for _ in 0..3000 {
            let len = (next() % 80) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            run_all(&String::from_utf8_lossy(&bytes));
            let count = (next() % 12) as usize;
            let picked: Vec<&str> = (0..count)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            run_all(&picked.join(" "));
            run_all(&picked.join(";"));
        }
    }
}
