//! pget, `--verify`, resumed uploads, retries and `--json` against real servers: ferryd,
//! vsftpd and pyftpdlib (the latter with test switches for HASH, XMD5/XCRC, corrupted
//! checksums, throttling and a broken first download).

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::ferryd::{Ferryd, PASSWORD};
use support::servers::{pyftpd_options, vsftpd, Server};
use support::{
    binary_bytes, documented_fields, expect_fields, ferry, json_lines, spawn_ferry, wait_for,
};

const BIG: usize = 64 << 20;

fn tester_url(port: u16, path: &str) -> String {
    format!("ftp://tester:secret@127.0.0.1:{port}/{path}")
}

/// The one file record of a `--json` transfer, checked against the documented fields.
fn file_record(stdout: &str) -> serde_json::Value {
    let records: Vec<_> = json_lines(stdout)
        .into_iter()
        .filter(|r| r["record"] == "file")
        .collect();
    assert_eq!(records.len(), 1, "{stdout}");
    expect_fields(&records[0], &documented_fields().file);
    records[0].clone()
}

fn pget_64_mib(port: u16, user: &str) {
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://{user}127.0.0.1:{port}/big.bin");
    let started = Instant::now();
    let outcome = ferry(
        &["-d", "get", "--segments", "4", "--json", &url],
        "",
        local.path(),
    );
    let seconds = started.elapsed().as_secs_f64();
    outcome.expect_code(0);
    let retrs = outcome.stdout.matches("---> RETR big.bin").count();
    assert_eq!(retrs, 4, "four ranged downloads:\n{outcome}");
    assert_eq!(outcome.stdout.matches("---> REST ").count(), 3, "{outcome}");
    let got = fs::read(local.path().join("big.bin")).unwrap();
    assert!(
        got == binary_bytes(BIG),
        "pget result differs from the file"
    );
    assert!(!local.path().join("big.bin.part.pget").exists());
    let record = file_record(&outcome.stdout);
    assert_eq!(record["bytes"].as_u64(), Some(BIG as u64));
    eprintln!("pget 64 MiB in 4 segments: {seconds:.2} s");
}

#[test]
fn pget_64_mib_in_four_segments_from_ferryd() {
    let server = Ferryd::start();
    fs::write(server.root.join("big.bin"), binary_bytes(BIG)).unwrap();
    pget_64_mib(server.port(), "");
}

#[test]
fn pget_64_mib_in_four_segments_from_vsftpd() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    fs::write(root.path().join("big.bin"), binary_bytes(BIG)).unwrap();
    let Some(server) = vsftpd(root.path(), scratch.path()) else {
        return;
    };
    pget_64_mib(server.port, "");
}

/// A server without `REST STREAM` in FEAT (a scripted one, which takes one session only):
/// pget says so and downloads the file in one stream, byte for byte, without REST.
#[test]
fn pget_without_rest_falls_back_to_one_stream() {
    use std::io::Write;
    use support::fake::{accept_data, fake_server};
    let data = binary_bytes(1 << 20);
    let sent = data.clone();
    let fake = fake_server(move |conn| {
        conn.reply("220 Old server.");
        let mut listener = None;
        for _ in 0..20 {
            let Some(line) = conn.serve_until_other() else {
                return;
            };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EPSV" => listener = Some(conn.answer_epsv()),
                "SIZE" => conn.reply("213 1048576"),
                "RETR" => break,
                _ => conn.reply("502 Not here."),
            }
        }
        let Some(listener) = listener else {
            return;
        };
        conn.reply("150 Here it comes.");
        if let Some(mut stream) = accept_data(&listener) {
            let _ = stream.write_all(&sent);
        }
        conn.reply("226 Done.");
        let _ = conn.serve_until_other();
    });
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://u:p@127.0.0.1:{}/big.bin", fake.port);
    let outcome = ferry(&["get", "--segments", "4", &url], "", local.path());
    outcome.expect_code(0);
    assert!(outcome.stderr.contains("no REST STREAM"), "{outcome}");
    assert!(fs::read(local.path().join("big.bin")).unwrap() == data);
    let commands = fake.commands();
    assert!(
        !commands.iter().any(|c| c.starts_with("REST")),
        "{commands:?}"
    );
}

