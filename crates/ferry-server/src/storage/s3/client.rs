//! [`S3Client`]: the requests of the S3 API a storage back-end needs, signed, with bounded
//! retries and timeouts.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use md5::{Digest, Md5};
use reqwest::header::HeaderMap;
use reqwest::Method;

use super::sign::{self, amz_date, canonical_query, uri_encode, Canonical, Signer};
use super::xml::{self, ListPage, UploadsPage};
use super::S3Error;

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle connection to the store is kept for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Idle connections to the store kept for the next requests, at most: a burst of requests
/// leaves no more than these open (each holds its read buffer, up to about 400 KiB).
const POOL_MAX_IDLE: usize = 64;

/// Time allowed between two reads of an answer: a dead store never hangs a request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest upload accepted, in bytes a second: a request with a body gets
/// [`READ_TIMEOUT`] plus the body's size at this rate to be sent and answered (the read timeout
/// alone does not cover a store that stops reading).
const MIN_UPLOAD_RATE: u64 = 128 * 1024;

/// The first pause before a retry; each next one is four times longer, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Bodies up to this size are hashed into the signature; larger ones are sent with
/// `UNSIGNED-PAYLOAD` (TLS protects them on the wire).
const HASHED_BODY_LIMIT: usize = 64 * 1024;

/// Where the store is and how to sign for it.
#[derive(Clone)]
pub struct S3Config {
    /// `http://127.0.0.1:3900`, `https://s3.eu-west-1.amazonaws.com`, ...: scheme, host and
    /// port, no path.
    pub endpoint: String,
    /// The signing region (`garage` for a default Garage, `us-east-1`, ...).
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    /// Never shown by `Debug`.
    pub secret_key: String,
    /// Temporary credentials' token (`x-amz-security-token`), never shown by `Debug`.
    pub session_token: Option<String>,
    /// `endpoint/bucket/key` when true, `bucket.endpoint/key` (virtual-hosted) when false.
    pub path_style: bool,
    /// Whether a plain `http://` endpoint is accepted.
    pub allow_http: bool,
    /// Retries of a failed request, at most (see [`S3Client`]).
    pub retries: u32,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("retries", &self.retries)
            .finish()
    }
}

impl S3Config {
    /// A configuration for `bucket` from the usual AWS variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` (both required), `AWS_SESSION_TOKEN`, `AWS_REGION` (else
    /// `AWS_DEFAULT_REGION`, else `us-east-1`) and `AWS_ENDPOINT_URL_S3` (else
    /// `AWS_ENDPOINT_URL`).
    ///
    /// With an endpoint given, requests are path-style and `http://` is allowed (a local
    /// Garage or MinIO); without one, the AWS endpoint of the region is used, virtual-hosted
    /// and HTTPS only. Retries: 3.
    pub fn from_env(bucket: &str) -> Result<S3Config, S3Error> {
        Self::from_lookup(bucket, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`S3Config::from_env`] reading variables through `var`.
    fn from_lookup(
        bucket: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<S3Config, S3Error> {
        let required =
            |name: &str| var(name).ok_or_else(|| S3Error::Invalid(format!("{name} is not set")));
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let explicit = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        let endpoint = explicit
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        Ok(S3Config {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            bucket: bucket.to_string(),
            access_key: required("AWS_ACCESS_KEY_ID")?,
            secret_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
            path_style: explicit.is_some(),
            allow_http: explicit.is_some(),
            retries: 3,
        })
    }
}

/// A client of one bucket of an S3-compatible store. Cheap to clone (clones share the
/// connection pool).
///
/// Keys are raw strings, sent URI-encoded: any UTF-8 key round-trips, except keys that are
/// empty, longer than 1024 bytes, or have a `.` or `..` segment between slashes (URLs
/// cannot carry those), which are refused with [`S3Error::Invalid`].
///
/// Retries: requests that may be sent twice (all but `create_multipart`) are retried at most
/// [`S3Config::retries`] times, after 100 ms, 400 ms, 1.6 s, ..., on transient errors (see
/// [`S3Error::is_transient`]); `create_multipart` only when the connection could not be
/// opened (the request was not sent). A [`GetBody`] is not resumed: a reader that loses one
/// asks again from where it was.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    signer: Signer,
    session_token: Option<String>,
    /// `http` or `https`.
    scheme: String,
    /// The `Host` header: host, and port unless the scheme's default.
    host: String,
    /// `/bucket` for path-style requests, empty for virtual-hosted ones.
    base_path: String,
    bucket: String,
    retries: u32,
}

impl S3Client {
    /// Whether `other` reaches the same bucket with the same credentials (a reload that read
    /// new ones from `s3.credentials_file` or the environment gives a different client).
    pub fn same_as(&self, other: &S3Client) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        a.signer.same_as(&b.signer)
            && (
                &a.session_token,
                &a.scheme,
                &a.host,
                &a.base_path,
                &a.bucket,
            ) == (
                &b.session_token,
                &b.scheme,
                &b.host,
                &b.base_path,
                &b.bucket,
            )
    }
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field(
                "endpoint",
                &format!("{}://{}", self.inner.scheme, self.inner.host),
            )
            .field("bucket", &self.inner.bucket)
            .field("access_key", &self.inner.signer.access_key)
            .finish_non_exhaustive()
    }
}

