//! Golden files: normalising what varies between runs (ports, times, a listing's size), and
//! comparing with (or, with FERRY_UPDATE_GOLDEN=1, rewriting) `tests/golden/`.

use std::fs;
use std::path::{Path, PathBuf};

/// Replaces what changes between runs: every port (numbered in order of first appearance),
/// the port bytes of a PORT command, times (`0.012 s`), and the size of a listing (it holds
/// user ids and folder sizes, which differ between machines and file systems).
pub fn normalise(text: &str) -> String {
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
pub fn check_golden(name: &str, actual: &str) {
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
pub fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
