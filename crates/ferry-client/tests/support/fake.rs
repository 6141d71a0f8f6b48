//! Scripted fake FTP servers for hostile-peer tests: each accepts one control connection on a
//! loopback port and runs a script against it in a thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// The control connection as a fake server sees it.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    log: Sender<String>,
}

impl Conn {
    /// Sends raw bytes (the script adds CRLF itself, or not).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
    }

    /// Sends one reply line with CRLF.
    pub fn reply(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// The next command line, or `None` when the client is gone (10 s at most).
    pub fn command(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = line.trim_end().to_string();
                let _ = self.log.send(line.clone());
                Some(line)
            }
        }
    }

    /// Opens a passive data listener and answers the pending EPSV with its port.
    pub fn answer_epsv(&mut self) -> TcpListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind data");
        let port = listener.local_addr().expect("addr").port();
        self.reply(&epsv_reply(port));
        listener
    }

    /// Answers the login and set-up commands the way a plain server would; returns the first
    /// other command, or `None` when the client is gone.
    pub fn serve_until_other(&mut self) -> Option<String> {
        for _ in 0..50 {
            let line = self.command()?;
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "USER" => self.reply("331 Password please."),
                "PASS" => self.reply("230 Logged in."),
                "TYPE" => self.reply("200 Type set."),
                "SYST" => self.reply("215 UNIX Type: L8"),
                "FEAT" => self.reply("211 No features"),
                "QUIT" => {
                    self.reply("221 Bye.");
                    return None;
                }
                _ => return Some(line),
            }
        }
        None
    }
}

/// A fake server's port and the command lines it received; the script runs in a thread.
pub struct Fake {
    pub port: u16,
    log: Receiver<String>,
}

impl Fake {
    /// The command lines received so far.
    pub fn commands(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

/// Accepts one data connection within 10 s.
pub fn accept_data(listener: &TcpListener) -> Option<TcpStream> {
    listener.set_nonblocking(true).ok()?;
    for _ in 0..200 {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).ok()?;
                return Some(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    None
}

/// Starts a fake server: `script` runs on the first accepted connection.
pub fn fake_server(script: impl FnOnce(&mut Conn) + Send + 'static) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (log, received) = channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(writer) = stream.try_clone() else {
            return;
        };
        let mut conn = Conn {
            reader: BufReader::new(stream),
            writer,
            log,
        };
        script(&mut conn);
        // Keep the connection open a moment so the client reads everything sent.
        std::thread::sleep(Duration::from_millis(200));
    });
    Fake {
        port,
        log: received,
    }
}

/// The text of a 229 reply for a port.
pub fn epsv_reply(port: u16) -> String {
    format!("229 Entering Extended Passive Mode (|||{port}|)")
}
