//! Ferry's sans-IO FTP protocol engine: everything about FTP that is not sockets or files.
//!
//! - [`framer`]: splits the control byte stream into bounded lines, strips Telnet sequences.
//! - [`command`]: the command enum and its parser (RFC 959, 2389, 2428, 3659, 4217).
//! - [`reply`]: reply codes and texts, formatting and parsing multi-line replies.
//! - [`hostport`]: PORT/PASV/EPRT/EPSV encodings.
//! - [`listing`]: `ls -l` lines and MLSx facts, formatted from file metadata.
//! - [`list_parse`]: parsers for the listing formats servers send (for the client).
//! - [`ascii`]: TYPE A end-of-line conversion in both directions.
//! - [`time`]: UTC calendar arithmetic for MDTM, MLSx and `ls -l` dates.

pub mod ascii;
pub mod command;
pub mod framer;
pub mod hostport;
pub mod list_parse;
pub mod listing;
pub mod reply;
pub mod time;

pub use command::{Command, Secret};
pub use framer::{Frame, LineFramer};
pub use reply::Reply;
