//! `ferry --trace FILE`: the seed's session against ferryd, recorded and drawn as text and as
//! SVG, compared with the golden files in `tests/golden/` once the things that vary from run to
//! run (ports, times) are replaced by placeholders. The SVG is also drawn by headless Chromium
//! (a screenshot under `target/tmp/trace/`), and a hostile server's markup stays text.
//!
//! After a deliberate change of the drawing, `FERRY_UPDATE_GOLDEN=1 cargo test -p ferry-client
//! --test trace` rewrites the golden files; review their diff before committing.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::certs::TestPki;
use support::fake::fake_server;
use support::ferryd::Ferryd;
use support::{ferry, readme_bytes, Outcome};

/// The seed's session: log in, list, change folder, download (the listing passive, the file
/// active, as the seed's PORT), leave. The download's byte count is checked exactly here; the
/// listing's is left out of the golden files (see [`normalise`]).
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

/// Replaces what changes between runs: every port (numbered in order of first appearance),
/// the port bytes of a PORT command, times (`0.012 s`), and the size of a listing (it holds
/// user ids and folder sizes, which differ between machines and file systems).
fn normalise(text: &str) -> String {
    let text = normalise_port_command(text);
    let text = normalise_times(&text);
    let text = normalise_listing_size(&text);
    normalise_ports(&text)
}

/// The byte count of the first data transfer (the session's `dir`) becomes `<n>`, and the
/// text form's padding after its label (which its length changes) one space.
fn normalise_listing_size(text: &str) -> String {
    let Some(start) = text.find("DATA ").map(|at| at + "DATA ".len()) else {
        return text.to_string();
    };
    let digits = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    let rest = &text[start + digits..];
    let label_end = rest.find(" s").map_or(0, |at| at + 2);
    let padding = rest[label_end..].len() - rest[label_end..].trim_start_matches(' ').len();
    let tail = &rest[label_end + padding..];
    let gap = if padding > 0 { " " } else { "" };
    format!("{}<n>{}{gap}{tail}", &text[..start], &rest[..label_end])
}

fn normalise_port_command(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("PORT 127,0,0,1,") {
        let after = start + "PORT 127,0,0,1,".len();
        out.push_str(&rest[..after]);
        let tail = &rest[after..];
        let digits = tail
            .find(|c: char| !c.is_ascii_digit() && c != ',')
            .unwrap_or(tail.len());
        // The text form pads the label to the next lifeline: the padding varies too.
        let end = digits + tail[digits..].len() - tail[digits..].trim_start_matches(' ').len();
        out.push_str("P1,P2 ");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn normalise_times(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut index = 0;
    while index < chars.len() {
        if let Some(length) = time_at(&chars[index..]) {
            let before = out.chars().last();
            if !before.is_some_and(|c| c.is_ascii_digit()) {
                out.push_str("#.### s");
                index += length;
                continue;
            }
        }
        out.push(chars[index]);
        index += 1;
    }
    out
}

/// The length of `digits.ddd s` at the start of `chars`, if it is there.
fn time_at(chars: &[char]) -> Option<usize> {
    let whole = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let tail: String = chars.get(whole..whole + 6)?.iter().collect();
    let (dot, decimals, unit) = (&tail[..1], &tail[1..4], &tail[4..]);
    let decimals_ok = decimals.chars().all(|c| c.is_ascii_digit());
    (whole > 0 && dot == "." && decimals_ok && unit == " s").then_some(whole + 6)
}

fn normalise_ports(text: &str) -> String {
    let mut ports: Vec<String> = Vec::new();
    for (position, _) in text.match_indices("127.0.0.1:") {
        let digits: String = text[position + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() && !ports.contains(&digits) {
            ports.push(digits);
        }
    }
    let mut out = String::new();
    let mut number = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        match ports.iter().position(|port| *port == number) {
            Some(index) => out.push_str(&format!("<port{}>", index + 1)),
            None => out.push_str(&number),
        }
        number.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Compares `actual` with the golden file `name`, or rewrites it with FERRY_UPDATE_GOLDEN=1.
fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("FERRY_UPDATE_GOLDEN").is_some() {
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FERRY_UPDATE_GOLDEN=1 makes it)", path.display()));
    if expected != actual {
        let artefact = artefacts().join(name);
        fs::write(&artefact, actual).unwrap();
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden file from line {} on; this run's is in {}",
            line + 1,
            artefact.display()
        );
    }
}

/// `target/tmp/trace/`: screenshots and failed outputs, never in git.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn normalising_replaces_ports_and_times_only() {
    let text = "src = 127.0.0.1:40001, dst = 127.0.0.1:2121 (|||40001|) 1715 bytes in 0.012 s\n\
                PORT 127,0,0,1,156,65   |\n 12.345 s DATA 127 bytes in 0.001 s    |, DATA 1715 bytes";
    assert_eq!(
        normalise(text),
        "src = 127.0.0.1:<port1>, dst = 127.0.0.1:<port2> (|||<port1>|) 1715 bytes in #.### s\n\
         PORT 127,0,0,1,P1,P2 |\n #.### s DATA <n> bytes in #.### s |, DATA 1715 bytes"
    );
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

/// Whether Chromium is here; when it is not, CI fails and elsewhere the check is skipped.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// Runs Chromium headless with `args`, at most 120 s; returns its standard output.
fn run_chromium(chromium: &Path, profile: &Path, args: &[String]) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

/// The `width` and `height` attributes of the SVG's root element.
fn svg_size(svg: &str) -> (u32, u32) {
    let attribute = |name: &str| -> u32 {
        let start = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = svg[start..].find('"').unwrap();
        svg[start..start + end].parse().unwrap()
    };
    (attribute("width"), attribute("height"))
}

/// A PNG's width and height from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

/// Screenshots the SVG (and, to compare, a blank one of the same size) and checks in the DOM
/// that Chromium drew every text of the diagram with a width.
fn render_in_chromium(svg_path: &Path, svg: &str) {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = artefacts();
    let profile = tempfile::tempdir().unwrap();
    let (width, height) = svg_size(svg);
    let shoot = |source: &Path, png: &Path| {
        let _ = fs::remove_file(png);
        run_chromium(
            &chromium,
            profile.path(),
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
                format!("file://{}", source.display()),
            ],
        );
        fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()))
    };
    let screenshot = shoot(svg_path, &dir.join("session.png"));
    let blank_svg = dir.join("blank.svg");
    let blank = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">\
         <rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/></svg>"
    );
    fs::write(&blank_svg, blank).unwrap();
    let empty = shoot(&blank_svg, &dir.join("blank.png"));
    assert_eq!(png_size(&screenshot), (width, height));
    assert!(
        screenshot.len() > 4 * empty.len(),
        "the screenshot ({} bytes) is hardly more than a blank page ({} bytes)",
        screenshot.len(),
        empty.len()
    );
    let page = dir.join("session.html");
    let script = "<script>const texts = document.querySelectorAll('svg text');\
        const drawn = [...texts].filter(t => t.getBBox().width > 0).length;\
        document.body.setAttribute('data-result', texts.length + '/' + drawn);</script>";
    fs::write(
        &page,
        format!("<!DOCTYPE html><html><body>{svg}{script}</body></html>"),
    )
    .unwrap();
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), format!("file://{}", page.display())],
    );
    let texts = svg.matches("<text ").count();
    let expected = format!("data-result=\"{texts}/{texts}\"");
    assert!(texts > 30, "only {texts} texts in the SVG");
    assert!(
        dom.contains(&expected),
        "Chromium drew not all {texts} texts: {}",
        &dom[..dom.len().min(300)]
    );
}
