//! The interactive session: the `ftp>` loop, connecting and logging in, and reporting errors.
//! The commands themselves are in the submodules.

mod jobs;
mod remote;
mod settings;
mod transfer;

use std::sync::{Arc, Mutex};

use anyhow::bail;
use ferry_client::netrc::Netrc;
use ferry_client::{Client, ClientConfig, FtpError, Reply, Secret, TransferType};

use crate::args::Args;
use crate::commands::{lookup, split_words, Lookup, Verb};
use crate::exit;
use crate::input::Input;
use crate::printer::{has_control, printable, Printer};
use crate::tls::TrustStore;

/// A message for the user that is not an FTP error ("Not connected.", usage lines).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Notice(pub String);

/// Fails a command with a message printed as it is.
pub fn notice<T>(text: impl Into<String>) -> anyhow::Result<T> {
    Err(Notice(text.into()).into())
}

/// Whether the session goes on after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The state of an interactive session.
pub struct Shell {
    client: Option<Client>,
    /// Whether the user on `client` is logged in (completion listings wait for it).
    logged_in: bool,
    host: String,
    printer: Arc<Printer>,
    input: Input,
    config: ClientConfig,
    netrc: Netrc,
    auto_login: bool,
    prompting: bool,
    hash: bool,
    /// Bytes per hash mark set with `hash SIZE`; `None` scales with the file.
    hash_size: Option<u64>,
    remote_names: Arc<Mutex<Vec<String>>>,
    remote_names_stale: bool,
    first_failure: Option<u8>,
    trust: TrustStore,
    default_port: u16,
    /// Who logged in last, so that `mirror --parallel`, `pget` and retries can open more
    /// sessions as the same user.
    credentials: Option<(String, Secret, Option<String>)>,
    /// `verify`: check transfers against the server's checksum.
    verify: bool,
    /// `-z`: MODE Z after each login.
    mode_z: bool,
    /// `--retries N`: tries again after a broken transfer.
    retries: u32,
}

/// Runs a session: connects to the host given on the command line (if any), then reads
/// commands until `bye` or end of input. Returns the exit code.
pub async fn run(args: &Args) -> u8 {
    let mut shell = Shell::new(args);
    match args.words.as_slice() {
        [] => {}
        [host] => shell.open(host, None).await,
        [host, port] => match port.parse() {
            Ok(port) => shell.open(host, Some(port)).await,
            Err(_) => shell.fail(Notice(format!("{port}: bad port number")).into()),
        },
        _ => shell.fail(Notice("usage: ferry [options] [host [port]]".into()).into()),
    }
    shell.command_loop().await;
    shell.first_failure.unwrap_or(exit::OK)
}

impl Shell {
    fn new(args: &Args) -> Self {
        let printer = Arc::new(Printer::new(!args.quiet, args.debug, true));
        let mut config = args.client_config();
        config.transcript = Some(crate::trace::observer(printer.clone()));
        let remote_names = Arc::new(Mutex::new(Vec::new()));
        Shell {
            client: None,
            logged_in: false,
            host: String::new(),
            printer,
            input: Input::new(remote_names.clone()),
            config,
            netrc: args.load_netrc(),
            auto_login: !args.no_login,
            prompting: !args.no_prompt,
            hash: false,
            hash_size: None,
            remote_names,
            remote_names_stale: true,
            first_failure: None,
            trust: TrustStore::new(args.known_hosts.clone(), args.insecure),
            default_port: args.default_port(),
            credentials: None,
            verify: args.verify,
            mode_z: args.mode_z,
            retries: args.retries,
        }
    }

    async fn command_loop(&mut self) {
        loop {
            self.refresh_remote_names().await;
            let Some(line) = self.input.command("ftp> ") else {
                break;
            };
            if self.execute(&line).await == Flow::Quit {
                return;
            }
        }
        // End of input: leave politely, as `bye` would.
        if let Some(client) = self.client.take() {
            let _ = client.quit().await;
        }
    }

