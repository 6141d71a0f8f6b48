//! Drawing the SVG with headless Chromium: a screenshot (kept under `target/tmp/trace/`)
//! that must hold more than a blank page, and a DOM check that every text was laid out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::artefacts;

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
pub fn render_in_chromium(svg_path: &Path, svg: &str) {
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
