//! The listener: accepts control connections, runs one session task each, caps their number,
//! and shuts down gracefully.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests bind port 0 and
//! never race for a fixed port. Reloading and draining in stages are in [`crate::lifecycle`],
//! which runs the accept loop; this module holds what it shares: the [`Context`], and how a
//! connection is admitted and its session started.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferry_proto::Reply;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checker::Checker;
use crate::config::{Config, ConfigError};
use crate::lifecycle::{Listeners, Server};
use crate::limits::{BanList, BanRule, Budget, BudgetGuard, CountGuard, Counter, RateLimiter};
use crate::passive::PassiveAddresses;
use crate::proxy::{self, Header, Trusted};
use crate::session::Session;
use crate::storage::object::{ObjectFs, PartSettings};
use crate::storage::s3::S3Client;
use crate::storage::upload_memory::UploadMemory;
use crate::storage::{uploads, LocalFs, ObjectRoot, Storage};
use crate::tls::{TlsError, TlsSettings};
use crate::users::{Authenticator, Users, UsersError};

/// What every session shares: the configuration, the accounts, and the limits' counters.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub authenticator: Arc<dyn Authenticator>,
    pub server_name: String,
    pub greeting: String,
    pub passive_ports: Option<(u16, u16)>,
    /// What PASV advertises to each client (`data.passive_address`, host names resolved when
    /// this context was made); `None`: the control connection's local address.
    pub passive_addresses: Option<PassiveAddresses>,
    /// Passive listeners sessions keep open for their next PASV: at most half the passive range,
    /// so sessions that have finished a transfer never hold every port.
    pub kept_passive: Budget,
    /// Sessions running (at most `max_sessions`).
    pub sessions: Budget,
    /// Password checks (argon2): on half the cores' worth of threads of their own.
    pub password_checks: Arc<Checker>,
    /// FTPS, when a certificate is configured.
    pub tls: Option<TlsSettings>,
    /// The proxies' networks, when the PROXY protocol is on (then required).
    pub proxy: Option<Arc<Trusted>>,
    pub sessions_per_ip: Counter<IpAddr>,
    pub sessions_per_user: Counter<String>,
    pub bans: BanList,
    /// Private upload files being written (by storage and path): one upload at a time each,
    /// though several sessions of one user share them.
    pub private_uploads: Counter<String>,
    /// Where events (sessions, logins, transfers) go: the log line, log files, metrics.
    pub events: crate::events::Events,
    /// What the accounts with a quota use, shared by their sessions.
    pub quotas: Arc<crate::quota::Ledger>,
    /// Checksums being computed (HASH, XCRC, ...): at most `checksums.max_running` at once.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Each named account's aggregate (download, upload) limiters, made at its first login.
    user_rates: Mutex<HashMap<String, SharedRates>>,
    /// Open roots, shared by the sessions on them (one descriptor per root, not per session).
    roots: Mutex<HashMap<PathBuf, Weak<dyn Storage>>>,
    /// The anonymous accounts' profiles in use, shared by their sessions.
    pub anonymous_profiles: crate::session::AnonymousProfiles,
    /// A client (and its connection pool) per bucket of the `s3://` roots, made at start: a
    /// missing credential is a configuration error, and certificates are read before any
    /// confinement.
    object_clients: HashMap<String, S3Client>,
    /// The room for upload data in memory that every upload to an object store shares.
    upload_memory: Arc<UploadMemory>,
    /// The virtual hosts (`[[vhost]]`), by index: a session remembers the index of its own.
    pub vhosts: Vec<crate::vhost::Vhost>,
    /// The admin listener's state (metrics, live sessions), when `admin.listen` is set; `None`
    /// otherwise, and then sessions do no work for it.
    pub admin: Option<Arc<crate::admin::Admin>>,
    /// Whether the server takes new sessions (`/ready`), shared by reloaded contexts.
    pub readiness: crate::readiness::Readiness,
    /// This context's place in the line of reloaded ones (0 for the first).
    generation: u64,
    /// The generation serving new connections, shared by every context of the line.
    current_generation: Arc<AtomicU64>,
}