/// What [`S3Client::head`] tells of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub modified: SystemTime,
    /// As the store gives it, quotes included.
    pub etag: String,
}

/// The body of a [`S3Client::get`], read a chunk at a time.
pub struct GetBody {
    /// Bytes in this body (from the start offset to the end of the object).
    pub size: u64,
    remaining: u64,
    response: Option<reqwest::Response>,
}

impl std::fmt::Debug for GetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetBody")
            .field("size", &self.size)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl GetBody {
    fn of(response: reqwest::Response, size: u64) -> GetBody {
        GetBody {
            size,
            remaining: size,
            response: Some(response),
        }
    }

    /// The body of a range that starts at or past the object's end.
    fn empty() -> GetBody {
        GetBody {
            size: 0,
            remaining: 0,
            response: None,
        }
    }

    /// The next chunk, `None` at the end. A body that ends before `size` bytes, or stalls
    /// longer than the read timeout, is an [`S3Error::Transport`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        let Some(response) = self.response.as_mut() else {
            return Ok(None);
        };
        match response.chunk().await.map_err(transport_error)? {
            Some(chunk) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Ok(Some(chunk))
            }
            None if self.remaining > 0 => Err(S3Error::Transport(format!(
                "the body ended {} bytes early",
                self.remaining
            ))),
            None => {
                self.response = None;
                Ok(None)
            }
        }
    }
}

/// An object opened for reading by [`S3Client::open`].
#[derive(Debug)]
pub struct OpenObject {
    /// The whole object's size, whatever offset the body starts at.
    pub size: u64,
    pub etag: String,
    pub body: GetBody,
}

/// Whether a request may be sent again after a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// On any transient error: sending it twice does no harm.
    Transient,
    /// Only when the connection could not be opened: the request never left.
    Unsent,
}

/// One request, before signing.
struct Call<'a> {
    method: Method,
    /// `None` for the bucket itself.
    key: Option<&'a str>,
    query: Vec<(&'static str, String)>,
    /// Extra headers, signed: lowercase names.
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    retry: Retry,
}

