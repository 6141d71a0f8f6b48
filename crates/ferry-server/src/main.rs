//! `ferryd`: the Ferry FTP server's command line.
//!
//! With no arguments it serves the current folder to anonymous users, read-only, on port 21.
//! `--config FILE` loads a TOML file (see `ferryd.example.toml`); most options are also flags,
//! and flags win over the file (virtual hosts, quotas and the checksum limits are file-only).
//! SIGHUP reloads the file (and the users files and certificates) with the same flags on top;
//! SIGTERM and SIGINT drain the server and end it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Parser;
use ferry_server::config::{ActiveSource, Config, TlsPolicy};
use ferry_server::passive::PassiveAddress;
use ferry_server::{Context, Handle, Listeners, Server};

/// Ferry FTP server. Serves a folder over FTP; anonymous read-only by default.
#[derive(Debug, Clone, Parser)]
#[command(name = "ferryd", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML configuration file; flags override its settings.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (file and flags), say what is wrong, and exit.
    #[arg(long)]
    check_config: bool,
    /// Read a password from standard input, print its argon2 hash for the users file, and exit.
    #[arg(long)]
    hash_password: bool,
    /// Address and port to listen on, e.g. 0.0.0.0:21, [::]:21, [::1]:2121 [default: 0.0.0.0:21]
    #[arg(long, short = 'l', value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Folder to serve [default: the current folder]
    #[arg(long, short = 'r', value_name = "DIR")]
    root: Option<PathBuf>,
    /// Name the server gives itself in replies [default: the host name]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Text of the 220 greeting [default: "<DOMAIN> FTP Service"]
    #[arg(long, value_name = "TEXT")]
    banner: Option<String>,
    /// Longest control line accepted, in bytes [default: 4096]
    #[arg(long, value_name = "BYTES")]
    max_line: Option<usize>,
    /// Most sessions at once [default: 1000]
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,
    /// Connections waiting to be accepted that the listener holds [default: 1024]
    #[arg(long, value_name = "N")]
    listen_backlog: Option<u32>,
    /// Refuse anonymous logins.
    #[arg(long)]
    no_anonymous: bool,
    /// Folder served to anonymous users [default: --root]
    #[arg(long, value_name = "DIR")]
    anonymous_root: Option<PathBuf>,
    /// Let anonymous users upload, delete, rename and make folders.
    #[arg(long)]
    anonymous_writable: bool,
    /// Folder (as users see it, e.g. /incoming) where anonymous users may upload new files they
    /// cannot then download, list or overwrite.
    #[arg(long, value_name = "PATH")]
    anonymous_upload_folder: Option<String>,
    /// Let anonymous users make folders in the upload folder.
    #[arg(long)]
    anonymous_upload_mkdir: bool,
    /// TOML file of named accounts with argon2 password hashes.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Passive port range, e.g. 50000-50100 [default: any free port]
    #[arg(long, value_name = "START-END")]
    passive_ports: Option<String>,
    /// IPv4 address or host name to advertise in PASV replies (behind NAT); per client
    /// network in the file (data.passive_address) [default: the control connection's]
    #[arg(long, value_name = "ADDRESS")]
    passive_address: Option<PassiveAddress>,
    /// Source port of active data connections: adjacent (control port - 1) or ephemeral.
    #[arg(long, value_name = "SOURCE", value_parser = parse_active_source)]
    active_source: Option<ActiveSource>,
    /// Allow PORT/EPRT to other hosts than the client (FXP); off, they are refused.
    #[arg(long)]
    allow_fxp: bool,
    /// Refuse PORT and EPRT.
    #[arg(long)]
    no_active: bool,
    /// Do not offer MODE Z (compressed data connections).
    #[arg(long)]
    no_mode_z: bool,
    /// Turn HASH, XCRC, XMD5, XSHA1, XSHA256 and XSHA512 off.
    #[arg(long)]
    no_checksums: bool,
    /// Refuse PASV and EPSV.
    #[arg(long)]
    no_passive: bool,
    /// Seconds a logged-in session may be idle [default: 300]
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Seconds a client has to log in [default: 60]
    #[arg(long, value_name = "SECS")]
    login_timeout: Option<u64>,
    /// Seconds to wait for a data connection [default: 30]
    #[arg(long, value_name = "SECS")]
    data_timeout: Option<u64>,
    /// Seconds a transfer may move no byte before it is broken off [default: 300]
    #[arg(long, value_name = "SECS")]
    stall_timeout: Option<u64>,
    /// Seconds after SIGINT/SIGTERM when running transfers are broken off (older name of
    /// --shutdown-deadline) [default: 10]
    #[arg(long, value_name = "SECS")]
    shutdown_grace: Option<u64>,
    /// Seconds after SIGINT/SIGTERM when running transfers are broken off [default: 10]
    #[arg(long, value_name = "SECS")]
    shutdown_deadline: Option<u64>,
    /// Seconds the listeners keep accepting after SIGINT/SIGTERM [default: 0]
    #[arg(long, value_name = "SECS")]
    accept_grace: Option<u64>,
    /// Milliseconds to wait before answering a failed login [default: 1000]
    #[arg(long, value_name = "MS")]
    failed_login_delay: Option<u64>,
    /// Seconds after which a broken upload's private file is removed, 0 to keep them [default: 86400]
    #[arg(long, value_name = "SECS")]
    abandoned_upload: Option<u64>,
    /// Most sessions from one IP address, 0 for no limit [default: 20]
    #[arg(long, value_name = "N")]
    max_sessions_per_ip: Option<usize>,
    /// Failed logins a session may make before it is closed [default: 3]
    #[arg(long, value_name = "N")]
    max_login_failures: Option<u32>,
    /// Failed logins from one address within the ban window that get it banned, 0 for never [default: 10]
    #[arg(long, value_name = "N")]
    ban_after_failures: Option<u32>,
    /// Seconds over which failed logins are counted for bans [default: 600]
    #[arg(long, value_name = "SECS")]
    ban_window: Option<u64>,
    /// Seconds a ban lasts [default: 900]
    #[arg(long, value_name = "SECS")]
    ban_seconds: Option<u64>,
    /// Bytes per second for each session's downloads, 0 for no limit [default: 0]
    #[arg(long, value_name = "BYTES")]
    download_rate: Option<u64>,
    /// Bytes per second for each session's uploads, 0 for no limit [default: 0]
    #[arg(long, value_name = "BYTES")]
    upload_rate: Option<u64>,
    /// Write uploads to a hidden name and rename them when complete.
    #[arg(long)]
    atomic_uploads: bool,
    /// After binding, switch to this user (when started as root).
    #[arg(long, value_name = "USER")]
    run_as_user: Option<String>,
    /// Restrict file-system access to the served folders with Landlock (Linux).
    #[arg(long)]
    landlock: bool,
    /// PEM certificate chain for FTPS.
    #[arg(long, value_name = "FILE")]
    tls_certificate: Option<PathBuf>,
    /// PEM private key for FTPS.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Generate a self-signed certificate at start (for trying FTPS out).
    #[arg(long)]
    tls_self_signed: bool,
    /// TLS on the control connection: off, optional or required [default: optional]
    #[arg(long, value_name = "POLICY", value_parser = parse_tls_policy)]
    tls_control: Option<TlsPolicy>,
    /// TLS on data connections: off, optional or required [default: optional]
    #[arg(long, value_name = "POLICY", value_parser = parse_tls_policy)]
    tls_data: Option<TlsPolicy>,
    /// Required TLS applies to anonymous users too.
    #[arg(long)]
    tls_anonymous_too: bool,
    /// Do not require data connections to resume the control connection's TLS session.
    #[arg(long)]
    tls_no_session_reuse: bool,
    /// Also listen for implicit FTPS (TLS from the first byte) here, e.g. 0.0.0.0:990.
    #[arg(long, value_name = "ADDR:PORT")]
    implicit_listen: Option<SocketAddr>,
    /// Allow CCC (a clear control connection after login).
    #[arg(long)]
    allow_ccc: bool,
    /// Accept PROXY protocol headers (v1 and v2, as HAProxy's send-proxy) from this network,
    /// e.g. 10.0.0.0/8, fd00::/8 or 127.0.0.1; repeatable. Once set, every control and passive
    /// data connection must come from one of them and begin with a header [default: off]
    #[arg(long, value_name = "CIDR")]
    proxy_protocol_from: Vec<String>,
    /// The object store for s3:// roots, e.g. http://127.0.0.1:3900 [default: AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The object store's region [default: AWS_REGION, else us-east-1]
    #[arg(long, value_name = "REGION")]
    s3_region: Option<String>,
    /// Address buckets as https://host/BUCKET rather than https://BUCKET.host [default: on with --s3-endpoint]
    #[arg(long, value_name = "BOOL")]
    s3_path_style: Option<bool>,
    /// AWS shared-credentials file [default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY]
    #[arg(long, value_name = "FILE")]
    s3_credentials_file: Option<PathBuf>,
    /// Bytes per multipart-upload part [default: 8388608]
    #[arg(long, value_name = "BYTES")]
    s3_part_size: Option<u64>,
    /// Parts each upload sends at once [default: 4]
    #[arg(long, value_name = "N")]
    s3_parts_in_flight: Option<usize>,
    /// Bytes of upload data held in memory for object stores, all uploads together [default: 536870912]
    #[arg(long, value_name = "BYTES")]
    s3_upload_memory: Option<u64>,
    /// Serve /metrics, /health, /ready and /status over HTTP here, e.g. 127.0.0.1:9121 [default: off]
    #[arg(long, value_name = "ADDR:PORT")]
    admin_listen: Option<SocketAddr>,
    /// File holding the bearer token every admin request must carry [default: none]
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// error, warn, info, debug or trace [default: info]
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// What ferryd does instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// Check the configuration and this machine, then connect to the server as a client would
    ///
    /// Checks the certificate, the configuration (file and flags), that the listen and passive
    /// ports can be bound and the passive address is this machine's or plausibly a NAT's; then
    /// makes a control connection, PASV and EPSV listings and a TLS listing that resumes the
    /// session, against the running server or one it starts itself. Prints ok, warn or fail for
    /// each check with advice, and exits with 1 when one fails.
    Doctor,
    /// Write ferryd's man page or shell completions into a folder (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

