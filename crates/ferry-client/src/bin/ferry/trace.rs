//! `--trace FILE`: the session is recorded from the start and drawn as a sequence diagram when
//! `ferry` ends, as SVG (`FILE.svg`) or text (`FILE.txt`). The recorder is one per process, set
//! up by `main`, so the shell and one-shot commands only add it beside their printer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ferry_client::trace::{svg, text, Recorder};
use ferry_client::transcript::Both;
use ferry_client::Transcript;

use crate::commands::{lookup, Verb};

static RECORDER: OnceLock<Arc<Recorder>> = OnceLock::new();

/// How the trace file is written, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Text,
}

impl Format {
    /// `.svg` or `.txt` (in any case); anything else is a usage error.
    pub fn of(path: &Path) -> Result<Format, String> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match extension.to_ascii_lowercase().as_str() {
            "svg" => Ok(Format::Svg),
            "txt" => Ok(Format::Text),
            _ => Err(format!(
                "--trace {}: the file name must end in .svg (a drawing) or .txt (text)",
                path.display()
            )),
        }
    }
}

/// Starts recording (once per process).
pub fn start() {
    let _ = RECORDER.set(Arc::new(Recorder::default()));
}

/// The session's observer: `printer`, and the recorder when tracing.
pub fn observer<T: Transcript + 'static>(printer: Arc<T>) -> Arc<dyn Transcript> {
    match RECORDER.get() {
        Some(recorder) => Arc::new(Both(printer, recorder.clone())),
        None => printer,
    }
}

/// Records what the user asked for (passwords must already be masked).
pub fn user(text: &str) {
    if let Some(recorder) = RECORDER.get() {
        recorder.user(text);
    }
}

/// A shell command line as recorded: the password of `user NAME PASSWORD [ACCOUNT]` and the
/// argument of a `PASS` sent with `quote` or `site` are masked.
pub fn masked_command(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut shown = Vec::with_capacity(words.len());
    let mut hide_rest = false;
    for (index, word) in words.iter().enumerate() {
        if hide_rest {
            shown.push("XXXX");
            continue;
        }
        shown.push(word);
        let is_user = index == 0 && lookup(word) == Ok(Verb::User);
        if is_user && words.len() > 2 {
            shown.push(words[1]);
            shown.extend(std::iter::repeat_n("XXXX", words.len() - 2));
            break;
        }
        hide_rest = index > 0 && word.eq_ignore_ascii_case("PASS");
    }
    shown.join(" ")
}

/// A command-line word as recorded: an `ftp://user:password@host` URL loses its password.
pub fn masked_word(word: &str) -> String {
    let Some((scheme, rest)) = word.split_once("://") else {
        return word.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:XXXX@{host}{path}")
        }
        _ => word.to_string(),
    }
}

/// Creates (or empties) the trace file, so that a path that cannot be written fails before
/// the session rather than after it.
pub fn create(path: &Path) -> Result<(), String> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|error| format!("cannot write the trace to {}: {error}", path.display()))
}

/// Writes the trace to `path` in `format`.
pub fn write(path: &PathBuf, format: Format) -> Result<(), String> {
    let Some(recorder) = RECORDER.get() else {
        return Ok(());
    };
    let entries = recorder.entries();
    let document = match format {
        Format::Svg => svg::render(&entries),
        Format::Text => text::render(&entries),
    };
    std::fs::write(path, document)
        .map_err(|error| format!("cannot write the trace to {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_name() {
        assert_eq!(Format::of(Path::new("a.svg")), Ok(Format::Svg));
        assert_eq!(Format::of(Path::new("dir/A.TXT")), Ok(Format::Text));
        let error = Format::of(Path::new("trace.png")).unwrap_err();
        assert!(error.contains("must end in .svg"), "{error}");
        assert!(Format::of(Path::new("svg")).is_err());
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(masked_command("user alice s3cret"), "user alice XXXX");
        assert_eq!(
            masked_command("USER alice s3cret acct"),
            "USER alice XXXX XXXX"
        );
        assert_eq!(masked_command("user alice"), "user alice");
        assert_eq!(masked_command("quote PASS hunter2"), "quote PASS XXXX");
        assert_eq!(masked_command("get readme.txt"), "get readme.txt");
        assert_eq!(
            masked_word("ftp://bob:pw@h:21/a@b"),
            "ftp://bob:XXXX@h:21/a@b"
        );
        assert_eq!(masked_word("ftp://bob@h/f"), "ftp://bob@h/f");
        assert_eq!(masked_word("127.0.0.1"), "127.0.0.1");
    }
}
