//! One FTP session: the task that owns a control connection and everything the client has set
//! (login, folder, type, data plan), runs its commands one at a time, and supervises at most one
//! transfer running beside it.
//!
//! Each command's behaviour lives in one handler, grouped by theme in the submodules; this file
//! holds the loop, the one `match` that dispatches, and the checks that apply to every command
//! (login required, write permission) before dispatch.

mod checksums;
mod control;
mod data_setup;
mod files;
mod info;
mod listing;
mod login;
mod navigate;
mod security;
mod transfer;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::command::{self, Command, ParseError, TransferType};
use ferry_proto::{Frame, Reply};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::data::{DataContext, DataPlan};
use crate::events;
use crate::limits::{CountGuard, Throttle};
use crate::permissions::{AccessPolicy, Permission};
use crate::server::{Context, Stop};
use crate::storage::{Storage, StorageError, StorageErrorKind, VirtualPath};
use control::Control;
use transfer::RunningTransfer;

/// How long a session cut at the end of the shutdown grace waits for its upload's last write.
const CUT_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The reply that ends a session of a banned address.
const BANNED: &str = "Too many failed logins from your address; try again later.";

/// The zlib level of MODE Z unless OPTS MODE Z LEVEL says otherwise (zlib's own default).
const DEFAULT_DEFLATE_LEVEL: u8 = 6;

/// Most commands queued while a transfer runs; more are refused.
const MAX_QUEUED: usize = 32;

/// What every session of one account shares: who it is and what it may do. Anonymous sessions
/// of one host share one (see [`AnonymousProfiles`]), made at the first of them.
#[derive(Debug)]
struct Profile {
    name: String,
    anonymous: bool,
    policy: AccessPolicy,
    storage: Arc<dyn Storage>,
    /// The account must use TLS for control and data connections.
    require_tls: bool,
    /// What the account uses of its quota, when it has one (shared with its other sessions).
    quota: Option<Arc<crate::quota::Usage>>,
}

/// Who is logged in in this session: the account's [`Profile`] (its fields read through this
/// one), and what is the session's own.
#[derive(Debug)]
struct Account {
    profile: Arc<Profile>,
    download: Throttle,
    upload: Throttle,
    /// An anonymous user's identity (the e-mail address given as password), for xferlog.
    identity: Box<str>,
    /// An anonymous session's number for its private upload names (see `upload_owner`).
    upload_session: u64,
    /// Counts this session against the account's session limit while logged in.
    _session_count: Option<CountGuard<String>>,
}

impl Account {
    /// Whose an upload's private file is: the user's, or this anonymous session's.
    fn upload_owner(&self) -> String {
        let anonymous = self.anonymous.then_some(self.upload_session);
        crate::storage::uploads::owner(&self.name, anonymous)
    }
}

impl std::ops::Deref for Account {
    type Target = Profile;

    fn deref(&self) -> &Profile {
        &self.profile
    }
}

/// The anonymous accounts' profiles in use, by host and user name: an anonymous login finds
/// its host's profile here and shares it, rather than opening the root and building the
/// policy again. Held weakly: a profile lives while a session uses it, as before.
#[derive(Debug, Default)]
pub struct AnonymousProfiles {
    /// At most a few per host (the anonymous names are a fixed list).
    profiles: std::sync::Mutex<Vec<KeptProfile>>,
}

/// A profile in use: (virtual host, lower-case user name, the profile).
type KeptProfile = (Option<u16>, String, std::sync::Weak<Profile>);

impl AnonymousProfiles {
    fn find(&self, vhost: Option<u16>, user: &str) -> Option<Arc<Profile>> {
        let profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        profiles
            .iter()
            .find(|(host, name, _)| *host == vhost && name.eq_ignore_ascii_case(user))
            .and_then(|(_, _, profile)| profile.upgrade())
    }

    fn keep(&self, vhost: Option<u16>, profile: &Arc<Profile>) {
        let mut profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        profiles.retain(|(host, name, kept)| {
            kept.strong_count() > 0 && !(*host == vhost && *name == profile.name)
        });
        profiles.push((vhost, profile.name.clone(), Arc::downgrade(profile)));
    }
}

#[derive(Debug)]
enum Login {
    /// No USER yet (or after REIN / a failed PASS).
    Anonymous,
    /// USER given, waiting for PASS.
    AwaitingPassword { user: String, anonymous: bool },
    /// Boxed: an idle session that has not logged in holds none of it.
    LoggedIn(Box<Account>),
}

/// Which virtual host a session is on, and what chose it.
#[derive(Debug, Clone, Copy, Default)]
struct HostChoice {
    /// Index into `Context::vhosts`; `None` is the default host.
    vhost: Option<u16>,
    /// HOST chose it.
    by_host: bool,
    /// The TLS server name (SNI) chose it; HOST must then agree.
    by_sni: bool,
}