/// The bytes a pget status file says are done.
fn done_in_status(path: &std::path::Path) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("segment "))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn interrupted_pget_resumes_from_its_status_file() {
    let root = tempfile::tempdir().unwrap();
    let content = binary_bytes(8 << 20);
    fs::write(root.path().join("big.bin"), &content).unwrap();
    // pyftpdlib lets the first 2 x 256 KiB of each connection through at once, then holds
    // it to 256 KiB/s: each 2 MiB range takes about 6 s.
    let throttle = [("FERRY_TEST_THROTTLE", "262144")];
    let Some(server) = pyftpd_options(root.path(), &throttle) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "big.bin");
    let mut child = spawn_ferry(&["get", "--segments", "4", &url], local.path());
    let status = local.path().join("big.bin.part.pget");
    let going = wait_for(Duration::from_secs(20), || {
        done_in_status(&status) > 1 << 20
    });
    let _ = child.kill();
    let _ = child.wait();
    let log = fs::read_to_string(local.path().join("stderr.txt")).unwrap_or_default();
    assert!(going, "pget never got going: {log}");
    assert!(!local.path().join("big.bin").exists());
    assert!(status.exists() && local.path().join("big.bin.part").exists());
    let done = done_in_status(&status);
    assert!(done < content.len() as u64);

    let finish = ferry(
        &["get", "--segments", "4", "--json", &url],
        "",
        local.path(),
    );
    finish.expect_code(0);
    assert!(fs::read(local.path().join("big.bin")).unwrap() == content);
    assert!(!status.exists());
    let record = file_record(&finish.stdout);
    let resumed = record["resumed_from"].as_u64().unwrap();
    assert!(resumed >= done, "{record} after {done} bytes done");
    assert_eq!(
        record["bytes"].as_u64(),
        Some(content.len() as u64 - resumed)
    );
}

fn checksum_server(mode: &str, corrupt: bool) -> Option<(tempfile::TempDir, Server)> {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("data.bin"), binary_bytes(300_000)).unwrap();
    let corrupt = if corrupt { "1" } else { "0" };
    let options = [("FERRY_TEST_HASH", mode), ("FERRY_TEST_CORRUPT", corrupt)];
    let server = pyftpd_options(root.path(), &options)?;
    Some((root, server))
}

fn verified_get(mode: &str, algorithm: &str, command: &str) {
    let Some((_root, server)) = checksum_server(mode, false) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "data.bin");
    let outcome = ferry(&["-d", "get", "--verify", "--json", &url], "", local.path());
    outcome.expect_code(0).expect_stdout(command);
    let record = file_record(&outcome.stdout);
    assert_eq!(record["hash"], algorithm);
    assert_eq!(record["hash_verified"], true);
    assert_eq!(
        fs::read(local.path().join("data.bin")).unwrap(),
        binary_bytes(300_000)
    );
}

#[test]
fn verify_with_hash_sha256() {
    verified_get("hash", "SHA-256", "---> HASH data.bin");
}

#[test]
fn verify_falls_back_to_xmd5() {
    verified_get("x", "MD5", "---> XMD5 data.bin");
}