/// An account's limiters, and whether they came from the context before a reload (then they
/// are kept only while the account's rates are unchanged).
#[derive(Debug)]
struct SharedRates {
    rates: UserRates,
    inherited: bool,
}

/// Every root a configuration serves: the server's, the anonymous one, the accounts', and the
/// vhosts' (anonymous and accounts').
fn all_roots(
    config: &Config,
    authenticator: &dyn Authenticator,
    vhosts: &[crate::vhost::Vhost],
) -> Vec<PathBuf> {
    let mut roots = vec![config.root.clone(), config.anonymous_root()];
    roots.extend(authenticator.roots());
    for vhost in vhosts {
        roots.push(vhost.anonymous_root());
        roots.extend(vhost.authenticator.roots());
    }
    roots.sort();
    roots.dedup();
    roots
}

/// The S3 clients of every bucket a root is on.
fn object_clients(
    config: &Config,
    roots: Vec<PathBuf>,
) -> Result<HashMap<String, S3Client>, ConfigError> {
    let mut clients = HashMap::new();
    for root in roots {
        let Some(Ok(object)) = ObjectRoot::parse(&root) else {
            continue;
        };
        if clients.contains_key(&object.bucket) {
            continue;
        }
        let client = new_client(&config.s3, &object.bucket)
            .map_err(|e| ConfigError::Invalid(format!("{}: {e}", root.display())))?;
        clients.insert(object.bucket, client);
    }
    Ok(clients)
}

fn new_client(settings: &crate::config::S3Settings, bucket: &str) -> Result<S3Client, String> {
    let config = crate::storage::object::client_config(settings, bucket)?;
    S3Client::new(config).map_err(|e| e.to_string())
}

/// What the server tells its sessions when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// No new commands after the running transfer: then 421.
    Closing,
    /// The grace period is over: running transfers are broken off (426), then 421.
    Cut,
}

/// Passive listeners kept at once when PASV may use any port (the kernel's ephemeral range is
/// shared with every outgoing connection on the machine).
const KEPT_PASSIVE_WITHOUT_RANGE: usize = 4096;

/// One account's bandwidth limiters, shared by its sessions.
pub type UserRates = (Option<Arc<RateLimiter>>, Option<Arc<RateLimiter>>);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start the password-check threads: {0}")]
    Threads(std::io::Error),
    #[error("{0}")]
    Logs(String),
}

impl Context {
    /// Validates the configuration and loads the users file.
    pub fn new(config: Config) -> Result<Context, StartError> {
        let users = match &config.users_file {
            Some(path) => Users::load(path)?,
            None => Users::default(),
        };
        Context::with_authenticator(config, Arc::new(users))
    }

