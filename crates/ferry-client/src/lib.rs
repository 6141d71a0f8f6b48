//! Ferry's FTP client library: an async [`Client`] that other programs can embed, and the
//! pieces the `ferry` binary is built from.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_client::FtpError> {
//! use ferry_client::{Client, ClientConfig, Secret};
//! let mut client = Client::connect("ftp.example.com", 21, ClientConfig::default()).await?;
//! client.login("anonymous", &Secret::new("ferry@"), None).await?;
//! let mut file = Vec::new();
//! client.retrieve("readme.txt", &mut file, 0).await?;
//! client.quit().await?;
//! # Ok(()) }
//! ```
//!
//! To test a server (`ferryd`, say) bound to `127.0.0.1:0`, connect to the listener's address
//! with [`Client::connect_addr`] and a [`ClientConfig`] with short timeouts
//! ([`ClientConfig::with_timeouts`]); set [`ClientConfig::data_mode`] to exercise passive and
//! active mode separately. Errors carry the server's [`Reply`] and an [`ErrorCategory`].
//!
//! - [`client`]: connecting, logging in, the commands without data connections.
//! - [`transfer`]: RETR, STOR, APPE, LIST, NLST, MLSD.
//! - [`data`], `data_setup`: passive and active data connections.
//! - [`control`]: the bounded control-connection reader and writer.
//! - [`tls`], [`stream`]: FTPS (RFC 4217): AUTH TLS or implicit TLS, PROT P data connections
//!   that resume the control connection's TLS session, certificate pins and known hosts.
//! - [`hash`]: checksums for verified transfers (HASH, XSHA256/XSHA1/XMD5/XCRC).
//! - [`mirror`]: what a mirror must do: comparing two trees, filters, deletion limits.
//! - [`url`], [`netrc`], [`resolve`]: where to connect and as whom.
//! - [`transcript`], [`trace`]: observing a session, and drawing it as a sequence diagram.

pub mod client;
pub mod config;
pub mod control;
pub mod data;
mod data_setup;
mod deflate;
pub mod error;
pub mod hash;
pub mod mirror;
pub mod netrc;
pub mod replies;
pub mod resolve;
pub mod stream;
pub mod tls;
pub mod trace;
pub mod transcript;
pub mod transfer;
pub mod url;

pub use client::Client;
pub use config::{ClientConfig, DataMode};
pub use error::{ErrorCategory, FtpError};
pub use ferry_proto::command::{Secret, TransferType};
pub use ferry_proto::list_parse::{EntryKind, RemoteEntry};
pub use ferry_proto::reply::Reply;
pub use replies::Features;
pub use resolve::{AddressFamily, ResolveOverride};
pub use tls::{Fingerprint, TlsInfo, TlsMode, TlsOptions, TlsVersions};
pub use transcript::Transcript;
pub use url::FtpUrl;