/// What the loop reacts to.
enum Event {
    Frame(Frame),
    TransferDone(transfer::Outcome),
    Closed,
    Timeout,
    /// The idle timer went off at a deadline that has since moved later: nothing to do.
    Rearmed,
    Shutdown(Stop),
    /// Some address was banned (perhaps this session's, which has not logged in).
    Ban,
}

/// A wait the session keeps from one command to the next (boxed, so `'static`).
type Wait<T> = Pin<Box<dyn Future<Output = T> + Send + Sync>>;

/// What a session waits for besides its client, kept across commands: waiting for a command
/// then arms no timer and registers no waiter (each a lock shared with every other session),
/// which was a fifth of the server's own CPU time per login.
struct Waits {
    /// The idle (or login) timer, armed for `armed`. A command moves the deadline later
    /// without touching the timer; when the timer goes off early it is armed again.
    idle: Pin<Box<tokio::time::Sleep>>,
    armed: tokio::time::Instant,
    /// When the session last finished something for its client (a command, or a transfer's
    /// final reply): a logged-in session's idle time counts from it.
    active: tokio::time::Instant,
    /// The server's stop signal; it hands its receiver back when the value changes (`None`:
    /// the server is gone).
    stop: Option<Wait<Option<watch::Receiver<Stop>>>>,
    /// The next ban of any address, while the session has not logged in.
    ban: Option<Wait<()>>,
}

impl Waits {
    fn new(shutdown: watch::Receiver<Stop>, deadline: tokio::time::Instant) -> Self {
        Waits {
            idle: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
            active: tokio::time::Instant::now(),
            stop: Some(wait_for_stop(shutdown)),
            ban: None,
        }
    }

    /// Makes the idle timer go off no later than `deadline`.
    fn bring_forward(&mut self, deadline: tokio::time::Instant) {
        if deadline < self.armed {
            self.rearm(deadline);
        }
    }

    fn rearm(&mut self, deadline: tokio::time::Instant) {
        self.idle.as_mut().reset(deadline);
        self.armed = deadline;
    }
}

fn wait_for_stop(mut shutdown: watch::Receiver<Stop>) -> Wait<Option<watch::Receiver<Stop>>> {
    Box::pin(async move { shutdown.changed().await.ok().map(|()| shutdown) })
}

/// Waits for `wait`, or forever when there is none.
async fn wait_on<T>(wait: &mut Option<Wait<T>>) -> T {
    match wait {
        Some(wait) => wait.await,
        None => std::future::pending().await,
    }
}

/// Whether the session goes on after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// The state of one client's session.
pub struct Session {
    context: Arc<Context>,
    control: Control,
    /// FTPS state, when the server has a certificate.
    tls: Option<security::SessionTls>,
    peer: SocketAddr,
    /// The control connection's local address (see [`DataContext::control_local`]).
    local: SocketAddr,
    login: Login,
    cwd: VirtualPath,
    transfer_type: TransferType,
    restart_offset: u64,
    rename_from: Option<Box<VirtualPath>>,
    data_plan: Option<DataPlan>,
    /// The passive listener PASV offers again, when the session has one.
    kept_passive: Option<data_setup::KeptPassive>,
    epsv_all: bool,
    /// The facts OPTS MLST chose; `None`: the default ones (no allocation for most sessions).
    mlst_facts: Option<Box<[&'static str]>>,
    /// This session's number in events and logs.
    id: u64,
    /// The code of the last reply sent, for the command's event.
    last_code: u16,
    /// The virtual host this session is on (HOST, SNI).
    host: HostChoice,
    /// MODE Z: the zlib level data connections are compressed with; `None` in MODE S.
    deflate: Option<u8>,
    /// The level OPTS MODE Z LEVEL chose, for the next MODE Z.
    deflate_level: u8,
    /// The algorithm of HASH (OPTS HASH).
    hash_algorithm: ferry_proto::command::HashAlgorithm,
    /// The inclusive byte range RANG set for the next HASH (boxed: rarely set, and every idle
    /// session holds the field).
    hash_range: Option<Box<(u64, u64)>>,
    /// Boxed: most sessions are idle most of the time, and every one holds the field.
    transfer: Option<Box<RunningTransfer>>,
    queued: VecDeque<Frame>,
    waits: Waits,
    closing: bool,
    failed_logins: u32,
    /// When a client that has not logged in is disconnected.
    login_deadline: tokio::time::Instant,
    started: Instant,
    /// The session's place under the server's session limits, given back when it ends.
    _admission: Admission,
}

/// A session's place under the limits: the server-wide session count and its address's count.
pub type Admission = (
    crate::limits::BudgetGuard,
    Option<crate::limits::CountGuard<std::net::IpAddr>>,
);

impl Session {
    /// A session for a freshly accepted control connection.
    pub fn new(
        context: Arc<Context>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<Stop>,
        implicit_tls: bool,
        admission: Admission,
    ) -> std::io::Result<Session> {
        let peer = canonical(peer);
        let local = canonical(stream.local_addr()?);
        // TCP_NODELAY and SO_OOBINLINE come from the listener (`lifecycle::control_options`).
        let login_deadline = tokio::time::Instant::now() + context.config.login_timeout();
        let id = context.events.next_session();
        let deflate_level = DEFAULT_DEFLATE_LEVEL.min(context.config.data.mode_z_max_level as u8);
        let tls = context
            .tls
            .as_ref()
            .filter(|_| implicit_tls)
            .map(|settings| security::SessionTls::new(settings, true));
        Ok(Session {
            control: Control::new(
                stream,
                context.config.max_line,
                context.config.stall_timeout(),
            ),
            tls,
            context,
            peer,
            local,
            login: Login::Anonymous,
            cwd: VirtualPath::root(),
            transfer_type: TransferType::Ascii,
            restart_offset: 0,
            rename_from: None,
            data_plan: None,
            kept_passive: None,
            epsv_all: false,
            mlst_facts: None,
            id,
            last_code: 0,
            host: HostChoice::default(),
            deflate: None,
            deflate_level,
            hash_algorithm: ferry_proto::command::HashAlgorithm::Sha256,
            hash_range: None,
            transfer: None,
            queued: VecDeque::new(),
            waits: Waits::new(shutdown, login_deadline),
            closing: false,
            failed_logins: 0,
            login_deadline,
            started: Instant::now(),
            _admission: admission,
        })
    }

