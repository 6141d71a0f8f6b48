//! What is happening now, for the status page: each session's address, user, folder and last
//! command, and its running transfer. Kept only when the admin listener is on
//! (`Context::live`); sessions update it at a few points, and as an events [`Writer`] it
//! follows connects, logins, transfers' ends and disconnects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::data::Progress;
use crate::events::{Direction, Event, Writer};

/// The sessions now, by session number.
#[derive(Debug, Default)]
pub struct Live {
    sessions: Mutex<HashMap<u64, SessionView>>,
}

/// One session as the status page shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub peer: SocketAddr,
    /// The logged-in user; empty before login.
    pub user: String,
    pub since: SystemTime,
    /// The current folder, as the user sees it.
    pub folder: String,
    /// The verb of the last command (never its argument: a PASS's would be a password).
    pub last_command: &'static str,
    pub transfer: Option<TransferView>,
}

/// A running transfer; its bytes so far are read from its progress when asked.
#[derive(Debug, Clone)]
pub struct TransferView {
    pub verb: &'static str,
    pub path: String,
    pub direction: Direction,
    /// The file's size, when known (downloads).
    pub size: Option<u64>,
    pub started: Instant,
    pub progress: Arc<Progress>,
}

/// One session at the moment of a [`Live::snapshot`].
#[derive(Debug, Clone)]
pub struct SessionNow {
    pub id: u64,
    pub peer: SocketAddr,
    pub user: String,
    pub since: SystemTime,
    pub folder: String,
    pub last_command: &'static str,
    pub transfer: Option<TransferNow>,
}

/// A running transfer at the moment of a [`Live::snapshot`].
#[derive(Debug, Clone)]
pub struct TransferNow {
    pub verb: &'static str,
    pub path: String,
    pub direction: Direction,
    pub bytes: u64,
    pub size: Option<u64>,
    pub elapsed: Duration,
}

impl Live {
    /// Changes session `id`'s view, if it is known.
    pub fn update(&self, id: u64, change: impl FnOnce(&mut SessionView)) {
        if let Some(view) = self.lock().get_mut(&id) {
            change(view);
        }
    }

    /// The sessions now, oldest first.
    pub fn snapshot(&self) -> Vec<SessionNow> {
        let mut sessions: Vec<SessionNow> = self
            .lock()
            .iter()
            .map(|(id, view)| SessionNow {
                id: *id,
                peer: view.peer,
                user: view.user.clone(),
                since: view.since,
                folder: view.folder.clone(),
                last_command: view.last_command,
                transfer: view.transfer.as_ref().map(|t| TransferNow {
                    verb: t.verb,
                    path: t.path.clone(),
                    direction: t.direction,
                    bytes: t.progress.bytes.load(std::sync::atomic::Ordering::Relaxed),
                    size: t.size,
                    elapsed: t.started.elapsed(),
                }),
            })
            .collect();
        sessions.sort_by_key(|s| s.id);
        sessions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionView>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Writer for Live {
    fn write(&self, event: &Event<'_>) {
        match event {
            Event::Connected { session, peer } => {
                let view = SessionView {
                    peer: *peer,
                    user: String::new(),
                    since: SystemTime::now(),
                    folder: "/".into(),
                    last_command: "",
                    transfer: None,
                };
                self.lock().insert(*session, view);
            }
            Event::Login(login) if login.ok => {
                self.update(login.session, |view| {
                    view.user = login.user.to_string();
                    view.folder = "/".into();
                });
            }
            Event::Transfer(transfer) => {
                self.update(transfer.session, |view| view.transfer = None);
            }
            Event::Disconnected { session, .. } => {
                self.lock().remove(session);
            }
            Event::Login(_) | Event::Command { .. } | Event::TlsHandshake { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Login;

    #[test]
    fn follows_a_session_from_connect_to_disconnect() {
        let live = Live::default();
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        live.write(&Event::Connected { session: 7, peer });
        let login = Login {
            session: 7,
            peer,
            user: "alice",
            anonymous: false,
            ok: true,
            reason: None,
        };
        live.write(&Event::Login(&login));
        live.update(7, |view| view.folder = "/pub".into());
        let now = live.snapshot();
        assert_eq!(now.len(), 1);
        assert_eq!(
            (now[0].user.as_str(), now[0].folder.as_str()),
            ("alice", "/pub")
        );
        live.write(&Event::Disconnected {
            session: 7,
            peer,
            user: "alice",
            elapsed: Duration::ZERO,
        });
        assert!(live.snapshot().is_empty());
    }
}
