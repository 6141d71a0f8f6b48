//! Virtual hosts: several FTP sites on one address, told apart by HOST (RFC 7151) before login
//! or by the TLS server name (SNI). Each has its own greeting, name, anonymous site and
//! accounts (its certificate is chosen in `tls`); everything else is the server's.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{AnonymousConfig, Config};
use crate::users::{Authenticator, Users, UsersError};

/// One virtual host, ready to serve.
#[derive(Debug)]
pub struct Vhost {
    /// Lower-cased: the name first, then the aliases.
    pub names: Vec<String>,
    pub server_name: String,
    pub greeting: String,
    /// Its anonymous settings, `root` filled in.
    pub anonymous: AnonymousConfig,
    pub authenticator: Arc<dyn Authenticator>,
}

impl Vhost {
    pub fn anonymous_root(&self) -> PathBuf {
        self.anonymous.root.clone().unwrap_or_default()
    }
}

/// The vhosts of a configuration, with their users files read.
pub fn load(config: &Config) -> Result<Vec<Vhost>, UsersError> {
    config
        .vhosts
        .iter()
        .map(|vhost| {
            let users = match &vhost.users_file {
                Some(path) => Users::load(path)?,
                None => Users::default(),
            };
            let mut anonymous = vhost.anonymous.clone();
            anonymous.root = Some(vhost.anonymous_root());
            Ok(Vhost {
                names: vhost.names(),
                server_name: vhost.server_name(),
                greeting: vhost.greeting(),
                anonymous,
                authenticator: Arc::new(users),
            })
        })
        .collect()
}

/// The index of the vhost called `name` (any case).
pub fn find(vhosts: &[Vhost], name: &str) -> Option<usize> {
    let name = name.to_ascii_lowercase();
    vhosts.iter().position(|v| v.names.contains(&name))
}
