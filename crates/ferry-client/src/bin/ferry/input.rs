//! Where commands and answers come from: a line editor on a terminal, plain lines otherwise.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use ferry_client::Secret;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::complete::FerryHelper;
use crate::printer::printable;

/// The source of input lines.
pub enum Input {
    Terminal(Box<Editor<FerryHelper, DefaultHistory>>),
    Piped(std::io::StdinLock<'static>),
}

impl Input {
    /// A line editor with completion when stdin is a terminal, else plain stdin.
    pub fn new(remote_names: Arc<Mutex<Vec<String>>>) -> Self {
        if std::io::stdin().is_terminal() {
            if let Ok(mut editor) = Editor::new() {
                editor.set_helper(Some(FerryHelper::new(remote_names)));
                return Input::Terminal(Box::new(editor));
            }
        }
        Input::Piped(std::io::stdin().lock())
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Terminal(_))
    }

    /// Reads a command line; `None` at end of input. The prompt is shown on a terminal only,
    /// as the classic client does.
    pub fn command(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Terminal(editor) => match editor.readline(printable(prompt).as_ref()) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Some(line)
                }
                Err(ReadlineError::Interrupted) => Some(String::new()),
                Err(_) => None,
            },
            Input::Piped(stdin) => read_plain(stdin),
        }
    }

    /// Asks a question (user name, confirmation): the prompt is shown either way; when the
    /// answer comes from a pipe, a newline keeps the transcript readable.
    pub fn answer(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Terminal(_) => self.command(prompt),
            Input::Piped(stdin) => {
                print!("{}", printable(prompt));
                let _ = std::io::stdout().flush();
                let line = read_plain(stdin);
                println!();
                line
            }
        }
    }

    /// Reads a password without echo on a terminal, else as a plain line.
    pub fn password(&mut self, prompt: &str) -> Option<Secret> {
        match self {
            Input::Terminal(_) => rpassword::prompt_password(prompt).ok().map(Secret::new),
            Input::Piped(_) => self.answer(prompt).map(Secret::new),
        }
    }
}

/// One line from stdin without its line end; `None` at end of input.
fn read_plain(stdin: &mut std::io::StdinLock<'static>) -> Option<String> {
    let mut line = String::new();
    match stdin.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}
