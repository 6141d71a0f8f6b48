//! The metrics writer: counts events (sessions, logins, commands, transfers, TLS handshakes)
//! and renders them, with the gauges read from the server's state at scrape time, in the
//! Prometheus text format (version 0.0.4), written by hand: it is a few lines per metric.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::events::{Direction, Event, Writer};

/// Upper bounds (seconds) of the transfer duration histogram's buckets.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Most distinct verbs counted by name; more (there are fewer verbs than this) are `OTHER`.
const MAX_VERBS: usize = 128;

/// What the events have told so far.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions_now: AtomicI64,
    sessions_total: AtomicU64,
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    /// By (verb, reply class such as `2xx`).
    commands: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// By (direction, kind, result).
    transfers: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    bytes_download: AtomicU64,
    bytes_upload: AtomicU64,
    duration: Histogram,
    /// By (connection, result, resumed).
    tls_handshakes: Mutex<BTreeMap<(&'static str, &'static str, bool), u64>>,
}

/// A histogram of seconds.
#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or under each bound of [`DURATION_BUCKETS`] (not cumulative here).
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = (seconds * 1e6) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// What is read from the server's state when metrics are asked for.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub passive_ports_in_use: usize,
    pub passive_listeners_kept: usize,
    pub bans_active: usize,
    pub upload_memory_bytes: u64,
    pub process: super::process::Process,
}

impl Writer for Metrics {
    fn write(&self, event: &Event<'_>) {
        match event {
            Event::Connected { .. } => {
                self.sessions_now.fetch_add(1, Ordering::Relaxed);
                self.sessions_total.fetch_add(1, Ordering::Relaxed);
            }
            Event::Disconnected { .. } => {
                self.sessions_now.fetch_sub(1, Ordering::Relaxed);
            }
            Event::Login(login) => {
                let counter = match login.ok {
                    true => &self.logins_ok,
                    false => &self.logins_failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Event::Command { verb, code, .. } => self.count_command(verb, *code),
            Event::Transfer(transfer) => {
                let direction = direction_name(transfer.direction);
                let kind = if transfer.is_file() {
                    "file"
                } else {
                    "listing"
                };
                let result = transfer.status.name();
                add(&self.transfers, (direction, kind, result));
                let bytes = match transfer.direction {
                    Direction::Download => &self.bytes_download,
                    Direction::Upload => &self.bytes_upload,
                };
                bytes.fetch_add(transfer.bytes, Ordering::Relaxed);
                self.duration.observe(transfer.elapsed.as_secs_f64());
            }
            Event::TlsHandshake {
                data, ok, resumed, ..
            } => {
                let connection = if *data { "data" } else { "control" };
                let result = if *ok { "ok" } else { "failed" };
                add(&self.tls_handshakes, (connection, result, *resumed));
            }
        }
    }
}

fn add<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(key).or_insert(0) += 1;
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Download => "download",
        Direction::Upload => "upload",
    }
}

/// `2xx` for 226, and so on.
fn reply_class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