    /// What a data connection needs to know about the session (made when needed: every idle
    /// session holding it would cost 88 bytes each).
    fn data_context(&self) -> DataContext {
        DataContext {
            control_local: self.local,
            peer_ip: self.peer.ip(),
            active_source: self.context.config.data.active_source,
            connect_timeout: self.context.config.data_connect_timeout(),
            stall_timeout: self.context.config.stall_timeout(),
        }
    }

    /// Runs the session to its end: greeting, commands, and the closing of the connection.
    ///
    /// Not an `async fn run(mut self)`: that future would hold the session twice (the argument,
    /// and the local it is moved into). The `async move` block holds it once and works on it in
    /// place.
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send {
        let mut session = self;
        async move { session.run_in_place().await }
    }

    async fn run_in_place(&mut self) {
        self.context.events.emit(events::Event::Connected {
            session: self.id,
            peer: self.peer,
        });
        // Boxed, like a command: the handshake's state is not kept for the session's life (and
        // only made for implicit FTPS). It greets after the handshake, as the host the client
        // named (SNI).
        let implicit = self
            .tls
            .as_ref()
            .is_some_and(security::SessionTls::implicit);
        let greeted = (!implicit || Box::pin(self.start_implicit_tls()).await) && {
            let greeting = Reply::new(220, self.greeting());
            self.control.send(&greeting).await.is_ok()
        };
        if greeted {
            self.serve().await;
        }
        if self.transfer.is_some() {
            // A transfer the session's end broke off (the client closed the control connection
            // or left): told, as incomplete, like one broken off by ABOR. Boxed: the session's
            // future would otherwise keep room for it all its life.
            let stall = self.context.config.stall_timeout();
            let stop = self.stop_transfer(events::Status::Aborted, "session ended", stall);
            Box::pin(stop).await;
        }
        self.control.close().await;
        self.context.events.emit(events::Event::Disconnected {
            session: self.id,
            peer: self.peer,
            user: self.user_name(),
            elapsed: self.started.elapsed(),
        });
    }

