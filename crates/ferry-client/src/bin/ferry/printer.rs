//! What the user sees of the control connection: replies when verbose, `---> CMD` when
//! debugging, error replies always (unless silenced for a background command).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_client::{Reply, Transcript};

/// The session's output switches, shared with the library through [`Transcript`].
#[derive(Debug, Default)]
pub struct Printer {
    verbose: AtomicBool,
    debug: AtomicBool,
    /// Set while a command runs that the user did not type (completion listings, SIZE for
    /// the progress bar): nothing is shown.
    quiet: AtomicBool,
    /// Set while connecting: the greeting is shown after "Connected to host.".
    mute_replies: AtomicBool,
    /// Whether error replies are shown even when not verbose (interactive sessions do).
    show_errors: AtomicBool,
}

impl Printer {
    pub fn new(verbose: bool, debug: bool, show_errors: bool) -> Self {
        let printer = Printer::default();
        printer.set_verbose(verbose);
        printer.set_debug(debug);
        printer.show_errors.store(show_errors, Ordering::Relaxed);
        printer
    }

    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }

    pub fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::Relaxed);
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    /// Silences everything until [`Printer::set_quiet`] with `false`.
    pub fn set_quiet(&self, on: bool) {
        self.quiet.store(on, Ordering::Relaxed);
    }

    /// Holds back replies (only) until called again with `false`.
    pub fn set_mute_replies(&self, on: bool) {
        self.mute_replies.store(on, Ordering::Relaxed);
    }

    fn quiet(&self) -> bool {
        self.quiet.load(Ordering::Relaxed)
    }

    /// Shows a reply, the way it arrived (RFC 959 multi-line form).
    pub fn show_reply(&self, reply: &Reply) {
        let wire = reply.to_wire();
        let text = String::from_utf8_lossy(&wire).replace('\r', "");
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

impl Transcript for Printer {
    fn trying(&self, addr: SocketAddr) {
        if self.verbose() && !self.quiet() {
            println!("Trying {addr} ...");
        }
    }

    fn sent(&self, line: &str) {
        if self.debug() && !self.quiet() {
            println!("---> {line}");
        }
    }

    fn reply(&self, reply: &Reply) {
        let wanted =
            self.verbose() || (reply.class() >= 4 && self.show_errors.load(Ordering::Relaxed));
        if wanted && !self.quiet() && !self.mute_replies.load(Ordering::Relaxed) {
            self.show_reply(reply);
        }
    }

    fn note(&self, text: &str) {
        if self.verbose() && !self.quiet() {
            println!("{text}");
        }
    }

    fn warning(&self, text: &str) {
        eprintln!("ferry: warning: {text}");
    }
}
