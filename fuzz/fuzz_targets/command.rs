//! `command::parse`: no panic on any line; a parsed command's `verb()` is non-empty upper-case
//! ASCII (letters and digits, as in XSHA1); and the verb's case never changes the result.
//!
//! Input: any bytes, read as UTF-8 with invalid sequences replaced.
#![no_main]

use ferry_proto::command::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let result = parse(&line);
    if let Ok(command) = &result {
        let verb = command.verb();
        assert!(!verb.is_empty(), "empty verb for {command:?}");
        assert!(
            verb.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "verb {verb:?} is not upper-case ASCII"
        );
    }
    assert_eq!(parse(&lowercase_verb(&line)), result, "verb case matters");
});

/// `line` with its verb (the text before the first space, after leading white space) in ASCII
/// lower case.
fn lowercase_verb(line: &str) -> String {
    let start = line.len() - line.trim_start().len();
    let end = line[start..].find(' ').map_or(line.len(), |at| start + at);
    let mut out = line.to_string();
    out[start..end].make_ascii_lowercase();
    out
}
