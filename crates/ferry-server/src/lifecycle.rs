//! Reload and drain: the accept loop that swaps in a reloaded configuration whole and stops in
//! stages, and the readiness an admin listener reports.
//!
//! A [`Server`] serves with one [`Context`] at a time. [`Handle::reload`] hands it a new one,
//! already validated whole; the server carries the shared state over ([`Context::inherit`]),
//! binds the listen addresses that changed, and only then swaps: new sessions get the new
//! context, running ones keep the `Arc` they started with (and their TLS acceptors, so their data
//! connections still resume). The admin listener answers from the new context at once (its
//! token), and moves when `admin.listen` changed. [`Handle::drain`] stops the server in stages:
//! not ready at once, listeners open for `shutdown.accept_grace`, then idle sessions closed
//! (421), running transfers finished until `shutdown.deadline` (from the signal), the rest
//! broken off (426, 421).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::server::{self, Context, Stop};

/// How long sessions cut at the deadline have to reply and log their end before they are
/// dropped.
const CUT_WAIT: Duration = Duration::from_secs(3);

pub use crate::readiness::Readiness;

/// The bound listeners: control connections, implicit FTPS and the admin listener when
/// configured.
#[derive(Debug)]
pub struct Listeners {
    pub control: TcpListener,
    pub implicit: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

/// Why a reload was refused (the server goes on with the context it had).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("the server is stopping")]
    Draining,
    #[error("the server has ended")]
    Gone,
}

/// A listen address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}{hint}")]
pub struct ListenError {
    pub address: SocketAddr,
    pub source: std::io::Error,
    hint: &'static str,
}

/// Binds a listener on `address` with room for `backlog` connections waiting to be accepted (the
/// kernel caps it at somaxconn), non-blocking, for a tokio runtime to take over.
pub fn bind(address: SocketAddr, backlog: u32) -> Result<std::net::TcpListener, ListenError> {
    bind_with(address, backlog, false)
}

/// [`bind`] for FTP control connections: the options every control connection needs
/// ([`control_options`]) are set before the socket listens, so that every connection gets
/// them from the listener, including those that queue before the server accepts.
pub fn bind_control(
    address: SocketAddr,
    backlog: u32,
) -> Result<std::net::TcpListener, ListenError> {
    bind_with(address, backlog, true)
}

fn bind_with(
    address: SocketAddr,
    backlog: u32,
    control: bool,
) -> Result<std::net::TcpListener, ListenError> {
    use socket2::{Domain, Socket, Type};
    let listen = || -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if control {
            control_options(socket2::SockRef::from(&socket), "listener");
        }
        socket.bind(&address.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    listen().map_err(|source| ListenError {
        address,
        hint: match source.kind() {
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root; try --listen 127.0.0.1:2121)"
            }
            _ => "",
        },
        source,
    })
}

/// What the operator asks of a running server.
enum Operation {
    Reload(Box<Context>, oneshot::Sender<Result<(), ReloadError>>),
    Drain,
}

/// Asks a running [`Server`] to reload or to drain; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    operations: mpsc::UnboundedSender<Operation>,
    readiness: Readiness,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Reload(..) => "Reload",
            Operation::Drain => "Drain",
        })
    }
}

impl Handle {
    /// Serves new connections with `context` (validated whole by [`Context::new`]) once the
    /// listen addresses that changed are bound; on an error, nothing changed.
    pub async fn reload(&self, context: Context) -> Result<(), ReloadError> {
        let (done, result) = oneshot::channel();
        self.operations
            .send(Operation::Reload(Box::new(context), done))
            .map_err(|_| ReloadError::Gone)?;
        result.await.unwrap_or(Err(ReloadError::Gone))
    }

    /// Starts to stop the server (see the module's comment); not ready from now on.
    pub fn drain(&self) {
        self.readiness.start_draining();
        let _ = self.operations.send(Operation::Drain);
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }
}

/// The accept loop and the sessions it started.
pub struct Server {
    listeners: Listeners,
    /// Per listener (control, implicit): whether each accepted connection needs the control
    /// options set on it, because the listener did not have them before it listened (passed
    /// by systemd, or bound by a library caller): connections that queued before
    /// [`Server::new`] set them on the listener lack them.
    options_per_connection: [bool; 2],
    context: Arc<Context>,
    readiness: Readiness,
    operations: mpsc::UnboundedReceiver<Operation>,
    sessions: JoinSet<()>,
    stop_sessions: watch::Sender<Stop>,
    sweeper: JoinHandle<()>,
    /// What the admin listener serves, when it is on. It serves until the process ends, apart
    /// from the other listeners.
    admin: Option<watch::Sender<crate::admin::Serving>>,
}

