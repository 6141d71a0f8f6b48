//! Virtual paths: what a client names, resolved against its working folder.
//!
//! A [`VirtualPath`] is absolute and normalised (`/pub/readme.txt`): `.` and empty parts are
//! dropped and `..` goes up, never above `/`. It is only a name inside the user's root; the
//! storage back-end enforces the jail (symlinks included) when it touches the file system.

use std::fmt;

/// A normalised absolute path inside the user's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualPath(String);

impl VirtualPath {
    /// `/`.
    pub fn root() -> Self {
        VirtualPath("/".into())
    }

    /// Resolves a client's argument against this folder: absolute arguments start at `/`.
    pub fn join(&self, arg: &str) -> Self {
        // Built in place, one allocation: every command that names a file joins a path.
        let mut path = String::with_capacity(self.0.len() + arg.len() + 1);
        if !arg.starts_with('/') && !self.is_root() {
            path.push_str(&self.0);
        }
        for part in arg.split('/') {
            match part {
                "" | "." => {}
                ".." => path.truncate(path.rfind('/').unwrap_or(0)),
                name => {
                    path.push('/');
                    path.push_str(name);
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        VirtualPath(path)
    }

    /// The folder above, or `/` for `/`.
    pub fn parent(&self) -> Self {
        self.join("..")
    }

    /// The last part, or `/` for the root.
    pub fn file_name(&self) -> &str {
        self.parts().last().unwrap_or("/")
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path relative to the root, as the storage back-end takes it: `.` for the root.
    pub fn relative(&self) -> &str {
        if self.is_root() {
            "."
        } else {
            &self.0[1..]
        }
    }

    /// Whether a symlink in this folder whose text is `target` names a place inside the root,
    /// read as text: relative, and never climbing above `/` with `..`. (Where it finally leads
    /// is for the jail to decide; this is whether the text may be shown.)
    pub fn keeps_inside(&self, target: &str) -> bool {
        if target.starts_with('/') {
            return false;
        }
        let mut depth = self.parts().count();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." if depth == 0 => return false,
                ".." => depth -= 1,
                _ => depth += 1,
            }
        }
        true
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names from the root down.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|p| !p.is_empty())
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> VirtualPath {
        VirtualPath::root().join(path)
    }

    #[test]
    fn joins_relative_and_absolute_arguments() {
        assert_eq!(at("pub").join("readme.txt").as_str(), "/pub/readme.txt");
        assert_eq!(at("pub").join("/etc").as_str(), "/etc");
        assert_eq!(at("a/b").join("../c/./d//e").as_str(), "/a/c/d/e");
    }

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        assert_eq!(at("../../../etc/passwd").as_str(), "/etc/passwd");
        assert_eq!(at("pub").join("../../..").as_str(), "/");
        assert_eq!(VirtualPath::root().parent().as_str(), "/");
    }

    #[test]
    fn link_texts_inside_and_outside() {
        assert!(at("pub").keeps_inside("../projects/x"));
        assert!(at("a/b").keeps_inside("../../c"));
        assert!(!at("a/b").keeps_inside("../../../etc"));
        assert!(!VirtualPath::root().keeps_inside(".."));
        assert!(!at("pub").keeps_inside("/etc"));
        assert!(VirtualPath::root().keeps_inside("pub/./readme.txt"));
    }

    #[test]
    fn relative_form_for_the_backend() {
        assert_eq!(VirtualPath::root().relative(), ".");
        assert_eq!(at("pub/x y.txt").relative(), "pub/x y.txt");
        assert_eq!(at("pub/x y.txt").file_name(), "x y.txt");
        assert_eq!(at("dir/").as_str(), "/dir");
    }
}
