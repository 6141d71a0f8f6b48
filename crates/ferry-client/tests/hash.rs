//! `hash` in the shell against ferryd: the classic 1024 bytes a mark for small files, a mark
//! size that grows with big files (at most 100 marks a file), `hash SIZE` (tnftp's form) and
//! `hash auto`.

mod support;

use std::fs;

use support::binary_bytes;
use support::ferryd::Ferryd;

/// The longest run of `#` in `text`: the marks of one transfer.
fn marks(text: &str) -> usize {
    text.split(|c| c != '#').map(str::len).max().unwrap_or(0)
}

#[test]
fn hash_marks_scale_with_the_file_and_take_a_size() {
    let server = Ferryd::start();
    let big = binary_bytes(3_000_000);
    fs::write(server.root.join("big.bin"), &big).unwrap();
    fs::write(server.root.join("small.bin"), binary_bytes(5000)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let port = server.port().to_string();
    let run = |script: &str| {
        let session = format!("user ftp me@\n{script}bye\n");
        support::ferry(&["-n", "127.0.0.1", &port], &session, local.path())
    };

    // Default: 3,000,000 bytes in 32 KiB marks (the classic 1024 would print 2,929).
    let scaled = run("hash\nget big.bin\n");
    scaled
        .expect_code(0)
        .expect_stdout("Hash mark printing on (1024 bytes/hash mark).");
    assert_eq!(marks(&scaled.stdout), 3_000_000 / 32_768, "{scaled}");
    assert_eq!(fs::read(local.path().join("big.bin")).unwrap(), big);

    // A small file keeps the classic size: 4 marks for 5000 bytes.
    let classic = run("hash on\nget small.bin\n");
    assert_eq!(marks(&classic.stdout), 4, "{classic}");

    // A fixed size, with a unit.
    let fixed = run("hash 100k\nget big.bin\n");
    fixed.expect_stdout("Hash mark printing on (102400 bytes/hash mark).");
    assert_eq!(marks(&fixed.stdout), 3_000_000 / 102_400, "{fixed}");

    // `hash auto` goes back to the default after a fixed size.
    let auto = run("hash 100k\nhash auto\nget big.bin\n");
    assert_eq!(marks(&auto.stdout), 3_000_000 / 32_768, "{auto}");

    // Bad sizes are refused with the usage, and marks stay off.
    let bad = run("hash 0\nhash lots\nhash 1 2\nget small.bin\n");
    bad.expect_stdout("usage: hash [on | off | auto | size]");
    assert_eq!(bad.stdout.matches("usage: hash").count(), 3, "{bad}");
    assert_eq!(marks(&bad.stdout), 0, "{bad}");
}