/// What `ferryd generate` writes.
#[derive(Debug, Clone, clap::Subcommand)]
enum Generated {
    /// ferryd.1
    Man { folder: PathBuf },
    /// ferryd.bash, _ferryd (zsh) and ferryd.fish
    Completions { folder: PathBuf },
}

fn parse_tls_policy(text: &str) -> Result<TlsPolicy, String> {
    match text {
        "off" => Ok(TlsPolicy::Off),
        "optional" => Ok(TlsPolicy::Optional),
        "required" => Ok(TlsPolicy::Required),
        _ => Err("expected off, optional or required".into()),
    }
}

fn parse_active_source(text: &str) -> Result<ActiveSource, String> {
    match text {
        "adjacent" => Ok(ActiveSource::Adjacent),
        "ephemeral" => Ok(ActiveSource::Ephemeral),
        _ => Err("expected adjacent or ephemeral".into()),
    }
}

impl Args {
    /// The file's configuration (or the defaults) with the flags applied on top.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        set(&mut config.listen, self.listen);
        set(&mut config.root, self.root);
        set_some(&mut config.server_name, self.server_name);
        set_some(&mut config.banner, self.banner);
        set(&mut config.max_line, self.max_line);
        set(&mut config.max_sessions, self.max_sessions);
        set(&mut config.listen_backlog, self.listen_backlog);
        config.anonymous.enabled &= !self.no_anonymous;
        set_some(&mut config.anonymous.root, self.anonymous_root);
        config.anonymous.writable |= self.anonymous_writable;
        set_some(
            &mut config.anonymous.upload_folder,
            self.anonymous_upload_folder,
        );
        config.anonymous.upload_mkdir |= self.anonymous_upload_mkdir;
        set_some(&mut config.users_file, self.users_file);
        set_some(&mut config.data.passive_ports, self.passive_ports);
        set_some(&mut config.data.passive_address, self.passive_address);
        set(&mut config.data.active_source, self.active_source);
        config.data.allow_fxp |= self.allow_fxp;
        config.data.active_enabled &= !self.no_active;
        config.data.mode_z &= !self.no_mode_z;
        config.checksums.enabled &= !self.no_checksums;
        config.data.passive_enabled &= !self.no_passive;
        let timeouts = &mut config.timeouts;
        set(&mut timeouts.idle, self.idle_timeout);
        set(&mut timeouts.login, self.login_timeout);
        set(&mut timeouts.data_connect, self.data_timeout);
        set(&mut timeouts.stalled_transfer, self.stall_timeout);
        set(&mut timeouts.shutdown_grace, self.shutdown_grace);
        set_some(&mut config.shutdown.deadline, self.shutdown_deadline);
        set(&mut config.shutdown.accept_grace, self.accept_grace);
        set(&mut timeouts.failed_login_delay_ms, self.failed_login_delay);
        set(&mut timeouts.abandoned_upload, self.abandoned_upload);
        let limits = &mut config.limits;
        set(&mut limits.max_sessions_per_ip, self.max_sessions_per_ip);
        set(&mut limits.max_login_failures, self.max_login_failures);
        set(&mut limits.ban_after_failures, self.ban_after_failures);
        set(&mut limits.ban_window, self.ban_window);
        set(&mut limits.ban_seconds, self.ban_seconds);
        set(&mut limits.download_rate, self.download_rate);
        set(&mut limits.upload_rate, self.upload_rate);
        config.atomic_uploads |= self.atomic_uploads;
        set_some(&mut config.hardening.run_as_user, self.run_as_user);
        config.hardening.landlock |= self.landlock;
        let tls = &mut config.tls;
        set_some(&mut tls.certificate, self.tls_certificate);
        set_some(&mut tls.key, self.tls_key);
        tls.self_signed |= self.tls_self_signed;
        set(&mut tls.control, self.tls_control);
        set(&mut tls.data, self.tls_data);
        tls.anonymous_exempt &= !self.tls_anonymous_too;
        tls.require_session_reuse &= !self.tls_no_session_reuse;
        set_some(&mut tls.implicit_listen, self.implicit_listen);
        tls.allow_ccc |= self.allow_ccc;
        if !self.proxy_protocol_from.is_empty() {
            config.proxy_protocol.from = self.proxy_protocol_from;
        }
        let s3 = &mut config.s3;
        set_some(&mut s3.endpoint, self.s3_endpoint);
        set_some(&mut s3.region, self.s3_region);
        set_some(&mut s3.path_style, self.s3_path_style);
        set_some(&mut s3.credentials_file, self.s3_credentials_file);
        set(&mut s3.part_size, self.s3_part_size);
        set(&mut s3.parts_in_flight, self.s3_parts_in_flight);
        set(&mut s3.upload_memory, self.s3_upload_memory);
        set_some(&mut config.admin.listen, self.admin_listen);
        set_some(&mut config.admin.token_file, self.admin_token_file);
        set(&mut config.log_level, self.log_level);
        Ok(config)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn set_some<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// The command line: every option also works after a subcommand (`ferryd doctor --config F`).
fn command_line() -> clap::Command {
    use clap::CommandFactory;
    Args::command().mut_args(|arg| arg.global(true))
}

fn main() -> std::process::ExitCode {
    use clap::FromArgMatches;
    let matches = command_line().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let outcome = match args.command.take() {
        Some(Command::Doctor) => return doctor(args),
        Some(Command::Generate { what }) => generate(what),
        None => start(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferryd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `ferryd doctor`: the exit code is 1 when a check fails.
fn doctor(args: Args) -> std::process::ExitCode {
    ferry_server::events::only_check_log_files();
    let config = args.into_config().map_err(|e| format!("{e:#}"));
    match ferry_server::doctor::run(config, std::io::stdout()) {
        ferry_server::doctor::Status::Fail => std::process::ExitCode::FAILURE,
        _ => std::process::ExitCode::SUCCESS,
    }
}

/// `ferryd generate man|completions FOLDER`.
fn generate(what: Generated) -> anyhow::Result<()> {
    let (folder, written) = match what {
        Generated::Man { folder } => {
            let path = folder.join("ferryd.1");
            let mut page = Vec::new();
            clap_mangen::Man::new(command_line()).render(&mut page)?;
            std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
            (folder, vec![path])
        }
        Generated::Completions { folder } => {
            let mut command = command_line();
            let mut written = Vec::new();
            for shell in [
                clap_complete::Shell::Bash,
                clap_complete::Shell::Zsh,
                clap_complete::Shell::Fish,
            ] {
                let path = clap_complete::generate_to(shell, &mut command, "ferryd", &folder)
                    .with_context(|| format!("writing completions into {}", folder.display()))?;
                written.push(path);
            }
            (folder, written)
        }
    };
    for path in written {
        println!("{}", path.strip_prefix(&folder).unwrap_or(&path).display());
    }
    Ok(())
}

fn start(args: Args) -> anyhow::Result<()> {
    if args.hash_password {
        return hash_password();
    }
    let check_only = args.check_config;
    if check_only {
        ferry_server::events::only_check_log_files();
    }
    // Before any thread starts: it takes LISTEN_FDS out of the environment.
    let activated = ferry_server::systemd::activated_listeners()?;
    let reload_args = args.clone();
    let context = load(args)?;
    if check_only {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if let Err(error) = runtime.block_on(context.check_object_roots()) {
            bail!("invalid configuration: {error}");
        }
        println!("configuration OK");
        return Ok(());
    }
    init_logging(&context.config.log_level);
    let (listener, implicit) = listeners(&context, activated)?;
    println!("ferryd listening on {}", listener.local_addr()?);
    if let Some(implicit) = &implicit {
        println!(
            "ferryd listening for implicit FTPS on {}",
            implicit.local_addr()?
        );
    }
    let admin = match context.config.admin.listen {
        Some(address) => {
            let backlog = ferry_server::admin::BACKLOG;
            Some(ferry_server::lifecycle::bind(address, backlog).context("admin.listen")?)
        }
        None => None,
    };
    if let Some(admin) = &admin {
        let token = match context.config.admin.token_file {
            Some(_) => " (bearer token required)",
            None => "",
        };
        println!("ferryd admin listening on {}{token}", admin.local_addr()?);
    }
    println!("{}", describe_access(&context));
    if context.proxy.is_some() {
        println!(
            "PROXY protocol required, from {}",
            context.config.proxy_protocol.from.join(", ")
        );
    }
    if context.tls.is_some() {
        let tls = &context.config.tls;
        println!(
            "FTPS: TLS on control connections {:?}, on data connections {:?}",
            tls.control, tls.data
        );
    }
    harden(&context, reload_args.config.as_deref())?;
    if let Some(limit) = ferry_server::hardening::raise_open_file_limit() {
        tracing::debug!(limit, "open-file limit");
    }
    // Each running upload holds a blocking-pool thread for its disk writes, and listings and
    // password checks share the pool: tokio's default of 512 threads would make the 513th
    // upload, and every listing after it, wait. Threads are made only when needed.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()?;
    let ready = format!("listening on {}", listener.local_addr()?);
    let served = runtime.block_on(async move {
        // A store that does not answer now may answer later: said, not fatal.
        if let Err(error) = context.check_object_roots().await {
            tracing::error!(%error, "an object store does not answer");
        }
        let listeners = Listeners {
            control: tokio::net::TcpListener::from_std(listener)?,
            implicit: implicit
                .map(tokio::net::TcpListener::from_std)
                .transpose()?,
            admin: admin.map(tokio::net::TcpListener::from_std).transpose()?,
        };
        let events = context.events.clone();
        let context = Arc::new(context);
        let (server, handle) = Server::new(listeners, context);
        let signals = obey_signals(handle, reload_args, events, ready)?;
        // On a worker, not this thread: sessions the accept loop spawns then start in the
        // worker's own queue instead of waking a worker through the shared one.
        tokio::spawn(server.run()).await?;
        signals.abort();
        tracing::info!("stopped");
        Ok(())
    });
    // A blocking call that never returns (a hung disk, say) must not keep the process from
    // exiting: the runtime waits this long for its threads, then leaves them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    served
}

/// Reads the configuration (file and flags), the users files and the certificates, and
/// validates them whole: at start, for `--check-config`, and at each SIGHUP (with the same
/// words for the same fault).
fn load(args: Args) -> anyhow::Result<Context> {
    let config = args.into_config()?;
    Context::new(config).context("invalid configuration")
}

/// SIGHUP reopens the log files (logrotate) and reloads; SIGTERM and SIGINT drain. The
/// process must not die of a signal it is sent in the ordinary course of operation.
fn obey_signals(
    handle: Handle,
    args: Args,
    events: ferry_server::events::Events,
    ready: String,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    notify_service_manager(ServiceState::Ready(&ready));
    let mut events = events;
    Ok(tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = hangups.recv() => {
                    // The running log files first, so that logrotate works even when the new
                    // configuration is refused.
                    events.reopen();
                    if let Some(reloaded) = reload(&handle, &args, &ready).await {
                        events = reloaded;
                    }
                    continue;
                }
                Some(()) = terminate.recv() => "SIGTERM",
                Some(()) = interrupt.recv() => "SIGINT",
                else => return,
            };
            tracing::info!(signal = name, "stopping: draining the sessions");
            notify_service_manager(ServiceState::Stopping);
            handle.drain();
        }
    }))
}