impl<'a> Call<'a> {
    fn new(method: Method, key: Option<&'a str>) -> Call<'a> {
        Call {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            retry: Retry::Transient,
        }
    }

    fn query(mut self, name: &'static str, value: impl Into<String>) -> Call<'a> {
        self.query.push((name, value.into()));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Call<'a> {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: Bytes) -> Call<'a> {
        self.body = body;
        self
    }
}

impl S3Client {
    /// A client for `config`; checks the endpoint but sends nothing (see [`S3Client::check`]).
    pub fn new(config: S3Config) -> Result<S3Client, S3Error> {
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| S3Error::Invalid(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let scheme = url.scheme().to_string();
        match scheme.as_str() {
            "https" => {}
            "http" if config.allow_http => {}
            "http" => return Err(S3Error::Invalid("http:// endpoint not allowed".into())),
            _ => return Err(S3Error::Invalid(format!("endpoint scheme {scheme:?}"))),
        }
        if url.path() != "/"
            || url.query().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(S3Error::Invalid(
                "the endpoint must be scheme://host[:port] alone".into(),
            ));
        }
        let Some(host) = url.host_str() else {
            return Err(S3Error::Invalid("endpoint without a host".into()));
        };
        if config.bucket.is_empty() || config.bucket.contains(['/', '?', '#', '%']) {
            return Err(S3Error::Invalid(format!("bucket name {:?}", config.bucket)));
        }
        let mut host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let base_path = if config.path_style {
            format!("/{}", config.bucket)
        } else {
            host = format!("{}.{host}", config.bucket);
            String::new()
        };
        // reqwest's rustls needs a process-wide provider: ring, as the rest of ferryd.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tcp_keepalive(Duration::from_secs(30))
            // Connections left idle by a burst of transfers are closed soon after it, so that
            // descriptors come back to where they were (the store's connections are cheap to
            // make again).
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.allow_http)
            .user_agent(concat!("ferryd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| S3Error::Invalid(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(S3Client {
            inner: Arc::new(Inner {
                http,
                signer: Signer::new(&config.access_key, &config.secret_key, &config.region),
                session_token: config.session_token,
                scheme,
                host,
                base_path,
                bucket: config.bucket,
                retries: config.retries,
            }),
        })
    }

    /// The bucket this client works in.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// Checks that the store answers, takes the key, and has the bucket (a one-key listing):
    /// [`S3Error::Unreachable`], [`S3Error::AccessDenied`] or [`S3Error::NoSuchBucket`]
    /// otherwise.
    pub async fn check(&self) -> Result<(), S3Error> {
        self.check_under("").await
    }

    /// [`S3Client::check`] for the keys under `prefix` only (a key may be allowed to list
    /// those and not the whole bucket).
    pub async fn check_under(&self, prefix: &str) -> Result<(), S3Error> {
        let call = Call::new(Method::GET, None)
            .query("list-type", "2")
            .query("max-keys", "1")
            .query("prefix", prefix);
        self.fetch(&call).await.map(drop)
    }

    /// Size, time and ETag of an object; `None` if there is none (or no bucket: see
    /// [`S3Client::check`]).
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, S3Error> {
        let call = Call::new(Method::HEAD, Some(key));
        let headers = match self.fetch(&call).await {
            Ok((headers, _)) => headers,
            Err(S3Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let modified = header(&headers, "last-modified")?;
        Ok(Some(ObjectHead {
            size: content_length(&headers)?,
            modified: sign::parse_http_date(modified)
                .ok_or_else(|| S3Error::BadResponse(format!("Last-Modified {modified:?}")))?,
            etag: header(&headers, "etag")?.to_string(),
        }))
    }

    /// An object's size and ETag, and its bytes from offset `start` on: what a HEAD and then a
    /// GET would give, in one GET. `None` if there is no such object (or no bucket: see
    /// [`S3Client::check`]). A `start` at or past the end gives an empty body; its size then
    /// takes a HEAD (the store's refusal of the range is not read for it).
    pub async fn open(&self, key: &str, start: u64) -> Result<Option<OpenObject>, S3Error> {
        let call = get_call(key, start, None);
        let response = match self.retrying(call.retry, |_| self.send(&call)).await {
            Ok(response) => response,
            Err(S3Error::NotFound) => return Ok(None),
            Err(S3Error::Status { status: 416, .. }) => {
                return Ok(self.head(key).await?.map(|head| OpenObject {
                    size: head.size,
                    etag: head.etag,
                    body: GetBody::empty(),
                }))
            }
            Err(e) => return Err(e),
        };
        let headers = response.headers();
        let length = content_length(headers)?;
        let size = match start {
            0 => length,
            _ => range_total(response.status().as_u16(), headers, start, length)?,
        };
        let etag = header(headers, "etag")?.to_string();
        Ok(Some(OpenObject {
            size,
            etag,
            body: GetBody::of(response, length),
        }))
    }

    /// An object's bytes from offset `start` to its end. A `start` at or past the end gives an
    /// empty body; a missing object is [`S3Error::NotFound`].
    pub async fn get(&self, key: &str, start: u64) -> Result<GetBody, S3Error> {
        self.get_if(key, start, None).await
    }

    /// Like [`S3Client::get`], but only while the object still has the ETag `etag` (as
    /// [`S3Client::open`] gave it): a replaced object is [`S3Error::PreconditionFailed`], never
    /// mixed bytes.
    pub async fn get_if(
        &self,
        key: &str,
        start: u64,
        etag: Option<&str>,
    ) -> Result<GetBody, S3Error> {
        let call = get_call(key, start, etag);
        let response = match self.retrying(call.retry, |_| self.send(&call)).await {
            Ok(response) => response,
            Err(S3Error::Status { status: 416, .. }) => return Ok(GetBody::empty()),
            Err(e) => return Err(e),
        };
        let size = content_length(response.headers())?;
        if start > 0 {
            range_total(response.status().as_u16(), response.headers(), start, size)?;
        }
        Ok(GetBody::of(response, size))
    }

    /// Writes a whole object (PutObject), replacing any. Keys ending in `/` (folder markers,
    /// usually with an empty body) are ordinary keys.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), S3Error> {
        let call = Call::new(Method::PUT, Some(key)).body(body);
        self.fetch(&call).await.map(drop)
    }

    /// Removes an object; removing a missing one succeeds (as S3 does).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let call = Call::new(Method::DELETE, Some(key));
        match self.fetch(&call).await {
            Ok(_) | Err(S3Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Copies object `from` to `to` within the bucket (CopyObject, up to 5 GiB on AWS); a
    /// missing `from` is [`S3Error::NotFound`].
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), S3Error> {
        check_key(from)?;
        let call = Call::new(Method::PUT, Some(to)).header("x-amz-copy-source", self.source(from));
        let (_, body) = self.fetch_checked(&call).await?;
        xml::copy_etag(&body).map(drop)
    }

    /// One page of the objects whose keys start with `prefix` (ListObjectsV2), at most
    /// `max_keys` (the store caps it, usually at 1000). With a `delimiter`, keys with it after
    /// the prefix are grouped into [`ListPage::prefixes`]. `continuation` is the
    /// [`ListPage::next`] of the page before.
    pub async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, S3Error> {
        let mut call = Call::new(Method::GET, None)
            .query("list-type", "2")
            .query("encoding-type", "url")
            .query("max-keys", max_keys.to_string())
            .query("prefix", prefix);
        if let Some(delimiter) = delimiter {
            call = call.query("delimiter", delimiter);
        }
        if let Some(token) = continuation {
            call = call.query("continuation-token", token);
        }
        let (_, body) = self.fetch(&call).await?;
        xml::list_page(&text(&body)?)
    }

    /// Starts a multipart upload to `key`; returns its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let mut call = Call::new(Method::POST, Some(key)).query("uploads", "");
        call.retry = Retry::Unsent;
        let (_, body) = self.fetch(&call).await?;
        xml::upload_id(&text(&body)?)
    }

    /// Uploads part `part` (1 to 10,000) of an upload; returns its ETag. Every part but the
    /// last must be at least 5 MiB.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Bytes,
    ) -> Result<String, S3Error> {
        let call = part_call(key, upload_id, part)?.body(body);
        let (headers, _) = self.fetch(&call).await?;
        Ok(header(&headers, "etag")?.to_string())
    }

    /// Makes part `part` of an upload from the bytes `range` of object `source` of the bucket
    /// (UploadPartCopy); returns the part's ETag. `range` must not be empty.
    pub async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        source: &str,
        range: std::ops::Range<u64>,
    ) -> Result<String, S3Error> {
        self.upload_part_copy_if(key, upload_id, part, source, range, None)
            .await
    }

    /// Like [`S3Client::upload_part_copy`], but only while the source still has the ETag
    /// `etag` ([`S3Error::PreconditionFailed`] otherwise).
    pub async fn upload_part_copy_if(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        source: &str,
        range: std::ops::Range<u64>,
        etag: Option<&str>,
    ) -> Result<String, S3Error> {
        check_key(source)?;
        if range.is_empty() {
            return Err(S3Error::Invalid(format!("empty source range {range:?}")));
        }
        let mut call = part_call(key, upload_id, part)?
            .header("x-amz-copy-source", self.source(source))
            .header(
                "x-amz-copy-source-range",
                format!("bytes={}-{}", range.start, range.end - 1),
            );
        if let Some(etag) = etag {
            call = call.header("x-amz-copy-source-if-match", etag.to_string());
        }
        let (_, body) = self.fetch_checked(&call).await?;
        xml::copy_etag(&body)
    }

    /// Completes an upload from its parts `(number, ETag)`, in ascending order.
    ///
    /// When an attempt fails in transit and the retry finds the upload gone (the first
    /// attempt did complete it), the object is accepted if it exists with the ETag S3 gives
    /// a multipart object made of exactly these parts (MD5 of the parts' MD5s, `-N`);
    /// otherwise the answer stays [`S3Error::NoSuchUpload`].
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), S3Error> {
        let call = Call::new(Method::POST, Some(key))
            .query("uploadId", upload_id)
            .body(Bytes::from(xml::complete_body(parts)));
        let attempt = |number: u32| {
            let call = &call;
            async move {
                match self.fetch_checked_once(call).await {
                    Err(S3Error::NoSuchUpload) if number > 0 => {
                        self.confirm_completed(key, parts).await
                    }
                    other => other.map(drop),
                }
            }
        };
        self.retrying(Retry::Transient, attempt).await
    }

