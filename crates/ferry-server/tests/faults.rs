//! Faults while transfers run: files cut or removed under a download, a client that stops
//! reading, a control connection that dies, a folder swapped for a symlink while it is listed.
//! A download that cannot send what its 150 announced never ends with 226.

mod support;

use std::io::Read;
use std::time::Duration;

use support::TestServer;

const SIZE: usize = 64 << 20;

/// Starts RETR of a 64 MiB file without reading, cuts the file to 1 MiB, then reads what comes.
fn cut_during_retr(transfer_type: &str) -> (u16, usize) {
    let server = TestServer::start();
    let path = server.root.join("cut.bin");
    std::fs::write(&path, vec![b'x'; SIZE]).unwrap();
    let mut control = server.login("ftp");
    control.expect(&format!("TYPE {transfer_type}"), 200);
    let mut data = control.epsv();
    control.expect("RETR cut.bin", 150);
    // The socket buffers fill (a few MiB) and the server waits for the reader.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    data.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = Vec::new();
    let _ = data.read_to_end(&mut received);
    (control.reply().code, received.len())
}

#[test]
fn a_file_cut_during_a_binary_download_gets_451_not_226() {
    let (code, received) = cut_during_retr("I");
    assert!(received < SIZE, "{received} bytes");
    assert_eq!(code, 451, "after {received} bytes");
}

#[test]
fn a_file_cut_during_an_ascii_download_gets_451_not_226() {
    let (code, received) = cut_during_retr("A");
    assert!(received < SIZE, "{received} bytes");
    assert_eq!(code, 451, "after {received} bytes");
}

/// A file removed during its download goes on from the open file to its end: the download is
/// complete and correct.
#[test]
fn a_file_removed_during_a_download_is_sent_whole() {
    let server = TestServer::start();
    let path = server.root.join("gone.bin");
    std::fs::write(&path, vec![b'y'; SIZE]).unwrap();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect("RETR gone.bin", 150);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&path).unwrap();
    let received = support::read_all(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(received.len(), SIZE);
}

/// A download whose client stops reading (0 bytes/s) is broken off after the stall timeout with
/// 426, and the session goes on.
#[test]
fn a_download_stalled_at_zero_bytes_per_second_gets_426() {
    let server = TestServer::start_with(|c| c.timeouts.stalled_transfer = 2);
    std::fs::write(server.root.join("stall.bin"), vec![b's'; SIZE]).unwrap();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let data = control.epsv();
    control.expect("RETR stall.bin", 150);
    let started = std::time::Instant::now();
    assert_eq!(control.reply().code, 426);
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(data);
    control.expect("NOOP", 200);
}

/// A control connection that dies in the middle of a transfer ends the transfer and frees the
/// session's place: with one session allowed per address, the next connection is taken.
#[test]
fn a_control_connection_dying_mid_transfer_frees_its_slot() {
    let server = TestServer::start_with(|c| c.limits.max_sessions_per_ip = 1);
    std::fs::write(server.root.join("long.bin"), vec![b'l'; SIZE]).unwrap();
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let mut data = control.epsv();
    control.expect("RETR long.bin", 150);
    let mut first = [0u8; 1024];
    data.read_exact(&mut first).unwrap();
    drop(control);
    // The server notices, stops sending and closes the data connection.
    data.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert!(
        rest.len() + 1024 < SIZE,
        "the transfer went on: {} bytes",
        rest.len()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = support::Control::connect(server.addr);
        match next.reply().code {
            220 => break,
            421 if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            code => panic!("the slot was not freed: {code}"),
        }
    }
}

/// A folder replaced by a symlink to outside the root while it is listed: the listing goes on
/// in the folder it opened, and the next listing refuses the link.
#[test]
fn a_folder_replaced_by_a_symlink_during_list_leads_nowhere() {
    let server = TestServer::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside\n").unwrap();
    let folder = server.root.join("big");
    std::fs::create_dir(&folder).unwrap();
    for i in 0..20_000 {
        std::fs::File::create(folder.join(format!("entry-{i:05}"))).unwrap();
    }
    let mut control = server.login("ftp");
    let mut data = control.epsv();
    control.expect("LIST big", 150);
    let mut head = vec![0u8; 4096];
    data.read_exact(&mut head).unwrap();
    std::fs::rename(&folder, server.root.join("moved")).unwrap();
    std::os::unix::fs::symlink(outside.path(), &folder).unwrap();
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).unwrap();
    head.extend(rest);
    let listing = String::from_utf8(head).unwrap();
    assert_eq!(control.reply().code, 226);
    assert!(!listing.contains("secret.txt"));
    assert_eq!(listing.lines().count(), 20_000);
    let _data = control.epsv();
    control.expect("LIST big", 550);
}

/// A FUSE file system (`scripts/eio_fs.py`, fusepy) whose reads of `bad.bin` fail with EIO from
/// 1 MiB on and whose writes under `sink/` fail past 1 MiB; unmounted when dropped.
struct EioMount {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl EioMount {
    fn start() -> Option<EioMount> {
        if !std::path::Path::new("/dev/fuse").exists() {
            support::skip("no /dev/fuse: cannot mount the EIO file system");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/eio_fs.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(&mnt)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mount = EioMount { dir, child };
        for _ in 0..100 {
            if mount.root().join("good.bin").exists() {
                return Some(mount);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        support::skip("the EIO file system did not mount (fusepy and libfuse2 installed?)");
        None
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for EioMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount")
            .arg("-u")
            .arg(self.root())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn disk_errors_give_451_never_226() {
    let Some(mount) = EioMount::start() else {
        return;
    };
    let server = TestServer::start_with(|c| {
        c.anonymous.root = Some(mount.root());
        c.anonymous.writable = true;
    });
    let mut control = server.login("ftp");
    // TYPE I (sendfile) and TYPE A (buffered reads): EIO is the server's error, 451.
    for transfer_type in ["I", "A"] {
        control.expect(&format!("TYPE {transfer_type}"), 200);
        let mut data = control.epsv();
        control.expect("RETR bad.bin", 150);
        data.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut received = Vec::new();
        let _ = data.read_to_end(&mut received);
        let reply = control.reply();
        assert_eq!(reply.code, 451, "TYPE {transfer_type}: {reply:?}");
        assert!(received.len() < 4 << 20, "{}", received.len());
    }
    control.expect("TYPE I", 200);
    let mut data = control.epsv();
    control.expect("RETR good.bin", 150);
    let mut received = Vec::new();
    data.read_to_end(&mut received).unwrap();
    assert_eq!(control.reply().code, 226);
    assert_eq!(received.len(), 4 << 20);
    // A write that fails: 451, not 226.
    assert_eq!(control.upload("STOR sink/up.bin", &vec![0u8; 3 << 20]), 451);
    control.expect("NOOP", 200);
}
