//! Bad peers: nothing listening, unknown hosts, garbage and huge replies, wrong codes, data
//! connections that never open or break. Each must end in a clear message and the documented
//! exit code, never a panic, never a partial file that looks complete.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::fake::{accept_data, fake_server, Conn};
use support::{dead_port, ferry};

fn no_panic(outcome: &support::Outcome) {
    assert!(!outcome.stderr.contains("panicked"), "{outcome}");
}

#[test]
fn nothing_listening_exits_with_connection_code() {
    let local = tempfile::tempdir().unwrap();
    let port = dead_port().to_string();
    let url = format!("ftp://127.0.0.1:{port}/x");
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(3);
    assert!(
        outcome.stderr.contains("cannot connect to 127.0.0.1:"),
        "{outcome}"
    );
    let session = ferry(&["127.0.0.1", &port], "dir\nbye\n", local.path());
    session.expect_code(3).expect_stdout("Not connected.");
    no_panic(&session);
}

#[test]
fn unknown_host_exits_with_connection_code() {
    let local = tempfile::tempdir().unwrap();
    let outcome = ferry(&["get", "ftp://no-such-host.invalid/x"], "", local.path());
    outcome.expect_code(3);
    assert!(outcome.stderr.contains("no-such-host.invalid"), "{outcome}");
}

#[test]
fn resolve_pins_a_name_to_loopback() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220 pinned");
        conn.serve_until_other();
    });
    let url = format!("ftp://ftp.any-domain.com:{}/", fake.port);
    let pin = "ftp.any-domain.com:127.0.0.1";
    let outcome = ferry(
        &["ls", &url, "--resolve", pin, "--timeout", "3"],
        "",
        local.path(),
    );
    // The fake answers nothing to EPSV/PASV/PORT: what matters is that it was reached.
    assert!(
        fake.commands().iter().any(|c| c.starts_with("USER ")),
        "{outcome}"
    );
    no_panic(&outcome);
}

#[test]
fn garbage_greeting_is_a_protocol_error() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| conn.send_raw(b"HELLO I AM NOT AN FTP SERVER\r\n"));
    let url = format!("ftp://127.0.0.1:{}/x", fake.port);
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(8);
    assert!(outcome.stderr.contains("malformed reply"), "{outcome}");
    no_panic(&outcome);
}

#[test]
fn huge_reply_line_is_refused() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.send_raw(b"220 ");
        conn.send_raw(&vec![b'A'; 1_000_000]);
        conn.send_raw(b"\r\n");
    });
    let url = format!("ftp://127.0.0.1:{}/x", fake.port);
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(8);
    assert!(
        outcome.stderr.contains("longer than 8192 bytes"),
        "{outcome}"
    );
}

#[test]
fn endless_multi_line_reply_is_refused() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220-welcome");
        for _ in 0..5000 {
            conn.reply("still talking");
        }
    });
    let port = fake.port.to_string();
    let outcome = ferry(&["127.0.0.1", &port], "bye\n", local.path());
    outcome.expect_code(8);
    assert!(outcome.stderr.contains("more than 1000 lines"), "{outcome}");
}

#[test]
fn control_connection_dropped_after_greeting() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| conn.reply("220 and goodbye"));
    let url = format!("ftp://127.0.0.1:{}/x", fake.port);
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(3);
    assert!(outcome.stderr.contains("control connection"), "{outcome}");
}

#[test]
fn data_connection_never_opened_times_out_after_falling_back_to_active() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220 tease");
        let dead = dead_port();
        while let Some(line) = conn.serve_until_other() {
            match line.split(' ').next().unwrap_or_default() {
                "EPSV" => conn.reply(&support::fake::epsv_reply(dead)),
                "PASV" => conn.reply(&format!(
                    "227 Entering Passive Mode (127,0,0,1,{},{})",
                    dead >> 8,
                    dead & 0xff
                )),
                "PORT" | "EPRT" => conn.reply("200 Sure."),
                "RETR" => conn.reply("150 Opening data connection (never)."),
                "ABOR" => conn.reply("226 Aborted."),
                _ => conn.reply("502 No."),
            }
        }
    });
    let url = format!("ftp://u:p@127.0.0.1:{}/file.bin", fake.port);
    let started = Instant::now();
    let outcome = ferry(&["get", &url, "-d", "--timeout", "2"], "", local.path());
    outcome
        .expect_code(6)
        .expect_stdout("---> EPSV")
        .expect_stdout("---> PASV")
        .expect_stdout("---> PORT 127,0,0,1,")
        .expect_stdout("---> ABOR");
    assert!(outcome
        .stderr
        .contains("waiting for the server to open the data connection"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!local.path().join("file.bin").exists());
    assert!(!local.path().join("file.bin.part").exists());
}