    /// Abandons an upload and its parts; [`S3Error::NoSuchUpload`] if there is none.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let call = Call::new(Method::DELETE, Some(key)).query("uploadId", upload_id);
        self.fetch(&call).await.map(drop)
    }

    /// One page (up to 1000) of the uploads started and neither completed nor aborted whose
    /// keys start with `prefix`, by key then upload id. `marker` is the [`UploadsPage::next`]
    /// of the page before.
    pub async fn list_multipart_uploads(
        &self,
        prefix: &str,
        marker: Option<(&str, &str)>,
    ) -> Result<UploadsPage, S3Error> {
        let mut call = Call::new(Method::GET, None)
            .query("uploads", "")
            .query("encoding-type", "url")
            .query("prefix", prefix);
        if let Some((key, upload_id)) = marker {
            call = call
                .query("key-marker", key)
                .query("upload-id-marker", upload_id);
        }
        let (_, body) = self.fetch(&call).await?;
        xml::uploads_page(&text(&body)?)
    }

    /// When the newest part of an upload was uploaded (`None`: it has none yet), from its
    /// part listing (10 pages of 1,000 at most: an upload has at most 10,000 parts).
    pub async fn newest_part(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<SystemTime>, S3Error> {
        let mut newest = None;
        let mut marker: Option<u32> = None;
        for _ in 0..10 {
            let mut call = Call::new(Method::GET, Some(key)).query("uploadId", upload_id);
            let number;
            if let Some(after) = marker {
                number = after.to_string();
                call = call.query("part-number-marker", &number);
            }
            let (_, body) = self.fetch(&call).await?;
            let page = xml::parts_page(&text(&body)?)?;
            newest = newest.max(page.newest);
            match page.next {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        Ok(newest)
    }

    /// After a completion whose answer was lost: whether `key` is the object made of `parts`.
    async fn confirm_completed(&self, key: &str, parts: &[(u32, String)]) -> Result<(), S3Error> {
        let expected = multipart_etag(parts).ok_or(S3Error::NoSuchUpload)?;
        match self.head(key).await? {
            Some(head) if head.etag.trim_matches('"') == expected => Ok(()),
            _ => Err(S3Error::NoSuchUpload),
        }
    }

    /// `x-amz-copy-source` for a key of the bucket: `/bucket/key`, URI-encoded.
    fn source(&self, key: &str) -> String {
        format!("/{}/{}", self.inner.bucket, uri_encode(key, true))
    }

    /// Sends a call (with retries) and reads its whole answer: headers and body.
    async fn fetch(&self, call: &Call<'_>) -> Result<(HeaderMap, Bytes), S3Error> {
        self.retrying(call.retry, |_| self.fetch_once(call)).await
    }

    /// [`S3Client::fetch`] for copies, whose 200 answer may hold an `<Error>`: the body as text.
    async fn fetch_checked(&self, call: &Call<'_>) -> Result<(HeaderMap, String), S3Error> {
        self.retrying(call.retry, |_| self.fetch_checked_once(call))
            .await
    }

    async fn fetch_once(&self, call: &Call<'_>) -> Result<(HeaderMap, Bytes), S3Error> {
        let response = self.send(call).await?;
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        Ok((headers, body))
    }

    /// One attempt of [`S3Client::fetch_checked`].
    async fn fetch_checked_once(&self, call: &Call<'_>) -> Result<(HeaderMap, String), S3Error> {
        let (headers, body) = self.fetch_once(call).await?;
        let body = text(&body)?;
        if xml::root_name(&body).as_deref() == Some("Error") {
            let (code, message) = xml::error(&body).unwrap_or_default();
            return Err(S3Error::from_answer(200, &code, &message));
        }
        Ok((headers, body))
    }

    /// Runs `attempt` (given its number, from 0) until it succeeds, fails for good, or the
    /// retries are spent.
    async fn retrying<T, F, Fut>(&self, retry: Retry, mut attempt: F) -> Result<T, S3Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let mut number = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let error = match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let worth_it = match retry {
                Retry::Transient => error.is_transient(),
                Retry::Unsent => matches!(error, S3Error::Unreachable(_)),
            };
            if !worth_it || number >= self.inner.retries {
                return Err(error);
            }
            tracing::debug!("S3 request failed ({error}); retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 4).min(MAX_BACKOFF);
            number += 1;
        }
    }

    /// Signs and sends one call: its answer if it is a success (2xx), its error otherwise.
    async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, S3Error> {
        let inner = &self.inner;
        let path = match call.key {
            Some(key) => {
                check_key(key)?;
                format!("{}/{}", inner.base_path, uri_encode(key, true))
            }
            None if inner.base_path.is_empty() => "/".to_string(),
            None => inner.base_path.clone(),
        };
        let query = canonical_query(&call.query);
        let payload_hash = if call.body.len() <= HASHED_BODY_LIMIT {
            sign::hex(&sha2::Sha256::digest(&call.body))
        } else {
            sign::UNSIGNED_PAYLOAD.to_string()
        };
        let date = amz_date(SystemTime::now());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), inner.host.clone()),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), date.clone()),
        ];
        if let Some(token) = &inner.session_token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        headers.extend(call.headers.iter().map(|(n, v)| (n.to_string(), v.clone())));
        headers.sort();
        let authorization = inner.signer.authorization(
            &Canonical {
                method: call.method.as_str(),
                path: &path,
                query: &query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &date,
        );
        let mut url = format!("{}://{}{path}", inner.scheme, inner.host);
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .header("authorization", authorization);
        for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
            request = request.header(name, value);
        }
        if !call.body.is_empty() || call.method == Method::PUT || call.method == Method::POST {
            request = request.body(call.body.clone());
        }
        let allowed = READ_TIMEOUT + Duration::from_secs(call.body.len() as u64 / MIN_UPLOAD_RATE);
        let response = match tokio::time::timeout(allowed, request.send()).await {
            Ok(sent) => sent.map_err(transport_error)?,
            Err(_) => {
                return Err(S3Error::Transport(format!(
                    "no answer within {} s",
                    allowed.as_secs()
                )))
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_answer(response).await)
    }
}

