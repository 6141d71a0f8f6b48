//! `ferry mirror` against real servers: pyftpdlib (MLSD, MFMT), ferryd (MLSD, MFMT) and
//! vsftpd (LIST only, read-only): both directions, deletions, excludes, the deletion limit, an
//! empty `--exclude=`, a mirror killed (SIGTERM) midway then finished with `--continue`, and
//! `--verify` finding a change that size and time miss.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use support::ferryd::Ferryd;
use support::servers::{pyftpd, pyftpd_options, vsftpd};
use support::{
    binary_bytes, dead_port, documented_fields, expect_fields, ferry, json_lines, spawn_ferry,
    wait_for,
};

fn tester_url(port: u16, path: &str) -> String {
    format!("ftp://tester:secret@127.0.0.1:{port}/{path}")
}

/// `site/a.txt`, `site/sub/b.bin`, `site/skip.tmp`, `site/cache/junk` under `root`.
fn make_site(root: &Path) {
    fs::create_dir_all(root.join("site/sub")).unwrap();
    fs::create_dir_all(root.join("site/cache")).unwrap();
    fs::write(root.join("site/a.txt"), "alpha\n").unwrap();
    fs::write(root.join("site/sub/b.bin"), binary_bytes(200_000)).unwrap();
    fs::write(root.join("site/skip.tmp"), "temporary").unwrap();
    fs::write(root.join("site/cache/junk"), "junk").unwrap();
}

