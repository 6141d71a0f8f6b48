//! The working folder: CWD, CDUP (and XCWD, XCUP), PWD (and XPWD) (RFC 959 §4.1.1, §4.1.3).

use super::{Flow, Session};
use crate::storage::{FileKind, StorageError, StorageErrorKind};

impl Session {
    /// CWD and CDUP: change to a folder that exists and can be entered.
    pub(super) async fn cwd(&mut self, arg: &str) -> Flow {
        let target = self.resolve(arg);
        let path = target.clone();
        match self.with_storage_quick(move |s| s.metadata(&path)).await {
            Ok(facts) if facts.kind == FileKind::Directory => {
                self.cwd = target;
                self.tell_live(|view| view.folder = self.cwd.to_string());
                self.reply(250, "CWD command successful.").await
            }
            Ok(_) => {
                let error = StorageError::new(StorageErrorKind::NotADirectory, &target, "CWD");
                self.reply_storage_error(&error).await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// PWD (RFC 959 §4.1.3; quoting per RFC 959 Appendix II: a `"` in the name is doubled).
    pub(super) async fn pwd(&mut self) -> Flow {
        let text = format!("{} is the current directory", quote_path(self.cwd.as_str()));
        self.reply(257, text).await
    }
}

/// `"/a ""b"""` for `/a "b"`, as 257 replies quote names.
pub(super) fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_are_doubled() {
        assert_eq!(super::quote_path("/a \"b\""), "\"/a \"\"b\"\"\"");
    }
}