#[test]
fn refusal_on_the_control_connection_ends_an_active_wait_early() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220 hi");
        while let Some(line) = conn.serve_until_other() {
            if line.starts_with("PORT") {
                conn.reply("200 Fine.");
            } else if line.starts_with("RETR") {
                conn.reply("150 Opening.");
                conn.reply("425 Can't open data connection.");
            } else {
                conn.reply("226 Whatever.");
            }
        }
    });
    let url = format!("ftp://u:p@127.0.0.1:{}/f", fake.port);
    let started = Instant::now();
    let outcome = ferry(&["get", &url, "-A", "--timeout", "20"], "", local.path());
    outcome.expect_code(6);
    assert!(
        outcome.stderr.contains("425 Can't open data connection."),
        "{outcome}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the timeout"
    );
}

/// Serves RETR of `content` from `offset` (after REST), optionally breaking off after `cut`
/// bytes with a 426.
fn retr_script(content: Vec<u8>, cut: Option<usize>) -> impl FnOnce(&mut Conn) + Send {
    move |conn| {
        conn.reply("220 files here");
        let mut offset = 0;
        let mut data = None;
        while let Some(line) = conn.serve_until_other() {
            let verb = line.split(' ').next().unwrap_or_default().to_string();
            match verb.as_str() {
                "EPSV" => data = Some(conn.answer_epsv()),
                "REST" => {
                    offset = line[5..].parse().unwrap_or(0);
                    conn.reply("350 Restarting.");
                }
                "RETR" => {
                    conn.reply("150 Here it comes.");
                    let Some(mut stream) = data.take().and_then(|l| accept_data(&l)) else {
                        return;
                    };
                    let end = cut.unwrap_or(content.len());
                    let _ = stream.write_all(&content[offset..end]);
                    drop(stream);
                    if cut.is_some() {
                        conn.reply("426 Connection closed; transfer aborted.");
                    } else {
                        conn.reply("226 Transfer complete.");
                    }
                }
                "ABOR" => conn.reply("226 Abort done."),
                _ => conn.reply("502 No."),
            }
        }
    }
}

#[test]
fn broken_transfer_keeps_the_part_file_and_resume_completes_it() {
    let local = tempfile::tempdir().unwrap();
    let content = support::binary_bytes(10_000);
    let fake = fake_server(retr_script(content.clone(), Some(3000)));
    let url = format!("ftp://u:p@127.0.0.1:{}/data.bin", fake.port);
    let outcome = ferry(&["get", &url, "--timeout", "5"], "", local.path());
    outcome.expect_code(6);
    assert!(outcome.stderr.contains("426"), "{outcome}");
    assert!(!local.path().join("data.bin").exists());
    let part = fs::read(local.path().join("data.bin.part")).unwrap();
    assert_eq!(part, content[..3000]);

    let fake = fake_server(retr_script(content.clone(), None));
    let url = format!("ftp://u:p@127.0.0.1:{}/data.bin", fake.port);
    ferry(&["get", &url, "-c", "--timeout", "5"], "", local.path()).expect_code(0);
    assert_eq!(fs::read(local.path().join("data.bin")).unwrap(), content);
    assert!(fake.commands().contains(&"REST 3000".to_string()));
}

#[test]
fn completion_reply_without_a_transfer_is_a_protocol_error() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220 odd");
        while let Some(line) = conn.serve_until_other() {
            if line.starts_with("EPSV") {
                let _listener = conn.answer_epsv();
                std::mem::forget(_listener);
            } else {
                conn.reply("226 Done already.");
            }
        }
    });
    let url = format!("ftp://u:p@127.0.0.1:{}/odd.txt", fake.port);
    let outcome = ferry(&["get", &url, "--timeout", "3"], "", local.path());
    outcome.expect_code(8);
    assert!(
        outcome.stderr.contains("unexpected reply to RETR"),
        "{outcome}"
    );
    assert!(!local.path().join("odd.txt").exists());
    assert!(!local.path().join("odd.txt.part").exists());
}

