//! Optional process hardening on Linux, applied once the listener is bound and before the
//! runtime starts its threads (both calls act on the calling thread and the threads it starts
//! afterwards):
//! - dropping root for a configured user (and its group), so a compromise of the server does not
//!   hand out root;
//! - Landlock, which confines the process's file-system access to the served folders, on kernels
//!   that support it.

use std::path::{Path, PathBuf};

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    ABI,
};
use rustix::process::{Gid, Uid};

/// Why hardening failed; `ferryd` refuses to start rather than run less hardened than asked.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    #[error("cannot read /etc/passwd: {0}")]
    Passwd(std::io::Error),
    #[error("cannot switch to user {user:?}: {source}")]
    Switch {
        user: String,
        source: std::io::Error,
    },
    #[error("Landlock: {0}")]
    Landlock(String),
}

/// How far Landlock restricts the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    Full,
    Partial,
    /// The kernel has no Landlock.
    Unsupported,
}

/// Raises the open-file limit to its hard maximum (each session needs a descriptor or two, and
/// the usual soft limit of 1024 would cap the server far below what it can hold). Returns the
/// new limit.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let maximum = limit.maximum;
    if limit.current != maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: maximum,
                maximum,
            },
        )
        .ok()?;
    }
    getrlimit(Resource::Nofile).current
}

/// Switches the calling thread (call it before starting any other) to `user`'s uid and gid,
/// dropping supplementary groups. Does nothing when not running as root.
pub fn drop_privileges(user: &str) -> Result<(u32, u32), HardeningError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(HardeningError::Passwd)?;
    let (uid, gid) =
        lookup_user(&passwd, user).ok_or_else(|| HardeningError::UnknownUser(user.to_string()))?;
    if !rustix::process::getuid().is_root() {
        return Ok((uid, gid));
    }
    let switch = |source| HardeningError::Switch {
        user: user.to_string(),
        source,
    };
    let gid_value = Gid::from_raw(gid);
    rustix::thread::set_thread_groups(&[gid_value]).map_err(|e| switch(e.into()))?;
    rustix::thread::set_thread_res_gid(gid_value, gid_value, gid_value)
        .map_err(|e| switch(e.into()))?;
    let uid_value = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(uid_value, uid_value, uid_value)
        .map_err(|e| switch(e.into()))?;
    Ok((uid, gid))
}

/// Finds `name:x:uid:gid:...` in passwd text.
fn lookup_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// Confines the calling thread (and threads it starts later) to the given folders: full access
/// beneath them, read access to `readable` (those that exist), none elsewhere.
pub fn confine_to(folders: &[PathBuf], readable: &[&Path]) -> Result<Confinement, HardeningError> {
    let abi = ABI::V3;
    let access = AccessFs::from_all(abi);
    let folders: Vec<&Path> = folders.iter().map(PathBuf::as_path).collect();
    let readable: Vec<&Path> = readable.iter().copied().filter(|p| p.exists()).collect();
    let status = Ruleset::default()
        .handle_access(access)
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&folders, access)))
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(&readable, AccessFs::from_read(abi)))
        })
        .and_then(|ruleset| ruleset.restrict_self())
        .map_err(|e| HardeningError::Landlock(e.to_string()))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Confinement::Full,
        RulesetStatus::PartiallyEnforced => Confinement::Partial,
        RulesetStatus::NotEnforced => Confinement::Unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_users_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nftp:x:101:65534::/srv/ftp:/usr/sbin/nologin\nbad line\n";
        assert_eq!(lookup_user(passwd, "ftp"), Some((101, 65534)));
        assert_eq!(lookup_user(passwd, "root"), Some((0, 0)));
        assert_eq!(lookup_user(passwd, "nobody"), None);
        assert_eq!(lookup_user(passwd, "bad line"), None);
    }
}
