//! `--cacert FILE` holding the server's own self-signed certificate, as `openssl req -x509`
//! makes it (marked as a CA, which webpki alone refuses as a server's certificate with
//! `CaUsedAsEndEntity`): accepted when it is byte for byte the certificate the server shows,
//! and still refused for another name or when the file holds another certificate.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::ferryd::Ferryd;
use support::{ferry, readme_bytes};

/// Makes a self-signed certificate and key for `/CN=localhost`, `IP:127.0.0.1` in `dir`
/// (`name.pem`, `name.key`); `None` (the test skips) where openssl is missing outside CI.
fn openssl_self_signed(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(output) if output.status.success() => Some((cert, key)),
        Ok(output) => panic!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "openssl is missing: {error}"
            );
            eprintln!("skipped: openssl is not installed ({error})");
            None
        }
    }
}

/// Whether openssl marked the certificate as a CA (the case this test is about).
fn is_ca(cert: &Path) -> bool {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "basicConstraints", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    String::from_utf8_lossy(&output.stdout).contains("CA:TRUE")
}

#[test]
fn the_servers_own_self_signed_certificate_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = openssl_self_signed(dir.path(), "server") else {
        return;
    };
    let Some((other, _)) = openssl_self_signed(dir.path(), "other") else {
        return;
    };
    assert!(
        is_ca(&cert),
        "openssl req -x509 no longer marks its certificate as a CA"
    );
    let server = Ferryd::start_with(|config| {
        config.tls.certificate = Some(cert.clone());
        config.tls.key = Some(key.clone());
    });
    let local = tempfile::tempdir().unwrap();
    let port = server.port();
    let get = |url: &str, cacert: &Path, extra: &[&str]| {
        let mut args = vec!["get", url, "--tls", "--cacert", cacert.to_str().unwrap()];
        args.extend_from_slice(extra);
        ferry(&args, "", local.path())
    };

    let url = format!("ftp://127.0.0.1:{port}/readme.txt");
    get(&url, &cert, &["-d"])
        .expect_code(0)
        .expect_stdout("---> PROT P");
    assert_eq!(
        fs::read(local.path().join("readme.txt")).unwrap(),
        readme_bytes()
    );

    // Another certificate in the file: refused (10, not trusted), nothing written.
    let other_url = format!("ftp://127.0.0.1:{port}/pub/readme.txt");
    let refused = get(&other_url, &other, &[]);
    refused.expect_code(10);
    assert!(!local.path().join("readme.txt.part").exists());

    // The right certificate, but the server reached under a name it is not for.
    let named = format!("ftp://ftp.any-domain.com:{port}/pub/readme.txt");
    let wrong_name = get(
        &named,
        &cert,
        &["--resolve", "ftp.any-domain.com:127.0.0.1"],
    );
    wrong_name.expect_code(10);
    assert!(
        wrong_name.stderr.contains("not valid for name"),
        "{wrong_name}"
    );
}