    /// Validates the configuration; accounts come from `authenticator`.
    pub fn with_authenticator(
        config: Config,
        authenticator: Arc<dyn Authenticator>,
    ) -> Result<Context, StartError> {
        config.validate()?;
        let ban_rule = ban_rule(&config);
        let server_name = config.server_name();
        let tls = TlsSettings::load(&config.tls, &server_name, &config.vhosts)?;
        if tls.is_some() && config.tls.self_signed && config.tls.certificate.is_none() {
            tracing::warn!("using a self-signed certificate made at start: clients must pin it or skip verification");
        }
        let passive_ports = config.passive_port_range()?;
        let passive_addresses = config.passive_addresses()?;
        let vhosts = crate::vhost::load(&config)?;
        let object_clients =
            object_clients(&config, all_roots(&config, authenticator.as_ref(), &vhosts))?;
        let mut events =
            crate::events::Events::from_config(&config.logs).map_err(StartError::Logs)?;
        let admin = match config.admin.listen {
            Some(_) => {
                let admin = Arc::new(crate::admin::Admin::new(config.admin.token()?));
                events.add(admin.metrics.clone());
                events.add(admin.live.clone());
                Some(admin)
            }
            None => None,
        };
        Ok(Context {
            tls,
            proxy: config.proxy_trust()?.map(Arc::new),
            server_name,
            greeting: config.greeting(),
            passive_ports,
            passive_addresses,
            password_checks: Arc::new(
                Checker::new(
                    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2)),
                )
                .map_err(StartError::Threads)?,
            ),
            kept_passive: Budget::new(kept_passive_limit(passive_ports)),
            sessions: Budget::new(config.max_sessions),
            authenticator,
            sessions_per_ip: Counter::default(),
            sessions_per_user: Counter::default(),
            bans: BanList::new(ban_rule),
            private_uploads: Counter::default(),
            events,
            admin,
            readiness: crate::readiness::Readiness::default(),
            quotas: Arc::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(config.checksums.max_running)),
            user_rates: Mutex::default(),
            roots: Mutex::default(),
            anonymous_profiles: Default::default(),
            object_clients,
            upload_memory: Arc::new(UploadMemory::new(
                config.s3.upload_memory,
                usize::try_from(config.s3.part_size).unwrap_or(usize::MAX),
            )),
            vhosts,
            generation: 0,
            current_generation: Arc::default(),
            config,
        })
    }

    /// This context, made from a reloaded configuration, takes over what must outlive the
    /// context `old` serves with: the counts of running sessions (server-wide, per address, per
    /// account, kept passive ports) so limits count old and new sessions together; the ban list
    /// and failed-login counts; the locks of private uploads being written; the quota ledger
    /// (one set of counters per account, which old and new sessions charge alike); the
    /// checksum slots when `checksums.max_running` is unchanged; the room for object-store upload
    /// data when its size and the part size are unchanged; the password-check threads;
    /// the roots still open (one storage per root, which the private-upload locks rely on);
    /// and the accounts' shared rate limiters while their rates are unchanged. New settings
    /// (limits, rules) apply to the shared state from now on.
    pub fn inherit(mut self, old: &Context) -> Context {
        self.sessions = old.sessions.with_limit(self.config.max_sessions);
        self.kept_passive = old
            .kept_passive
            .with_limit(kept_passive_limit(self.passive_ports));
        self.sessions_per_ip = old.sessions_per_ip.clone();
        self.sessions_per_user = old.sessions_per_user.clone();
        self.bans = old.bans.with_rule(ban_rule(&self.config));
        self.private_uploads = old.private_uploads.clone();
        self.quotas = Arc::clone(&old.quotas);
        // The same log files keep their writers (and SIGHUP reopens them); new ones start.
        // Session and transfer numbers, and the admin listener's metrics and live sessions, go
        // on either way, as does readiness. The admin listener takes the new token (and the
        // server moves it to a new address); turning it on or off needs a restart.
        self.events = match self.config.logs == old.config.logs {
            true => old.events.clone(),
            false => old.events.with_log_writers_of(&self.events),
        };
        self.admin = match (&old.admin, &self.admin) {
            (Some(old), Some(new)) => Some(Arc::new(old.carry_on(new))),
            (old, _) => old.clone(),
        };
        self.readiness = old.readiness.clone();
        if self.config.checksums.max_running == old.config.checksums.max_running {
            self.hashing = Arc::clone(&old.hashing);
        }
        self.password_checks = Arc::clone(&old.password_checks);
        if (self.config.s3.upload_memory, self.config.s3.part_size)
            == (old.config.s3.upload_memory, old.config.s3.part_size)
        {
            self.upload_memory = Arc::clone(&old.upload_memory);
        }
        self.roots = Mutex::new(open_roots_to_keep(old, &self));
        let old_rates = old.user_rates.lock().unwrap_or_else(|p| p.into_inner());
        let inherited = old_rates.iter().map(|(user, shared)| {
            let rates = shared.rates.clone();
            let shared = SharedRates {
                rates,
                inherited: true,
            };
            (user.clone(), shared)
        });
        *self.user_rates.get_mut().unwrap_or_else(|p| p.into_inner()) = inherited.collect();
        self.generation = old.generation + 1;
        self.current_generation = Arc::clone(&old.current_generation);
        self
    }

    /// Makes this context the one new connections are served with: sessions of older ones
    /// that have not logged in may no longer log in (see [`Context::is_current`]).
    pub fn publish(&self) {
        self.current_generation
            .store(self.generation, Ordering::Release);
    }

    /// Whether this context still serves new connections (no reload has replaced it).
    pub fn is_current(&self) -> bool {
        self.current_generation.load(Ordering::Acquire) == self.generation
    }

    /// Bytes of upload data held in memory for object stores now (see
    /// [`crate::storage::upload_memory`]).
    pub fn upload_memory_in_use(&self) -> u64 {
        self.upload_memory.in_use()
    }

    /// The live sessions, when the admin listener is on.
    pub fn live(&self) -> Option<&crate::live::Live> {
        self.admin.as_deref().map(|admin| admin.live.as_ref())
    }

    /// The storage for a root folder: the one already open for other sessions, or a new one.
    pub fn storage_for(&self, root: &Path) -> std::io::Result<Arc<dyn Storage>> {
        let mut roots = self.roots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = roots.get(root).and_then(Weak::upgrade) {
            return Ok(open);
        }
        roots.retain(|_, open| open.strong_count() > 0);
        let storage: Arc<dyn Storage> = match ObjectRoot::parse(root) {
            Some(Ok(object)) => Arc::new(self.object_fs(&object)?),
            Some(Err(message)) => return Err(std::io::Error::other(message)),
            None => Arc::new(LocalFs::open(root)?),
        };
        roots.insert(root.to_path_buf(), Arc::downgrade(&storage));
        Ok(storage)
    }

    /// An object store's root (called inside the runtime its requests will use).
    pub fn object_fs(&self, root: &ObjectRoot) -> std::io::Result<ObjectFs> {
        let settings = &self.config.s3;
        let client = match self.object_clients.get(&root.bucket) {
            Some(client) => client.clone(),
            None => new_client(settings, &root.bucket).map_err(std::io::Error::other)?,
        };
        let parts = PartSettings {
            part_size: usize::try_from(settings.part_size).unwrap_or(usize::MAX),
            parts_in_flight: settings.parts_in_flight,
            memory: Arc::clone(&self.upload_memory),
        };
        Ok(ObjectFs::new(client, &root.prefix, parts))
    }

    /// Every root served: the server's, the anonymous one, the accounts', the vhosts'.
    pub fn roots(&self) -> Vec<PathBuf> {
        all_roots(&self.config, self.authenticator.as_ref(), &self.vhosts)
    }

    /// Reaches every object store's bucket once, and says exactly what is wrong with the first
    /// that does not answer (`--check-config`, and the start).
    pub async fn check_object_roots(&self) -> Result<(), String> {
        for root in self.roots() {
            let Some(Ok(object)) = ObjectRoot::parse(&root) else {
                continue;
            };
            let fs = self
                .object_fs(&object)
                .map_err(|e| format!("{}: {e}", root.display()))?;
            fs.check()
                .await
                .map_err(|e| format!("{}: {e}", root.display()))?;
        }
        Ok(())
    }

    /// The shared limiters of an account with these rates (the first login's rates stay; after
    /// a reload, the limiters from before it while the account's rates are the same).
    pub fn user_rates(&self, user: &str, download: Option<u64>, upload: Option<u64>) -> UserRates {
        let mut rates = self.user_rates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = rates.get_mut(user) {
            let same = |limiter: &Option<Arc<RateLimiter>>, rate: Option<u64>| {
                limiter.as_ref().map(|l| l.rate()) == rate.map(|r| r.max(1))
            };
            if !shared.inherited
                || (same(&shared.rates.0, download) && same(&shared.rates.1, upload))
            {
                shared.inherited = false;
                return shared.rates.clone();
            }
        }
        let made = (
            download.map(|r| Arc::new(RateLimiter::new(r))),
            upload.map(|r| Arc::new(RateLimiter::new(r))),
        );
        let shared = SharedRates {
            rates: made.clone(),
            inherited: false,
        };
        rates.insert(user.to_string(), shared);
        made
    }
}

