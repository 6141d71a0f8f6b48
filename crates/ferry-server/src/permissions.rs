//! What an account may do, and where: permissions per account and per folder, and the source
//! networks an account may log in from.

use std::net::IpAddr;

use serde::Deserialize;

use crate::storage::{FileKind, VirtualPath};

/// One thing a user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// LIST, NLST, MLSD, MLST, STAT with a path, SIZE, MDTM.
    List,
    /// RETR.
    Download,
    /// STOR, STOU of a new file.
    Upload,
    /// STOR over an existing file, REST+STOR.
    Overwrite,
    /// APPE.
    Append,
    /// DELE.
    Delete,
    /// RNFR and RNTO.
    Rename,
    /// MKD.
    Mkdir,
    /// RMD.
    Rmdir,
    /// SITE CHMOD.
    Chmod,
}

const ALL: [Permission; 10] = [
    Permission::List,
    Permission::Download,
    Permission::Upload,
    Permission::Overwrite,
    Permission::Append,
    Permission::Delete,
    Permission::Rename,
    Permission::Mkdir,
    Permission::Rmdir,
    Permission::Chmod,
];

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// List and download.
    pub const READ_ONLY: PermissionSet = PermissionSet(0b11);
    /// Everything.
    pub const ALL: PermissionSet = PermissionSet((1 << ALL.len()) - 1);

    pub fn of(permissions: &[Permission]) -> Self {
        PermissionSet(permissions.iter().fold(0, |bits, p| bits | bit(*p)))
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & bit(permission) != 0
    }

    pub fn with(self, permission: Permission) -> Self {
        PermissionSet(self.0 | bit(permission))
    }

    /// Whether every permission of this set is also in `other`.
    pub fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The MLSx `perm` fact (RFC 3659 §7.5.5) for an entry of this kind. A folder always has
    /// `e`: CWD into a folder needs no permission (a drop box's too, which cannot be listed).
    pub fn mlsx_perm(self, kind: FileKind) -> String {
        use Permission as P;
        // `None`: always.
        let letters: &[(char, Option<Permission>)] = if kind == FileKind::Directory {
            &[
                ('c', Some(P::Upload)),
                ('d', Some(P::Rmdir)),
                ('e', None),
                ('f', Some(P::Rename)),
                ('l', Some(P::List)),
                ('m', Some(P::Mkdir)),
                ('p', Some(P::Delete)),
            ]
        } else {
            &[
                ('a', Some(P::Append)),
                ('d', Some(P::Delete)),
                ('f', Some(P::Rename)),
                ('r', Some(P::Download)),
                ('w', Some(P::Overwrite)),
            ]
        };
        letters
            .iter()
            .filter(|(_, p)| p.is_none_or(|p| self.contains(p)))
            .map(|(c, _)| *c)
            .collect()
    }
}

fn bit(permission: Permission) -> u16 {
    1 << (permission as u16)
}

/// An account's permissions: a base set, and folders (with everything below them) that have
/// their own set. The deepest folder that contains a path decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    base: PermissionSet,
    /// Sorted deepest first.
    folders: Vec<(VirtualPath, PermissionSet)>,
}

impl AccessPolicy {
    pub fn new(base: PermissionSet) -> Self {
        AccessPolicy {
            base,
            folders: Vec::new(),
        }
    }

    /// Gives `folder` and everything below it its own permissions.
    pub fn with_folder(mut self, folder: VirtualPath, permissions: PermissionSet) -> Self {
        self.folders.retain(|(path, _)| *path != folder);
        self.folders.push((folder, permissions));
        self.folders
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.as_str().len()));
        self
    }

    /// The permissions that apply at `path`.
    pub fn at(&self, path: &VirtualPath) -> PermissionSet {
        self.folders
            .iter()
            .find(|(folder, _)| is_within(path, folder))
            .map_or(self.base, |(_, permissions)| *permissions)
    }

    /// The permissions for the entry `name` of `folder` (a listing's entries), without building
    /// its path when no folder has permissions of its own.
    pub fn at_entry(&self, folder: &VirtualPath, name: &str) -> PermissionSet {
        if self.folders.is_empty() {
            self.base
        } else {
            self.at(&folder.join(name))
        }
    }

    pub fn allows(&self, permission: Permission, path: &VirtualPath) -> bool {
        self.at(path).contains(permission)
    }

    /// Whether some folders have permissions of their own (so that where a path really leads,
    /// through symlinks, can matter).
    pub fn has_folder_rules(&self) -> bool {
        !self.folders.is_empty()
    }

    /// Whether moving `from` (with everything below it) to `to` keeps every rule: no folder with
    /// its own permissions lies at or below either end (a rule is tied to a path, so moving
    /// what it covers would shed it), and what moves gets no permission at `to` that it did
    /// not have at `from`. Checked by RNTO on top of Rename at both ends.
    pub fn may_move(&self, from: &VirtualPath, to: &VirtualPath) -> bool {
        let covers_a_rule = self
            .folders
            .iter()
            .any(|(folder, _)| is_within(folder, from) || is_within(folder, to));
        !covers_a_rule && self.at(to).is_subset_of(self.at(from))
    }
}

