//! A small client of S3-compatible object stores (AWS S3, Garage, MinIO, ...): the requests a
//! storage back-end needs, signed with AWS Signature Version 4, with bounded retries and
//! timeouts. It knows nothing of FTP.
//!
//! Beyond what general object-store crates offer, it lists and aborts pending multipart
//! uploads, copies byte ranges into a part (UploadPartCopy), and writes keys ending in `/`
//! (folder markers).
//!
//! Timeouts: 5 s to connect; 60 s without a byte while an answer is read; a request with a
//! body must be sent and answered within 60 s plus its size at 128 KiB/s.
//!
//! Checked against Garage 2.5.0 (`tests/s3_client.rs`, a 3-node cluster): SigV4 with
//! `UNSIGNED-PAYLOAD` (bodies over 64 KiB; smaller ones are hashed), UploadPartCopy,
//! ListMultipartUploads, `encoding-type=url` listings, CopyObject and folder-marker keys all
//! work. Garage ignores `If-None-Match: *` on PutObject (the object is replaced), so the
//! client offers no conditional put: a back-end cannot rely on one.
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

pub use client::{GetBody, ObjectHead, OpenObject, S3Client, S3Config};
pub use error::S3Error;
pub use xml::{ListPage, ObjectEntry, PendingUpload, UploadsPage};