/// The roots open in `old` that the reloaded context `new` keeps using: one storage per root
/// for old and new sessions alike, as the locks of private uploads are per storage. An object
/// store's roots only while the `[s3]` settings and the credentials read for its bucket are
/// unchanged (else new sessions get a client made with the new ones: rotated credentials take
/// effect at once, while sessions are open).
fn open_roots_to_keep(old: &Context, new: &Context) -> HashMap<PathBuf, Weak<dyn Storage>> {
    let same_store = old.config.s3 == new.config.s3;
    let same_client = |bucket: &str| match (
        old.object_clients.get(bucket),
        new.object_clients.get(bucket),
    ) {
        (Some(old), Some(new)) => old.same_as(new),
        _ => false,
    };
    let roots = old.roots.lock().unwrap_or_else(|p| p.into_inner());
    roots
        .iter()
        .filter(|(root, open)| {
            let kept = match ObjectRoot::parse(root) {
                None => true,
                Some(Ok(object)) => same_store && same_client(&object.bucket),
                Some(Err(_)) => false,
            };
            open.strong_count() > 0 && kept
        })
        .map(|(root, open)| (root.clone(), Weak::clone(open)))
        .collect()
}

/// When failed logins get an address banned.
fn ban_rule(config: &Config) -> BanRule {
    let limits = &config.limits;
    BanRule {
        failures: limits.ban_after_failures,
        window: Duration::from_secs(limits.ban_window),
        ban: Duration::from_secs(limits.ban_seconds),
    }
}

