//! The server's round-2 extensions from the client's side, against ferryd: MODE Z (`-z`, and
//! `mode z` in the shell) for downloads, uploads and listings, byte-exact; `checksum` of a
//! remote file, checked against a SHA-256 computed here; and a server without MODE Z
//! (`--no-mode-z`) leaves transfers in stream mode with a warning.

mod support;

use std::fs;

use sha2::Digest;
use support::binary_bytes;
use support::ferryd::{Ferryd, PASSWORD};

/// Text that compresses well, as a listing or a log would.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("line {i} of a compressible file\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn mode_z_one_shot_downloads_and_uploads_byte_exact() {
    let server = Ferryd::start();
    let body = text(3_000_000);
    fs::write(server.root.join("text.txt"), &body).unwrap();
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/text.txt", server.port());
    let got = support::ferry(
        &["-d", "-z", "get", &url, "-o", "got.txt"],
        "",
        local.path(),
    );
    got.expect_code(0);
    assert!(
        got.stdout.contains("---> MODE Z") || got.stderr.contains("---> MODE Z"),
        "{got}"
    );
    assert_eq!(fs::read(local.path().join("got.txt")).unwrap(), body);

    // An upload in MODE Z: alice's folder gets the plain bytes.
    let binary = binary_bytes(500_000);
    fs::write(local.path().join("up.bin"), &binary).unwrap();
    let url = format!(
        "ftp://alice:{}@127.0.0.1:{}/up.bin",
        PASSWORD.replace(' ', "%20"),
        server.port()
    );
    let put = support::ferry(&["-z", "put", "up.bin", &url], "", local.path());
    put.expect_code(0);
    assert_eq!(fs::read(server.user_root.join("up.bin")).unwrap(), binary);
}

#[test]
fn shell_mode_z_lists_gets_puts_and_checksums() {
    let server = Ferryd::start();
    let body = text(1_000_000);
    fs::write(server.user_root.join("text.txt"), &body).unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("local.txt"), text(200_000)).unwrap();
    let port = server.port().to_string();
    let script = format!(
        "user alice \"{PASSWORD}\"\nmode z\nmode\nls\nget text.txt\nput local.txt\nascii\nget text.txt ascii.txt\nmode stream\nchecksum text.txt\nbye\n"
    );
    let run = support::ferry(&["-n", "-d", "127.0.0.1", &port], &script, local.path());
    run.expect_code(0)
        .expect_stdout("Using z (deflate) mode to transfer files.")
        .expect_stdout("text.txt");
    assert!(run.stdout.contains("---> MODE Z"), "{run}");
    assert!(run.stdout.contains("---> MODE S"), "{run}");
    assert_eq!(fs::read(local.path().join("text.txt")).unwrap(), body);
    assert_eq!(fs::read(local.path().join("ascii.txt")).unwrap(), body);
    assert_eq!(
        fs::read(server.user_root.join("local.txt")).unwrap(),
        text(200_000)
    );
    let sha256 = format!("{:x}", sha2::Sha256::digest(&body));
    assert!(
        run.stdout.contains(&format!("text.txt\tSHA-256\t{sha256}")),
        "{run}"
    );
}

#[test]
fn without_mode_z_on_the_server_transfers_stay_in_stream_mode() {
    let server = Ferryd::start_with(|c| c.data.mode_z = false);
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/readme.txt", server.port());
    let got = support::ferry(&["-z", "get", &url, "-o", "r.txt"], "", local.path());
    got.expect_code(0);
    assert!(got.stderr.contains("MODE Z refused"), "{got}");
    assert_eq!(
        fs::read(local.path().join("r.txt")).unwrap(),
        support::readme_bytes()
    );
}