/// The call of a part of an upload: `?partNumber=N&uploadId=ID`.
fn part_call<'a>(key: &'a str, upload_id: &str, part: u32) -> Result<Call<'a>, S3Error> {
    if !(1..=10_000).contains(&part) {
        return Err(S3Error::Invalid(format!("part number {part}")));
    }
    Ok(Call::new(Method::PUT, Some(key))
        .query("partNumber", part.to_string())
        .query("uploadId", upload_id))
}

/// Refuses keys a URL cannot carry intact (see [`S3Client`]).
fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() || key.len() > 1024 || key.split('/').any(|s| s == "." || s == "..") {
        return Err(S3Error::Invalid(format!("object key {key:?}")));
    }
    Ok(())
}

/// The ETag S3 gives the object completed from `parts`: the MD5 of the parts' binary MD5s,
/// then `-` and the number of parts. `None` if an ETag is not an MD5.
fn multipart_etag(parts: &[(u32, String)]) -> Option<String> {
    let mut md5 = Md5::new();
    for (_, etag) in parts {
        let hex = etag.trim_matches('"');
        if hex.len() != 32 {
            return None;
        }
        for i in (0..32).step_by(2) {
            md5.update([u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?]);
        }
    }
    Some(format!("{}-{}", sign::hex(&md5.finalize()), parts.len()))
}

/// The error an unsuccessful answer stands for.
async fn error_answer(response: reqwest::Response) -> S3Error {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let (code, message) = xml::error(&body).unwrap_or_default();
    S3Error::from_answer(status, &code, &message)
}

/// A connection that could not be opened is [`S3Error::Unreachable`]; anything else that
/// went wrong on the wire is [`S3Error::Transport`].
fn transport_error(error: reqwest::Error) -> S3Error {
    if error.is_connect() {
        S3Error::Unreachable(error_chain(&error))
    } else {
        S3Error::Transport(error_chain(&error))
    }
}

/// An error and its causes, `: `-separated (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, S3Error> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| S3Error::BadResponse(format!("no {name} header")))
}

/// A GET of `key` from `start` (a range when above 0), only of the object with `etag` if given.
fn get_call<'a>(key: &'a str, start: u64, etag: Option<&str>) -> Call<'a> {
    let mut call = Call::new(Method::GET, Some(key));
    if start > 0 {
        call = call.header("range", format!("bytes={start}-"));
    }
    if let Some(etag) = etag {
        call = call.header("if-match", etag.to_string());
    }
    call
}

