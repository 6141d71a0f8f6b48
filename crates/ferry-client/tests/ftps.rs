//! FTPS (RFC 4217) against real servers: vsftpd with `require_ssl_reuse` (explicit FTPS with
//! TLS 1.2 and TLS 1.3, passive and active, downloads and uploads; implicit FTPS on another
//! instance) and pyftpdlib's `TLS_FTPHandler`. Certificates are made by the test (rcgen).
//! Also: certificate checks (`--cacert`, `--pin`, known hosts, `--insecure`, untrusted) and a
//! server that refuses AUTH TLS (`--tls` fails, `--tls=try` falls back).
//!
//! A test against ferryd's own FTPS only needs a [`support::ferryd::Ferryd`] with TLS set up
//! and the same `ferry` invocations as [`explicit_session`].

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ferry_client::tls::{Roots, TrustPolicy};
use ferry_client::{
    Client, ClientConfig, DataMode, FtpError, Secret, TlsMode, TlsOptions, TlsVersions,
    TransferType,
};
use support::certs::TestPki;
use support::servers::{pyftpd, pyftpd_tls, vsftpd_with, Server};
use support::{binary_bytes, ferry, readme_bytes, Outcome};

/// A vsftpd serving `pub/readme.txt`, `pub/big.bin` and a writable `incoming/`, with TLS
/// required for logins and data and TLS session reuse required on data connections.
struct Vsftpd {
    _root: tempfile::TempDir,
    _scratch: tempfile::TempDir,
    local: tempfile::TempDir,
    pki: TestPki,
    server: Server,
    incoming: std::path::PathBuf,
}

fn vsftpd_tls(implicit: bool) -> Option<Vsftpd> {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("pub")).unwrap();
    fs::write(root.path().join("pub/readme.txt"), readme_bytes()).unwrap();
    fs::write(root.path().join("pub/big.bin"), binary_bytes(300_000)).unwrap();
    let incoming = root.path().join("incoming");
    fs::create_dir(&incoming).unwrap();
    fs::set_permissions(&incoming, fs::Permissions::from_mode(0o777)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let pki = TestPki::create(scratch.path());
    let extra = format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         force_local_data_ssl=YES\nrequire_ssl_reuse=YES\nssl_ciphers=HIGH\nssl_tlsv1=YES\n\
         ssl_sslv2=NO\nssl_sslv3=NO\nrsa_cert_file={}\nrsa_private_key_file={}\n\
         write_enable=YES\nanon_upload_enable=YES\nanon_umask=022\nimplicit_ssl={}\n",
        pki.cert_pem.display(),
        pki.key_pem.display(),
        if implicit { "YES" } else { "NO" }
    );
    let server = vsftpd_with(root.path(), scratch.path(), &extra)?;
    Some(Vsftpd {
        _root: root,
        _scratch: scratch,
        local: tempfile::tempdir().unwrap(),
        pki,
        server,
        incoming,
    })
}

const SESSION: &str = "ftp\nabc@any-domain.com\ndir\ncd pub\nget readme.txt\nget big.bin\nbye\n";

/// The seed-like session over explicit FTPS; returns its outcome after checking the files.
fn explicit_session(setup: &Vsftpd, extra: &[&str]) -> Outcome {
    let port = setup.server.port.to_string();
    let ca = setup.pki.ca_pem.to_str().unwrap();
    let mut args = vec!["-d", "--tls", "--cacert", ca];
    args.extend_from_slice(extra);
    args.extend(["127.0.0.1", port.as_str()]);
    let outcome = ferry(&args, SESSION, setup.local.path());
    outcome
        .expect_code(0)
        .expect_stdout("---> AUTH TLS")
        .expect_stdout("---> PBSZ 0")
        .expect_stdout("---> PROT P")
        .expect_stdout("200 PROT now Private.")
        .expect_stdout("230 Login successful.")
        .expect_stdout("226 Directory send OK.")
        .expect_stdout("1715 bytes received in ")
        .expect_stdout("300000 bytes received in ")
        .expect_stdout("221 Goodbye.");
    let local = setup.local.path();
    assert_eq!(fs::read(local.join("readme.txt")).unwrap(), readme_bytes());
    assert_eq!(
        fs::read(local.join("big.bin")).unwrap(),
        binary_bytes(300_000)
    );
    outcome
}