/// Passive listeners kept at once: half the passive range.
fn kept_passive_limit(passive_ports: Option<(u16, u16)>) -> usize {
    match passive_ports {
        Some((start, end)) => usize::from(end - start).div_ceil(2),
        None => KEPT_PASSIVE_WITHOUT_RANGE,
    }
}

/// Serves FTP on `listener` until `shutdown` completes; then stops accepting, lets sessions
/// finish their transfers for up to the configured grace period, and closes the rest.
pub async fn run(listener: TcpListener, context: Arc<Context>, shutdown: impl Future) {
    run_with_implicit_tls(listener, None, context, shutdown).await;
}

/// Like [`run`], with a second listener for implicit FTPS (TLS from the first byte).
pub async fn run_with_implicit_tls(
    listener: TcpListener,
    implicit: Option<TcpListener>,
    context: Arc<Context>,
    shutdown: impl Future,
) {
    let listeners = Listeners {
        control: listener,
        implicit,
        admin: None,
    };
    let (server, handle) = Server::new(listeners, context);
    let stop = async move {
        shutdown.await;
        handle.drain();
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = server.run() => {}
        () = stop => {}
    }
}

/// Removes abandoned uploads' private files from the served roots, at start and every hour;
/// only where someone can upload (a read-only server's folders are never walked).
pub(crate) async fn sweep_abandoned_uploads(context: Arc<Context>) {
    let config = &context.config;
    let uploads_possible = config.anonymous.writable
        || config.anonymous.upload_folder.is_some()
        || config.users_file.is_some()
        || config.atomic_uploads;
    let Some(age) = config.abandoned_upload().filter(|_| uploads_possible) else {
        return;
    };
    let (objects, roots): (Vec<PathBuf>, Vec<PathBuf>) = context
        .roots()
        .into_iter()
        .partition(|root| ObjectRoot::parse(root).is_some());
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        let roots = roots.clone();
        let swept = tokio::task::spawn_blocking(move || uploads::sweep(&roots, age)).await;
        tracing::debug!(removed = swept.unwrap_or(0), "swept abandoned uploads");
        for root in &objects {
            let Some(Ok(object)) = ObjectRoot::parse(root) else {
                continue;
            };
            let swept = match context.object_fs(&object) {
                Ok(fs) => fs.sweep_abandoned(age).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match swept {
                Ok(count) => {
                    tracing::info!(root = %root.display(), aborted = count, "swept abandoned multipart uploads")
                }
                Err(error) => {
                    tracing::warn!(root = %root.display(), %error, "cannot sweep abandoned multipart uploads")
                }
            }
        }
    }
}