/// Loads the configuration again and swaps it in whole; a configuration with any fault is
/// refused with one line saying what is wrong, and the running one stays. Returns the new
/// configuration's event writers when it was taken.
async fn reload(handle: &Handle, args: &Args, ready: &str) -> Option<ferry_server::events::Events> {
    tracing::info!("SIGHUP received: reloading the configuration");
    notify_service_manager(ServiceState::Reloading);
    let args = args.clone();
    let loaded = tokio::task::spawn_blocking(move || load(args))
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("reading the configuration failed: {e}")));
    let result = match loaded {
        Ok(context) => {
            if let Err(error) = context.check_object_roots().await {
                tracing::error!(%error, "an object store does not answer");
            }
            let events = context.events.clone();
            handle
                .reload(context)
                .await
                .map(|()| events)
                .map_err(anyhow::Error::from)
        }
        Err(error) => Err(error),
    };
    notify_service_manager(ServiceState::Ready(ready));
    match result {
        Ok(events) => Some(events),
        Err(error) => {
            // What --check-config would say, on one log line.
            let reason = format!("{error:#}").replace('\n', "\\n");
            tracing::error!("reload refused, the running configuration stays: {reason}");
            None
        }
    }
}

/// What `ferryd` tells a service manager.
#[derive(Debug, Clone, Copy)]
enum ServiceState<'a> {
    /// Serving (at start, and after each reload, done or refused), with a status line.
    Ready(&'a str),
    /// Reloading the configuration (SIGHUP).
    Reloading,
    /// Draining (SIGTERM, SIGINT).
    Stopping,
}