    async fn serve(&mut self) {
        loop {
            let event = self.next_event().await;
            let client_acted = matches!(event, Event::Frame(_) | Event::TransferDone(_));
            let flow = match event {
                // Boxed: a command's state (the largest handler's) is allocated while it runs,
                // not held by every idle session, whose future is only what it waits with.
                Event::Frame(Frame::Line(bytes)) => Box::pin(self.on_line(&bytes)).await,
                Event::Frame(Frame::Overlong) => self.reply(500, "Command line too long.").await,
                Event::TransferDone(outcome) => Box::pin(self.finish_transfer(outcome)).await,
                Event::Closed => Flow::Quit,
                Event::Timeout => {
                    self.reply(421, "Timeout: closing control connection.")
                        .await;
                    Flow::Quit
                }
                Event::Rearmed => Flow::Continue,
                Event::Shutdown(stop) => Box::pin(self.on_shutdown(stop)).await,
                Event::Ban => Box::pin(self.end_if_banned()).await,
            };
            if flow == Flow::Quit {
                return;
            }
            // The idle time counts from the end of the command (or of the 226): a command that
            // ran longer than the idle timeout (a HASH of a large file, a slow quota count at
            // login) is not followed at once by a 421.
            if client_acted {
                self.waits.active = tokio::time::Instant::now();
            }
            if self.closing && self.transfer.is_none() {
                self.reply(421, "Server shutting down.").await;
                return;
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        if self.transfer.is_none() {
            if let Some(frame) = self.queued.pop_front() {
                return Event::Frame(frame);
            }
        }
        // A logged-in session may idle for the idle timeout after each command; a client that
        // has not logged in has the login timeout from its connection (or REIN), however many
        // commands it sends meanwhile.
        // (Not from the time of asking: the timer goes off early after any command, and each
        // time would then move the deadline later, so that the session never timed out.)
        let deadline = match self.login {
            Login::LoggedIn(_) => self.waits.active + self.context.config.idle_timeout(),
            _ => self.login_deadline,
        };
        self.waits.bring_forward(deadline);
        let idle = self.transfer.is_none();
        // Only before login: a logged-in session waits for no ban.
        if self.logged_in() {
            self.waits.ban = None;
        } else if self.waits.ban.is_none() {
            let context = self.context.clone();
            self.waits.ban = Some(Box::pin(async move { context.bans.next_ban().await }));
        }
        let waits = &mut self.waits;
        tokio::select! {
            outcome = transfer::wait(&mut self.transfer) => Event::TransferDone(outcome),
            frame = self.control.read_frame() => frame.map_or(Event::Closed, Event::Frame),
            () = &mut waits.idle, if idle => match tokio::time::Instant::now() >= deadline {
                true => Event::Timeout,
                false => {
                    waits.rearm(deadline);
                    Event::Rearmed
                }
            },
            // The server gone (it never is while a session runs) ends the session too.
            stop = wait_on(&mut waits.stop) => match stop {
                Some(mut shutdown) => {
                    let stop = *shutdown.borrow_and_update();
                    waits.stop = Some(wait_for_stop(shutdown));
                    Event::Shutdown(stop)
                }
                None => {
                    waits.stop = None;
                    Event::Closed
                }
            },
            () = wait_on(&mut waits.ban) => {
                waits.ban = None;
                Event::Ban
            }
        }
    }

    /// The server is stopping: finish the running transfer, then close (421); or, once the
    /// grace period is over, break the transfer off (426, logged as failed) and close now.
    async fn on_shutdown(&mut self, stop: Stop) -> Flow {
        match stop {
            Stop::Running => Flow::Continue,
            Stop::Closing => {
                self.closing = true;
                Flow::Continue
            }
            Stop::Cut => {
                self.cut_transfer(CUT_WRITE_WAIT).await;
                self.reply(421, "Server shutting down.").await;
                Flow::Quit
            }
        }
    }

    /// Ends a session that has not logged in once its address is banned: its open sessions
    /// must not go on guessing passwords through the ban.
    async fn end_if_banned(&mut self) -> Flow {
        if self.logged_in() || self.context.bans.banned_for(self.peer.ip()).is_none() {
            return Flow::Continue;
        }
        tracing::info!(peer = %self.peer.ip(), "closing a session of a banned address");
        self.reply(421, BANNED).await;
        Flow::Quit
    }

    /// A line from the client: during a transfer only ABOR, STAT and NOOP are answered at once,
    /// other commands wait for the transfer's end.
    async fn on_line(&mut self, bytes: &[u8]) -> Flow {
        let text = String::from_utf8_lossy(bytes);
        let parsed = command::parse(&text);
        if self.transfer.is_some() {
            return match parsed {
                Ok(Command::Abor) => self.abort_transfer().await,
                Ok(Command::Stat(None)) => self.transfer_status().await,
                Ok(Command::Noop) => self.reply(200, "NOOP ok.").await,
                _ if self.queued.len() < MAX_QUEUED => {
                    self.queued.push_back(Frame::Line(bytes.to_vec()));
                    Flow::Continue
                }
                _ => {
                    self.reply(503, "Transfer in progress; command refused.")
                        .await
                }
            };
        }
        match parsed {
            Ok(command) => self.execute(command).await,
            Err(error) => self.reply_parse_error(&error).await,
        }
    }

    async fn reply_parse_error(&mut self, error: &ParseError) -> Flow {
        // A command refused for its form is still the command after RNFR, and, if a transfer
        // command, after REST: it uses them up as one refused by `checked_dispatch` does.
        self.rename_from = None;
        if let ParseError::Syntax { verb, .. }
        | ParseError::Parameter { verb }
        | ParseError::NetworkProtocol { verb } = error
        {
            if matches!(
                *verb,
                "RETR" | "STOR" | "APPE" | "STOU" | "LIST" | "NLST" | "MLSD"
            ) {
                self.restart_offset = 0;
            }
        }
        let flow = self.reply_parse_error_text(error).await;
        let verb = match error {
            ParseError::Syntax { verb, .. }
            | ParseError::Parameter { verb }
            | ParseError::NetworkProtocol { verb } => verb,
            ParseError::Empty | ParseError::Unknown(_) => "UNKNOWN",
        };
        self.context.events.emit(events::Event::Command {
            session: self.id,
            verb,
            code: self.last_code,
        });
        flow
    }

    async fn reply_parse_error_text(&mut self, error: &ParseError) -> Flow {
        match error {
            ParseError::Empty => self.reply(500, "Empty command.").await,
            ParseError::Unknown(verb) => {
                let verb = verb.chars().take(16).collect::<String>();
                self.reply(500, format!("Unknown command {verb}.")).await
            }
            ParseError::Syntax { verb, reason } => {
                self.reply(501, format!("{verb}: {reason}.")).await
            }
            ParseError::Parameter { verb } => {
                self.reply(504, format!("{verb}: parameter not implemented."))
                    .await
            }
            ParseError::NetworkProtocol { .. } => {
                self.reply(522, "Network protocol not supported, use (1,2).")
                    .await
            }
        }
    }

    /// Runs a command, then tells its event: verb and final reply (a transfer's is told when the
    /// transfer ends, with its final reply).
    async fn execute(&mut self, command: Command) -> Flow {
        let verb = command.verb();
        self.tell_live(|view| view.last_command = verb);
        let flow = self.checked_dispatch(command).await;
        if self.transfer.is_none() {
            self.context.events.emit(events::Event::Command {
                session: self.id,
                verb,
                code: self.last_code,
            });
        }
        flow
    }

    /// The checks every command goes through, then the one dispatch `match`.
    async fn checked_dispatch(&mut self, command: Command) -> Flow {
        tracing::debug!(peer = %self.peer, command = ?command, "command");
        // RNFR must be followed directly by RNTO: any other command forgets it, and so does an
        // RNTO refused by the checks below (a later RNTO must not rename it).
        let rename_from = self.rename_from.take();
        // REST is for the next transfer command, whatever becomes of it: one refused by the
        // checks below, a listing or STOU (which have no use for it) must not leave it to a
        // later STOR, which would then overwrite a file from that offset. Commands between
        // REST and the transfer (PASV, PORT, TYPE, SIZE) keep it, as clients send them there.
        let restart_offset = match &command {
            Command::Retr(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Stou
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_) => std::mem::take(&mut self.restart_offset),
            _ => 0,
        };
        if !matches!(command, Command::Rang(..) | Command::Hash(_)) {
            // RANG is for the HASH right after it: any other command forgets it, and a transfer,
            // which would ignore the range, is refused rather than sending the whole file.
            let ranged = self.hash_range.take().is_some();
            if ranged
                && matches!(
                    command,
                    Command::Retr(_) | Command::Stor(_) | Command::Appe(_)
                )
            {
                return self
                    .reply(504, "RANG applies to HASH only; range reset.")
                    .await;
            }
        }
        if logs_in(&command, self.logged_in()) && !self.context.is_current() {
            // The configuration was reloaded since this session began: its accounts may be
            // gone, so it logs in no more (a logged-in session keeps its settings).
            self.reply(421, "Configuration reloaded; please reconnect.")
                .await;
            return Flow::Quit;
        }
        if needs_login(&command) && !self.logged_in() {
            return self.reply(530, "Please login with USER and PASS.").await;
        }
        if new_name(&command).is_some_and(|name| !acceptable_name(name)) {
            return self
                .reply(553, "File name not allowed: control characters.")
                .await;
        }
        if path_argument(&command)
            .is_some_and(|arg| crate::storage::uploads::is_private(&self.resolve(arg)))
        {
            // An upload still in progress (or left broken) is nobody's to see or touch.
            return self.reply(550, "No such file or directory.").await;
        }
        if let Some((permission, arg)) = required_permission(&command) {
            if !self.permitted(permission, &self.resolve(arg)).await {
                return self.reply(550, "Permission denied.").await;
            }
        }
        match &command {
            Command::Rnto(_) => self.rename_from = rename_from,
            Command::Retr(_) | Command::Stor(_) | Command::Appe(_) => {
                self.restart_offset = restart_offset;
            }
            _ => {}
        }
        self.dispatch(command).await
    }

    /// Runs one command by its handler.
    ///
    /// Handlers whose state is large are boxed here, so that this future (and the command's,
    /// boxed by the loop) stays under the allocator's fast size (about 1 KiB): a login's or a
    /// small transfer's commands then allocate from its thread cache and copy little.
    async fn dispatch(&mut self, command: Command) -> Flow {
        use Command as C;
        match command {
            C::User(name) => self.user(name).await,
            C::Pass(password) => self.pass(password).await,
            C::Acct(_) => self.acct().await,
            C::Rein => self.rein().await,
            C::Quit => self.quit().await,
            C::Cwd(path) => Box::pin(self.cwd(&path)).await,
            C::Cdup => Box::pin(self.cwd("..")).await,
            C::Pwd => self.pwd().await,
            C::Port(addr) => self.port(addr, "PORT").await,
            C::Eprt(addr) => self.port(addr, "EPRT").await,
            C::Pasv => self.pasv().await,
            C::Epsv(arg) => self.epsv(arg).await,
            C::Type(kind) => self.set_type(kind).await,
            C::Stru(code) => self.stru(code).await,
            C::Mode(code) => self.mode(code).await,
            C::Retr(path) => Box::pin(self.retr(&path)).await,
            C::Stor(path) => Box::pin(self.stor(&path, transfer::Upload::Store)).await,
            C::Appe(path) => Box::pin(self.stor(&path, transfer::Upload::Append)).await,
            C::Stou => Box::pin(self.stou()).await,
            C::Allo => self.reply(202, "ALLO command ignored.").await,
            C::Rest(offset) => self.rest(offset).await,
            C::Abor => self.reply(225, "No transfer to abort.").await,
            C::Rnfr(path) => Box::pin(self.rnfr(&path)).await,
            C::Rnto(path) => Box::pin(self.rnto(&path)).await,
            C::Dele(path) => self.dele(&path).await,
            C::Rmd(path) => self.rmd(&path).await,
            C::Mkd(path) => self.mkd(&path).await,
            C::List(arg) => Box::pin(self.list(arg.as_deref(), listing::Format::Long)).await,
            C::Nlst(arg) => Box::pin(self.list(arg.as_deref(), listing::Format::Names)).await,
            C::Mlsd(arg) => Box::pin(self.list(arg.as_deref(), listing::Format::Facts)).await,
            C::Mlst(arg) => Box::pin(self.mlst(arg.as_deref())).await,
            C::Size(path) => self.size(&path).await,
            C::Mdtm(path) => Box::pin(self.mdtm(&path)).await,
            C::Site(arg) => Box::pin(self.site(&arg)).await,
            C::Syst => self.reply(215, "UNIX Type: L8").await,
            C::Stat(arg) => Box::pin(self.stat(arg.as_deref())).await,
            C::Help(arg) => self.help(arg.as_deref()).await,
            C::Noop => self.reply(200, "NOOP ok.").await,
            C::Feat => Box::pin(self.feat()).await,
            C::Opts(name, value) => Box::pin(self.opts(&name, value.as_deref())).await,
            C::Auth(mechanism) => Box::pin(self.auth(&mechanism)).await,
            C::Pbsz(size) => self.pbsz(size).await,
            C::Prot(level) => self.prot(level).await,
            C::Ccc => Box::pin(self.ccc()).await,
            C::Hash(path) => Box::pin(self.hash(&path)).await,
            C::Checksum {
                algorithm,
                path,
                start,
                end,
            } => Box::pin(self.legacy_checksum(algorithm, &path, start, end)).await,
            C::Rang(start, end) => self.rang(start, end).await,
            C::Mfmt(secs, path) => self.mfmt(secs, &path).await,
            C::Host(name) => self.host(&name).await,
            C::Avbl(path) => self.avbl(path.as_deref()).await,
            C::Unimplemented(verb) => self.reply(502, format!("{verb} not implemented.")).await,
        }
    }

    /// Sends a single-line reply. A broken control connection ends the session at the next read.
    async fn reply(&mut self, code: u16, text: impl AsRef<str>) -> Flow {
        self.last_code = code;
        match self.control.send_line(code, text.as_ref()).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Quit,
        }
    }

    async fn send(&mut self, reply: Reply) -> Flow {
        self.last_code = reply.code;
        match self.control.send(&reply).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Quit,
        }
    }