/// Waits up to `limit` for every session to end; says whether they all did.
pub(crate) async fn drain(sessions: &mut JoinSet<()>, limit: Duration) -> bool {
    let all = async { while sessions.join_next().await.is_some() {} };
    tokio::time::timeout(limit, all).await.is_ok()
}

/// Accepts on the listener if there is one; otherwise waits forever.
pub(crate) async fn accept_if_any(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Starts the session of a new control connection: at once, or, with the PROXY protocol, once
/// its header has said who the client is.
pub(crate) fn start_session(
    sessions: &mut JoinSet<()>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    context: &Arc<Context>,
    stop_signal: &watch::Receiver<Stop>,
) {
    let start = Start {
        implicit_tls,
        context: Arc::clone(context),
        stop_signal: stop_signal.clone(),
    };
    let Some(trusted) = &context.proxy else {
        match start.admit(stream, peer) {
            // The session's future is the whole task: every byte of it is held for the
            // session's life, ten thousand times over, so nothing else goes in.
            Ok(Some(session)) => {
                sessions.spawn(session.run());
            }
            Ok(None) => {}
            Err((stream, text)) => {
                sessions.spawn(refuse(stream, text));
            }
        }
        return;
    };
    if !trusted.trusts(peer.ip()) {
        tracing::warn!(
            peer = %peer.ip().to_canonical(),
            "connection refused: not from a PROXY protocol source (proxy_protocol.from)"
        );
        return;
    }
    sessions.spawn(start.proxied(stream, peer));
}

/// What a session needs from the listener to start.
struct Start {
    implicit_tls: bool,
    context: Arc<Context>,
    stop_signal: watch::Receiver<Stop>,
}

impl Start {
    /// Admits a connection from `client` (its TCP peer, or the PROXY header's source) under the
    /// bans and limits, and makes its session. `Err` carries the refusal to send; `Ok(None)`, a
    /// connection that closed first.
    fn admit(
        self,
        stream: tokio::net::TcpStream,
        client: SocketAddr,
    ) -> Result<Option<Session>, (tokio::net::TcpStream, &'static str)> {
        let ip = client.ip().to_canonical();
        let (ip_guard, permit) = match admit(&self.context, ip) {
            Ok(admitted) => admitted,
            Err(text) => {
                tracing::warn!(peer = %ip, reason = text, "connection refused");
                return Err((stream, text));
            }
        };
        match Session::new(
            self.context,
            stream,
            client,
            self.stop_signal,
            self.implicit_tls,
            (permit, ip_guard),
        ) {
            Ok(session) => Ok(Some(session)),
            Err(error) => {
                tracing::debug!(%error, "connection closed before the session started");
                Ok(None)
            }
        }
    }

    /// A connection from a proxy: reads its PROXY header (within the login timeout, before any
    /// reply), then runs the session of the client it names. A connection without a valid
    /// header is closed without a word; a `LOCAL` or `UNKNOWN` one (a health check) quietly.
    async fn proxied(mut self, mut stream: tokio::net::TcpStream, proxy: SocketAddr) {
        let proxy = proxy.ip().to_canonical();
        let wait = self.context.config.login_timeout();
        let header = tokio::select! {
            header = proxy::read_header(&mut stream, wait) => header,
            // The server is stopping: no new session.
            _ = self.stop_signal.changed() => return,
        };
        let client = match header {
            Ok(Header::Proxied(client)) => client,
            Ok(Header::Local) => {
                tracing::debug!(%proxy, "PROXY header without a client (LOCAL or UNKNOWN): closed");
                return;
            }
            Err(error) => {
                tracing::warn!(%proxy, %error, "connection closed: no valid PROXY header");
                return;
            }
        };
        tracing::debug!(peer = %client, %proxy, "PROXY header");
        match self.admit(stream, client) {
            // Boxed: this task's own state is small beside it.
            Ok(Some(session)) => Box::pin(session.run()).await,
            Ok(None) => {}
            Err((stream, text)) => refuse(stream, text).await,
        }
    }
}

/// Checks a new connection against the ban list, the per-address limit and the session limit.
fn admit(
    context: &Context,
    ip: IpAddr,
) -> Result<(Option<CountGuard<IpAddr>>, BudgetGuard), &'static str> {
    if let Some(left) = context.bans.banned_for(ip) {
        tracing::debug!(peer = %ip, seconds_left = left.as_secs(), "banned address");
        return Err("Too many failed logins from your address; try again later.");
    }
    // Counted only when there is a limit (0: none).
    let guard = match context.config.limits.max_sessions_per_ip {
        0 => None,
        limit => Some(
            context
                .sessions_per_ip
                .acquire(&crate::limits::client_network(ip), Some(limit))
                .ok_or("Too many connections from your address.")?,
        ),
    };
    let permit = context
        .sessions
        .take()
        .ok_or("Too many users, try again later.")?;
    Ok((guard, permit))
}

