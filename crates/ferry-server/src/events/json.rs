//! The JSON-lines writer: one object per event, to a file or standard error. The fields are
//! documented in the README ("JSON log"); their names are stable.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{Event, LogFile, Writer};

/// Where JSON lines go.
#[derive(Debug)]
enum Target {
    File(LogFile),
    Stderr,
}

/// Writes every event as a JSON object on a line of its own.
#[derive(Debug)]
pub struct JsonLines {
    target: Target,
}

impl JsonLines {
    /// To a file (`-` is standard error).
    pub fn open(path: &Path) -> std::io::Result<JsonLines> {
        let target = if path == Path::new("-") {
            Target::Stderr
        } else {
            Target::File(LogFile::open(path)?)
        };
        Ok(JsonLines { target })
    }
}

impl Writer for JsonLines {
    fn write(&self, event: &Event<'_>) {
        let mut line = object(event, SystemTime::now()).to_string();
        line.push('\n');
        match &self.target {
            Target::File(file) => file.push(line),
            Target::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }

    fn reopen(&self) {
        if let Target::File(file) = &self.target {
            file.reopen();
        }
    }
}

/// An event's JSON object.
pub fn object(event: &Event<'_>, now: SystemTime) -> Value {
    let mut fields = Map::new();
    fields.insert("time".into(), json!(rfc3339(now)));
    fields.insert("event".into(), json!(event.name()));
    let more = match event {
        Event::Connected { session, peer } => json!({
            "session": session,
            "remote": peer.ip().to_string(),
            "remote_port": peer.port(),
        }),
        Event::Login(login) => json!({
            "session": login.session,
            "remote": login.peer.ip().to_string(),
            "user": login.user,
            "anonymous": login.anonymous,
            "status": if login.ok { "ok" } else { "failed" },
            "error": login.reason,
        }),
        Event::Command {
            session,
            verb,
            code,
        } => json!({ "session": session, "verb": verb, "code": code }),
        Event::Transfer(t) => json!({
            "session": t.session,
            "transfer": t.transfer,
            "remote": t.peer.ip().to_string(),
            "user": t.user,
            "anonymous": t.anonymous,
            "verb": t.verb,
            "path": t.path,
            "direction": match t.direction {
                super::Direction::Download => "download",
                super::Direction::Upload => "upload",
            },
            "bytes": t.bytes,
            "size": t.size,
            "elapsed_ms": t.elapsed.as_millis() as u64,
            "status": t.status.name(),
            "error": t.error,
            "type": if t.ascii { "ascii" } else { "binary" },
            "data_mode": if t.passive { "passive" } else { "active" },
            "tls_version": t.tls.map(|tls| tls.version),
            "tls_cipher": t.tls.map(|tls| tls.cipher.as_str()),
            "tls_resumed": t.tls.map(|tls| tls.resumed),
        }),
        Event::TlsHandshake {
            session,
            data,
            ok,
            resumed,
        } => json!({
            "session": session,
            "connection": if *data { "data" } else { "control" },
            "status": if *ok { "ok" } else { "failed" },
            "tls_resumed": resumed,
        }),
        Event::Disconnected {
            session,
            peer,
            user,
            elapsed,
        } => json!({
            "session": session,
            "remote": peer.ip().to_string(),
            "user": user,
            "elapsed_ms": elapsed.as_millis() as u64,
        }),
    };
    if let Value::Object(more) = more {
        fields.extend(more);
    }
    Value::Object(fields)
}

/// `2026-12-05T17:32:54.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = ferry_proto::time::DateTime::from_unix(since.as_secs() as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Direction, Status, TlsFacts, Transfer};
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_transfer_has_every_documented_field() {
        let tls = TlsFacts {
            version: "TLSv1.3",
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            resumed: true,
        };
        let transfer = Transfer {
            session: 7,
            transfer: 9,
            peer: "127.0.0.1:40000".parse().unwrap(),
            user: "alice \"x\"\n",
            anonymous: false,
            identity: "",
            verb: "STOR",
            path: "/a b.txt",
            direction: Direction::Upload,
            bytes: 10,
            size: None,
            elapsed: Duration::from_millis(1500),
            status: Status::Failed,
            error: Some("disk full"),
            ascii: true,
            passive: false,
            tls: Some(&tls),
            at: UNIX_EPOCH,
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_796_491_974_123);
        let value = object(&Event::Transfer(&transfer), now);
        let line = value.to_string();
        assert!(!line.contains('\n'), "{line}");
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["time"], "2026-12-05T17:32:54.123Z");
        assert_eq!(back["event"], "transfer");
        assert_eq!(back["user"], "alice \"x\"\n");
        assert_eq!(back["elapsed_ms"], 1500);
        assert_eq!(back["status"], "failed");
        assert_eq!(back["type"], "ascii");
        assert_eq!(back["data_mode"], "active");
        assert_eq!(back["tls_resumed"], true);
        assert_eq!(back["size"], Value::Null);
        for field in [
            "session",
            "transfer",
            "remote",
            "anonymous",
            "verb",
            "path",
            "bytes",
            "error",
            "tls_version",
            "tls_cipher",
            "direction",
        ] {
            assert!(back.get(field).is_some(), "{field} missing: {line}");
        }
    }
}