/// The whole object's size from the answer to a GET of the range from `start` (`length` bytes
/// long): a 206 whose Content-Range is `bytes START-LAST/TOTAL`, with LAST and TOTAL agreeing
/// with `length`. Anything else would mix up offsets, and is refused.
fn range_total(status: u16, headers: &HeaderMap, start: u64, length: u64) -> Result<u64, S3Error> {
    if status != 206 {
        return Err(S3Error::BadResponse(format!(
            "status {status} to a ranged GET"
        )));
    }
    let value = header(headers, "content-range")?;
    let parsed = value.strip_prefix("bytes ").and_then(|range| {
        let (span, total) = range.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let numbers = (
            first.parse::<u64>(),
            last.parse::<u64>(),
            total.parse::<u64>(),
        );
        match numbers {
            (Ok(first), Ok(last), Ok(total)) => Some((first, last, total)),
            _ => None,
        }
    });
    match parsed {
        Some((first, last, total))
            if first == start
                && last.checked_sub(first) == length.checked_sub(1)
                && last < total =>
        {
            Ok(total)
        }
        _ => Err(S3Error::BadResponse(format!("Content-Range {value:?}"))),
    }
}

fn content_length(headers: &HeaderMap) -> Result<u64, S3Error> {
    let value = header(headers, "content-length")?;
    value
        .parse()
        .map_err(|_| S3Error::BadResponse(format!("Content-Length {value:?}")))
}