impl Server {
    /// A server for bound listeners, and the handle that reloads and drains it. Call inside a
    /// tokio runtime.
    pub fn new(mut listeners: Listeners, context: Arc<Context>) -> (Server, Handle) {
        let (sender, operations) = mpsc::unbounded_channel();
        // The context's: reloaded contexts share it, and the admin listener reads it.
        let readiness = context.readiness.clone();
        let handle = Handle {
            operations: sender,
            readiness: readiness.clone(),
        };
        context.publish();
        let options_per_connection = [
            adopt(&listeners.control),
            listeners.implicit.as_ref().is_some_and(adopt),
        ];
        let admin = listeners.admin.take().map(|listener| {
            let (serving, watching) = watch::channel(crate::admin::Serving {
                context: Arc::clone(&context),
                listener: Arc::new(listener),
            });
            tokio::spawn(crate::admin::serve(watching));
            serving
        });
        let server = Server {
            listeners,
            options_per_connection,
            admin,
            sweeper: tokio::spawn(server::sweep_abandoned_uploads(Arc::clone(&context))),
            context,
            readiness,
            operations,
            sessions: JoinSet::new(),
            stop_sessions: watch::channel(Stop::Running).0,
        };
        (server, handle)
    }

    /// Serves until drained, then returns.
    pub async fn run(mut self) {
        self.readiness.set_ready();
        let signalled = self.accept().await;
        let Server {
            listeners,
            context,
            mut sessions,
            stop_sessions,
            sweeper,
            ..
        } = self;
        drop(listeners);
        sweeper.abort();
        tracing::info!(sessions = sessions.len(), "shutting down");
        stop_sessions.send_replace(Stop::Closing);
        let deadline = signalled + context.config.shutdown_deadline();
        let left = deadline.saturating_duration_since(Instant::now());
        if server::drain(&mut sessions, left).await {
            return;
        }
        tracing::warn!(
            sessions = sessions.len(),
            "shutdown deadline reached; closing the remaining sessions"
        );
        stop_sessions.send_replace(Stop::Cut);
        if !server::drain(&mut sessions, CUT_WAIT).await {
            // Stuck (a storage call that does not return): dropped without a word.
            tracing::warn!(
                sessions = sessions.len(),
                "sessions did not end; dropping them"
            );
            sessions.shutdown().await;
        }
    }

