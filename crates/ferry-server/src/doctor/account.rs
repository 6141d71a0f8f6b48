//! The one-off account the doctor logs in with when it runs the server itself and anonymous
//! logins are off: read-only on the server's root, with a random password that lives only as
//! long as the doctor's run.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::permissions::{AccessPolicy, PermissionSet};
use crate::server::Context;
use crate::users::{AccountSpec, Authenticator};

/// The doctor's account in front of the configured accounts.
#[derive(Clone)]
pub struct DoctorAccount {
    inner: Arc<dyn Authenticator>,
    pub user: String,
    pub password: String,
    root: PathBuf,
}

impl fmt::Debug for DoctorAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoctorAccount")
            .field("user", &self.user)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl DoctorAccount {
    pub fn new(context: &Context) -> DoctorAccount {
        DoctorAccount {
            inner: Arc::clone(&context.authenticator),
            user: "ferryd-doctor".into(),
            password: random_password(),
            root: context.config.root.clone(),
        }
    }
}

/// 128 random bits, as hex.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    let random = rustls::crypto::ring::default_provider().secure_random;
    if random.fill(&mut bytes).is_err() {
        // No randomness: an account nobody can log in to (the doctor's login then fails).
        return String::new();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Authenticator for DoctorAccount {
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Option<AccountSpec> {
        if user != self.user {
            return self.inner.authenticate(user, password, peer);
        }
        (!self.password.is_empty() && password == self.password).then(|| AccountSpec {
            name: self.user.clone(),
            root: self.root.clone(),
            policy: AccessPolicy::new(PermissionSet::READ_ONLY),
            max_sessions: None,
            download_rate: None,
            upload_rate: None,
            require_tls: false,
            quota: Default::default(),
        })
    }

    fn account_count(&self) -> Option<usize> {
        self.inner.account_count()
    }

    fn roots(&self) -> Vec<PathBuf> {
        self.inner.roots()
    }
}