fn is_within(path: &VirtualPath, folder: &VirtualPath) -> bool {
    let (path, folder) = (path.as_str(), folder.as_str());
    folder == "/"
        || path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An IP network in CIDR notation, `192.0.2.0/24` or `2001:db8::/32`; a bare address is a /32
/// or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (
                address.parse::<IpAddr>().ok()?,
                Some(prefix.parse::<u8>().ok()?),
            ),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    prefix == 0 || (a ^ b) >> (128 - u32::from(prefix)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    fn at(path: &str) -> VirtualPath {
        VirtualPath::root().join(path)
    }

    #[test]
    fn deepest_folder_decides() {
        let policy = AccessPolicy::new(PermissionSet::READ_ONLY)
            .with_folder(at("/incoming"), PermissionSet::of(&[P::Upload]))
            .with_folder(at("/incoming/open"), PermissionSet::ALL);
        assert!(policy.allows(P::Download, &at("/pub/readme.txt")));
        assert!(!policy.allows(P::Upload, &at("/pub/x")));
        assert!(policy.allows(P::Upload, &at("/incoming/x")));
        assert!(!policy.allows(P::Download, &at("/incoming/x")));
        assert!(!policy.allows(P::List, &at("/incoming")));
        assert!(policy.allows(P::Delete, &at("/incoming/open/x")));
        assert!(
            policy.allows(P::Download, &at("/incomingx/y")),
            "a sibling with a longer name is not inside"
        );
    }

    #[test]
    fn moves_keep_every_rule() {
        let policy = AccessPolicy::new(PermissionSet::ALL)
            .with_folder(at("/projects/secret"), PermissionSet::of(&[P::List]))
            .with_folder(
                at("/incoming"),
                PermissionSet::of(&[P::List, P::Upload, P::Rename]),
            );
        assert!(
            !policy.may_move(&at("/projects"), &at("/moved")),
            "a folder holding a rule does not move"
        );
        assert!(!policy.may_move(&at("/projects/secret"), &at("/open")));
        assert!(!policy.may_move(&at("/pub"), &at("/projects/secret")));
        assert!(
            !policy.may_move(&at("/incoming/x"), &at("/pub/x")),
            "content gains no permission by moving"
        );
        assert!(policy.may_move(&at("/pub/x"), &at("/incoming/x")));
        assert!(policy.may_move(&at("/pub/a"), &at("/projects/b")));
        assert!(AccessPolicy::new(PermissionSet::ALL).may_move(&at("/a"), &at("/b")));
    }

    #[test]
    fn sets_and_mlsx_perm() {
        assert!(PermissionSet::ALL.contains(P::Chmod));
        assert!(!PermissionSet::READ_ONLY.contains(P::Upload));
        assert_eq!(PermissionSet::READ_ONLY.mlsx_perm(FileKind::File), "r");
        assert_eq!(
            PermissionSet::READ_ONLY.mlsx_perm(FileKind::Directory),
            "el"
        );
        assert_eq!(PermissionSet::ALL.mlsx_perm(FileKind::File), "adfrw");
        assert_eq!(PermissionSet::ALL.mlsx_perm(FileKind::Directory), "cdeflmp");
        let drop_box = PermissionSet(0).with(P::Upload);
        assert_eq!(drop_box.mlsx_perm(FileKind::Directory), "ce");
    }

    #[test]
    fn networks() {
        let net = Network::parse("192.168.1.0/24").unwrap();
        assert!(net.contains("192.168.1.77".parse().unwrap()));
        assert!(!net.contains("192.168.2.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:192.168.1.5".parse().unwrap()),
            "IPv4-mapped peers count as IPv4"
        );
        let loopback6 = Network::parse("::1").unwrap();
        assert!(loopback6.contains("::1".parse().unwrap()));
        assert!(!loopback6.contains("127.0.0.1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
    }
}