    /// Sends the replies [`control::Control::hold`] kept back.
    async fn flush_held(&mut self) -> Flow {
        match self.control.flush().await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Quit,
        }
    }

    /// The virtual host the session is on (`None`: the default host).
    fn vhost(&self) -> Option<&crate::vhost::Vhost> {
        self.host
            .vhost
            .and_then(|i| self.context.vhosts.get(usize::from(i)))
    }

    /// The name the session's host gives itself in replies.
    fn server_name(&self) -> String {
        self.vhost().map_or_else(
            || self.context.server_name.clone(),
            |v| v.server_name.clone(),
        )
    }

    /// The anonymous settings of the session's host.
    fn anonymous_settings(&self) -> &crate::config::AnonymousConfig {
        self.vhost()
            .map_or(&self.context.config.anonymous, |v| &v.anonymous)
    }

    /// The MLST/MLSD facts shown (OPTS MLST).
    fn mlst_facts(&self) -> &[&'static str] {
        self.mlst_facts
            .as_deref()
            .unwrap_or(&ferry_proto::listing::MLST_FACTS)
    }

    fn account(&self) -> Option<&Account> {
        match &self.login {
            Login::LoggedIn(account) => Some(account.as_ref()),
            _ => None,
        }
    }

    fn logged_in(&self) -> bool {
        self.account().is_some()
    }

