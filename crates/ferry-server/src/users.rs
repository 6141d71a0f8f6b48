//! Accounts: the [`Authenticator`] trait the session logs in through, and its users-file
//! back-end (TOML, argon2 password hashes). See `users.example.toml` for every field.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."   # from `ferryd --hash-password`
//! root = "/srv/ftp/alice"
//! writable = true
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::cell::RefCell;

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Deserialize;

use crate::permissions::{AccessPolicy, Network, Permission, PermissionSet};
use crate::storage::VirtualPath;

/// What a successful login yields: who, where, and what they may do.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    pub name: String,
    pub root: PathBuf,
    pub policy: AccessPolicy,
    /// Most sessions this account may have at once.
    pub max_sessions: Option<usize>,
    /// Bytes per second across all of this account's sessions; `None` is unlimited.
    pub download_rate: Option<u64>,
    pub upload_rate: Option<u64>,
    /// The account must use TLS on the control and data connections.
    pub require_tls: bool,
    /// The most bytes and files the account may keep under its root.
    pub quota: crate::quota::Limits,
}

/// Checks credentials. Implementations are blocking (password hashing is CPU-heavy); the
/// session calls them on the blocking pool. Every failure looks the same to the client.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The account for `user` with `password`, connecting from `peer`, or `None`.
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Option<AccountSpec>;
    /// How many accounts it knows, for the startup line (`None` if it cannot tell).
    fn account_count(&self) -> Option<usize>;
    /// The root folders of its accounts, for Landlock (empty if it cannot tell in advance).
    fn roots(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// A folder of a user's with its own permissions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderRule {
    /// Path as the user sees it, e.g. "/incoming".
    pub path: String,
    pub permissions: Vec<Permission>,
}

/// One named account in the users file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// An argon2 PHC string; never the password itself.
    pub password: String,
    pub root: PathBuf,
    /// Shorthand: every permission (true) or list and download (false, the default).
    #[serde(default)]
    pub writable: bool,
    /// The exact permissions, instead of `writable`.
    pub permissions: Option<Vec<Permission>>,
    /// Folders with their own permissions.
    #[serde(default)]
    pub folders: Vec<FolderRule>,
    /// A disabled account cannot log in.
    #[serde(default)]
    pub disabled: bool,
    /// Networks the account may log in from (CIDR); empty means anywhere.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    pub max_sessions: Option<usize>,
    /// Bytes per second, summed over the account's sessions.
    pub download_rate: Option<u64>,
    pub upload_rate: Option<u64>,
    /// The account must use TLS (AUTH TLS and PROT P), whatever the server's policy.
    #[serde(default)]
    pub require_tls: bool,
    /// Most bytes the account may keep under its root (uploads stop with 552 there).
    pub quota_bytes: Option<u64>,
    /// Most files the account may keep under its root.
    pub quota_files: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<User>,
}

/// A user with its checked, parsed fields.
#[derive(Debug, Clone)]
struct Entry {
    user: User,
    networks: Vec<Network>,
    policy: AccessPolicy,
}