/// Answers 421 and closes, before reading any command.
async fn refuse(mut stream: tokio::net::TcpStream, text: &'static str) {
    let reply = Reply::new(421, text);
    let _ = stream.write_all(&reply.to_wire()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(adjust: impl FnOnce(&mut Config)) -> Context {
        let mut config = Config {
            root: std::env::temp_dir(),
            ..Config::default()
        };
        adjust(&mut config);
        Context::new(config).unwrap()
    }

    /// A reload keeps an object store's open root (and its client) only while the credentials
    /// read for it are the same: rotated ones reach new sessions while old ones are open.
    #[test]
    fn a_reload_with_new_s3_credentials_gives_new_sessions_a_new_client() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let write = |key: &str| {
            let text = format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = s\n");
            std::fs::write(&credentials, text).unwrap();
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let root = PathBuf::from("s3://bucket/site");
        let object_context = || {
            context(|c| {
                c.root = root.clone();
                c.s3.endpoint = Some("http://127.0.0.1:9".into());
                c.s3.credentials_file = Some(credentials.clone());
            })
        };
        write("FIRST");
        let old = object_context();
        let open = old.storage_for(&root).unwrap();
        let same = object_context().inherit(&old);
        assert!(Arc::ptr_eq(&same.storage_for(&root).unwrap(), &open));
        write("ROTATED");
        let rotated = object_context().inherit(&same);
        assert!(!Arc::ptr_eq(&rotated.storage_for(&root).unwrap(), &open));
    }

    #[test]
    fn a_reloaded_context_shares_what_must_outlive_the_old_one() {
        let old = context(|c| {
            c.max_sessions = 2;
            c.limits.ban_after_failures = 1;
        });
        old.publish();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _session = old.sessions.take().unwrap();
        let _from_ip = old.sessions_per_ip.acquire(&ip, Some(1)).unwrap();
        assert!(old.bans.record_failure(ip).is_some());
        let (download, _) = old.user_rates("alice", Some(1000), None);
        let storage = old.storage_for(&std::env::temp_dir()).unwrap();
        let new = context(|c| c.max_sessions = 2).inherit(&old);
        let reopened = new.storage_for(&std::env::temp_dir()).unwrap();
        assert!(Arc::ptr_eq(&storage, &reopened), "one storage per root");
        assert!(
            old.is_current() && !new.is_current(),
            "not before it is published"
        );
        new.publish();
        assert!(!old.is_current() && new.is_current());
        let second = new.sessions.take();
        assert!(second.is_some());
        assert!(new.sessions.take().is_none(), "the old session counts");
        assert!(new.sessions_per_ip.acquire(&ip, Some(1)).is_none());
        assert!(new.bans.banned_for(ip).is_some(), "the ban holds");
        assert!(Arc::ptr_eq(&old.quotas, &new.quotas));
        assert!(Arc::ptr_eq(&old.hashing, &new.hashing));
        let (same, _) = new.user_rates("alice", Some(1000), None);
        assert!(Arc::ptr_eq(&download.unwrap(), &same.unwrap()));
        let changed = context(|c| c.checksums.max_running = 5).inherit(&new);
        assert!(!Arc::ptr_eq(&new.hashing, &changed.hashing));
        let (other, _) = changed.user_rates("alice", Some(2000), None);
        assert_eq!(
            other.unwrap().rate(),
            2000,
            "a changed rate gets new limiters"
        );
    }
}
