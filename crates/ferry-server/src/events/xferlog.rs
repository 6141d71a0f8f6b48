//! The xferlog writer: one line per file transfer in the wu-ftpd format (the 14 fields vsftpd
//! writes with `xferlog_std_format`), which `ftpstats`, `webalizer -F ftp` and log analysers read:
//!
//! `Sat Dec  5 17:32:54 2026 1 127.0.0.1 1715 /readme.txt b _ o a ferry@example.org ftp 0 * c`
//!
//! current time (UTC), seconds (at least 1), remote address, bytes, path, type (`a`/`b`),
//! special action (`_`), direction (`o`/`i`), access mode (`a` anonymous, `r` real), user (an
//! anonymous user's identity), service (`ftp`), authentication method (`0`), authenticated
//! user id (`*`), completion (`c` complete, `i` incomplete). Fields are separated by spaces, so
//! a space, tab or control byte in a path or a user name is written as `_`: no name can forge a
//! field or a line.

use std::path::Path;

use ferry_proto::time::{DateTime, MONTHS};

use super::{Direction, Event, LogFile, Status, Transfer, Writer};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Writes file transfers to an xferlog file.
#[derive(Debug)]
pub struct Xferlog {
    file: LogFile,
}

impl Xferlog {
    pub fn open(path: &Path) -> std::io::Result<Xferlog> {
        Ok(Xferlog {
            file: LogFile::open(path)?,
        })
    }
}

impl Writer for Xferlog {
    fn write(&self, event: &Event<'_>) {
        if let Event::Transfer(transfer) = event {
            if transfer.is_file() {
                self.file.push(line(transfer));
            }
        }
    }

    fn reopen(&self) {
        self.file.reopen();
    }
}

/// One transfer's xferlog line, newline included.
pub fn line(t: &Transfer<'_>) -> String {
    let secs =
        t.at.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
    let seconds = t.elapsed.as_secs_f64().round().max(1.0) as u64;
    let (mode, user) = if t.anonymous {
        ("a", t.identity)
    } else {
        ("r", t.user)
    };
    format!(
        "{} {seconds} {} {} {} {} _ {} {mode} {} ftp 0 * {}\n",
        ctime(secs),
        t.peer.ip(),
        t.bytes,
        field(t.path),
        if t.ascii { "a" } else { "b" },
        if t.direction == Direction::Upload {
            "i"
        } else {
            "o"
        },
        field(user),
        if t.status == Status::Ok { "c" } else { "i" },
    )
}

/// `Sat Dec  5 17:32:54 2026`, as ctime(3) writes it, in UTC.
fn ctime(secs: i64) -> String {
    let t = DateTime::from_unix(secs);
    let weekday = WEEKDAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    format!(
        "{weekday} {} {:2} {:02}:{:02}:{:02} {}",
        MONTHS[t.month as usize - 1],
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.year
    )
}

/// A name as one field: whitespace and control characters become `_`; an empty name is `_`.
fn field(text: &str) -> String {
    if text.is_empty() {
        return "_".into();
    }
    text.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn transfer<'a>(path: &'a str, user: &'a str, status: Status) -> Transfer<'a> {
        Transfer {
            session: 1,
            transfer: 1,
            peer: "127.0.0.1:50000".parse().unwrap(),
            user: "anonymous",
            anonymous: true,
            identity: user,
            verb: "RETR",
            path,
            direction: Direction::Download,
            bytes: 1715,
            size: Some(1715),
            elapsed: Duration::from_millis(20),
            status,
            error: None,
            ascii: false,
            passive: true,
            tls: None,
            // Sat Dec  5 17:32:54 2026 UTC
            at: UNIX_EPOCH + Duration::from_secs(1_796_491_974),
        }
    }

    #[test]
    fn the_issue_s_example_line() {
        assert_eq!(
            line(&transfer("/readme.txt", "ferry@example.org", Status::Ok)),
            "Sat Dec  5 17:32:54 2026 1 127.0.0.1 1715 /readme.txt b _ o a ferry@example.org ftp 0 * c\n"
        );
    }

    #[test]
    fn names_cannot_forge_fields_or_lines() {
        let text = line(&transfer("/a b\nFri x\t.txt", "me\r\nx y", Status::Aborted));
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert_eq!(
            text.split(' ').filter(|f| !f.is_empty()).count(),
            18,
            "{text}"
        );
        assert!(text.contains(" /a_b_Fri_x_.txt "), "{text}");
        assert!(text.ends_with(" me__x_y ftp 0 * i\n"), "{text}");
    }

    #[test]
    fn ctime_pads_the_day_and_knows_the_weekday() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime(1_796_491_974), "Sat Dec  5 17:32:54 2026");
    }
}