    /// Accepts connections and carries out reloads until a drain's accept grace is over;
    /// returns when the drain was asked for.
    async fn accept(&mut self) -> Instant {
        let mut signalled: Option<Instant> = None;
        loop {
            let grace_over = async {
                match signalled {
                    Some(at) => {
                        tokio::time::sleep_until(at + self.context.config.accept_grace()).await
                    }
                    None => std::future::pending().await,
                }
            };
            let stop_signal = self.stop_sessions.subscribe();
            let (accepted, implicit_tls) = tokio::select! {
                accepted = self.listeners.control.accept() => (accepted, false),
                accepted = server::accept_if_any(self.listeners.implicit.as_ref()) => (accepted, true),
                Some(_) = self.sessions.join_next(), if !self.sessions.is_empty() => continue,
                Some(operation) = self.operations.recv() => {
                    self.carry_out(operation, &mut signalled);
                    continue;
                }
                () = grace_over => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if self.options_per_connection[usize::from(implicit_tls)] {
                        control_options(socket2::SockRef::from(&stream), "connection");
                    }
                    server::start_session(
                        &mut self.sessions,
                        stream,
                        peer,
                        implicit_tls,
                        &self.context,
                        &stop_signal,
                    )
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        signalled.unwrap_or_else(Instant::now)
    }

    /// A reload, or the start of a drain (`signalled` then says when; a server that drains
    /// reloads no more).
    fn carry_out(&mut self, operation: Operation, signalled: &mut Option<Instant>) {
        match operation {
            Operation::Drain if signalled.is_none() => {
                let grace = self.context.config.accept_grace();
                self.readiness.start_draining();
                tracing::info!(
                    accept_grace = grace.as_secs(),
                    "draining: not ready; the listeners close after the accept grace"
                );
                *signalled = Some(Instant::now());
            }
            Operation::Drain => tracing::info!("already draining"),
            Operation::Reload(_, done) if signalled.is_some() => {
                let _ = done.send(Err(ReloadError::Draining));
            }
            Operation::Reload(context, done) => {
                let _ = done.send(self.reload(*context));
            }
        }
    }

    /// Swaps in `context` once the listen addresses that changed are bound.
    fn reload(&mut self, context: Context) -> Result<(), ReloadError> {
        let context = context.inherit(&self.context);
        let (old, new) = (&self.context.config, &context.config);
        let backlog = new.listen_backlog;
        let control = match old.listen != new.listen {
            true => Some(tokio_listener(new.listen, backlog)?),
            false => None,
        };
        let old_implicit = old.tls.implicit_listen;
        let implicit = match new.tls.implicit_listen {
            Some(address) if old_implicit != Some(address) => {
                Some(Some(tokio_listener(address, backlog)?))
            }
            Some(_) => None,
            None => old_implicit.map(|_| None),
        };
        let admin = match (&self.admin, new.admin.listen) {
            (Some(_), Some(address)) if old.admin.listen != Some(address) => {
                Some(admin_listener(address)?)
            }
            _ => None,
        };
        // Everything is ready: from here on nothing fails.
        if let Some(control) = control {
            tracing::info!(address = %new.listen, "listening");
            self.listeners.control = control;
            self.options_per_connection[0] = false;
        }
        if let Some(implicit) = implicit {
            match new.tls.implicit_listen {
                Some(address) => tracing::info!(%address, "listening for implicit FTPS"),
                None => tracing::info!("implicit FTPS listener closed"),
            }
            self.listeners.implicit = implicit;
            self.options_per_connection[1] = false;
        }
        warn_about_restart_only_changes(old, new);
        context.publish();
        self.context = Arc::new(context);
        if let Some(serving) = &self.admin {
            if let Some(address) = admin.as_ref().and_then(|l| l.local_addr().ok()) {
                tracing::info!(%address, "admin listener moved");
            }
            serving.send_modify(|serving| {
                serving.context = Arc::clone(&self.context);
                if let Some(listener) = admin {
                    serving.listener = Arc::new(listener);
                }
            });
        }
        self.sweeper.abort();
        self.sweeper = tokio::spawn(server::sweep_abandoned_uploads(Arc::clone(&self.context)));
        tracing::info!(
            sessions = self.sessions.len(),
            "configuration reloaded: new sessions use it; logged-in sessions keep theirs"
        );
        Ok(())
    }
}

/// A new admin listener (no control-connection options).
fn admin_listener(address: SocketAddr) -> Result<TcpListener, ListenError> {
    let listener = bind(address, crate::admin::BACKLOG)?;
    TcpListener::from_std(listener).map_err(|source| ListenError {
        address,
        source,
        hint: "",
    })
}

fn tokio_listener(address: SocketAddr, backlog: u32) -> Result<TcpListener, ListenError> {
    let listener = bind_control(address, backlog)?;
    TcpListener::from_std(listener).map_err(|source| ListenError {
        address,
        source,
        hint: "",
    })
}

/// Socket options every control connection needs:
/// - TCP_NODELAY: a reply leaves at once, not after the client's delayed ACK.
/// - SO_OOBINLINE: clients send ABOR (or Telnet IAC DM) as TCP urgent data (RFC 959 §4.1.3);
///   inline, its bytes stay in the command stream instead of the urgent one being lost.
///
/// Set on a listener before it listens, Linux copies them to each connection, which saves two
/// system calls per session; set later, connections already queued do not get them.
///
/// Failing to set one is not fatal (the server works without, only slower or blind to urgent
/// bytes), so it is logged.
fn control_options(socket: socket2::SockRef<'_>, on: &'static str) {
    if let Err(error) = socket.set_nodelay(true) {
        tracing::warn!(%error, on, "cannot set TCP_NODELAY");
    }
    if let Err(error) = socket.set_out_of_band_inline(true) {
        tracing::warn!(%error, on, "cannot set SO_OOBINLINE");
    }
}

/// Takes a control listener the server did not bind itself: sets the control options on it for
/// the connections to come, and says whether each accepted connection needs them too (it does
/// unless the listener had them already, as [`bind_control`] gives them before listening).
fn adopt(listener: &TcpListener) -> bool {
    let socket = socket2::SockRef::from(listener);
    let had = socket.nodelay().unwrap_or(false) && socket.out_of_band_inline().unwrap_or(false);
    if !had {
        control_options(socket, "listener");
    }
    !had
}

/// Settings a reload cannot apply to a running process: said, so nobody expects them to.
fn warn_about_restart_only_changes(old: &crate::Config, new: &crate::Config) {
    let changed = [
        ("log_level", old.log_level != new.log_level),
        (
            "hardening.run_as_user",
            old.hardening.run_as_user != new.hardening.run_as_user,
        ),
        (
            "hardening.landlock",
            old.hardening.landlock != new.hardening.landlock,
        ),
        (
            "admin.listen (turning the admin listener on or off)",
            old.admin.listen.is_some() != new.admin.listen.is_some(),
        ),
    ];
    for (name, _) in changed.iter().filter(|(_, changed)| *changed) {
        tracing::warn!(setting = name, "this setting changes only at a restart");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_goes_ready_then_draining_for_good() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready() && !readiness.is_draining());
        readiness.set_ready();
        assert!(readiness.is_ready());
        readiness.start_draining();
        readiness.set_ready();
        assert!(!readiness.is_ready() && readiness.is_draining());
    }
}
