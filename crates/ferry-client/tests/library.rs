//! The library API against pyftpdlib: what an embedding program (or a test of `ferryd`) uses.
//! Every call here is a plain `Client` method on a server started on a loopback port.

mod support;

use std::time::Duration;

use ferry_client::{Client, ClientConfig, DataMode, EntryKind, FtpError, Secret, TransferType};
use support::servers::pyftpd;

async fn logged_in(port: u16, mode: DataMode) -> Client {
    let mut config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    config.data_mode = mode;
    let mut client = Client::connect("127.0.0.1", port, config).await.unwrap();
    assert_eq!(client.greeting().code, 220);
    let welcome = client
        .login("tester", &Secret::new("secret"), None)
        .await
        .unwrap();
    assert_eq!(welcome.code, 230);
    client.set_type(TransferType::Image).await.unwrap();
    client
}

#[tokio::test]
async fn store_retrieve_append_and_resume_upload() {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    for mode in [DataMode::Passive, DataMode::Active] {
        let mut client = logged_in(server.port, mode).await;
        let data = support::binary_bytes(70_000);
        let sent = client
            .store("f.bin", &mut &data[..40_000], 0)
            .await
            .unwrap();
        assert_eq!(sent, 40_000);
        // Resume the upload: REST 40000 then STOR the rest.
        client
            .store("f.bin", &mut &data[40_000..], 40_000)
            .await
            .unwrap();
        client.append("f.bin", &mut &b"tail"[..]).await.unwrap();
        let mut back = Vec::new();
        client.retrieve("f.bin", &mut back, 0).await.unwrap();
        let mut expected = data.clone();
        expected.extend_from_slice(b"tail");
        assert_eq!(back, expected, "{mode:?}");
        assert_eq!(client.size("f.bin").await.unwrap(), 70_004);
        client.delete("f.bin").await.unwrap();
        client.quit().await.unwrap();
    }
}

#[tokio::test]
async fn directories_listings_and_metadata() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), b"hello").unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let mut client = logged_in(server.port, DataMode::Auto).await;
    assert!(client.features().await.unwrap().has("MLST"));
    client.mkdir("sub dir").await.unwrap();
    client.rename("a.txt", "sub dir/b.txt").await.unwrap();
    client.cwd("sub dir").await.unwrap();
    assert_eq!(client.pwd().await.unwrap(), "/sub dir");
    let entries = client.mlsd(None).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "b.txt");
    assert_eq!(
        (entries[0].kind.clone(), entries[0].size),
        (EntryKind::File, Some(5))
    );
    let modified = client.mdtm("b.txt").await.unwrap();
    assert_eq!(entries[0].modified, Some(modified));
    assert_eq!(client.nlst(None).await.unwrap(), vec!["b.txt"]);
    assert!(client.list(None).await.unwrap().contains("b.txt"));
    client.cdup().await.unwrap();
    let top = client.entries(None, 0).await.unwrap();
    assert!(top
        .iter()
        .any(|e| e.name == "sub dir" && e.kind == EntryKind::Directory));
    assert_eq!(client.raw("NOOP").await.unwrap().code, 200);
    client.delete("sub dir/b.txt").await.unwrap();
    client.rmdir("sub dir").await.unwrap();
    client.quit().await.unwrap();
}

#[tokio::test]
async fn errors_are_typed() {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    let mut client = Client::connect("127.0.0.1", server.port, config)
        .await
        .unwrap();
    let refused = client.login("tester", &Secret::new("wrong"), None).await;
    assert!(
        matches!(refused, Err(FtpError::LoginRefused { .. })),
        "{refused:?}"
    );
    let mut client = logged_in(server.port, DataMode::Auto).await;
    let missing = client.retrieve("missing", &mut Vec::new(), 0).await;
    assert!(
        matches!(missing, Err(FtpError::FileUnavailable { .. })),
        "{missing:?}"
    );
    let injected = client.cwd("x\r\nDELE y").await;
    assert!(
        matches!(injected, Err(FtpError::InvalidArgument(_))),
        "{injected:?}"
    );
    // The session is still usable after errors.
    assert_eq!(client.pwd().await.unwrap(), "/");
}

/// A writer that refuses every byte, as a full disk does.
struct FullDisk;

impl tokio::io::AsyncWrite for FullDisk {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::Error::other("no space left")))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A download that fails on the client's side after the server has sent its 226: the ABOR
/// then gets a second reply (225, as vsftpd and pyftpdlib give). Both are read, so the next
/// command gets its own reply, not the one left over.
#[tokio::test]
async fn replies_stay_in_step_after_an_abort_the_server_answers_twice() {
    use std::io::Write;
    use support::fake::{accept_data, fake_server};
    let fake = fake_server(|conn| {
        conn.reply("220 Ready.");
        let mut listener = None;
        for _ in 0..20 {
            let Some(line) = conn.serve_until_other() else {
                return;
            };
            match line.split(' ').next().unwrap_or("") {
                "EPSV" => listener = Some(conn.answer_epsv()),
                "RETR" => break,
                _ => conn.reply("502 Not here."),
            }
        }
        let Some(listener) = listener else {
            return;
        };
        conn.reply("150 Here.");
        if let Some(mut data) = accept_data(&listener) {
            let _ = data.write_all(&[7u8; 1000]);
        }
        conn.reply("226 Transfer complete.");
        for _ in 0..10 {
            match conn
                .command()
                .as_deref()
                .map(|l| l.split(' ').next().unwrap_or(""))
            {
                Some("ABOR") => conn.reply("225 No transfer to ABOR."),
                Some("PWD") => conn.reply("257 \"/\" is the current directory."),
                Some("NOOP") => conn.reply("200 NOOP ok."),
                Some("QUIT") | None => return,
                Some(_) => conn.reply("502 Not here."),
            }
        }
    });
    let config = ClientConfig::default().with_timeouts(Duration::from_secs(10));
    let mut client = Client::connect("127.0.0.1", fake.port, config)
        .await
        .unwrap();
    client.login("u", &Secret::new("p"), None).await.unwrap();
    let failed = client.retrieve("file.bin", &mut FullDisk, 0).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(client.noop().await.unwrap().code, 200);
    let commands = fake.commands();
    assert!(commands.iter().any(|c| c == "ABOR"), "{commands:?}");
}
