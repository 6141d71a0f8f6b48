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