/// systemd's readiness protocol (`Type=notify`): READY=1, RELOADING=1, STOPPING=1 (nothing
/// without NOTIFY_SOCKET).
fn notify_service_manager(state: ServiceState<'_>) {
    match state {
        ServiceState::Ready(status) => ferry_server::systemd::ready(status),
        ServiceState::Reloading => ferry_server::systemd::reloading(),
        ServiceState::Stopping => ferry_server::systemd::stopping(),
    }
}

/// Threads for blocking work (disk writes of uploads, listings, password checks).
const MAX_BLOCKING_THREADS: usize = 4096;

/// The control listener and the implicit FTPS one, if configured: those systemd passed
/// (socket activation), else bound here.
fn listeners(
    context: &Context,
    activated: Vec<std::net::TcpListener>,
) -> anyhow::Result<(std::net::TcpListener, Option<std::net::TcpListener>)> {
    let backlog = context.config.listen_backlog;
    let implicit_address = context.config.tls.implicit_listen;
    let mut activated = activated.into_iter();
    let listener = match activated.next() {
        Some(listener) => listener,
        None => ferry_server::lifecycle::bind_control(context.config.listen, backlog)?,
    };
    let implicit = match (activated.next(), implicit_address) {
        (Some(implicit), Some(_)) => Some(implicit),
        (Some(_), None) => {
            bail!("socket activation passed a second socket, but tls.implicit_listen is not set")
        }
        (None, Some(address)) => Some(ferry_server::lifecycle::bind_control(address, backlog)?),
        (None, None) => None,
    };
    Ok((listener, implicit))
}

