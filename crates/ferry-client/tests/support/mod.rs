//! Test support: run the `ferry` binary with piped stdin and a deadline, and start real FTP
//! servers (pyftpdlib, vsftpd, Pure-FTPd) and scripted fake servers on loopback ports.

#![allow(dead_code)]

pub mod certs;
pub mod fake;
pub mod ferryd;
pub mod servers;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one run of the binary may take before the test fails.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// What a run of `ferry` did.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Panics with the whole transcript unless stdout contains `text`.
    pub fn expect_stdout(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}:\n{self}");
        self
    }

    /// Panics unless stdout contains one of `texts`.
    pub fn expect_any(&self, texts: &[&str]) -> &Self {
        let found = texts.iter().any(|text| self.stdout.contains(text));
        assert!(found, "stdout lacks all of {texts:?}:\n{self}");
        self
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code:\n{self}");
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "code {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `ferry args...` in `cwd` with `stdin` piped in, a private HOME and no .netrc.
pub fn ferry(args: &[&str], stdin: &str, cwd: &Path) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("NETRC", cwd.join("no-such-netrc"))
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry {args:?} ran longer than {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// 1715 bytes of text, like the seed's readme.txt, with LF line ends.
pub fn readme_bytes() -> Vec<u8> {
    let mut text = String::new();
    let mut line = 0;
    while text.len() < 1715 {
        text.push_str(&format!(
            "line {line}: the quick brown fox jumps over the lazy dog\n"
        ));
        line += 1;
    }
    text.truncate(1714);
    text.push('\n');
    text.into_bytes()
}

/// Binary bytes with every value, for byte-exact round trips.
pub fn binary_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 % 251) as u8 ^ (i >> 8) as u8)
        .collect()
}

/// Resumes the download of `path`, a file of [`binary_bytes`]`(len)`, from `offset` with the
/// library, and checks that exactly the rest arrives.
pub async fn check_resumed_tail(
    client: &mut ferry_client::Client,
    path: &str,
    len: usize,
    offset: usize,
) {
    let mut tail = Vec::new();
    client
        .retrieve(path, &mut tail, offset as u64)
        .await
        .unwrap();
    assert_eq!(tail, binary_bytes(len)[offset..], "{path} from {offset}");
}

/// A port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Starts `ferry args...` in `cwd` without waiting (for tests that kill it midway); output
/// goes to `stdout.txt` and `stderr.txt` in `cwd`.
pub fn spawn_ferry(args: &[&str], cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("NETRC", cwd.join("no-such-netrc"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(cwd.join("stdout.txt")).expect("stdout file"))
        .stderr(std::fs::File::create(cwd.join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("start ferry")
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; says whether it held.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// The JSON lines of a `--json` run's standard output.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}")))
        .collect()
}

/// The JSON field names the README documents, read from its "JSON output" section: the
/// `ls --json` table, the transfer table and the summary's paragraph.
pub struct Documented {
    pub entry: Vec<String>,
    pub file: Vec<String>,
    pub summary: Vec<String>,
}

pub fn documented_fields() -> Documented {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let start = text.find("### JSON output").expect("a JSON output section");
    let section = &text[start..];
    let section = &section[..section[4..]
        .find("\n#")
        .map_or(section.len(), |end| end + 4)];
    let part = |from: &str, to: Option<&str>| {
        let begin = section
            .find(from)
            .unwrap_or_else(|| panic!("README lacks {from:?}"));
        let rest = &section[begin..];
        let end = to.and_then(|to| rest.find(to)).unwrap_or(rest.len());
        rest[..end].to_string()
    };
    let table = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .map(str::to_string)
            .collect()
    };
    let summary_text = part("A mirror ends with a summary", None);
    let summary = std::iter::once("record".to_string())
        .chain(
            summary_text
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .map(str::to_string),
        )
        .collect();
    Documented {
        entry: table(&part(
            "`ls --json`, one object per entry",
            Some("A transfer"),
        )),
        file: table(&part(
            "A transfer, one object per file",
            Some("A mirror ends"),
        )),
        summary,
    }
}

/// Panics unless `value` is an object with exactly `fields`.
pub fn expect_fields(value: &serde_json::Value, fields: &[String]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut have: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = fields.iter().map(String::as_str).collect();
    have.sort_unstable();
    want.sort_unstable();
    assert!(want.len() >= 8, "too few documented fields: {want:?}");
    assert_eq!(have, want, "fields of {value} against the README");
}