fn mtime(path: &Path) -> u64 {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    modified.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn summary(stdout: &str) -> serde_json::Value {
    let lines = json_lines(stdout);
    let last = lines.last().expect("a summary line").clone();
    assert_eq!(last["record"], "summary", "{stdout}");
    expect_fields(&last, &documented_fields().summary);
    for line in &lines[..lines.len() - 1] {
        expect_fields(line, &documented_fields().file);
    }
    last
}

#[test]
fn pyftpdlib_mirror_both_ways_with_deletions_and_excludes() {
    let root = tempfile::tempdir().unwrap();
    make_site(root.path());
    // An old time, so that keeping it is visible (not "now").
    set_mtime(&root.path().join("site/a.txt"), 1_600_000_000);
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "site");
    let excludes = ["--exclude", "*.tmp", "--exclude", "cache"];
    let mut args = vec!["mirror", "--json"];
    args.extend(excludes);
    args.extend([url.as_str(), "copy"]);
    let first = ferry(&args, "", local.path());
    first.expect_code(0);
    let copy = local.path().join("copy");
    assert_eq!(fs::read(copy.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(
        fs::read(copy.join("sub/b.bin")).unwrap(),
        binary_bytes(200_000)
    );
    assert!(!copy.join("skip.tmp").exists() && !copy.join("cache").exists());
    assert_eq!(
        mtime(&copy.join("a.txt")),
        1_600_000_000,
        "remote time kept"
    );
    let totals = summary(&first.stdout);
    assert_eq!(
        (totals["transferred"].as_u64(), totals["excluded"].as_u64()),
        (Some(2), Some(2))
    );

    // Nothing changed: nothing moves (times are exact from MLSD).
    let again = ferry(&args, "", local.path());
    let totals = summary(&again.expect_code(0).stdout);
    assert_eq!(
        (totals["transferred"].as_u64(), totals["unchanged"].as_u64()),
        (Some(0), Some(2))
    );

    // A file gone remotely and an extra local file go; an excluded local file stays.
    fs::remove_file(root.path().join("site/a.txt")).unwrap();
    fs::write(copy.join("extra.txt"), "extra").unwrap();
    fs::write(copy.join("keep.tmp"), "mine").unwrap();
    let mut delete_args = vec!["mirror", "--json", "--delete"];
    delete_args.extend(excludes);
    delete_args.extend([url.as_str(), "copy"]);
    let deleted = ferry(&delete_args, "", local.path());
    let totals = summary(&deleted.expect_code(0).stdout);
    assert_eq!(totals["deleted"], serde_json::json!(["extra.txt", "a.txt"]));
    assert!(!copy.join("a.txt").exists() && !copy.join("extra.txt").exists());
    assert_eq!(fs::read(copy.join("keep.tmp")).unwrap(), b"mine");

    // Upload: -R makes a new remote folder like the local one, with MFMT keeping times.
    let up_url = tester_url(server.port, "uploaded");
    set_mtime(&copy.join("sub/b.bin"), 1_500_000_000);
    let upload = ferry(
        &["mirror", "-R", "--json", "copy", &up_url],
        "",
        local.path(),
    );
    upload.expect_code(0);
    let uploaded = root.path().join("uploaded");
    assert_eq!(
        fs::read(uploaded.join("sub/b.bin")).unwrap(),
        binary_bytes(200_000)
    );
    assert_eq!(fs::read(uploaded.join("keep.tmp")).unwrap(), b"mine");
    assert_eq!(mtime(&uploaded.join("sub/b.bin")), 1_500_000_000, "MFMT");
    assert!(!uploaded.join("sub/b.bin.part").exists());
    fs::remove_file(copy.join("keep.tmp")).unwrap();
    let upload_delete = ferry(
        &["mirror", "-R", "--delete", "--json", "copy", &up_url],
        "",
        local.path(),
    );
    let totals = summary(&upload_delete.expect_code(0).stdout);
    assert_eq!(totals["deleted"], serde_json::json!(["keep.tmp"]));
    assert!(!uploaded.join("keep.tmp").exists());
    assert!(uploaded.join("sub/b.bin").exists());
}

#[test]
fn verify_finds_a_change_that_size_and_time_miss() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("site")).unwrap();
    let file = root.path().join("site/f.txt");
    fs::write(&file, "version one\n").unwrap();
    set_mtime(&file, 1_600_000_000);
    let Some(server) = pyftpd_options(root.path(), &[("FERRY_TEST_HASH", "hash")]) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "site");
    ferry(&["mirror", &url, "copy"], "", local.path()).expect_code(0);
    // Same length, same time, other bytes.
    fs::write(&file, "version two\n").unwrap();
    set_mtime(&file, 1_600_000_000);
    let blind = ferry(&["mirror", "--json", &url, "copy"], "", local.path());
    assert_eq!(
        summary(&blind.expect_code(0).stdout)["transferred"].as_u64(),
        Some(0)
    );
    let checked = ferry(
        &["mirror", "--verify", "--json", &url, "copy"],
        "",
        local.path(),
    );
    let totals = summary(&checked.expect_code(0).stdout);
    assert_eq!(
        (totals["transferred"].as_u64(), totals["unchanged"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        fs::read(local.path().join("copy/f.txt")).unwrap(),
        b"version two\n"
    );
}

#[test]
fn empty_exclude_is_a_usage_error_before_connecting() {
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(local.path().join("copy")).unwrap();
    fs::write(local.path().join("copy/precious"), "x").unwrap();
    let url = tester_url(dead_port(), "site");
    for exclude in ["--exclude=", "--include="] {
        let outcome = ferry(
            &["mirror", "--delete", exclude, &url, "copy"],
            "",
            local.path(),
        );
        outcome.expect_code(2);
        assert!(outcome.stderr.contains("empty"), "{outcome}");
    }
    assert!(local.path().join("copy/precious").exists());
    // The server's root has no name: the current folder is never the default target.
    let root = format!("ftp://127.0.0.1:{}/", dead_port());
    let outcome = ferry(&["mirror", "--delete", &root], "", local.path());
    outcome.expect_code(2);
    assert!(
        outcome.stderr.contains("name the LOCAL folder"),
        "{outcome}"
    );
}

#[test]
fn max_delete_stops_before_anything_is_deleted() {
    let root = tempfile::tempdir().unwrap();
    make_site(root.path());
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    fs::create_dir(&copy).unwrap();
    for name in ["x1", "x2", "x3"] {
        fs::write(copy.join(name), name).unwrap();
    }
    let url = tester_url(server.port, "site");
    let outcome = ferry(
        &["mirror", "--delete", "--max-delete", "2", &url, "copy"],
        "",
        local.path(),
    );
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("--max-delete"), "{outcome}");
    assert!(copy.join("x1").exists() && copy.join("x3").exists());
    assert!(!copy.join("a.txt").exists(), "nothing done at all");
}