/// Drops root and confines the process, as configured; called while it has one thread.
fn harden(context: &Context, config_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let hardening = &context.config.hardening;
    if hardening.run_as_user.is_some() || hardening.landlock {
        // Both change the calling thread and the threads it starts later, not the others: a
        // thread started before (a password checker, a log writer) would stay root and free.
        let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
        if threads > 1 {
            bail!("cannot drop privileges or confine the process: {threads} threads run already (a bug: hardening must come first)");
        }
    }
    if let Some(user) = &hardening.run_as_user {
        let (uid, gid) = ferry_server::hardening::drop_privileges(user)?;
        tracing::info!(user = %user, uid, gid, "running as");
    }
    if hardening.landlock {
        let mut folders = context.roots();
        // An object store's roots are reached over the network, not through files; looking up
        // its host name reads these.
        let before = folders.len();
        folders.retain(|folder| ferry_server::storage::ObjectRoot::parse(folder).is_none());
        let mut readable: Vec<&std::path::Path> = match folders.len() == before {
            true => vec![],
            false => vec![
                std::path::Path::new("/etc/hosts"),
                std::path::Path::new("/etc/resolv.conf"),
                std::path::Path::new("/etc/nsswitch.conf"),
                std::path::Path::new("/etc/gai.conf"),
            ],
        };
        if context.admin.is_some() {
            // process_* metrics: memory from /proc/self/status, descriptors from /proc/self/fd.
            readable.push(std::path::Path::new("/proc/self"));
        }
        // What a reload (SIGHUP) reads again: the folders of those files (a file written anew
        // by an editor or certbot is another inode, which a rule on the old one would not
        // cover), and where a link leads. The log files' folders, to reopen them (logrotate).
        let reread = files_a_reload_reads(&context.config, config_file);
        readable.extend(reread.iter().map(PathBuf::as_path));
        readable.push(std::path::Path::new("/proc/sys/kernel/hostname"));
        let logs = &context.config.logs;
        for log in [&logs.xferlog, &logs.json].into_iter().flatten() {
            if log.as_os_str() != "-" {
                let log = std::path::absolute(log).unwrap_or_else(|_| log.clone());
                folders.extend(log.parent().map(PathBuf::from));
            }
        }
        let confinement = ferry_server::hardening::confine_to(&folders, &readable)?;
        tracing::info!(?confinement, "landlock");
        if confinement == ferry_server::hardening::Confinement::Unsupported {
            tracing::warn!("this kernel has no Landlock; file-system access is not confined");
        }
    }
    Ok(())
}

