//! The status page: live sessions, running transfers, bans and totals as one HTML page that
//! reloads itself every few seconds. No script and no external asset; everything a client
//! chose (names, paths, commands) is escaped.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::live::{SessionNow, TransferNow};

/// Seconds between the page's reloads.
const REFRESH_SECONDS: u32 = 2;

/// What the page shows.
#[derive(Debug, Default)]
pub struct Page {
    pub server_name: String,
    pub sessions: Vec<SessionNow>,
    /// Banned addresses, with the time left.
    pub bans: Vec<(IpAddr, Duration)>,
    pub totals: Totals,
}

/// Counts since start (from the metrics).
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub sessions: u64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub transfers: u64,
    pub bytes_download: u64,
    pub bytes_upload: u64,
}

const STYLE: &str = "body{font:14px sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}\
td.number{text-align:right}progress{width:12em}";

impl Page {
    /// The whole page.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096 + self.sessions.len() * 512);
        let title = format!("{} status", escape(&self.server_name));
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
             <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        );
        self.render_totals(&mut out);
        self.render_sessions(&mut out);
        self.render_transfers(&mut out);
        self.render_bans(&mut out);
        out.push_str("</body></html>\n");
        out
    }

    fn render_totals(&self, out: &mut String) {
        let t = &self.totals;
        let _ = write!(
            out,
            "<h2>Totals</h2>\n<table id=\"totals\"><tr><th>sessions now</th><td class=\"number\">{}</td></tr>\
             <tr><th>sessions since start</th><td class=\"number\">{}</td></tr>\
             <tr><th>logins</th><td class=\"number\">{} ok, {} failed</td></tr>\
             <tr><th>transfers</th><td class=\"number\">{}</td></tr>\
             <tr><th>downloaded</th><td class=\"number\">{}</td></tr>\
             <tr><th>uploaded</th><td class=\"number\">{}</td></tr></table>\n",
            self.sessions.len(),
            t.sessions,
            t.logins_ok,
            t.logins_failed,
            t.transfers,
            bytes(t.bytes_download),
            bytes(t.bytes_upload),
        );
    }

    fn render_sessions(&self, out: &mut String) {
        let _ = write!(
            out,
            "<h2>Sessions ({})</h2>\n<table id=\"sessions\"><tr><th>#</th><th>address</th>\
             <th>user</th><th>since</th><th>folder</th><th>last command</th></tr>\n",
            self.sessions.len()
        );
        for session in &self.sessions {
            let since = session.since.elapsed().unwrap_or_default();
            let user = if session.user.is_empty() {
                "(not logged in)"
            } else {
                &session.user
            };
            let _ = writeln!(
                out,
                "<tr class=\"session\"><td>{}</td><td class=\"address\">{}</td>\
                 <td class=\"user\">{}</td><td>{} ago</td><td class=\"folder\">{}</td>\
                 <td class=\"command\">{}</td></tr>",
                session.id,
                escape(&session.peer.to_string()),
                escape(user),
                duration(since),
                escape(&session.folder),
                escape(session.last_command),
            );
        }
        out.push_str("</table>\n");
    }

    fn render_transfers(&self, out: &mut String) {
        let running: Vec<(&SessionNow, &TransferNow)> = self
            .sessions
            .iter()
            .filter_map(|s| s.transfer.as_ref().map(|t| (s, t)))
            .collect();
        let _ = write!(
            out,
            "<h2>Transfers ({})</h2>\n<table id=\"transfers\"><tr><th>#</th><th>user</th>\
             <th>command</th><th>path</th><th>bytes</th><th>rate</th><th>progress</th></tr>\n",
            running.len()
        );
        for (session, transfer) in running {
            let seconds = transfer.elapsed.as_secs_f64().max(0.001);
            let rate = (transfer.bytes as f64 / seconds) as u64;
            let progress = match transfer.size {
                Some(size) if size > 0 => {
                    let done = transfer.bytes.min(size);
                    let percent = u128::from(done) * 100 / u128::from(size);
                    format!("<progress value=\"{done}\" max=\"{size}\"></progress> {percent}%")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "<tr class=\"transfer\"><td>{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td>\
                 <td class=\"number\">{}</td><td class=\"number\">{}/s</td><td>{progress}</td></tr>",
                session.id,
                escape(&session.user),
                escape(transfer.verb),
                escape(&transfer.path),
                transfer.bytes,
                bytes(rate),
            );
        }
        out.push_str("</table>\n");
    }

    fn render_bans(&self, out: &mut String) {
        let _ = write!(
            out,
            "<h2>Bans ({})</h2>\n<table id=\"bans\"><tr><th>address</th><th>time left</th></tr>\n",
            self.bans.len()
        );
        for (address, left) in &self.bans {
            let _ = writeln!(
                out,
                "<tr class=\"ban\"><td>{address}</td><td>{}</td></tr>",
                duration(*left)
            );
        }
        out.push_str("</table>\n");
    }
}

/// Text as HTML: `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `3.2 MiB` and the like.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{count} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
fn duration(time: Duration) -> String {
    let seconds = time.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds:02}s"),
        _ => format!("{hours}h {minutes:02}m {seconds:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Direction;
    use std::time::SystemTime;

    fn at(seconds_ago: u64) -> SystemTime {
        SystemTime::now() - Duration::from_secs(seconds_ago)
    }

    #[test]
    fn client_text_cannot_make_markup() {
        let page = Page {
            server_name: "ftp".into(),
            sessions: vec![SessionNow {
                id: 1,
                peer: "127.0.0.1:5000".parse().unwrap(),
                user: "<b>eve</b>".into(),
                since: at(65),
                folder: "/a&b".into(),
                last_command: "RETR",
                transfer: Some(TransferNow {
                    verb: "RETR",
                    path: "/<script>alert(1)</script>.txt".into(),
                    direction: Direction::Download,
                    bytes: 50,
                    size: Some(200),
                    elapsed: Duration::from_secs(1),
                }),
            }],
            ..Page::default()
        };
        let html = page.render();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>eve"), "{html}");
        assert!(html.contains("/&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
        assert!(html.contains("&lt;b&gt;eve&lt;/b&gt;"));
        assert!(html.contains("<progress value=\"50\" max=\"200\"></progress> 25%"));
        assert!(html.contains("1m 05s ago"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
    }
}
