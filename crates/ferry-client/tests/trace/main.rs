//! `ferry --trace FILE`: the seed's session against ferryd, recorded and drawn as text and as
//! SVG, compared with the golden files in `tests/golden/` once the things that vary from run to
//! run (ports, times) are replaced by placeholders. The SVG is also drawn by headless Chromium
//! (a screenshot under `target/tmp/trace/`), and a hostile server's markup stays text.
//!
//! After a deliberate change of the drawing, `FERRY_UPDATE_GOLDEN=1 cargo test -p ferry-client
//! --test trace` rewrites the golden files; review their diff before committing.

#[path = "../support/mod.rs"]
mod support;

mod chromium;
mod golden;

use std::fs;

use support::certs::TestPki;
use support::fake::fake_server;
use support::ferryd::Ferryd;
use support::{ferry, readme_bytes, Outcome};

use chromium::render_in_chromium;
use golden::{artefacts, check_golden, normalise};

/// The seed's session: log in, list, change folder, download (the listing passive, the file
/// active, as the seed's PORT), leave. The download's byte count is checked exactly here; the
/// listing's is left out of the golden files (see [`golden::normalise`]).
const SESSION: &str = "ftp\nabc@any-domain.com\ndir\ncd pub\npassive off\nget readme.txt\nbye\n";

/// Runs [`SESSION`] against a fresh ferryd with `--trace <dir>/name`; returns the outcome and
/// the trace file's text.
fn traced_session(name: &str) -> (Outcome, String) {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let trace = local.path().join(name);
    let port = server.port().to_string();
    let args = [
        "--trace",
        trace.to_str().unwrap(),
        "--resolve",
        "ftp.any-domain.com:127.0.0.1",
        "ftp.any-domain.com",
        &port,
    ];
    let outcome = ferry(&args, SESSION, local.path());
    outcome
        .expect_code(0)
        .expect_stdout("226 Transfer complete.");
    let downloaded = fs::read(local.path().join("readme.txt")).unwrap();
    assert_eq!(downloaded, readme_bytes(), "{outcome}");
    let text = fs::read_to_string(&trace).unwrap_or_else(|e| panic!("{e}: {outcome}"));
    assert!(
        !text.contains("abc@any-domain.com"),
        "the password leaked:\n{text}"
    );
    (outcome, text)
}

#[test]
fn text_trace_of_the_seed_session() {
    let (_, text) = traced_session("session.txt");
    for wanted in [
        "ftp.any-domain.com is 127.0.0.1 by --resolve: no DNS query",
        "TCP connect (SYN)",
        "PASS XXXX",
        "DATA 1715 bytes in",
        "221 Thank you",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing:\n{text}");
    }
    check_golden("session.txt", &normalise(&text));
}

/// A name the system resolver answers (`localhost`, from /etc/hosts or DNS) is drawn as a
/// query and an answer; which addresses come back depends on the machine, so no golden file.
#[test]
fn a_resolved_name_is_a_dns_query_and_answer() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    let trace = local.path().join("resolved.txt");
    let port = server.port().to_string();
    let args = [
        "--trace",
        trace.to_str().unwrap(),
        "-4",
        "-n",
        "localhost",
        &port,
    ];
    ferry(&args, "bye\n", local.path()).expect_code(0);
    let text = fs::read_to_string(&trace).unwrap();
    let query = text.find("DNS query").expect("a query");
    let answer = text.find("DNS answer").expect("an answer");
    let connect = text.find("TCP connect (SYN)").expect("a connection");
    assert!(query < answer && answer < connect, "{text}");
    assert!(text.contains("name = localhost (A and AAAA"), "{text}");
    assert!(text[answer..connect].contains("127.0.0.1"), "{text}");
}