#[test]
fn vsftpd_explicit_tls12_passive_and_active() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    let outcome = explicit_session(&setup, &["--tls-version", "1.2", "-p"]);
    outcome.expect_stdout("TLS: TLSv1_2");
    fs::remove_file(setup.local.path().join("big.bin")).unwrap();
    explicit_session(&setup, &["--tls-version", "1.2", "-A"]).expect_stdout("---> PORT ");
}

#[test]
fn vsftpd_explicit_tls13_passive_and_active() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    let outcome = explicit_session(&setup, &["--tls-version", "1.3", "-p"]);
    outcome.expect_stdout("TLS: TLSv1_3");
    fs::remove_file(setup.local.path().join("big.bin")).unwrap();
    explicit_session(&setup, &["--tls-version", "1.3", "-A"]).expect_stdout("---> PORT ");
}

#[test]
fn vsftpd_explicit_uploads_with_both_versions() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    let data = binary_bytes(250_000);
    fs::write(setup.local.path().join("up.bin"), &data).unwrap();
    let port = setup.server.port.to_string();
    let ca = setup.pki.ca_pem.to_str().unwrap();
    for (version, name) in [("1.2", "up12.bin"), ("1.3", "up13.bin")] {
        let script = format!("user ftp x@y\ncd incoming\nput up.bin {name}\nbye\n");
        let args = [
            "-n",
            "--tls",
            "--cacert",
            ca,
            "--tls-version",
            version,
            "127.0.0.1",
            &port,
        ];
        ferry(&args, &script, setup.local.path())
            .expect_code(0)
            .expect_stdout("250000 bytes sent in ")
            .expect_stdout("226 Transfer complete.");
        assert_eq!(
            fs::read(setup.incoming.join(name)).unwrap(),
            data,
            "TLS {version}"
        );
    }
}

#[test]
fn vsftpd_implicit_one_shot_and_session() {
    let Some(setup) = vsftpd_tls(true) else {
        return;
    };
    let ca = setup.pki.ca_pem.to_str().unwrap();
    let url = format!("ftps://127.0.0.1:{}/pub/readme.txt", setup.server.port);
    let local = setup.local.path();
    ferry(&["get", &url, "--cacert", ca], "", local).expect_code(0);
    assert_eq!(fs::read(local.join("readme.txt")).unwrap(), readme_bytes());
    let port = setup.server.port.to_string();
    let script = "user ftp x@y\ncd pub\nget big.bin\nbye\n";
    ferry(
        &["-n", "-d", "--implicit", "--cacert", ca, "127.0.0.1", &port],
        script,
        local,
    )
    .expect_code(0)
    .expect_stdout("---> PROT P")
    .expect_stdout("300000 bytes received in ");
    assert_eq!(
        fs::read(local.join("big.bin")).unwrap(),
        binary_bytes(300_000)
    );
}

fn library_options(pki: &TestPki, mode: TlsMode, versions: TlsVersions) -> ClientConfig {
    let mut config = ClientConfig::default().with_timeouts(Duration::from_secs(20));
    config.tls = TlsOptions {
        mode,
        roots: Roots::PemFile(pki.ca_pem.clone()),
        versions,
        ..TlsOptions::default()
    };
    config
}