#[test]
fn interrupted_mirror_leaves_part_files_and_continue_finishes() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("site")).unwrap();
    let content = binary_bytes(4 << 20);
    fs::write(root.path().join("site/big.bin"), &content).unwrap();
    // 256 KiB/s: the 4 MiB file takes about 16 s, time enough to kill the mirror in the middle
    // even on a loaded machine (at 1 MiB/s, CI once saw it finish first). The rest comes from
    // an unthrottled server on the same folder.
    let throttle = [("FERRY_TEST_THROTTLE", "262144")];
    let Some(server) = pyftpd_options(root.path(), &throttle) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = tester_url(server.port, "site");
    let mut child = spawn_ferry(&["mirror", &url, "copy"], local.path());
    let part = local.path().join("copy/big.bin.part");
    let started = wait_for(Duration::from_secs(20), || {
        fs::metadata(&part).is_ok_and(|m| m.len() > 300_000)
    });
    // SIGTERM, not Ctrl-C's SIGINT: a process that a non-interactive shell starts in the
    // background ignores SIGINT, and so does every child it starts (CI may run so).
    let interrupted = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let stopped = wait_for(Duration::from_secs(10), || {
        child.try_wait().is_ok_and(|status| status.is_some())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(interrupted && stopped, "SIGTERM did not stop the mirror");
    assert!(started, "the download never got going");
    assert!(
        !local.path().join("copy/big.bin").exists(),
        "no file may claim completeness"
    );
    let partial = fs::metadata(&part).unwrap().len();
    assert!(partial < content.len() as u64);

    let Some(fast) = pyftpd_options(root.path(), &[]) else {
        return;
    };
    let url = tester_url(fast.port, "site");
    let finish = ferry(
        &["mirror", "--continue", "--json", &url, "copy"],
        "",
        local.path(),
    );
    finish.expect_code(0);
    assert_eq!(
        fs::read(local.path().join("copy/big.bin")).unwrap(),
        content
    );
    assert!(!part.exists());
    let records = json_lines(&finish.stdout);
    let file = records
        .iter()
        .find(|r| r["record"] == "file")
        .expect("a file record");
    let resumed = file["resumed_from"].as_u64().unwrap();
    assert!(resumed >= partial && resumed > 0, "{file}");
    assert_eq!(file["bytes"].as_u64(), Some(content.len() as u64 - resumed));
}

#[test]
fn killed_upload_mirror_leaves_a_remote_part_file_and_continue_finishes() {
    let root = tempfile::tempdir().unwrap();
    let throttle = [("FERRY_TEST_THROTTLE", "1048576")];
    let Some(server) = pyftpd_options(root.path(), &throttle) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(local.path().join("up")).unwrap();
    let content = binary_bytes(5 << 20);
    fs::write(local.path().join("up/big.bin"), &content).unwrap();
    let url = tester_url(server.port, "dst");
    let mut child = spawn_ferry(&["mirror", "-R", "up", &url], local.path());
    let part = root.path().join("dst/big.bin.part");
    let started = wait_for(Duration::from_secs(20), || {
        fs::metadata(&part).is_ok_and(|m| m.len() > 300_000)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the upload never got going");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !root.path().join("dst/big.bin").exists(),
        "no file may claim completeness"
    );
    let partial = fs::metadata(&part).unwrap().len();
    assert!(partial < content.len() as u64);

    let finish = ferry(
        &["mirror", "-R", "--continue", "--json", "up", &url],
        "",
        local.path(),
    );
    finish.expect_code(0);
    assert!(fs::read(root.path().join("dst/big.bin")).unwrap() == content);
    assert!(!part.exists());
    let records = json_lines(&finish.stdout);
    let file = records
        .iter()
        .find(|r| r["record"] == "file")
        .expect("a file record");
    assert!(file["resumed_from"].as_u64().unwrap() > 0, "{file}");
}

#[test]
fn ferryd_mirror_both_ways_with_parallel_sessions() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up");
    fs::create_dir_all(up.join("d/e")).unwrap();
    for i in 0..6 {
        fs::write(up.join(format!("d/f{i}.bin")), binary_bytes(50_000 + i)).unwrap();
    }
    fs::write(up.join("d/e/deep.txt"), "deep").unwrap();
    let url = format!("ftp://alice:s3cret%20pass@127.0.0.1:{}/tree", server.port());
    let upload = ferry(
        &["mirror", "-R", "--parallel", "3", "--json", "up", &url],
        "",
        local.path(),
    );
    let totals = summary(&upload.expect_code(0).stdout);
    assert_eq!(totals["transferred"].as_u64(), Some(7));
    let remote = server.user_root.join("tree");
    // MFMT gave the uploads the local files' times.
    assert_eq!(mtime(&remote.join("d/f5.bin")), mtime(&up.join("d/f5.bin")));
    assert_eq!(
        fs::read(remote.join("d/f5.bin")).unwrap(),
        binary_bytes(50_005)
    );
    assert_eq!(fs::read(remote.join("d/e/deep.txt")).unwrap(), b"deep");

    // Same sizes and (thanks to MFMT) same times: nothing moves again.
    let again = ferry(&["mirror", "-R", "--json", "up", &url], "", local.path());
    assert_eq!(
        summary(&again.expect_code(0).stdout)["transferred"].as_u64(),
        Some(0)
    );

    fs::remove_file(up.join("d/f0.bin")).unwrap();
    let pruned = ferry(
        &["mirror", "-R", "--delete", "--json", "up", &url],
        "",
        local.path(),
    );
    pruned.expect_code(0);
    assert!(!remote.join("d/f0.bin").exists() && remote.join("d/f1.bin").exists());

    let down = ferry(
        &["mirror", "--parallel", "2", &url, "down"],
        "",
        local.path(),
    );
    down.expect_code(0);
    for i in 1..6 {
        let name = format!("d/f{i}.bin");
        assert_eq!(
            fs::read(local.path().join("down").join(&name)).unwrap(),
            binary_bytes(50_000 + i)
        );
    }
    assert!(!local.path().join("down/d/f0.bin").exists());
}

#[test]
fn dry_run_prints_the_commands_and_changes_nothing() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/pub", server.port());
    fs::create_dir(local.path().join("pub")).unwrap();
    fs::write(local.path().join("pub/stale"), "old").unwrap();
    let outcome = ferry(
        &["mirror", "--dry-run", "--delete", &url, "pub"],
        "",
        local.path(),
    );
    outcome
        .expect_code(0)
        .expect_stdout("RETR pub/readme.txt > pub/readme.txt.part")
        .expect_stdout("rename pub/readme.txt.part pub/readme.txt")
        .expect_stdout("rm pub/stale")
        .expect_stdout("would delete stale")
        .expect_stdout("mirror: 1 files transferred (1715 bytes)");
    assert!(local.path().join("pub/stale").exists());
    assert!(!local.path().join("pub/readme.txt").exists());
}