#[test]
fn svg_trace_of_the_seed_session_renders_in_chromium() {
    let (_, svg) = traced_session("session.svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    check_golden("session.svg", &normalise(&svg));
    let path = artefacts().join("session.svg");
    fs::write(&path, &svg).unwrap();
    render_in_chromium(&path, &svg);
}

/// Over FTPS the handshakes are drawn: the control connection's after AUTH TLS, and the data
/// connection's, which resumes the control connection's session (ferryd requires it).
#[test]
fn an_ftps_session_shows_its_tls_handshakes() {
    let certificates = tempfile::tempdir().unwrap();
    let pki = TestPki::create(certificates.path());
    let server = Ferryd::start_with(|config| {
        config.tls.certificate = Some(pki.cert_pem.clone());
        config.tls.key = Some(pki.key_pem.clone());
    });
    let local = tempfile::tempdir().unwrap();
    let trace = local.path().join("ftps.txt");
    let url = format!("ftp://127.0.0.1:{}/readme.txt", server.port());
    let ca = pki.ca_pem.to_str().unwrap();
    let args = [
        "get",
        &url,
        "--tls",
        "--cacert",
        ca,
        "--trace",
        trace.to_str().unwrap(),
    ];
    ferry(&args, "", local.path()).expect_code(0);
    let text = fs::read_to_string(&trace).unwrap();
    let auth = text.find("AUTH TLS").expect("AUTH TLS");
    let handshakes: Vec<usize> = text
        .match_indices("TLS handshake")
        .map(|(at, _)| at)
        .collect();
    let data = text.find("DATA 1715 bytes").expect("the download");
    assert_eq!(handshakes.len(), 2, "{text}");
    assert!(auth < handshakes[0] && handshakes[1] < data, "{text}");
    let control_details = &text[handshakes[0]..handshakes[1]];
    assert!(!control_details.contains("session resumed"), "{text}");
    assert!(
        text[handshakes[1]..data].contains("session resumed"),
        "{text}"
    );
}

/// An upload's data goes from the client to the data connection, which the client closes.
#[test]
fn an_upload_is_drawn_from_the_client() {
    let server = Ferryd::start();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("up.bin"), support::binary_bytes(5000)).unwrap();
    let trace = local.path().join("upload.txt");
    let password = support::ferryd::PASSWORD.replace(' ', "%20");
    let url = format!("ftp://alice:{password}@127.0.0.1:{}/", server.port());
    let args = ["put", "up.bin", &url, "--trace", trace.to_str().unwrap()];
    ferry(&args, "", local.path()).expect_code(0);
    assert_eq!(
        fs::read(server.user_root.join("up.bin")).unwrap().len(),
        5000
    );
    let text = fs::read_to_string(&trace).unwrap();
    assert!(
        text.contains("ferry put up.bin ftp://alice:XXXX@127.0.0.1:"),
        "{text}"
    );
    assert!(
        !text.contains(support::ferryd::PASSWORD) && !text.contains(&password),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let label = lines
        .iter()
        .position(|l| l.contains("DATA 5000 bytes in"))
        .expect("DATA row");
    assert!(lines[label + 1].trim_end().ends_with("->|"), "{text}");
    let closes = text.matches("TCP close (FIN)").count();
    assert_eq!(
        closes, 2,
        "one for the data connection, one for the control one:\n{text}"
    );
}

#[test]
fn a_trace_file_must_be_svg_or_txt() {
    let local = tempfile::tempdir().unwrap();
    let outcome = ferry(&["--trace", "out.png", "127.0.0.1", "1"], "", local.path());
    outcome.expect_code(2);
    assert!(outcome.stderr.contains("must end in .svg"), "{outcome}");
    assert!(!local.path().join("out.png").exists());
    let missing = local.path().join("no-such-folder/out.svg");
    // Nothing listens there: the session must not even be tried.
    let port = support::dead_port().to_string();
    let outcome = ferry(
        &[
            "--trace",
            missing.to_str().unwrap(),
            "-n",
            "127.0.0.1",
            &port,
        ],
        "",
        local.path(),
    );
    outcome.expect_code(7);
    assert!(
        outcome.stderr.contains("cannot write the trace to"),
        "{outcome}"
    );
    assert!(!outcome.stderr.contains("cannot connect"), "{outcome}");
}

#[test]
fn markup_from_a_hostile_server_stays_text() {
    let local = tempfile::tempdir().unwrap();
    let fake = fake_server(|conn| {
        conn.reply("220 </text><script>alert(1)</script>\x1b[2J");
        while let Some(line) = conn.serve_until_other() {
            let _ = line;
            conn.reply("500 <svg onload=alert(2)>");
        }
    });
    let port = fake.port.to_string();
    let svg_path = local.path().join("hostile.svg");
    let args = [
        "--trace",
        svg_path.to_str().unwrap(),
        "-n",
        "127.0.0.1",
        &port,
    ];
    let outcome = ferry(&args, "quote <b>\nbye\n", local.path());
    let svg = fs::read_to_string(&svg_path).unwrap_or_else(|e| panic!("{e}: {outcome}"));
    assert!(svg.contains("220 &lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J"));
    assert!(svg.contains("500 &lt;svg onload=alert(2)&gt;"), "{svg}");
    assert!(!svg.contains("<script") && !svg.contains("<svg onload") && !svg.contains('\x1b'));
}
