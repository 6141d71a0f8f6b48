//! systemd integration: the readiness protocol (`sd_notify`, for `Type=notify` and
//! `Type=notify-reload` units) and socket activation (`ferryd.socket`).
//!
//! Every function here does nothing when the process was not started by systemd (no
//! `NOTIFY_SOCKET`, no `LISTEN_FDS`), so `ferryd` calls them unconditionally.

use std::net::TcpListener;

use sd_notify::NotifyState;

/// Tells systemd the listeners are bound and sessions are being accepted (`READY=1`), with a
/// one-line status for `systemctl status`. Also what ends a reload (see [`reloading`]).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the server has begun to stop (`STOPPING=1`): it no longer accepts sessions
/// and lets running transfers finish.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: draining sessions"),
    ]);
}

/// Tells systemd a configuration reload has begun (`RELOADING=1` with `MONOTONIC_USEC`, the
/// clock reading `Type=notify-reload` wants to tell this reload from an earlier one). Call
/// [`ready`] when the new configuration is in force, or when it was refused and the old one
/// stays.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading the configuration"),
        ]),
        Err(error) => tracing::warn!(%error, "cannot read the monotonic clock for systemd"),
    }
}

/// Whether systemd is listening for notifications (the unit is `Type=notify`).
pub fn notifications_expected() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// The listeners systemd passed (socket activation: `LISTEN_FDS`, in the order of the socket
/// unit's `ListenStream=` lines): the first is the control listener, the second, if any, the
/// implicit FTPS one. Empty when not socket-activated. Call it before starting threads: it
/// removes `LISTEN_FDS` and `LISTEN_PID` from the environment so children do not inherit them.
pub fn activated_listeners() -> std::io::Result<Vec<TcpListener>> {
    let mut passed = listenfd::ListenFd::from_env();
    let mut listeners = Vec::with_capacity(passed.len());
    for index in 0..passed.len() {
        let listener = passed.take_tcp_listener(index).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("socket activation: descriptor {index} is not a TCP listener: {e}"),
            )
        })?;
        if let Some(listener) = listener {
            listener.set_nonblocking(true)?;
            listeners.push(listener);
        }
    }
    if listeners.len() > 2 {
        return Err(std::io::Error::other(format!(
            "socket activation: {} sockets passed; ferryd takes the control listener and, optionally, the implicit FTPS one",
            listeners.len()
        )));
    }
    Ok(listeners)
}