#[test]
fn vsftpd_mirror_compares_list_times_at_minute_precision() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    make_site(root.path());
    let Some(server) = vsftpd(root.path(), scratch.path()) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/site", server.port);
    let first = ferry(
        &["mirror", "--json", "--exclude", "cache", &url, "copy"],
        "",
        local.path(),
    );
    let totals = summary(&first.expect_code(0).stdout);
    assert_eq!(totals["transferred"].as_u64(), Some(3));
    assert_eq!(
        fs::read(local.path().join("copy/sub/b.bin")).unwrap(),
        binary_bytes(200_000)
    );
    // The local copies got the listed times (to the minute): the second run moves nothing.
    let second = ferry(
        &["mirror", "--json", "--exclude", "cache", &url, "copy"],
        "",
        local.path(),
    );
    let totals = summary(&second.expect_code(0).stdout);
    assert_eq!(
        (totals["transferred"].as_u64(), totals["unchanged"].as_u64()),
        (Some(0), Some(3))
    );
}

/// A LIST with lines in a format no parser reads (ISO dates, say) may lack entries the folder
/// has: `--delete` then deletes nothing, and says why, rather than take the local copies of
/// those entries for files gone from the server.
#[test]
fn unreadable_listing_lines_stop_deletions() {
    use std::io::Write;
    use support::fake::{accept_data, fake_server};
    let fake = fake_server(|conn| {
        conn.reply("220 Odd server.");
        let mut listener = None;
        for _ in 0..40 {
            let Some(line) = conn.serve_until_other() else {
                return;
            };
            match line.split(' ').next().unwrap_or("") {
                "EPSV" => listener = Some(conn.answer_epsv()),
                "PWD" => conn.reply("257 \"/\" is the current directory."),
                "CWD" => conn.reply("250 OK."),
                "LIST" => {
                    let Some(data) = listener.take() else {
                        conn.reply("425 No data connection.");
                        continue;
                    };
                    conn.reply("150 Listing.");
                    if let Some(mut stream) = accept_data(&data) {
                        let _ = stream.write_all(b"2024-01-05 12:34 4 keep.txt\r\n");
                    }
                    conn.reply("226 Done.");
                }
                _ => conn.reply("502 Not here."),
            }
        }
    });
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    fs::create_dir(&copy).unwrap();
    fs::write(copy.join("keep.txt"), "keep").unwrap();
    let url = format!("ftp://u:p@127.0.0.1:{}/", fake.port);
    let outcome = ferry(&["mirror", "--delete", &url, "copy"], "", local.path());
    outcome.expect_code(0);
    assert!(outcome.stderr.contains("nothing is deleted"), "{outcome}");
    assert!(copy.join("keep.txt").exists(), "{outcome}");
}