/// The folders of the files a reload reads (configuration, users files, certificates and
/// keys, the admin token, the S3 credentials), and of where the ones that are links lead.
fn files_a_reload_reads(
    config: &ferry_server::Config,
    config_file: Option<&std::path::Path>,
) -> Vec<PathBuf> {
    let mut files: Vec<&std::path::Path> = config_file.into_iter().collect();
    let optional = [
        &config.users_file,
        &config.tls.certificate,
        &config.tls.key,
        &config.admin.token_file,
        &config.s3.credentials_file,
    ];
    files.extend(optional.into_iter().flatten().map(PathBuf::as_path));
    for vhost in &config.vhosts {
        let optional = [&vhost.users_file, &vhost.certificate, &vhost.key];
        files.extend(optional.into_iter().flatten().map(PathBuf::as_path));
    }
    let mut folders = Vec::new();
    for file in files {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let target = file.canonicalize().ok();
        for path in [Some(file), target].into_iter().flatten() {
            folders.extend(path.parent().map(PathBuf::from));
        }
    }
    folders.sort();
    folders.dedup();
    folders
}

/// One line saying what is served to whom.
fn describe_access(context: &Context) -> String {
    let config = &context.config;
    let root = config.anonymous_root();
    let root = root.canonicalize().unwrap_or(root);
    let anonymous = if !config.anonymous.enabled {
        "anonymous logins off".to_string()
    } else {
        let access = if config.anonymous.writable {
            "read-write"
        } else {
            "read-only"
        };
        format!(
            "serving {} to anonymous users (ftp, anonymous), {access}",
            root.display()
        )
    };
    match context.authenticator.account_count() {
        Some(count) => format!("{anonymous}; {count} named user(s)"),
        None => anonymous,
    }
}

fn init_logging(level: &str) {
    let level: tracing::Level = level.parse().unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    let hash = ferry_server::users::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}
