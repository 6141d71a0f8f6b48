//! What a transfer, a mirror or a listing reports: one typed record per file, written as a
//! JSON line (`--json`; the fields are documented in the README and stay stable) or as text.

use serde::Serialize;

use ferry_client::{EntryKind, RemoteEntry};

use crate::printer::printable;

/// One file moved (or not) by get, put, pget or mirror.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Always `"file"`.
    pub record: &'static str,
    /// The remote path.
    pub path: String,
    /// The local path.
    pub local: String,
    /// `"download"` or `"upload"`.
    pub direction: &'static str,
    /// Bytes moved by this run (not counting what an earlier run left).
    pub bytes: u64,
    pub seconds: f64,
    /// Bytes per second.
    pub rate: f64,
    /// The byte the transfer continued from (0: from the start).
    pub resumed_from: u64,
    /// Tries after the first.
    pub retries: u32,
    /// The checksum compared (`"SHA-256"`, `"SHA-1"`, `"MD5"`, `"CRC32"`), if any.
    pub hash: Option<&'static str>,
    /// `true`: checksums equal; `false`: they differ; `null`: not checked.
    pub hash_verified: Option<bool>,
    /// `"ok"`, `"failed"` or `"planned"` (`--dry-run`).
    pub result: &'static str,
    /// The error, when `result` is `"failed"`.
    pub error: Option<String>,
}

impl FileReport {
    pub fn new(direction: &'static str, path: &str, local: &str) -> Self {
        FileReport {
            record: "file",
            path: path.to_string(),
            local: local.to_string(),
            direction,
            bytes: 0,
            seconds: 0.0,
            rate: 0.0,
            resumed_from: 0,
            retries: 0,
            hash: None,
            hash_verified: None,
            result: "ok",
            error: None,
        }
    }

    pub fn set_time(&mut self, seconds: f64) {
        self.seconds = (seconds * 1000.0).round() / 1000.0;
        self.rate = match seconds > 0.0 {
            true => (self.bytes as f64 / seconds).round(),
            false => 0.0,
        };
    }

    /// A one-line text summary: `path: 1234 bytes in 0.12 s (10.3 KiB/s), SHA-256 verified`.
    pub fn text(&self) -> String {
        let mut line = format!(
            "{}: {} {} bytes in {:.2} s ({})",
            printable(&self.path),
            self.direction,
            self.bytes,
            self.seconds,
            crate::progress::rate(self.bytes, self.seconds)
        );
        if self.resumed_from > 0 {
            line.push_str(&format!(", resumed from byte {}", self.resumed_from));
        }
        match (self.hash, self.hash_verified) {
            (Some(hash), Some(true)) => line.push_str(&format!(", {hash} verified")),
            (Some(hash), Some(false)) => line.push_str(&format!(", {hash} MISMATCH")),
            _ => {}
        }
        if let Some(error) = &self.error {
            line.push_str(&format!(": FAILED: {}", printable(error)));
        }
        line
    }
}

/// The end of a mirror: what it did in all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorSummary {
    /// Always `"summary"`.
    pub record: &'static str,
    pub transferred: usize,
    pub failed: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub unchanged: usize,
    pub excluded: usize,
    pub directories_made: usize,
    /// The paths deleted on the target.
    pub deleted: Vec<String>,
    /// Paths that are a file on one side and a directory on the other (left alone).
    pub conflicts: Vec<String>,
    pub dry_run: bool,
}

/// One entry of `ls --json`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    pub name: String,
    /// `"file"`, `"dir"`, `"link"` or `"other"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: Option<u64>,
    /// RFC 3339, UTC: `2024-05-01T12:00:00Z`.
    pub modify: Option<String>,
    /// How exact `modify` is: `"second"`, `"minute"` or `"day"`.
    pub modify_precision: Option<&'static str>,
    /// Octal, `"0644"`, when the listing tells.
    pub permissions: Option<String>,
    /// A link's target, when the listing tells.
    pub target: Option<String>,
    /// `"mlsd"` or `"list"`.
    pub source: &'static str,
}

impl EntryReport {
    pub fn of(entry: &RemoteEntry, from_mlsd: bool) -> Self {
        let (kind, target) = match &entry.kind {
            EntryKind::File => ("file", None),
            EntryKind::Directory => ("dir", None),
            EntryKind::Symlink { target } => ("link", target.clone()),
            EntryKind::Other => ("other", None),
        };
        let precision = entry.modified.map(|time| match from_mlsd {
            true => "second",
            false => match ferry_client::mirror::TimePrecision::of_list_time(time) {
                ferry_client::mirror::TimePrecision::Day => "day",
                _ => "minute",
            },
        });
        EntryReport {
            name: entry.name.clone(),
            kind,
            size: entry.size,
            modify: entry.modified.map(rfc3339),
            modify_precision: precision,
            permissions: entry.mode.map(|mode| format!("{mode:04o}")),
            target,
            source: if from_mlsd { "mlsd" } else { "list" },
        }
    }
}

/// `2024-05-01T12:00:00Z` for seconds since the epoch.
pub fn rfc3339(time: i64) -> String {
    let stamp = ferry_proto::time::format_time_val(time);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[8..10],
        &stamp[10..12],
        &stamp[12..14]
    )
}

/// Prints one record as a JSON line on standard output. A closed pipe (`| head -1`) is not
/// an error worth a panic: the line is dropped.
pub fn print_json(record: &impl Serialize) {
    use std::io::Write;
    match serde_json::to_string(record) {
        Ok(line) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        Err(error) => eprintln!("ferry: cannot write JSON: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn records_have_their_documented_fields() {
        let mut report = FileReport::new("download", "a/b", "b");
        report.bytes = 1000;
        report.set_time(0.5);
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["rate"], 2000.0);
        assert_eq!(value["result"], "ok");
        assert!(value["hash_verified"].is_null());
    }
}