    /// Whether the logged-in account may do `permission` at `path` as it is named.
    fn allowed(&self, permission: Permission, path: &VirtualPath) -> bool {
        self.account()
            .is_some_and(|a| a.policy.allows(permission, path))
    }

    /// Whether the logged-in account may do `permission` at `path`: where folders have rules
    /// of their own, both at the path as named and where it really leads, so that a symlink
    /// cannot carry a user past a rule.
    async fn permitted(&self, permission: Permission, path: &VirtualPath) -> bool {
        if !self.allowed(permission, path) {
            return false;
        }
        if !self.account().is_some_and(|a| a.policy.has_folder_rules()) {
            return true;
        }
        let real = self.real_path(path).await;
        real == *path || self.allowed(permission, &real)
    }

    /// Where `path` really leads (see [`Storage::real_path`]).
    async fn real_path(&self, path: &VirtualPath) -> VirtualPath {
        let probe = path.clone();
        self.with_storage_quick(move |s| Ok(s.real_path(&probe)))
            .await
            .unwrap_or_else(|_| path.clone())
    }

    /// The account's access policy (nothing allowed before login).
    fn policy(&self) -> AccessPolicy {
        self.account().map_or_else(
            || AccessPolicy::new(Default::default()),
            |a| a.policy.clone(),
        )
    }