#[test]
fn verify_against_ferryd_hash_both_ways() {
    let server = Ferryd::start();
    fs::write(server.user_root.join("data.bin"), binary_bytes(300_000)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let password = PASSWORD.replace(' ', "%20");
    let url = format!("ftp://bob:{password}@127.0.0.1:{}/data.bin", server.port());
    let outcome = ferry(&["-d", "get", "--verify", "--json", &url], "", local.path());
    outcome.expect_code(0).expect_stdout("---> HASH data.bin");
    let record = file_record(&outcome.stdout);
    assert_eq!(
        (record["hash"].clone(), record["hash_verified"].clone()),
        ("SHA-256".into(), true.into())
    );

    fs::write(local.path().join("up.bin"), binary_bytes(70_000)).unwrap();
    let up = format!("ftp://alice:{password}@127.0.0.1:{}/up.bin", server.port());
    let uploaded = ferry(
        &["put", "--verify", "--json", "up.bin", &up],
        "",
        local.path(),
    );
    uploaded.expect_code(0);
    assert_eq!(file_record(&uploaded.stdout)["hash_verified"], true);
    assert_eq!(
        fs::read(server.user_root.join("up.bin")).unwrap(),
        binary_bytes(70_000)
    );
}

#[test]
fn verify_when_ferryd_refuses_checksums_to_anonymous_users() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/readme.txt", server.port());
    let outcome = ferry(&["get", "--verify", "--json", &url], "", local.path());
    outcome.expect_code(0);
    assert!(outcome.stderr.contains("no checksum (552"), "{outcome}");
    assert!(file_record(&outcome.stdout)["hash_verified"].is_null());
    assert!(local.path().join("readme.txt").exists());
}

#[test]
fn verify_catches_a_corrupted_file() {
    let Some((root, server)) = checksum_server("hash", true) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "data.bin");
    let outcome = ferry(&["get", "--verify", "--json", &url], "", local.path());
    outcome.expect_code(11);
    assert!(outcome.stderr.contains("mismatch"), "{outcome}");
    assert!(
        !local.path().join("data.bin").exists(),
        "a bad file never gets its name"
    );
    assert!(local.path().join("data.bin.part").exists());
    let record = file_record(&outcome.stdout);
    assert_eq!(
        (record["hash_verified"].clone(), record["result"].clone()),
        (false.into(), "failed".into())
    );

    // The same in a mirror: exit code 11, the file left as .part.
    fs::create_dir(root.path().join("site")).unwrap();
    fs::write(root.path().join("site/one.bin"), binary_bytes(1000)).unwrap();
    let site = tester_url(server.port, "site");
    let mirror = ferry(&["mirror", "--verify", &site, "copy"], "", local.path());
    mirror.expect_code(11);
    assert!(local.path().join("copy/one.bin.part").exists());
    assert!(!local.path().join("copy/one.bin").exists());
}

#[test]
fn verify_without_server_checksums_says_so() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    fs::write(root.path().join("data.bin"), binary_bytes(1000)).unwrap();
    let Some(server) = vsftpd(root.path(), scratch.path()) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/data.bin", server.port);
    let outcome = ferry(&["get", "--verify", "--json", &url], "", local.path());
    outcome.expect_code(0);
    assert!(outcome.stderr.contains("offers no checksum"), "{outcome}");
    assert!(file_record(&outcome.stdout)["hash_verified"].is_null());
}

#[test]
fn verified_upload() {
    let Some((root, server)) = checksum_server("hash", false) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("up.bin"), binary_bytes(123_456)).unwrap();
    let url = tester_url(server.port, "up.bin");
    let outcome = ferry(
        &["put", "--verify", "--json", "up.bin", &url],
        "",
        local.path(),
    );
    outcome.expect_code(0);
    let record = file_record(&outcome.stdout);
    assert_eq!(
        (record["hash"].clone(), record["hash_verified"].clone()),
        ("SHA-256".into(), true.into())
    );
    assert_eq!(
        fs::read(root.path().join("up.bin")).unwrap(),
        binary_bytes(123_456)
    );
}

