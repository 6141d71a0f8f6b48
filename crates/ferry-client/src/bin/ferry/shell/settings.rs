//! Shell commands that change or show settings: passive, epsv, hash, verbose, debug, prompt,
//! status, help, and `!` for a local shell.

use ferry_client::DataMode;

use super::{notice, Shell};
use crate::commands::{help_line, help_table};
use crate::printer::printable;
use crate::progress::{parse_mark, HASH_BYTES, MAX_MARKS};

/// `on`/`off` arguments, or a toggle without one.
fn on_off(args: &[String], current: bool) -> anyhow::Result<bool> {
    match args {
        [] => Ok(!current),
        [word] if word == "on" => Ok(true),
        [word] if word == "off" => Ok(false),
        _ => notice("usage: [on | off]"),
    }
}

fn on_off_word(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl Shell {
    fn set_data_mode(&mut self, mode: DataMode) {
        self.config.data_mode = mode;
        if let Some(client) = self.client.as_mut() {
            client.config_mut().data_mode = mode;
        }
    }

    /// `passive [on | off | auto]`: on is passive only, auto falls back to active, off is
    /// active only; without an argument, toggles between auto and off.
    pub(super) fn passive(&mut self, args: &[String]) -> anyhow::Result<()> {
        let mode = match args.first().map(String::as_str) {
            None if self.config.data_mode == DataMode::Active => DataMode::Auto,
            None => DataMode::Active,
            Some("on") => DataMode::Passive,
            Some("off") => DataMode::Active,
            Some("auto") => DataMode::Auto,
            Some(_) => return notice("usage: passive [on | off | auto]"),
        };
        self.set_data_mode(mode);
        println!("Passive mode: {}.", mode_word(mode));
        Ok(())
    }

    /// `epsv [on | off]`: whether EPSV/EPRT are tried before PASV/PORT.
    pub(super) fn epsv(&mut self, args: &[String]) -> anyhow::Result<()> {
        let on = on_off(args, self.config.use_epsv)?;
        self.config.use_epsv = on;
        if let Some(client) = self.client.as_mut() {
            client.config_mut().use_epsv = on;
        }
        println!("EPSV/EPRT: {}.", on_off_word(on));
        Ok(())
    }

    /// `hash [on | off | auto | size]` (tnftp's form, plus `auto`): without an argument,
    /// toggles. The default mark is the classic 1024 bytes, larger for big files so that one
    /// takes at most [`MAX_MARKS`] marks; `hash SIZE` (`4096`, `64k`, `1m`) fixes the size and
    /// turns marks on, `hash auto` goes back to the default.
    pub(super) fn hash_command(&mut self, args: &[String]) -> anyhow::Result<()> {
        const USAGE: &str = "usage: hash [on | off | auto | size], size in bytes or with k, m, g";
        match args.first().map(String::as_str) {
            Some("auto") if args.len() == 1 => (self.hash, self.hash_size) = (true, None),
            Some(size) if args.len() == 1 && size != "on" && size != "off" => {
                let bytes = parse_mark(size).map_or_else(|| notice(USAGE), Ok)?;
                (self.hash, self.hash_size) = (true, Some(bytes));
            }
            _ => self.hash = on_off(args, self.hash).or_else(|_| notice(USAGE))?,
        }
        match (self.hash, self.hash_size) {
            (false, _) => println!("Hash mark printing off."),
            (true, Some(bytes)) => println!("Hash mark printing on ({bytes} bytes/hash mark)."),
            (true, None) => println!(
                "Hash mark printing on ({HASH_BYTES} bytes/hash mark).\n\
                 Bigger files get bigger marks, {MAX_MARKS} at most a file (`hash SIZE` fixes it)."
            ),
        }
        Ok(())
    }

    pub(super) fn toggle_verbose(&mut self) {
        let on = !self.printer.verbose();
        self.printer.set_verbose(on);
        println!("Verbose mode {}.", on_off_word(on));
    }

    /// `debug [level]`: any level above 0 shows the commands sent.
    pub(super) fn debug(&mut self, args: &[String]) {
        let on = match args.first() {
            Some(level) => level.parse::<u32>().map_or(true, |level| level > 0),
            None => !self.printer.debug(),
        };
        self.printer.set_debug(on);
        println!("Debugging {} (debug={}).", on_off_word(on), u8::from(on));
    }

    pub(super) fn toggle_prompt(&mut self) {
        self.prompting = !self.prompting;
        println!("Interactive mode {}.", on_off_word(self.prompting));
    }

    /// `status`.
    pub(super) fn status(&mut self) {
        match &self.client {
            Some(client) => println!(
                "Connected to {} ({}).",
                printable(&self.host),
                client.peer_addr()
            ),
            None => println!("Not connected."),
        }
        let transfer_type = match self.client.as_ref().map(|c| c.transfer_type()) {
            Some(ferry_client::TransferType::Ascii) => "ascii",
            _ => "binary",
        };
        println!("Mode: stream; Type: {transfer_type}; Form: non-print; Structure: file");
        println!(
            "Verbose: {}; Debugging: {}; Prompting: {}; Hash mark printing: {}",
            on_off_word(self.printer.verbose()),
            on_off_word(self.printer.debug()),
            on_off_word(self.prompting),
            on_off_word(self.hash)
        );
        println!(
            "Passive mode: {}; EPSV/EPRT: {}",
            mode_word(self.config.data_mode),
            on_off_word(self.config.use_epsv)
        );
    }

    /// `help [command...]`.
    pub(super) fn help(&mut self, args: &[String]) {
        if args.is_empty() {
            println!("Commands may be abbreviated.  Commands are:\n");
            print!("{}", help_table());
            return;
        }
        for name in args {
            match help_line(name) {
                Some(text) => println!("{name:<15} {text}"),
                None => println!("?Invalid help command {name}"),
            }
        }
    }

    /// `! [command]`: runs a local shell command (or an interactive shell).
    pub(super) fn shell_escape(&mut self, args: &[String]) -> anyhow::Result<()> {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        let mut command = std::process::Command::new(&shell);
        if let Some(line) = args.first() {
            command.arg("-c").arg(line);
        }
        let status = command
            .status()
            .map_err(|e| anyhow::Error::new(e).context(format!("cannot run {shell}")))?;
        if !status.success() {
            return notice(format!("shell command failed: {status}"));
        }
        Ok(())
    }
}

fn mode_word(mode: DataMode) -> &'static str {
    match mode {
        DataMode::Auto => "auto (passive, falling back to active)",
        DataMode::Passive => "on",
        DataMode::Active => "off",
    }
}
