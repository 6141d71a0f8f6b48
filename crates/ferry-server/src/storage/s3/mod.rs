//! A small client of S3-compatible object stores (AWS S3, Garage, MinIO, ...): the requests a
//! storage back-end needs, signed with AWS Signature Version 4, with bounded retries and
//! timeouts. It knows nothing of FTP.
//!
//! Beyond what general object-store crates offer, it lists and aborts pending multipart
//! uploads, copies byte ranges into a part (UploadPartCopy), and writes keys ending in `/`
//! (folder markers).
//!
//! ```no_run
//! # async fn example() -> Result<(), ferry_server::storage::s3::S3Error> {
//! use ferry_server::storage::s3::{S3Client, S3Config};
//! let client = S3Client::new(S3Config::from_env("ferry")?)?;
//! client.check().await?;
//! client.put("docs/readme.txt", bytes::Bytes::from_static(b"hello\n")).await?;
//! let mut body = client.get("docs/readme.txt", 2).await?;
//! while let Some(chunk) = body.chunk().await? {
//!     print!("{}", String::from_utf8_lossy(&chunk));
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod sign;
mod xml;

pub use client::{GetBody, ObjectHead, S3Client, S3Config};
pub use error::S3Error;
pub use xml::{ListPage, ObjectEntry, PendingUpload, UploadsPage};
