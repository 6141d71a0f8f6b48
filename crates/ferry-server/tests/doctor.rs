//! `ferryd doctor`, the real binary, on loopback configurations: a sound one passes every check
//! (its own server, or a running ferryd), and each kind of fault (a bad file, a key that is not
//! the certificate's, an expired certificate, a PASV address nothing listens on) is a `fail`
//! line with advice and a non-zero exit.

mod support;

use std::path::Path;

use support::{run_tool_with_code, Ferryd};

/// Runs `ferryd doctor ARGS`; returns (exit code, standard output).
fn doctor(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run_tool_with_code(env!("CARGO_BIN_EXE_ferryd"), &all, None, None);
    assert!(stderr.is_empty() || code.is_some(), "{stderr}");
    (code, stdout)
}

/// The line of `check`, which must have `status`.
fn line<'a>(output: &'a str, status: &str, check: &str) -> &'a str {
    let prefix = format!("{status:<4}  {check}: ");
    output
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{output}"))
}

/// A served folder with one file.
fn served() -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("hello.txt"), "hello\n").unwrap();
    folder
}

/// Writes a certificate for localhost and 127.0.0.1 (valid until `not_after`, a year) and
/// its key; with `wrong_key`, another key.
fn write_certificate(folder: &Path, not_after: i32, wrong_key: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
    let certificate = params.self_signed(&key).unwrap();
    let written_key = match wrong_key {
        true => rcgen::KeyPair::generate().unwrap(),
        false => key,
    };
    let (certificate_path, key_path) = (folder.join("cert.pem"), folder.join("key.pem"));
    std::fs::write(&certificate_path, certificate.pem()).unwrap();
    std::fs::write(&key_path, written_key.serialize_pem()).unwrap();
    (
        certificate_path.to_str().unwrap().to_string(),
        key_path.to_str().unwrap().to_string(),
    )
}

#[test]
fn a_sound_anonymous_server_passes_with_pasv_epsv_resumed_tls_and_implicit_ftps() {
    let root = served();
    let (code, output) = doctor(&[
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().unwrap(),
        "--tls-self-signed",
        "--implicit-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, Some(0), "{output}");
    line(&output, "ok", "configuration");
    line(&output, "ok", "implicit FTPS listen");
    let implicit = line(&output, "ok", "implicit FTPS");
    assert!(implicit.contains("answers over TLS: 220"), "{implicit}");
    line(&output, "ok", "listen");
    line(&output, "warn", "certificate");
    line(&output, "ok", "control connection");
    // The listing of a folder holding hello.txt is never empty.
    for check in ["PASV data connection", "EPSV data connection"] {
        let found = line(&output, "ok", check);
        assert!(found.contains("LIST over 127.0.0.1:"), "{found}");
        assert!(!found.ends_with(": 0 bytes"), "{found}");
    }
    let tls = line(&output, "ok", "TLS data connection");
    assert!(tls.contains("session resumed"), "{tls}");
    assert!(!output.contains("fail"), "{output}");
}

#[test]
fn a_server_without_anonymous_and_with_required_tls_is_checked_over_tls() {
    let root = served();
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key) = write_certificate(certificates.path(), 2999, false);
    let (code, output) = doctor(&[
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().unwrap(),
        "--no-anonymous",
        "--server-name",
        "localhost",
        "--tls-certificate",
        &certificate,
        "--tls-key",
        &key,
        "--tls-control",
        "required",
        "--tls-data",
        "required",
    ]);
    assert_eq!(code, Some(0), "{output}");
    let validity = line(&output, "ok", "certificate validity");
    assert!(validity.contains("expires in"), "{validity}");
    let names = line(&output, "ok", "certificate names");
    assert!(
        names.contains("localhost") && names.contains("127.0.0.1"),
        "{names}"
    );
    line(&output, "ok", "certificate key");
    line(&output, "ok", "plain connections");
    let tls = line(&output, "ok", "TLS data connection");
    assert!(tls.contains("session resumed"), "{tls}");
}

#[test]
fn a_key_that_is_not_the_certificates_fails() {
    let root = served();
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key) = write_certificate(certificates.path(), 2999, true);
    let (code, output) = doctor(&[
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().unwrap(),
        "--tls-certificate",
        &certificate,
        "--tls-key",
        &key,
    ]);
    assert_eq!(code, Some(1), "{output}");
    let failed = line(&output, "fail", "certificate key");
    assert!(
        failed.contains("does not go with the certificate"),
        "{failed}"
    );
    assert!(output.contains("advice: tls.key must be"), "{output}");
}

#[test]
fn an_expired_certificate_fails() {
    let root = served();
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key) = write_certificate(certificates.path(), 2001, false);
    let (code, output) = doctor(&[
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().unwrap(),
        "--tls-certificate",
        &certificate,
        "--tls-key",
        &key,
    ]);
    assert_eq!(code, Some(1), "{output}");
    let failed = line(&output, "fail", "certificate validity");
    assert!(failed.contains("expired"), "{failed}");
    // The rest still ran: the names and the key are fine.
    line(&output, "ok", "certificate key");
    line(&output, "ok", "control connection");
}

#[test]
fn a_pasv_address_nothing_listens_on_fails() {
    let root = served();
    let (code, output) = doctor(&[
        "--listen",
        "127.0.0.1:0",
        "--root",
        root.path().to_str().unwrap(),
        "--passive-address",
        "127.0.0.9",
    ]);
    assert_eq!(code, Some(1), "{output}");
    line(&output, "ok", "passive address");
    let failed = line(&output, "fail", "PASV data connection");
    assert!(failed.contains("127.0.0.9"), "{failed}");
    // EPSV names no address: it works.
    line(&output, "ok", "EPSV data connection");
}

#[test]
fn a_bad_configuration_fails_first() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("ferryd.toml");
    std::fs::write(&config, "[data]\npassive_ports = \"9000-8000\"\n").unwrap();
    let (code, output) = doctor(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{output}");
    let failed = line(&output, "fail", "configuration");
    assert!(failed.contains("passive_ports"), "{failed}");
    assert!(!output.contains("control connection"), "{output}");
}

#[test]
fn a_running_server_is_checked_where_it_listens() {
    let root = served();
    let running = Ferryd::start(root.path(), &[]);
    let address = running.addr.to_string();
    let (code, output) = doctor(&[
        "--listen",
        &address,
        "--root",
        root.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{output}");
    let in_use = line(&output, "warn", "listen");
    assert!(in_use.contains("in use"), "{in_use}");
    line(&output, "ok", "PASV data connection");
    // The running server, not one of the doctor's, served the session.
    let log = running.log();
    assert!(log.contains("anonymous"), "{log}");
}
