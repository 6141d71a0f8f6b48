//! Faults while transfers run: files cut or removed under a download, clients that vanish.
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