#[test]
fn ascii_mode_sends_crlf_and_receives_lf() {
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("unix.txt"), b"one\ntwo\n").unwrap();
    let (wire_sender, wire) = std::sync::mpsc::channel();
    let fake = fake_server(move |conn| {
        conn.reply("220 text");
        let mut data = None;
        while let Some(line) = conn.serve_until_other() {
            match line.split(' ').next().unwrap_or_default() {
                "EPSV" => data = Some(conn.answer_epsv()),
                "STOR" => {
                    conn.reply("150 Send it.");
                    let mut stream = data.take().and_then(|l| accept_data(&l)).unwrap();
                    let mut received = Vec::new();
                    let _ = stream.read_to_end(&mut received);
                    let _ = wire_sender.send(received);
                    conn.reply("226 Stored.");
                }
                "RETR" => {
                    conn.reply("150 Here.");
                    let mut stream = data.take().and_then(|l| accept_data(&l)).unwrap();
                    let _ = stream.write_all(b"a\r\nb\r\n");
                    drop(stream);
                    conn.reply("226 Sent.");
                }
                _ => conn.reply("502 No."),
            }
        }
    });
    let port = fake.port.to_string();
    let script = "user u p\nascii\nput unix.txt\nget remote.txt\nbye\n";
    ferry(&["-n", "127.0.0.1", &port], script, local.path()).expect_code(0);
    assert_eq!(
        wire.recv_timeout(Duration::from_secs(5)).unwrap(),
        b"one\r\ntwo\r\n"
    );
    assert_eq!(
        fs::read(local.path().join("remote.txt")).unwrap(),
        b"a\nb\n"
    );
    assert!(fake.commands().contains(&"TYPE A".to_string()));
}

/// The escape sequences a hostile server hides in its texts: a new window title, a cleared
/// screen, an OSC 52 write to the clipboard, and CSI as the one-character C1 control U+009B.
const TITLE: &str = "\x1b]0;pwned\x07";
const CLEAR: &str = "\x1b[2J";
const CLIPBOARD: &str = "\x1b]52;c;ZXZpbA==\x07";
const CSI: &str = "\u{9b}31m";

/// Panics unless neither stream holds a raw ESC, BEL or U+009B, and the escaped forms show.
fn expect_only_escaped(outcome: &support::Outcome, shown: &[&str]) {
    for (name, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        for raw in ['\x1b', '\x07', '\u{9b}'] {
            assert!(!text.contains(raw), "raw {raw:?} on {name}:\n{outcome}");
        }
    }
    let both = format!("{}{}", outcome.stdout, outcome.stderr);
    for escaped in shown {
        assert!(both.contains(escaped), "{escaped:?} not shown:\n{outcome}");
    }
}

/// A server that puts escape sequences in every text it sends: greeting, replies, listings.
fn hostile_texts(conn: &mut Conn) {
    conn.reply(&format!("220-Welcome{TITLE}"));
    conn.reply(&format!("220 ready {CLEAR}{CSI}"));
    let mut data = None;
    while let Some(line) = conn.command() {
        match line.split(' ').next().unwrap_or_default() {
            "USER" => conn.reply(&format!("331 Password for {CLIPBOARD} please.")),
            "PASS" => conn.reply(&format!("230 Logged in{CLEAR}.")),
            "SYST" => conn.reply(&format!("215 UNIX{TITLE} Type: L8")),
            "PWD" => conn.reply(&format!("257 \"/home{TITLE}\" is the current directory")),
            "EPSV" => data = Some(conn.answer_epsv()),
            "LIST" | "NLST" => {
                conn.reply(&format!("150 Here {CSI}comes the list."));
                let Some(mut stream) = data.take().and_then(|l| accept_data(&l)) else {
                    return;
                };
                let listing = format!(
                    "-rw-r--r-- 1 ftp ftp 5 Jan 01  2024 evil{CLEAR}name\r\n\
                     -rw-r--r-- 1 ftp ftp 5 Jan 01  2024 {CLIPBOARD}\r\n\
                     -rw-r--r-- 1 ftp ftp 5 Jan 01  2024 Grüße{CSI}.txt\r\n"
                );
                let _ = stream.write_all(listing.as_bytes());
                drop(stream);
                conn.reply(&format!("226 Done{TITLE}."));
            }
            "RETR" => conn.reply(&format!("550 No such file{CLIPBOARD}.")),
            "QUIT" => {
                conn.reply("221 Bye.");
                return;
            }
            _ => conn.reply(&format!("200 Fine{CLEAR}.")),
        }
    }
}