#[test]
fn reput_after_a_killed_upload() {
    let root = tempfile::tempdir().unwrap();
    let throttle = [("FERRY_TEST_THROTTLE", "1048576")];
    let Some(server) = pyftpd_options(root.path(), &throttle) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let content = binary_bytes(4 << 20);
    fs::write(local.path().join("up.bin"), &content).unwrap();
    let url = tester_url(server.port, "up.bin");
    let mut child = spawn_ferry(&["put", "up.bin", &url], local.path());
    let remote = root.path().join("up.bin");
    let going = wait_for(Duration::from_secs(20), || {
        fs::metadata(&remote).is_ok_and(|m| m.len() > 300_000)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(going, "the upload never got going");
    // Let the server notice the broken connection and flush what it had.
    std::thread::sleep(Duration::from_millis(300));
    let partial = fs::metadata(&remote).unwrap().len();
    assert!(partial < content.len() as u64);

    let finish = ferry(&["put", "-c", "--json", "up.bin", &url], "", local.path());
    finish.expect_code(0);
    assert!(
        fs::read(&remote).unwrap() == content,
        "resumed upload differs"
    );
    let record = file_record(&finish.stdout);
    let resumed = record["resumed_from"].as_u64().unwrap();
    assert!(resumed >= partial && resumed > 0, "{record}");
}

#[test]
fn reput_continues_a_partial_file_on_ferryd() {
    let server = Ferryd::start();
    let content = binary_bytes(500_000);
    fs::write(server.user_root.join("up.bin"), &content[..100_000]).unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("up.bin"), &content).unwrap();
    let password = PASSWORD.replace(' ', "%20");
    let url = format!("ftp://alice:{password}@127.0.0.1:{}/up.bin", server.port());
    let outcome = ferry(
        &["-d", "put", "-c", "--json", "up.bin", &url],
        "",
        local.path(),
    );
    outcome.expect_code(0).expect_stdout("---> REST 100000");
    assert_eq!(fs::read(server.user_root.join("up.bin")).unwrap(), content);
    let record = file_record(&outcome.stdout);
    assert_eq!(record["resumed_from"].as_u64(), Some(100_000));
    assert_eq!(record["bytes"].as_u64(), Some(400_000));
}

#[test]
fn retries_continue_a_broken_download() {
    let root = tempfile::tempdir().unwrap();
    let content = binary_bytes(3 << 20);
    fs::write(root.path().join("big.bin"), &content).unwrap();
    let Some(server) = pyftpd_options(root.path(), &[("FERRY_TEST_BREAK_FIRST", "1048576")]) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "big.bin");
    let outcome = ferry(
        &["-d", "get", "--retries", "3", "--json", &url],
        "",
        local.path(),
    );
    outcome.expect_code(0);
    assert!(fs::read(local.path().join("big.bin")).unwrap() == content);
    let record = file_record(&outcome.stdout);
    assert_eq!(record["retries"].as_u64(), Some(1), "{outcome}");
    assert_eq!(
        outcome.stdout.matches("---> USER tester").count(),
        2,
        "reconnected"
    );
    assert!(
        outcome.stdout.contains("---> REST "),
        "continued, not restarted:\n{outcome}"
    );
}

#[test]
fn retries_continue_a_broken_pget_range_and_mirror() {
    let root = tempfile::tempdir().unwrap();
    let content = binary_bytes(4 << 20);
    fs::create_dir(root.path().join("site")).unwrap();
    fs::write(root.path().join("site/big.bin"), &content).unwrap();
    let breaking = [("FERRY_TEST_BREAK_FIRST", "300000")];
    let Some(server) = pyftpd_options(root.path(), &breaking) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "site/big.bin");
    let pget = ferry(
        &["get", "--segments", "4", "--retries", "2", "--json", &url],
        "",
        local.path(),
    );
    pget.expect_code(0);
    assert_eq!(
        file_record(&pget.stdout)["retries"].as_u64(),
        Some(1),
        "{pget}"
    );
    assert!(fs::read(local.path().join("big.bin")).unwrap() == content);
    assert!(!local.path().join("big.bin.part.pget").exists());

    // A fresh server breaks its first download again: this time inside a mirror.
    drop(server);
    let Some(server) = pyftpd_options(root.path(), &breaking) else {
        return;
    };
    let site = tester_url(server.port, "site");
    let mirror = ferry(
        &["mirror", "--retries", "2", "--json", &site, "copy"],
        "",
        local.path(),
    );
    mirror.expect_code(0);
    assert!(fs::read(local.path().join("copy/big.bin")).unwrap() == content);
    let record = file_record(&mirror.stdout);
    assert_eq!(record["retries"].as_u64(), Some(1), "{record}");
}