#[tokio::test]
async fn library_data_connections_resume_the_control_session() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    for (versions, name) in [
        (TlsVersions::Tls12Only, "TLSv1_2"),
        (TlsVersions::Tls13Only, "TLSv1_3"),
    ] {
        for mode in [DataMode::Passive, DataMode::Active] {
            let mut config = library_options(&setup.pki, TlsMode::Explicit, versions);
            config.data_mode = mode;
            let mut client = Client::connect("127.0.0.1", setup.server.port, config)
                .await
                .unwrap();
            assert!(client.is_tls());
            assert_eq!(client.tls_info().unwrap().version, name);
            client
                .login("ftp", &Secret::new("x@y"), None)
                .await
                .unwrap();
            client.set_type(TransferType::Image).await.unwrap();
            for _ in 0..2 {
                let mut body = Vec::new();
                client.retrieve("pub/big.bin", &mut body, 0).await.unwrap();
                assert_eq!(body, binary_bytes(300_000), "{name} {mode:?}");
                let data = client.last_data_tls().unwrap();
                assert!(data.resumed, "{name} {mode:?}: {data:?}");
                assert_eq!(data.version, name);
            }
            support::check_resumed_tail(&mut client, "pub/big.bin", 300_000, 299_000).await;
            let upload = format!("incoming/{name}-{mode:?}.bin");
            client.store(&upload, &mut &b"stored"[..], 0).await.unwrap();
            assert_eq!(
                fs::read(setup.incoming.join(&upload[9..])).unwrap(),
                b"stored"
            );
            assert!(client
                .list(Some("pub"))
                .await
                .unwrap()
                .contains("readme.txt"));
            client.quit().await.unwrap();
        }
    }
}

#[test]
fn pyftpdlib_tls_round_trip() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("readme.txt"), readme_bytes()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let pki = TestPki::create(scratch.path());
    let Some(server) = pyftpd_tls(root.path(), &pki.cert_pem, &pki.key_pem) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let data = binary_bytes(200_000);
    fs::write(local.path().join("blob.bin"), &data).unwrap();
    let port = server.port.to_string();
    let ca = pki.ca_pem.to_str().unwrap();
    for (version, mode) in [("1.2", "-p"), ("1.3", "-A"), ("1.3", "-p")] {
        let script =
            "user tester secret\nput blob.bin up.bin\nget up.bin back.bin\nget readme.txt\nbye\n";
        let args = [
            "-n",
            "-d",
            mode,
            "--tls",
            "--cacert",
            ca,
            "--tls-version",
            version,
            "127.0.0.1",
            &port,
        ];
        ferry(&args, script, local.path())
            .expect_code(0)
            .expect_stdout("---> AUTH TLS")
            .expect_stdout("---> PROT P")
            .expect_stdout("200000 bytes sent in ")
            .expect_stdout("200000 bytes received in ");
        assert_eq!(fs::read(root.path().join("up.bin")).unwrap(), data);
        assert_eq!(fs::read(local.path().join("back.bin")).unwrap(), data);
        assert_eq!(
            fs::read(local.path().join("readme.txt")).unwrap(),
            readme_bytes()
        );
        for name in ["back.bin", "readme.txt"] {
            fs::remove_file(local.path().join(name)).unwrap();
        }
    }
    let url = format!("ftp://tester:secret@127.0.0.1:{port}/readme.txt");
    ferry(&["get", &url, "--tls", "--cacert", ca], "", local.path()).expect_code(0);
}

/// `ferry get` of the vsftpd's readme over explicit FTPS with `flags`.
fn get_with(setup: &Vsftpd, flags: &[&str]) -> Outcome {
    let url = format!("ftp://127.0.0.1:{}/pub/readme.txt", setup.server.port);
    let mut args = vec!["get", url.as_str(), "--tls"];
    args.extend_from_slice(flags);
    ferry(&args, "", setup.local.path())
}