    /// Runs one command line.
    pub async fn execute(&mut self, line: &str) -> Flow {
        let words = split_words(line);
        let Some(name) = words.first() else {
            return Flow::Continue;
        };
        crate::trace::user(&crate::trace::masked_command(line));
        let verb = match lookup(name) {
            Ok(verb) => verb,
            Err(Lookup::Invalid) => return self.fail_flow("?Invalid command."),
            Err(Lookup::Ambiguous) => return self.fail_flow("?Ambiguous command."),
        };
        match self.dispatch(verb, &words[1..]).await {
            Ok(flow) => flow,
            Err(error) => {
                self.fail(error);
                Flow::Continue
            }
        }
    }

    async fn dispatch(&mut self, verb: Verb, args: &[String]) -> anyhow::Result<Flow> {
        match verb {
            Verb::Bye => return self.bye().await,
            Verb::Open => self.open_command(args).await?,
            Verb::Close => self.close().await?,
            Verb::User => self.user_command(args).await?,
            Verb::Ls | Verb::Dir => self.list(args, "LIST").await?,
            Verb::Nlist => self.list(args, "NLST").await?,
            Verb::Mlsd => self.list(args, "MLSD").await?,
            Verb::Cd => self.cd(args).await?,
            Verb::Cdup => self.cdup().await?,
            Verb::Lcd => self.lcd(args)?,
            Verb::Pwd => self.pwd().await?,
            Verb::Get => self.get(args, false).await?,
            Verb::Reget => self.get(args, true).await?,
            Verb::Put => self.put(args, false).await?,
            Verb::Append => self.put(args, true).await?,
            Verb::Mget => self.mget(args).await?,
            Verb::Mput => self.mput(args).await?,
            Verb::Delete => self.delete(args).await?,
            Verb::Mdelete => self.mdelete(args).await?,
            Verb::Mkdir => self.mkdir(args).await?,
            Verb::Rmdir => self.rmdir(args).await?,
            Verb::Rename => self.rename(args).await?,
            Verb::Size => self.size(args).await?,
            Verb::Checksum => self.checksum(args).await?,
            Verb::Mode => self.mode(args).await?,
            Verb::Modtime => self.modtime(args).await?,
            Verb::Binary => self.set_type(TransferType::Image).await?,
            Verb::Ascii => self.set_type(TransferType::Ascii).await?,
            Verb::Type => self.type_command(args).await?,
            Verb::Passive => self.passive(args)?,
            Verb::Epsv => self.epsv(args)?,
            Verb::Hash => self.hash_command(args)?,
            Verb::Verbose => self.toggle_verbose(),
            Verb::Debug => self.debug(args),
            Verb::Prompt => self.toggle_prompt(),
            Verb::Status => self.status(),
            Verb::System => self.system().await?,
            Verb::Features => self.features().await?,
            Verb::Quote => self.quote(args).await?,
            Verb::Site => self.site(args).await?,
            Verb::Help => self.help(args),
            Verb::Shell => self.shell_escape(args)?,
            Verb::Mirror => self.mirror(args).await?,
            Verb::Pget => self.pget(args).await?,
            Verb::Reput => self.reput(args).await?,
            Verb::Verify => self.toggle_verify(args)?,
        }
        Ok(Flow::Continue)
    }