    fn user_name(&self) -> &str {
        self.account().map_or("-", |a| a.name.as_str())
    }

    /// The logged-in user's storage (callers have passed the login check).
    fn storage(&self) -> Option<Arc<dyn Storage>> {
        self.account().map(|a| Arc::clone(&a.storage))
    }

    /// Runs a storage lookup (a stat, an open, a rename, a mkdir): on this worker when the
    /// back-end says such calls are quick (a local disk answers in microseconds, less than handing
    /// the call to another thread costs), else on the blocking pool like [`Self::with_storage`].
    async fn with_storage_quick<T, F>(&self, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    {
        match self.account() {
            Some(account) if account.storage.quick_lookups() => call(account.storage.as_ref()),
            _ => self.with_storage(call).await,
        }
    }

    /// Runs a storage call that may take long (a listing, a delete, reading a file) on the
    /// blocking pool.
    async fn with_storage<T, F>(&self, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    {
        let Some(storage) = self.storage() else {
            return Err(StorageError::new(
                StorageErrorKind::PermissionDenied,
                &self.cwd,
                "not logged in",
            ));
        };
        tokio::task::spawn_blocking(move || call(storage.as_ref()))
            .await
            .unwrap_or_else(|e| {
                Err(StorageError::new(
                    StorageErrorKind::Other,
                    &VirtualPath::root(),
                    &e.to_string(),
                ))
            })
    }

    /// The quota usage that counts `path`, if the account has a quota there.
    fn quota_for(&self, path: &VirtualPath) -> Option<Arc<crate::quota::Usage>> {
        self.account()
            .and_then(|a| a.quota.as_ref())
            .filter(|usage| usage.covers(path))
            .cloned()
    }

    /// Replies to a failed storage call; the one place storage errors become reply codes.
    /// In a folder the user may not list (a drop box), what exists there is not told: every
    /// "is there something" error gets the same reply.
    async fn reply_storage_error(&mut self, error: &StorageError) -> Flow {
        tracing::debug!(peer = %self.peer, error = %error, "storage error");
        let folder = VirtualPath::root().join(&error.path).parent();
        let (code, text) = if self.allowed(Permission::List, &folder) {
            reply_for_storage_error(error.kind)
        } else {
            reply_for_unseen_storage_error(error.kind)
        };
        self.reply(code, text).await
    }

    /// Updates this session's entry on the status page, when the admin listener is on.
    fn tell_live(&self, change: impl FnOnce(&mut crate::live::SessionView)) {
        if let Some(live) = self.context.live() {
            live.update(self.id, change);
        }
    }

    /// Tells a TLS handshake's outcome (for metrics).
    fn tell_handshake(&self, data: bool, ok: bool, resumed: bool) {
        self.context.events.emit(events::Event::TlsHandshake {
            session: self.id,
            data,
            ok,
            resumed,
        });
    }

    fn resolve(&self, arg: &str) -> VirtualPath {
        self.cwd.join(arg)
    }
}

/// The reply code and text for each kind of storage error.
pub fn reply_for_storage_error(kind: StorageErrorKind) -> (u16, &'static str) {
    use StorageErrorKind as K;
    match kind {
        K::NotFound => (550, "No such file or directory."),
        K::PermissionDenied => (550, "Permission denied."),
        K::AlreadyExists => (550, "File exists."),
        K::NotADirectory => (550, "Not a directory."),
        K::NotAFile => (550, "Not a plain file."),
        K::DirectoryNotEmpty => (550, "Directory not empty."),
        K::NoSpace => (452, "Insufficient storage space."),
        K::BadName => (553, "File name not allowed."),
        K::Unsupported => (
            550,
            "Requested action not taken: not possible on this storage.",
        ),
        K::Other => (451, "Local error in processing."),
    }
}

/// The reply for a storage error in a folder the user may not list: the same for a name
/// that exists and one that does not.
pub fn reply_for_unseen_storage_error(kind: StorageErrorKind) -> (u16, &'static str) {
    use StorageErrorKind as K;
    match kind {
        K::NotFound
        | K::AlreadyExists
        | K::NotADirectory
        | K::NotAFile
        | K::DirectoryNotEmpty
        | K::Unsupported
        | K::BadName
        | K::PermissionDenied => (550, "Requested action not taken."),
        K::NoSpace | K::Other => reply_for_storage_error(kind),
    }
}

/// The name a command creates (MKD, STOR, APPE, RNTO), to be checked before it is made.
fn new_name(command: &Command) -> Option<&str> {
    use Command as C;
    match command {
        C::Mkd(path) | C::Stor(path) | C::Appe(path) | C::Rnto(path) => Some(path),
        _ => None,
    }
}

/// Whether a client may give a new file or folder this name: no control characters (C0, DEL),
/// which would reach other users' terminals through listings and replies, or break a line.
fn acceptable_name(name: &str) -> bool {
    !name.chars().any(|c| c.is_ascii_control())
}

/// The path a command names, for the checks every path goes through (listings and SITE CHMOD,
/// whose paths come out of their own grammar, check in their handlers).
fn path_argument(command: &Command) -> Option<&str> {
    use Command as C;
    match command {
        C::Retr(path)
        | C::Stor(path)
        | C::Appe(path)
        | C::Dele(path)
        | C::Rmd(path)
        | C::Mkd(path)
        | C::Rnfr(path)
        | C::Rnto(path)
        | C::Size(path)
        | C::Mdtm(path)
        | C::Hash(path)
        | C::Checksum { path, .. }
        | C::Mfmt(_, path)
        | C::Cwd(path) => Some(path),
        C::Mlst(path) | C::Avbl(path) => path.as_deref(),
        _ => None,
    }
}

/// Whether a command is (part of) a login: USER, or PASS before login.
fn logs_in(command: &Command, logged_in: bool) -> bool {
    match command {
        Command::User(_) => true,
        Command::Pass(_) => !logged_in,
        _ => false,
    }
}

/// Commands a client may send before logging in.
fn needs_login(command: &Command) -> bool {
    use Command as C;
    !matches!(
        command,
        C::User(_)
            | C::Pass(_)
            | C::Acct(_)
            | C::Rein
            | C::Quit
            | C::Feat
            | C::Syst
            | C::Help(_)
            | C::Noop
            | C::Auth(_)
            | C::Pbsz(_)
            | C::Prot(_)
            | C::Ccc
            | C::Opts(..)
            | C::Stat(None)
            | C::Host(_)
            | C::Unimplemented(_)
    )
}

/// The permission a command needs, and the argument naming the path it needs it on. Listings
/// and SITE CHMOD, whose paths come out of their arguments' own grammar, check in their handlers;
/// so do STOR and APPE (upload, overwrite or append) and RNTO (overwrite), which depend on whether the target
/// exists.
fn required_permission(command: &Command) -> Option<(Permission, &str)> {
    use Command as C;
    use Permission as P;
    Some(match command {
        C::Retr(path) | C::Hash(path) | C::Checksum { path, .. } => (P::Download, path),
        C::Mfmt(_, path) => (P::Overwrite, path),
        C::Stou => (P::Upload, "."),
        C::Dele(path) => (P::Delete, path),
        C::Rmd(path) => (P::Rmdir, path),
        C::Mkd(path) => (P::Mkdir, path),
        C::Rnfr(path) | C::Rnto(path) => (P::Rename, path),
        C::Size(path) | C::Mdtm(path) => (P::List, path),
        C::Mlst(path) => (P::List, path.as_deref().unwrap_or(".")),
        _ => return None,
    })
}

/// IPv4-mapped IPv6 addresses (from a dual-stack listener) as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    /// An idle session is its task's future: keep it small (ferryd holds tens of thousands).
    #[tokio::test]
    async fn an_idle_session_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let config = crate::Config {
            root: std::env::temp_dir(),
            ..Default::default()
        };
        let context = std::sync::Arc::new(crate::Context::new(config).unwrap());
        let (_stop, stop_signal) = tokio::sync::watch::channel(crate::server::Stop::Running);
        let admission = (
            context.sessions.take().unwrap(),
            context.sessions_per_ip.acquire(&peer.ip(), None),
        );
        let session =
            super::Session::new(context, stream, peer, stop_signal, false, admission).unwrap();
        let size = std::mem::size_of_val(&session.run());
        eprintln!("a session's task future is {size} bytes");
        assert!(size <= 1600, "a session's future is {size} bytes");
    }
}