#[test]
fn certificate_checks_cacert_pin_known_hosts_and_insecure() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    let fingerprint = setup.pki.fingerprint().to_string();
    let known_hosts = setup.local.path().join("known_hosts");
    let known = known_hosts.to_str().unwrap();
    // Untrusted: no CA, no pin, no known host, piped input: refused, naming the fingerprint.
    let untrusted = get_with(&setup, &["--known-hosts", known]);
    untrusted.expect_code(10);
    assert!(untrusted.stderr.contains(&fingerprint), "{untrusted}");
    assert!(untrusted.stderr.contains("--pin"), "{untrusted}");
    assert!(!setup.local.path().join("readme.txt").exists());
    assert!(
        !known_hosts.exists(),
        "nothing is remembered without asking"
    );
    // The right pin passes; a wrong one is refused.
    get_with(&setup, &["--known-hosts", known, "--pin", &fingerprint]).expect_code(0);
    let wrong = format!("SHA256:{}", "00".repeat(32));
    let mismatch = get_with(&setup, &["--pin", &wrong]);
    mismatch.expect_code(10);
    assert!(
        mismatch.stderr.contains("does not match the pinned"),
        "{mismatch}"
    );
    // A known host passes without a CA.
    fs::write(
        &known_hosts,
        format!("127.0.0.1:{} {fingerprint}\n", setup.server.port),
    )
    .unwrap();
    get_with(&setup, &["--known-hosts", known]).expect_code(0);
    // --cacert passes; --insecure passes with a warning.
    get_with(&setup, &["--cacert", setup.pki.ca_pem.to_str().unwrap()]).expect_code(0);
    let insecure = get_with(&setup, &["--insecure", "--known-hosts", "/nonexistent/kh"]);
    insecure.expect_code(0);
    assert!(
        insecure.stderr.contains("warning: --insecure"),
        "{insecure}"
    );
    // A bad CA file is a TLS setup failure.
    let bad_ca = setup.local.path().join("bad.pem");
    fs::write(&bad_ca, "not a certificate").unwrap();
    get_with(&setup, &["--cacert", bad_ca.to_str().unwrap()]).expect_code(9);
}

#[tokio::test]
async fn library_reports_an_untrusted_certificate_with_its_fingerprint() {
    let Some(setup) = vsftpd_tls(false) else {
        return;
    };
    let mut config = library_options(&setup.pki, TlsMode::Explicit, TlsVersions::Any);
    // Another CA than the one that signed the server's certificate.
    let other = tempfile::tempdir().unwrap();
    config.tls.roots = Roots::PemFile(TestPki::create(other.path()).ca_pem);
    config.tls.trust = TrustPolicy::default();
    let refused = Client::connect("127.0.0.1", setup.server.port, config.clone()).await;
    match refused {
        Err(FtpError::CertificateRejected { rejection, .. }) => {
            assert_eq!(rejection.fingerprint(), setup.pki.fingerprint())
        }
        other => panic!("expected a rejected certificate, got {:?}", other.err()),
    }
    config.tls.trust.known = vec![setup.pki.fingerprint()];
    let mut client = Client::connect("127.0.0.1", setup.server.port, config)
        .await
        .unwrap();
    client
        .login("ftp", &Secret::new("x@y"), None)
        .await
        .unwrap();
    assert!(client
        .nlst(Some("pub"))
        .await
        .unwrap()
        .iter()
        .any(|n| n.ends_with("readme.txt")));
    client.quit().await.unwrap();
}

#[test]
fn a_server_without_tls_fails_tls_and_falls_back_with_try() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("f.txt"), b"plain\n").unwrap();
    let Some(server) = pyftpd(root.path(), None) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let url = format!("ftp://tester:secret@127.0.0.1:{}/f.txt", server.port);
    let refused = ferry(&["get", &url, "--tls"], "", local.path());
    refused.expect_code(9);
    assert!(refused.stderr.contains("refuses TLS"), "{refused}");
    assert!(!local.path().join("f.txt").exists());
    let fallback = ferry(&["get", &url, "--tls=try"], "", local.path());
    fallback.expect_code(0);
    assert!(fallback.stderr.contains("WITHOUT encryption"), "{fallback}");
    assert_eq!(fs::read(local.path().join("f.txt")).unwrap(), b"plain\n");
}

#[test]
fn help_documents_the_tls_flags_and_exit_codes() {
    let local = tempfile::tempdir().unwrap();
    let help = ferry(&["--help"], "", local.path());
    help.expect_code(0);
    for text in [
        "--tls",
        "--implicit",
        "--cacert",
        "--pin",
        "--known-hosts",
        "--insecure",
        "9  TLS",
        "10 server certificate",
    ] {
        help.expect_stdout(text);
    }
    assert!(
        !help.stdout.contains("--tls-version"),
        "test-only flag is hidden"
    );
}