impl Metrics {
    fn count_command(&self, verb: &str, code: u16) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let class = reply_class(code);
        let known = commands.keys().any(|(v, _)| v == verb);
        let verb = if known || commands.len() < MAX_VERBS {
            verb
        } else {
            "OTHER"
        };
        *commands.entry((verb.to_string(), class)).or_insert(0) += 1;
    }

    /// The counts since start the status page shows.
    pub fn totals(&self) -> super::status::Totals {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let transfers = self.transfers.lock().unwrap_or_else(|p| p.into_inner());
        super::status::Totals {
            sessions: load(&self.sessions_total),
            logins_ok: load(&self.logins_ok),
            logins_failed: load(&self.logins_failed),
            transfers: transfers.values().sum(),
            bytes_download: load(&self.bytes_download),
            bytes_upload: load(&self.bytes_upload),
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let sessions_now = self.sessions_now.load(Ordering::Relaxed).max(0);
        header(&mut out, "ferry_sessions", "gauge", "Sessions now.");
        sample(&mut out, "ferry_sessions", &[], sessions_now);
        header(
            &mut out,
            "ferry_sessions_total",
            "counter",
            "Sessions since start.",
        );
        sample(
            &mut out,
            "ferry_sessions_total",
            &[],
            load(&self.sessions_total),
        );
        header(
            &mut out,
            "ferry_logins_total",
            "counter",
            "Login attempts, by result.",
        );
        sample(
            &mut out,
            "ferry_logins_total",
            &[("result", "ok")],
            load(&self.logins_ok),
        );
        let failed = load(&self.logins_failed);
        sample(
            &mut out,
            "ferry_logins_total",
            &[("result", "failed")],
            failed,
        );
        self.render_commands(&mut out);
        self.render_transfers(&mut out);
        self.render_tls(&mut out);
        render_gauges(&mut out, gauges);
        out
    }

    fn render_commands(&self, out: &mut String) {
        let help = "Commands by verb and class of their final reply.";
        header(out, "ferry_commands_total", "counter", help);
        let commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        for ((verb, class), count) in commands.iter() {
            let labels = [("verb", verb.as_str()), ("class", *class)];
            sample(out, "ferry_commands_total", &labels, *count);
        }
    }

    fn render_transfers(&self, out: &mut String) {
        let help = "Data transfers (files and listings), by direction, kind and result.";
        header(out, "ferry_transfers_total", "counter", help);
        let transfers = self.transfers.lock().unwrap_or_else(|p| p.into_inner());
        for ((direction, kind, result), count) in transfers.iter() {
            let labels = [
                ("direction", *direction),
                ("kind", *kind),
                ("result", *result),
            ];
            sample(out, "ferry_transfers_total", &labels, *count);
        }
        drop(transfers);
        let help = "Bytes moved on data connections, by direction.";
        header(out, "ferry_transfer_bytes_total", "counter", help);
        for (direction, counter) in [
            ("download", &self.bytes_download),
            ("upload", &self.bytes_upload),
        ] {
            let bytes = counter.load(Ordering::Relaxed);
            sample(
                out,
                "ferry_transfer_bytes_total",
                &[("direction", direction)],
                bytes,
            );
        }
        self.render_duration(out);
    }

    fn render_duration(&self, out: &mut String) {
        let name = "ferry_transfer_duration_seconds";
        header(out, name, "histogram", "How long data transfers took.");
        let mut cumulative = 0;
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = bound.to_string();
            sample(out, &format!("{name}_bucket"), &[("le", &le)], cumulative);
        }
        let count = self.duration.count.load(Ordering::Relaxed);
        sample(out, &format!("{name}_bucket"), &[("le", "+Inf")], count);
        let sum = self.duration.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        sample(out, &format!("{name}_count"), &[], count);
    }

    fn render_tls(&self, out: &mut String) {
        let help = "TLS handshakes, by connection (control, data), result and resumption.";
        header(out, "ferry_tls_handshakes_total", "counter", help);
        let handshakes = self
            .tls_handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for ((connection, result, resumed), count) in handshakes.iter() {
            let resumed = if *resumed { "true" } else { "false" };
            let labels = [
                ("connection", *connection),
                ("result", *result),
                ("resumed", resumed),
            ];
            sample(out, "ferry_tls_handshakes_total", &labels, *count);
        }
    }
}

fn render_gauges(out: &mut String, gauges: &Gauges) {
    let help = "Passive listeners open: waiting for a data connection, or kept for the next PASV.";
    header(out, "ferry_passive_ports_in_use", "gauge", help);
    sample(
        out,
        "ferry_passive_ports_in_use",
        &[],
        gauges.passive_ports_in_use,
    );
    let help = "Passive listeners sessions keep open for their next PASV or EPSV.";
    header(out, "ferry_passive_listeners_kept", "gauge", help);
    sample(
        out,
        "ferry_passive_listeners_kept",
        &[],
        gauges.passive_listeners_kept,
    );
    header(
        out,
        "ferry_bans_active",
        "gauge",
        "Addresses banned now for failed logins.",
    );
    sample(out, "ferry_bans_active", &[], gauges.bans_active);
    let memory = "ferry_s3_upload_memory_bytes";
    let help = "Upload data held in memory for object stores, in bytes (at most s3.upload_memory).";
    header(out, memory, "gauge", help);
    sample(out, memory, &[], gauges.upload_memory_bytes);
    let process = &gauges.process;
    let cpu = "process_cpu_seconds_total";
    header(
        out,
        cpu,
        "counter",
        "CPU time (user and system) used, in seconds.",
    );
    let _ = writeln!(out, "{cpu} {}", process.cpu_seconds);
    let optional = [
        (
            "process_resident_memory_bytes",
            "Resident memory, in bytes.",
            process.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory, in bytes.",
            process.virtual_bytes,
        ),
        (
            "process_open_fds",
            "Open file descriptors.",
            process.open_fds,
        ),
        (
            "process_max_fds",
            "The open file descriptor limit.",
            process.max_fds,
        ),
    ];
    for (name, help, value) in optional {
        if let Some(value) = value {
            header(out, name, "gauge", help);
            sample(out, name, &[], value);
        }
    }
    let start = "process_start_time_seconds";
    header(
        out,
        start,
        "gauge",
        "When the process started, in seconds since the epoch.",
    );
    let _ = writeln!(out, "{start} {}", process.start_time_seconds);
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(text));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_by_verb_and_class() {
        let metrics = Metrics::default();
        for code in [226, 226, 550] {
            metrics.write(&Event::Command {
                session: 1,
                verb: "RETR",
                code,
            });
        }
        let text = metrics.render(&Gauges::default());
        assert!(text.contains("ferry_commands_total{verb=\"RETR\",class=\"2xx\"} 2\n"));
        assert!(text.contains("ferry_commands_total{verb=\"RETR\",class=\"5xx\"} 1\n"));
    }

    #[test]
    fn the_histogram_is_cumulative() {
        let metrics = Metrics::default();
        metrics.duration.observe(0.002);
        metrics.duration.observe(2.0);
        let text = metrics.render(&Gauges::default());
        assert!(text.contains("ferry_transfer_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("ferry_transfer_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("ferry_transfer_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("ferry_transfer_duration_seconds_count 2\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