#[test]
fn verify_mismatch_on_a_mirror_upload_leaves_the_remote_part_file() {
    let Some((root, server)) = checksum_server("hash", true) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(local.path().join("up")).unwrap();
    fs::write(local.path().join("up/f.bin"), binary_bytes(20_000)).unwrap();
    let url = tester_url(server.port, "dst");
    let outcome = ferry(&["mirror", "-R", "--verify", "up", &url], "", local.path());
    outcome.expect_code(11);
    assert!(root.path().join("dst/f.bin.part").exists());
    assert!(!root.path().join("dst/f.bin").exists(), "{outcome}");
}

#[test]
fn without_retries_a_broken_download_fails_and_keeps_its_part() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("big.bin"), binary_bytes(3 << 20)).unwrap();
    let Some(server) = pyftpd_options(root.path(), &[("FERRY_TEST_BREAK_FIRST", "1048576")]) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "big.bin");
    let outcome = ferry(&["get", "--json", &url], "", local.path());
    outcome.expect_code(6);
    assert!(!local.path().join("big.bin").exists());
    assert!(local.path().join("big.bin.part").exists());
}

fn ls_json(url: &str, source: &str) {
    let local = tempfile::tempdir().unwrap();
    let outcome = ferry(&["ls", "--json", url], "", local.path());
    outcome.expect_code(0);
    let entries = json_lines(&outcome.stdout);
    for entry in &entries {
        expect_fields(entry, &documented_fields().entry);
        assert_eq!(entry["source"], source);
    }
    let file = entries
        .iter()
        .find(|e| e["name"] == "data.bin")
        .expect("data.bin listed");
    assert_eq!(
        (file["type"].clone(), file["size"].clone()),
        ("file".into(), 1000.into())
    );
    let modify = file["modify"].as_str().unwrap();
    assert!(modify.len() == 20 && modify.ends_with('Z'), "{modify}");
    let dir = entries
        .iter()
        .find(|e| e["name"] == "sub")
        .expect("sub listed");
    assert_eq!(dir["type"], "dir");
}

#[test]
fn ls_json_from_mlsd_and_from_list() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    fs::write(root.path().join("data.bin"), binary_bytes(1000)).unwrap();
    fs::create_dir(root.path().join("sub")).unwrap();
    if let Some(server) = pyftpd_options(root.path(), &[]) {
        ls_json(&tester_url(server.port, ""), "mlsd");
    }
    if let Some(server) = vsftpd(root.path(), scratch.path()) {
        ls_json(&format!("ftp://127.0.0.1:{}/", server.port), "list");
    }
}

/// ferryd stopped in the middle of a 4-segment pget (its running transfers cut) and started
/// again on the same address half a second later: with `--retries`, pget reconnects, continues
/// each range from where it stood, and the file is byte-exact.
#[test]
fn pget_continues_across_a_ferryd_restart() {
    let slow = |c: &mut ferry_server::config::Config| {
        c.limits.download_rate = 2 << 20;
        c.timeouts.shutdown_grace = 0;
    };
    let mut server = Ferryd::start_with(slow);
    let content = binary_bytes(16 << 20);
    fs::write(server.root.join("big.bin"), &content).unwrap();
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/big.bin", server.port());
    let mut child = support::spawn_ferry(
        &["get", "--segments", "4", "--retries", "5", "--json", &url],
        local.path(),
    );
    // Restart once the segments have begun (their part file has bytes).
    let part = local.path().join("big.bin.part");
    let started = support::wait_for(Duration::from_secs(20), || {
        local.path().join("big.bin.part.pget").exists()
    });
    assert!(started, "pget never started");
    std::thread::sleep(Duration::from_millis(500));
    server.restart(Duration::from_millis(500), slow);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "pget did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(local.path().join("stdout.txt")).unwrap();
    let stderr = fs::read_to_string(local.path().join("stderr.txt")).unwrap();
    assert!(status.success(), "{status}: {stdout}\n{stderr}");
    assert!(fs::read(local.path().join("big.bin")).unwrap() == content);
    let record = file_record(&stdout);
    assert!(record["retries"].as_u64().unwrap_or(0) >= 1, "{record}");
    assert!(!part.exists());
}
