//! The Ferry FTP server: configuration, accounts, storage, sessions and the listener.
//!
//! Embed it with [`server::run`]: bind a `TcpListener`, build a [`server::Context`] from a
//! [`config::Config`], and pass a shutdown future. To reload and drain in stages as `ferryd`
//! does, use [`lifecycle::Server`] and its [`lifecycle::Handle`].

pub mod admin;
pub mod checker;
pub mod checksum;
pub mod config;
pub mod data;
pub mod doctor;
pub mod events;
pub mod hardening;
pub mod lifecycle;
pub mod limits;
pub mod live;
pub mod passive;
pub mod permissions;
pub mod proxy;
pub mod quota;
pub mod readiness;
pub mod server;
pub mod session;
pub mod storage;
pub mod stream;
pub mod systemd;
pub mod tls;
pub mod users;
pub mod vhost;

pub use config::Config;
pub use lifecycle::{Handle, Listeners, Readiness, Server};
pub use server::{run, run_with_implicit_tls, Context};