fn text(body: &Bytes) -> Result<String, S3Error> {
    String::from_utf8(body.to_vec()).map_err(|_| S3Error::BadResponse("answer is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:3900".into(),
            region: "garage".into(),
            bucket: "ferry".into(),
            access_key: "GKexample".into(),
            secret_key: "top-secret-key".into(),
            session_token: Some("session-token-value".into()),
            path_style: true,
            allow_http: true,
            retries: 3,
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = config();
        let client = S3Client::new(config.clone()).unwrap();
        for text in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!text.contains("top-secret-key"), "{text}");
            assert!(!text.contains("session-token-value"), "{text}");
            assert!(text.contains("GKexample"), "{text}");
        }
    }

    #[test]
    fn checks_the_endpoint() {
        let refused = |adjust: fn(&mut S3Config)| {
            let mut config = config();
            adjust(&mut config);
            matches!(S3Client::new(config), Err(S3Error::Invalid(_)))
        };
        assert!(refused(|c| c.allow_http = false));
        assert!(refused(|c| c.endpoint = "ftp://host".into()));
        assert!(refused(|c| c.endpoint = "http://host/path".into()));
        assert!(refused(|c| c.endpoint = "not a url".into()));
        assert!(refused(|c| c.bucket = String::new()));
        assert!(!refused(|c| c.endpoint = "https://s3.example.com".into()));
    }

    #[test]
    fn builds_hosts_for_both_styles() {
        let client = S3Client::new(config()).unwrap();
        assert_eq!(client.inner.host, "127.0.0.1:3900");
        assert_eq!(client.inner.base_path, "/ferry");
        let mut virtual_hosted = config();
        virtual_hosted.endpoint = "https://s3.eu-west-1.amazonaws.com:443".into();
        virtual_hosted.path_style = false;
        let client = S3Client::new(virtual_hosted).unwrap();
        assert_eq!(client.inner.host, "ferry.s3.eu-west-1.amazonaws.com");
        assert_eq!(client.inner.base_path, "");
    }

    #[test]
    fn reads_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let aws = S3Config::from_lookup(
            "b",
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ]),
        )
        .unwrap();
        assert_eq!(aws.endpoint, "https://s3.us-east-1.amazonaws.com");
        assert!(!aws.path_style && !aws.allow_http);
        assert_eq!(
            (aws.access_key.as_str(), aws.secret_key.as_str()),
            ("AKID", "SECRET")
        );
        assert_eq!(aws.retries, 3);

        let local = S3Config::from_lookup(
            "b",
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ("AWS_DEFAULT_REGION", "garage"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3900/"),
                ("AWS_SESSION_TOKEN", "TOKEN"),
            ]),
        )
        .unwrap();
        assert_eq!(local.endpoint, "http://127.0.0.1:3900");
        assert_eq!(local.region, "garage");
        assert!(local.path_style && local.allow_http);
        assert_eq!(local.session_token.as_deref(), Some("TOKEN"));

        assert!(matches!(
            S3Config::from_lookup("b", env(&[("AWS_ACCESS_KEY_ID", "AKID")])),
            Err(S3Error::Invalid(_))
        ));
    }

    #[test]
    fn refuses_keys_urls_cannot_carry() {
        for bad in ["", ".", "..", "a/../b", "a/./b", "a/.."] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_key(&"k".repeat(1025)).is_err());
        for good in ["a", "dir/", "a b/c%d#e[f]+g?h", ".hidden", "a..b", "ü/€"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
    }

    /// A store on loopback that gives scripted answers, one per connection, and keeps the
    /// request heads it got.
    struct FakeStore {
        endpoint: String,
        requests: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl FakeStore {
        /// Answers with `answers` in turn (the last one again when they run out).
        async fn start(answers: Vec<String>) -> FakeStore {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = Arc::clone(&requests);
            tokio::spawn(async move {
                for turn in 0.. {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        if stream.read(&mut byte).await.unwrap() == 0 {
                            break;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8(head).unwrap();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length: ")?
                                .parse()
                                .ok()
                        })
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    stream.read_exact(&mut body).await.unwrap();
                    seen.lock().unwrap().push(head);
                    let answer = &answers[turn.min(answers.len() - 1)];
                    stream.write_all(answer.as_bytes()).await.unwrap();
                    let _ = stream.shutdown().await;
                }
            });
            FakeStore { endpoint, requests }
        }

        fn client(&self, retries: u32) -> S3Client {
            let mut config = config();
            config.endpoint = self.endpoint.clone();
            config.retries = retries;
            S3Client::new(config).unwrap()
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// An HTTP answer with `headers` (each ending in CRLF) and `body`.
    fn answer(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn error_answer_of(status: &str, code: &str) -> String {
        answer(
            status,
            "",
            &format!("<Error><Code>{code}</Code><Message>m</Message></Error>"),
        )
    }

    const EMPTY_LISTING: &str =
        "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

    #[tokio::test]
    async fn retries_transient_answers_then_succeeds() {
        let store = FakeStore::start(vec![
            error_answer_of("503 Service Unavailable", "SlowDown"),
            error_answer_of("500 Internal Server Error", "InternalError"),
            answer("200 OK", "", EMPTY_LISTING),
        ])
        .await;
        let page = store
            .client(3)
            .list("a b/", Some("/"), None, 10)
            .await
            .unwrap();
        assert_eq!(page, ListPage::default());
        let requests = store.requests();
        assert_eq!(requests.len(), 3);
        let first = requests[0].lines().next().unwrap();
        assert_eq!(
            first,
            "GET /ferry?delimiter=%2F&encoding-type=url&list-type=2&max-keys=10&prefix=a%20b%2F HTTP/1.1"
        );
        let lower = requests[0].to_lowercase();
        assert!(lower.contains("authorization: aws4-hmac-sha256 credential=gkexample/"));
        assert!(lower.contains("x-amz-security-token: session-token-value"));
        assert!(lower.contains("host: 127.0.0.1:"));
    }

    /// Reads a body to its end.
    async fn all_of(mut body: GetBody) -> Result<Vec<u8>, S3Error> {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn methods(store: &FakeStore) -> Vec<String> {
        store
            .requests()
            .iter()
            .map(|r| r.split(' ').next().unwrap().to_string())
            .collect()
    }

    /// A download is opened with one GET: its answer gives the size and ETag a HEAD would have.
    #[tokio::test]
    async fn open_learns_size_and_etag_from_one_get() {
        let store =
            FakeStore::start(vec![answer("200 OK", "etag: \"e1\"\r\n", "hello world")]).await;
        let opened = store.client(3).open("k", 0).await.unwrap().unwrap();
        assert_eq!((opened.size, opened.etag.as_str()), (11, "\"e1\""));
        assert_eq!(all_of(opened.body).await.unwrap(), b"hello world");
        assert_eq!(methods(&store), ["GET"]);
        assert!(!store.requests()[0].to_lowercase().contains("range:"));

        // From an offset: the whole size comes from Content-Range.
        let store = FakeStore::start(vec![answer(
            "206 Partial Content",
            "etag: \"e1\"\r\ncontent-range: bytes 6-10/11\r\n",
            "world",
        )])
        .await;
        let opened = store.client(3).open("k", 6).await.unwrap().unwrap();
        assert_eq!(opened.size, 11);
        assert_eq!(all_of(opened.body).await.unwrap(), b"world");
        assert!(store.requests()[0]
            .to_lowercase()
            .contains("range: bytes=6-"));
    }

    #[tokio::test]
    async fn open_says_none_for_a_missing_object_and_asks_the_size_past_the_end() {
        let store = FakeStore::start(vec![error_answer_of("404 Not Found", "NoSuchKey")]).await;
        assert!(store.client(3).open("k", 0).await.unwrap().is_none());
        assert_eq!(methods(&store), ["GET"]);

        // A resume at the very end: the range is refused, a HEAD gives the size.
        let head = answer(
            "200 OK",
            "etag: \"e1\"\r\nlast-modified: Sat, 05 Dec 2026 21:15:00 GMT\r\n",
            "",
        );
        let refused = error_answer_of("416 Requested Range Not Satisfiable", "InvalidRange");
        let store = FakeStore::start(vec![refused, head]).await;
        let opened = store.client(3).open("k", 11).await.unwrap().unwrap();
        assert_eq!(opened.etag, "\"e1\"");
        assert!(all_of(opened.body).await.unwrap().is_empty());
        assert_eq!(methods(&store), ["GET", "HEAD"]);
    }

    /// A ranged answer that does not start where asked, or does not match its length, would
    /// shift every byte after it: refused, whatever the store meant.
    #[tokio::test]
    async fn open_refuses_a_range_answer_that_does_not_fit() {
        for (status, range) in [
            ("200 OK", "bytes 6-10/11"),
            ("206 Partial Content", "bytes 0-4/11"),
            ("206 Partial Content", "bytes 6-9/11"),
            ("206 Partial Content", "bytes 6-10/10"),
            ("206 Partial Content", "bytes 6-10/*"),
            ("206 Partial Content", "6-10/11"),
        ] {
            let headers = format!("etag: \"e1\"\r\ncontent-range: {range}\r\n");
            let store = FakeStore::start(vec![answer(status, &headers, "world")]).await;
            let error = store.client(3).open("k", 6).await.unwrap_err();
            assert!(
                matches!(error, S3Error::BadResponse(_)),
                "{range}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_retries_and_on_lasting_errors() {
        let store = FakeStore::start(vec![error_answer_of("503 Slow Down", "SlowDown")]).await;
        let error = store.client(2).head("k").await.unwrap_err();
        assert!(
            matches!(error, S3Error::Status { status: 503, .. }),
            "{error:?}"
        );
        assert_eq!(store.requests().len(), 3);

        let store =
            FakeStore::start(vec![error_answer_of("400 Bad Request", "InvalidArgument")]).await;
        let error = store.client(3).put("k", Bytes::new()).await.unwrap_err();
        assert!(
            matches!(error, S3Error::Status { status: 400, .. }),
            "{error:?}"
        );
        assert_eq!(store.requests().len(), 1);
    }

    #[tokio::test]
    async fn create_multipart_is_not_sent_twice() {
        let store = FakeStore::start(vec![error_answer_of("503 Slow Down", "SlowDown")]).await;
        let error = store.client(3).create_multipart("k").await.unwrap_err();
        assert!(error.is_transient());
        assert_eq!(store.requests().len(), 1);
        assert!(store.requests()[0].starts_with("POST /ferry/k?uploads= HTTP/1.1"));
    }

    #[tokio::test]
    async fn an_error_in_a_200_answer_is_an_error() {
        let store = FakeStore::start(vec![answer(
            "200 OK",
            "",
            "<Error><Code>InvalidPart</Code><Message>m</Message></Error>",
        )])
        .await;
        let parts = [(1, "\"0cc175b9c0f1b6a831c399e269772661\"".to_string())];
        let error = store
            .client(3)
            .complete_multipart("k", "u", &parts)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            S3Error::Status {
                status: 200,
                code: "InvalidPart".into(),
                message: "m".into()
            }
        );
        assert_eq!(store.requests().len(), 1);
    }

    /// The first completion is done but its answer lost (an error in the body here); the retry
    /// finds no upload, and the object with the parts' ETag is accepted.
    #[tokio::test]
    async fn a_completion_whose_answer_was_lost_is_confirmed_by_its_etag() {
        let parts = [
            (1, "\"0cc175b9c0f1b6a831c399e269772661\"".to_string()),
            (2, "\"92eb5ffee6ae2fec3ad71c777531578f\"".to_string()),
        ];
        let etag = multipart_etag(&parts).unwrap();
        let head = |etag: &str| {
            answer(
                "200 OK",
                &format!("etag: \"{etag}\"\r\nlast-modified: Sat, 05 Dec 2026 21:15:00 GMT\r\n"),
                "",
            )
        };
        let store = FakeStore::start(vec![
            error_answer_of("200 OK", "InternalError"),
            error_answer_of("404 Not Found", "NoSuchUpload"),
            head(&etag),
        ])
        .await;
        store
            .client(3)
            .complete_multipart("k", "u", &parts)
            .await
            .unwrap();
        let methods: Vec<String> = store
            .requests()
            .iter()
            .map(|r| r.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(methods, ["POST", "POST", "HEAD"]);

        // Another object under the key: the upload is reported gone.
        let store = FakeStore::start(vec![
            error_answer_of("503 Slow Down", "SlowDown"),
            error_answer_of("404 Not Found", "NoSuchUpload"),
            head("0cc175b9c0f1b6a831c399e269772661"),
        ])
        .await;
        let error = store.client(3).complete_multipart("k", "u", &parts).await;
        assert_eq!(error, Err(S3Error::NoSuchUpload));
    }

    /// HTTPS runs on the ring provider, and a certificate no root vouches for is refused.
    #[tokio::test]
    async fn https_refuses_an_untrusted_certificate() {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).unwrap();
        let certificate = CertificateDer::from(generated.cert.der().to_vec());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            acceptor.accept(stream).await.is_ok()
        });
        let mut config = config();
        config.endpoint = format!("https://localhost:{port}");
        config.allow_http = false;
        config.retries = 0;
        let error = S3Client::new(config).unwrap().check().await.unwrap_err();
        assert!(
            matches!(&error, S3Error::Unreachable(m) if m.to_lowercase().contains("certificate")),
            "{error:?}"
        );
        assert!(!server.await.unwrap(), "the handshake must fail");
    }

    #[test]
    fn computes_multipart_etags() {
        // Two parts whose MD5s are those of "a" and "b".
        let parts = [
            (1, "\"0cc175b9c0f1b6a831c399e269772661\"".to_string()),
            (2, "92eb5ffee6ae2fec3ad71c777531578f".to_string()),
        ];
        let mut md5 = Md5::new();
        md5.update(Md5::digest(b"a"));
        md5.update(Md5::digest(b"b"));
        let expected = format!("{}-2", sign::hex(&md5.finalize()));
        assert_eq!(multipart_etag(&parts), Some(expected));
        assert_eq!(multipart_etag(&[(1, "\"not-md5\"".into())]), None);
    }
}