#[test]
fn control_characters_from_a_hostile_server_are_shown_escaped() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(hostile_texts);
    let port = fake.port.to_string();
    // Verbose (the default) shows every reply; after `verbose`, pwd and system show theirs.
    let script = "user u p\npwd\nls\nnlist\nsystem\nquote NOOP\nget missing.txt\n\
                  verbose\npwd\nsystem\nbye\n";
    let session = ferry(&["-n", "-d", "127.0.0.1", &port], script, local.path());
    session.expect_code(5);
    session
        .expect_stdout("220-Welcome\\x1b]0;pwned\\x07")
        .expect_stdout("220 ready \\x1b[2J\\x9b31m")
        .expect_stdout("331 Password for \\x1b]52;c;ZXZpbA==\\x07 please.")
        .expect_stdout("257 \"/home\\x1b]0;pwned\\x07\" is the current directory")
        .expect_stdout("Remote directory: /home\\x1b]0;pwned\\x07")
        .expect_stdout("evil\\x1b[2Jname\n")
        .expect_stdout("Grüße\\x9b31m.txt\n")
        .expect_stdout("215 UNIX\\x1b]0;pwned\\x07 Type: L8")
        .expect_stdout("200 Fine\\x1b[2J.");
    expect_only_escaped(&session, &["550 No such file\\x1b]52;c;ZXZpbA==\\x07."]);

    let fake = fake_server(hostile_texts);
    let url = format!("ftp://u:p@127.0.0.1:{}/", fake.port);
    let listing = ferry(&["ls", &url, "-v"], "", local.path());
    listing.expect_code(0).expect_stdout("evil\\x1b[2Jname\n");
    expect_only_escaped(
        &listing,
        &["\\x1b]52;c;ZXZpbA==\\x07\n", "226 Done\\x1b]0;pwned\\x07."],
    );

    let fake = fake_server(hostile_texts);
    let url = format!("ftp://u:p@127.0.0.1:{}/missing.txt", fake.port);
    let failed = ferry(&["get", &url], "", local.path());
    failed.expect_code(5);
    expect_only_escaped(&failed, &["550 No such file\\x1b]52;c;ZXZpbA==\\x07."]);
}

/// Serves a LIST with two ordinary names and two with control characters, and RETR of any
/// name; records the RETRs.
fn planted_names(conn: &mut Conn) {
    conn.reply("220 names for you");
    let mut data = None;
    while let Some(line) = conn.serve_until_other() {
        let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
        let body = match verb {
            "EPSV" => {
                data = Some(conn.answer_epsv());
                continue;
            }
            "LIST" => format!(
                "-rw-r--r-- 1 ftp ftp 5 Jan 01  2024 good1.txt\r\n\
                 -rw-r--r-- 1 ftp ftp 5 Jan 01  2024 bad{TITLE}.txt\r\n\
                 -rw-r--r-- 1 ftp ftp 5 Jan 01  2024 also{CSI}bad.txt\r\n\
                 -rw-r--r-- 1 ftp ftp 5 Jan 01  2024 good2.txt\r\n"
            ),
            "RETR" => format!("content of {argument}\n"),
            _ => {
                conn.reply("502 No.");
                continue;
            }
        };
        conn.reply("150 Here.");
        let Some(mut stream) = data.take().and_then(|l| accept_data(&l)) else {
            return;
        };
        let _ = stream.write_all(body.as_bytes());
        drop(stream);
        conn.reply("226 Sent.");
    }
}

#[test]
fn mget_never_creates_local_names_with_control_characters() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(planted_names);
    let port = fake.port.to_string();
    // Prompting on: the first question is about a planted name; "a" answers yes to all.
    let session = ferry(
        &["-n", "127.0.0.1", &port],
        "user u p\nmget *\na\nbye\n",
        local.path(),
    );
    session
        .expect_code(1)
        .expect_stdout("mget also\\x9b31mbad.txt? ");
    expect_only_escaped(
        &session,
        &[
            "also\\x9b31mbad.txt: the name contains a control character",
            "bad\\x1b]0;pwned\\x07.txt: the name contains a control character",
        ],
    );
    let mut created: Vec<String> = fs::read_dir(local.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    created.sort();
    assert_eq!(created, ["good1.txt", "good2.txt"], "{session}");
    assert_eq!(
        fs::read(local.path().join("good2.txt")).unwrap(),
        b"content of good2.txt\n"
    );
    let retrieved: Vec<String> = fake
        .commands()
        .into_iter()
        .filter(|command| command.starts_with("RETR"))
        .collect();
    assert_eq!(retrieved, ["RETR good1.txt", "RETR good2.txt"], "{session}");
}

#[test]
fn one_shot_get_never_creates_local_names_with_control_characters() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(planted_names);
    let url = format!("ftp://u:p@127.0.0.1:{}/bad%1B]0;pwned%07.txt", fake.port);
    let outcome = ferry(&["get", &url], "", local.path());
    outcome.expect_code(1);
    expect_only_escaped(&outcome, &["the name contains a control character"]);
    assert_eq!(fs::read_dir(local.path()).unwrap().count(), 0, "{outcome}");
    assert!(!fake.commands().iter().any(|c| c.starts_with("RETR")));

    let fake = fake_server(planted_names);
    let url = format!("ftp://u:p@127.0.0.1:{}/bad%1B]0;pwned%07.txt", fake.port);
    let named = ferry(&["get", &url, "-o", "chosen.txt"], "", local.path());
    named.expect_code(0);
    assert!(local.path().join("chosen.txt").exists(), "{named}");
}