    /// The connected client, or "Not connected.".
    fn client(&mut self) -> anyhow::Result<&mut Client> {
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => notice("Not connected."),
        }
    }

    fn fail_flow(&mut self, text: &str) -> Flow {
        self.fail(Notice(text.into()).into());
        Flow::Continue
    }

    /// Shows a failed command's error (unless the server's reply already said it) and
    /// remembers the first failure's exit code.
    fn fail(&mut self, error: anyhow::Error) {
        self.first_failure.get_or_insert(exit::code_for(&error));
        if let Some(notice) = error.downcast_ref::<Notice>() {
            println!("{}", printable(&notice.to_string()));
            return;
        }
        let ftp = error.downcast_ref::<FtpError>();
        if !ftp
            .and_then(shown_reply)
            .is_some_and(|r| self.reply_was_shown(r))
        {
            eprintln!("ferry: {}", printable(&format!("{error:#}")));
        }
        if ftp.is_some_and(FtpError::is_fatal) {
            self.client = None;
            println!("Not connected.");
        }
    }

    fn reply_was_shown(&self, reply: &Reply) -> bool {
        self.printer.verbose() || reply.class() >= 4
    }

    /// `open host [port]`.
    async fn open_command(&mut self, args: &[String]) -> anyhow::Result<()> {
        let (host, port) = match args {
            [host] => (host, None),
            [host, port] => (
                host,
                Some(port.parse().or_else(|_| notice("bad port number"))?),
            ),
            _ => return notice("usage: open host-name [port]"),
        };
        if self.client.is_some() {
            return notice(format!(
                "Already connected to {}, use close first.",
                self.host
            ));
        }
        self.open(host, port).await;
        Ok(())
    }

    /// Connects and, with auto-login, logs in; failures are reported, not returned.
    async fn open(&mut self, host: &str, port: Option<u16>) {
        if let Err(error) = self.connect(host, port.unwrap_or(self.default_port)).await {
            self.fail(error);
            return;
        }
        if self.auto_login {
            if let Err(error) = self.login(None, None, None).await {
                self.fail(error);
                println!("Login failed.");
            }
        }
    }

    async fn connect(&mut self, host: &str, port: u16) -> anyhow::Result<()> {
        let input_is_terminal = self.input.is_terminal();
        self.printer.set_mute_replies(true);
        let config = self.config.clone();
        let input = &mut self.input;
        let mut ask = |prompt: &str| input.answer(prompt);
        let ask: crate::tls::Ask = match input_is_terminal {
            true => Some(&mut ask),
            false => None,
        };
        let connected = crate::tls::connect(host, port, config, &self.trust, ask).await;
        self.printer.set_mute_replies(false);
        let client = connected?;
        println!("Connected to {}.", printable(host));
        if self.printer.verbose() {
            self.printer.show_reply(client.greeting());
            if let Some(tls) = client.tls_info() {
                println!("TLS: {} {}", tls.version, tls.cipher_suite);
            }
        }
        self.host = host.to_string();
        self.client = Some(client);
        self.logged_in = false;
        self.remote_names_stale = true;
        Ok(())
    }

    /// USER, PASS and ACCT, prompting for what neither the arguments nor `.netrc` give.
    async fn login(
        &mut self,
        user: Option<String>,
        password: Option<Secret>,
        account: Option<String>,
    ) -> anyhow::Result<()> {
        let entry = self.netrc.lookup(&self.host).cloned().unwrap_or_default();
        let user = match user.or(entry.login.clone()) {
            Some(user) => user,
            None => self.ask_user_name()?,
        };
        let mut reply = self.client()?.user(&user).await?;
        if reply.code == 331 {
            let from_netrc = entry
                .password
                .filter(|_| entry.login.as_deref() == Some(&user));
            let password = match password.or(from_netrc) {
                Some(password) => password,
                None => self.ask_password("Password: ")?,
            };
            reply = self.client()?.pass(&password).await?;
            self.credentials = Some((user.clone(), password, None));
        } else {
            self.credentials = Some((user.clone(), Secret::new(""), None));
        }
        if reply.code == 332 {
            let account = match account.or(entry.account) {
                Some(account) => account,
                None => self.ask("Account: ")?,
            };
            reply = self.client()?.account(&account).await?;
            if let Some(credentials) = self.credentials.as_mut() {
                credentials.2 = Some(account);
            }
        }
        if reply.class() != 2 {
            return Err(FtpError::LoginRefused { reply }.into());
        }
        self.after_login().await
    }

    fn ask_user_name(&mut self) -> anyhow::Result<String> {
        let local_user = std::env::var("USER").unwrap_or_else(|_| "anonymous".into());
        let answer = self.ask(&format!("Name ({}:{local_user}): ", self.host))?;
        Ok(if answer.trim().is_empty() {
            local_user
        } else {
            answer.trim().to_string()
        })
    }

    fn ask(&mut self, prompt: &str) -> anyhow::Result<String> {
        match self.input.answer(prompt) {
            Some(answer) => {
                crate::trace::user(&format!("{prompt}{}", answer.trim()));
                Ok(answer)
            }
            None => bail!("end of input"),
        }
    }

    fn ask_password(&mut self, prompt: &str) -> anyhow::Result<Secret> {
        match self.input.password(prompt) {
            Some(password) => {
                crate::trace::user(&format!("{prompt}XXXX"));
                Ok(password)
            }
            None => bail!("end of input"),
        }
    }

    /// SYST and TYPE I, as the classic client does after logging in.
    async fn after_login(&mut self) -> anyhow::Result<()> {
        let verbose = self.printer.verbose();
        let client = self.client()?;
        if let Ok(reply) = client.system().await {
            let system = reply.text();
            let name = system.split_whitespace().next().unwrap_or("unknown");
            if verbose {
                println!("Remote system type is {}.", printable(name));
            }
        }
        self.printer.set_mute_replies(true);
        let typed = self.client()?.set_type(TransferType::Image).await;
        self.printer.set_mute_replies(false);
        typed?;
        if self.mode_z {
            if let Err(error) = self.client()?.set_mode_z(true).await {
                eprintln!("MODE Z refused ({error}); using stream mode.");
            }
        }
        if verbose {
            println!("Using binary mode to transfer files.");
        }
        self.logged_in = true;
        self.remote_names_stale = true;
        Ok(())
    }

    /// `user name [password [account]]`.
    async fn user_command(&mut self, args: &[String]) -> anyhow::Result<()> {
        let (user, password, account) = match args {
            [user] => (user, None, None),
            [user, password] => (user, Some(password), None),
            [user, password, account] => (user, Some(password), Some(account)),
            _ => return notice("usage: user user-name [password [account]]"),
        };
        self.client()?;
        let password = password.map(Secret::new);
        let result = self
            .login(Some(user.clone()), password, account.cloned())
            .await;
        if result.is_err() {
            println!("Login failed.");
        }
        result
    }

    /// `bye`: QUIT and leave.
    async fn bye(&mut self) -> anyhow::Result<Flow> {
        if let Some(client) = self.client.take() {
            client.quit().await?;
        }
        Ok(Flow::Quit)
    }

    /// `close`: QUIT and stay.
    async fn close(&mut self) -> anyhow::Result<()> {
        match self.client.take() {
            Some(client) => {
                client.quit().await?;
                Ok(())
            }
            None => notice("Not connected."),
        }
    }

    /// Keeps the names for TAB completion fresh: the current remote directory's entries,
    /// listed quietly, on a terminal only.
    async fn refresh_remote_names(&mut self) {
        if !self.input.is_terminal() || !self.remote_names_stale || !self.logged_in {
            return;
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        self.printer.set_quiet(true);
        let entries = client.entries(None, now()).await;
        self.printer.set_quiet(false);
        self.remote_names_stale = false;
        // A name with a control character is never offered: the line editor would show it raw.
        let names = entries
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| !has_control(&entry.name))
            .map(|entry| match entry.kind {
                ferry_client::EntryKind::Directory => format!("{}/", entry.name),
                _ => entry.name,
            })
            .collect();
        if let Ok(mut shared) = self.remote_names.lock() {
            *shared = names;
        }
    }
}

/// The reply inside an error, if the error carries one.
fn shown_reply(error: &FtpError) -> Option<&Reply> {
    match error {
        FtpError::UnexpectedReply { reply, .. }
        | FtpError::LoginRefused { reply }
        | FtpError::Refused { reply, .. }
        | FtpError::FileUnavailable { reply, .. }
        | FtpError::TransferFailed { reply, .. } => Some(reply),
        _ => None,
    }
}

/// Seconds since the epoch, for dating `ls -l` entries without a year.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
