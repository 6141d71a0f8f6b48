//! The listener: accepts control connections, runs one session task each, caps their number,
//! and shuts down gracefully.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests bind port 0 and
//! never race for a fixed port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::Reply;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError};
use crate::session::Session;
use crate::users::{Users, UsersError};

/// What every session shares, read-only.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub users: Users,
    pub server_name: String,
    pub greeting: String,
    pub passive_ports: Option<(u16, u16)>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Users(#[from] UsersError),
}

impl Context {
    /// Validates the configuration and loads the users file.
    pub fn new(config: Config) -> Result<Context, StartError> {
        config.validate()?;
        let users = match &config.users_file {
            Some(path) => Users::load(path)?,
            None => Users::default(),
        };
        Ok(Context {
            server_name: config.server_name(),
            greeting: config.greeting(),
            passive_ports: config.passive_port_range()?,
            users,
            config,
        })
    }
}

/// Serves FTP on `listener` until `shutdown` completes; then stops accepting, lets sessions
/// finish their transfers for up to the configured grace period, and closes the rest.
pub async fn run(listener: TcpListener, context: Arc<Context>, shutdown: impl Future) {
    let (stop_sessions, stop_signal) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(context.config.max_sessions));
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => start_session(&mut sessions, stream, &context, &limit, &stop_signal),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(sessions = sessions.len(), "shutting down");
    let _ = stop_sessions.send(true);
    let grace = context.config.shutdown_grace();
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            sessions = sessions.len(),
            "grace period over; closing the remaining sessions"
        );
        sessions.shutdown().await;
    }
}

fn start_session(
    sessions: &mut JoinSet<()>,
    mut stream: tokio::net::TcpStream,
    context: &Arc<Context>,
    limit: &Arc<Semaphore>,
    stop_signal: &watch::Receiver<bool>,
) {
    let Ok(permit) = Arc::clone(limit).try_acquire_owned() else {
        tracing::warn!(peer = ?stream.peer_addr().ok(), "too many sessions; connection refused");
        sessions.spawn(async move {
            let reply = Reply::new(421, "Too many users, try again later.");
            let _ = stream.write_all(&reply.to_wire()).await;
            let _ = stream.shutdown().await;
        });
        return;
    };
    let context = Arc::clone(context);
    let stop_signal = stop_signal.clone();
    sessions.spawn(async move {
        match Session::new(context, stream, stop_signal) {
            Ok(session) => session.run().await,
            Err(error) => tracing::debug!(%error, "connection closed before the session started"),
        }
        drop(permit);
    });
}
