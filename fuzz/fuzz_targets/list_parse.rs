//! Listing parsers: `parse_list`, `parse_mlsd` and every single-line parser never panic, and
//! every entry they return has a non-empty name (and a non-empty symlink target, if any).
//!
//! Input: `[clock, body...]`; `clock` picks "now" for Unix `Mon DD HH:MM` dates from a few
//! realistic and extreme values; the body is read as UTF-8 with invalid sequences replaced.
#![no_main]

use ferry_proto::list_parse::{
    parse_dos_line, parse_eplf_line, parse_list, parse_list_line, parse_mlsd, parse_mlsx_line,
    parse_unix_line, EntryKind, RemoteEntry,
};
use libfuzzer_sys::fuzz_target;

/// 2026-11-25 12:00 UTC, 2000-03-01 00:00 UTC (just after a leap day), the epoch, one second
/// before it, and the extremes.
const CLOCKS: [i64; 6] = [1_795_608_000, 951_868_800, 0, -1, i64::MIN, i64::MAX];

fuzz_target!(|data: &[u8]| {
    let [clock, ref body @ ..] = *data else {
        return;
    };
    let now = CLOCKS[usize::from(clock) % CLOCKS.len()];
    let body = String::from_utf8_lossy(body);

    parse_list(&body, now).iter().for_each(check);
    parse_mlsd(&body).iter().for_each(check);
    for line in body.split('\n') {
        let parsed = [
            parse_list_line(line, now),
            parse_unix_line(line, now),
            parse_dos_line(line),
            parse_eplf_line(line),
            parse_mlsx_line(line),
        ];
        parsed.iter().flatten().for_each(check);
    }
});

fn check(entry: &RemoteEntry) {
    assert!(!entry.name.is_empty(), "empty name in {entry:?}");
    if let EntryKind::Symlink {
        target: Some(target),
    } = &entry.kind
    {
        assert!(!target.is_empty(), "empty symlink target in {entry:?}");
    }
}