/// A local folder of the target that is a symbolic link is not written through: the mirror
/// would put files where the link leads, outside the target, that no later run lists.
#[test]
fn a_mirror_never_writes_through_a_local_link() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("site/data")).unwrap();
    fs::write(root.path().join("site/data/x.txt"), "x").unwrap();
    fs::write(root.path().join("site/top.txt"), "top").unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    fs::create_dir(&copy).unwrap();
    std::os::unix::fs::symlink(outside.path(), copy.join("data")).unwrap();
    let url = tester_url(server.port, "site");
    let outcome = ferry(&["mirror", &url, "copy"], "", local.path());
    assert_ne!(outcome.code, Some(0), "{outcome}");
    assert!(
        outcome.stdout.contains("symbolic link") || outcome.stderr.contains("symbolic link"),
        "{outcome}"
    );
    assert!(
        !outside.path().join("x.txt").exists(),
        "written through the link"
    );
    assert_eq!(fs::read(copy.join("top.txt")).unwrap(), b"top");
}

/// A source with both `x` and `x.part`: the local `x.part` (the mirror's copy of the source's,
/// unchanged) is not taken for a partial `x` by `--continue`, nor replaced by the download of
/// `x`, which goes to `x.ferry-part`.
#[test]
fn a_part_file_of_the_source_is_not_a_partial_download() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("site")).unwrap();
    let x = binary_bytes(100_000);
    fs::write(root.path().join("site/x"), &x).unwrap();
    fs::write(root.path().join("site/x.part"), b"its own file").unwrap();
    set_mtime(&root.path().join("site/x.part"), 1_600_000_000);
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    fs::create_dir(&copy).unwrap();
    fs::write(copy.join("x.part"), b"its own file").unwrap();
    set_mtime(&copy.join("x.part"), 1_600_000_000);
    let url = tester_url(server.port, "site");
    ferry(&["mirror", "-c", &url, "copy"], "", local.path()).expect_code(0);
    assert!(
        fs::read(copy.join("x")).unwrap() == x,
        "x was resumed from x.part"
    );
    assert_eq!(fs::read(copy.join("x.part")).unwrap(), b"its own file");
    assert!(!copy.join("x.ferry-part").exists());
}