/// The accounts of a users file, by name.
#[derive(Debug, Default, Clone)]
pub struct Users {
    by_name: HashMap<String, Entry>,
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
            let entry = check(user)?;
            if let Some(old) = by_name.insert(entry.user.name.clone(), entry) {
                return Err(format!("user {:?} is listed twice", old.user.name));
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
}

fn check(user: User) -> Result<Entry, String> {
    let name = &user.name;
    let hash = PasswordHash::new(&user.password)
        .map_err(|e| format!("user {name:?}: password is not an argon2 hash ({e})"))?;
    let params = Params::try_from(&hash)
        .map_err(|e| format!("user {name:?}: password is not an argon2 hash ({e})"))?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(format!(
            "user {name:?}: the password hash asks for {} KiB of memory; at most {MAX_MEMORY_KIB} KiB",
            params.m_cost()
        ));
    }
    if let Err(error) = crate::config::check_root("root", &user.root) {
        return Err(format!("user {name:?}: {error}"));
    }
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "user {name:?}: names must be non-empty, without spaces"
        ));
    }
    let networks = user
        .allowed_networks
        .iter()
        .map(|n| {
            Network::parse(n)
                .ok_or_else(|| format!("user {name:?}: {n:?} is not a network like 192.0.2.0/24"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let base = match (&user.permissions, user.writable) {
        (Some(list), _) => PermissionSet::of(list),
        (None, true) => PermissionSet::ALL,
        (None, false) => PermissionSet::READ_ONLY,
    };
    let mut policy = AccessPolicy::new(base);
    for folder in &user.folders {
        if !folder.path.starts_with('/') {
            return Err(format!(
                "user {name:?}: folder path {:?} must start with /",
                folder.path
            ));
        }
        policy = policy.with_folder(
            VirtualPath::root().join(&folder.path),
            PermissionSet::of(&folder.permissions),
        );
    }
    Ok(Entry {
        user,
        networks,
        policy,
    })
}

impl Authenticator for Users {
    fn authenticate(&self, name: &str, password: &str, peer: IpAddr) -> Option<AccountSpec> {
        let entry = self.by_name.get(name);
        // Unknown users are checked against a decoy hash, so a wrong name costs as much time
        // as a wrong password and the two cannot be told apart.
        let hash: &str = match entry {
            Some(entry) => &entry.user.password,
            None => decoy_hash(),
        };
        let password_ok = verify_password(password, hash);
        let entry = entry.filter(|_| password_ok)?;
        let network_ok =
            entry.networks.is_empty() || entry.networks.iter().any(|n| n.contains(peer));
        if entry.user.disabled || !network_ok {
            return None;
        }
        let user = &entry.user;
        Some(AccountSpec {
            name: user.name.clone(),
            root: user.root.clone(),
            policy: entry.policy.clone(),
            max_sessions: user.max_sessions,
            download_rate: user.download_rate.filter(|r| *r > 0),
            upload_rate: user.upload_rate.filter(|r| *r > 0),
            require_tls: user.require_tls,
            quota: crate::quota::Limits {
                bytes: user.quota_bytes,
                files: user.quota_files,
            },
        })
    }

    fn account_count(&self) -> Option<usize> {
        Some(self.len())
    }

    fn roots(&self) -> Vec<PathBuf> {
        self.by_name.values().map(|e| e.user.root.clone()).collect()
    }
}

/// A valid hash of a random password, made once.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password nobody has").unwrap_or_default())
}

/// The most memory a users-file hash may ask argon2 for (each checker thread keeps that much).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Hashes a password for the users file (argon2id, the crate's default cost: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let argon2 = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (compared in constant time).
fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = parsed.version.map(Version::try_from).transpose();
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        version,
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    let computed = with_memory(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

/// Runs `hash` with `blocks` blocks of argon2 memory that this thread keeps from one check to
/// the next: a 19 MiB allocation freed after every login would make the allocator keep big
/// blocks in every thread's arena (it raises its threshold for returning them to the system),
/// which grew a server under a stream of logins by hundreds of MiB.
fn with_memory<T>(blocks: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        hash(&mut memory[..blocks])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", &theirs));
        assert!(!verify_password("correct horsf", &theirs));
        let ours = hash_password("battery staple").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"battery staple", &parsed)
            .is_ok());
        assert!(verify_password("battery staple", &ours));
        assert!(!verify_password("battery staple", "$argon2id$nonsense"));
        let expensive = ours.replace("m=19456", "m=1048576");
        let text = format!("[[user]]\nname = \"x\"\npassword = \"{expensive}\"\nroot = \"/\"\n");
        let error = Users::parse(&text).unwrap_err();
        assert!(error.contains("KiB of memory"), "{error}");
    }

    const HERE: &str = "127.0.0.1";

    fn users(extra: &str, root: &Path) -> Users {
        let hash = hash_password("s3cret").unwrap();
        let text = format!(
            "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{}\"\n{extra}\n",
            root.display()
        );
        Users::parse(&text).unwrap()
    }

    fn login(users: &Users, name: &str, password: &str, from: &str) -> Option<AccountSpec> {
        users.authenticate(name, password, from.parse().unwrap())
    }

    #[test]
    fn right_password_logs_in_and_wrong_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let users = users("writable = true", dir.path());
        let spec = login(&users, "alice", "s3cret", HERE).unwrap();
        assert!(spec
            .policy
            .allows(Permission::Delete, &VirtualPath::root().join("x")));
        assert!(login(&users, "alice", "S3cret", HERE).is_none());
        assert!(login(&users, "bob", "s3cret", HERE).is_none());
    }

    #[test]
    fn disabled_users_and_other_networks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(login(
            &users("disabled = true", dir.path()),
            "alice",
            "s3cret",
            HERE
        )
        .is_none());
        let limited = users("allowed_networks = [\"10.0.0.0/8\", \"::1\"]", dir.path());
        assert!(login(&limited, "alice", "s3cret", HERE).is_none());
        assert!(login(&limited, "alice", "s3cret", "10.1.2.3").is_some());
        assert!(login(&limited, "alice", "s3cret", "::1").is_some());
    }

    #[test]
    fn permissions_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let extra =
            "permissions = [\"list\", \"download\"]\nmax_sessions = 2\ndownload_rate = 1000\n\
                     [[user.folders]]\npath = \"/drop\"\npermissions = [\"upload\"]\n";
        let spec = login(&users(extra, dir.path()), "alice", "s3cret", HERE).unwrap();
        let at = |p: &str| VirtualPath::root().join(p);
        assert!(spec.policy.allows(Permission::Download, &at("/a")));
        assert!(!spec.policy.allows(Permission::Upload, &at("/a")));
        assert!(spec.policy.allows(Permission::Upload, &at("/drop/a")));
        assert!(!spec.policy.allows(Permission::Download, &at("/drop/a")));
        assert_eq!(
            (spec.max_sessions, spec.download_rate, spec.upload_rate),
            (Some(2), Some(1000), None)
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = Users::parse("[[user]]\nname = \"a\"\npassword = \"plain\"\nroot = \"/\"\n")
            .unwrap_err();
        assert!(err.contains("argon2"), "{err}");
        let hash = hash_password("x").unwrap();
        let entry = |extra: &str| {
            format!("[[user]]\nname = \"a\"\npassword = \"{hash}\"\nroot = \"/\"\n{extra}\n")
        };
        assert!(Users::parse(&format!("{}{}", entry(""), entry("")))
            .unwrap_err()
            .contains("twice"));
        let missing =
            format!("[[user]]\nname = \"a\"\npassword = \"{hash}\"\nroot = \"/nonexistent/x\"\n");
        assert!(Users::parse(&missing).unwrap_err().contains("not a folder"));
        assert!(Users::parse(&entry("allowed_networks = [\"10.0.0.0/99\"]"))
            .unwrap_err()
            .contains("network"));
        assert!(Users::parse(&entry("permissions = [\"fly\"]"))
            .unwrap_err()
            .contains("fly"));
        let relative = entry("[[user.folders]]\npath = \"drop\"\npermissions = []");
        assert!(Users::parse(&relative)
            .unwrap_err()
            .contains("must start with /"));
    }
}
