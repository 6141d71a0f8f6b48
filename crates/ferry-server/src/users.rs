//! Accounts: the users file (TOML, argon2 password hashes) and the login check.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."   # from `ferryd --hash-password`
//! root = "/srv/ftp/alice"
//! writable = true
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use serde::Deserialize;

/// One named account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// An argon2 PHC string; never the password itself.
    pub password: String,
    pub root: PathBuf,
    #[serde(default)]
    pub writable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<User>,
}

/// The accounts known to the server, by name.
#[derive(Debug, Default, Clone)]
pub struct Users {
    by_name: HashMap<String, User>,
}

/// What is wrong with a users file.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A hash every unknown user is checked against, so that a wrong name costs as much as a
/// wrong password and the two cannot be told apart by timing.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZmVycnlkZWNveXNhbHQ$9dR2Vq+0oZ1bQmQ0mXo9o3y5K3cXQf1p8l5Yb3p0b2c";

impl Users {
    /// Loads and checks a users file: unique names, valid hashes, existing roots.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Users::parse(&text).map_err(|message| UsersError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses users-file text; the error says which entry is wrong and why.
    pub fn parse(text: &str) -> Result<Users, String> {
        let file: UsersFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_name = HashMap::new();
        for user in file.user {
            PasswordHash::new(&user.password).map_err(|e| {
                format!("user {:?}: password is not an argon2 hash ({e})", user.name)
            })?;
            if !user.root.is_dir() {
                return Err(format!(
                    "user {:?}: root {} is not a folder",
                    user.name,
                    user.root.display()
                ));
            }
            if user.name.is_empty() || user.name.contains(char::is_whitespace) {
                return Err(format!(
                    "user {:?}: names must be non-empty, without spaces",
                    user.name
                ));
            }
            if let Some(old) = by_name.insert(user.name.clone(), user) {
                return Err(format!("user {:?} is listed twice", old.name));
            }
        }
        Ok(Users { by_name })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Checks a name and password; CPU-heavy (argon2), so call it off the async workers.
    pub fn authenticate(&self, name: &str, password: &str) -> Option<User> {
        let user = self.by_name.get(name);
        let hash = user.map_or(DECOY_HASH, |u| u.password.as_str());
        let ok = verify_password(password, hash);
        user.filter(|_| ok).cloned()
    }
}

/// Hashes a password for the users file (argon2id, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_with(root: &Path) -> Users {
        let hash = hash_password("s3cret").unwrap();
        let text = format!(
            "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{}\"\nwritable = true\n",
            root.display()
        );
        Users::parse(&text).unwrap()
    }

    #[test]
    fn right_password_logs_in_and_wrong_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let users = users_with(dir.path());
        assert!(users.authenticate("alice", "s3cret").unwrap().writable);
        assert!(users.authenticate("alice", "S3cret").is_none());
        assert!(users.authenticate("bob", "s3cret").is_none());
    }

    #[test]
    fn decoy_hash_is_a_valid_hash() {
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = Users::parse("[[user]]\nname = \"a\"\npassword = \"plain\"\nroot = \"/\"\n")
            .unwrap_err();
        assert!(err.contains("argon2"), "{err}");
        let hash = hash_password("x").unwrap();
        let twice = format!(
            "[[user]]\nname = \"a\"\npassword = \"{hash}\"\nroot = \"/\"\n[[user]]\nname = \"a\"\npassword = \"{hash}\"\nroot = \"/\"\n"
        );
        assert!(Users::parse(&twice).unwrap_err().contains("twice"));
        let missing =
            format!("[[user]]\nname = \"a\"\npassword = \"{hash}\"\nroot = \"/nonexistent/x\"\n");
        assert!(Users::parse(&missing).unwrap_err().contains("not a folder"));
    }
}
