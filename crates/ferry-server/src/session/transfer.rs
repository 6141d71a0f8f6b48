//! File transfers: RETR, STOR, APPE, STOU, REST (RFC 959 §4.1.3, RFC 3659 §5), and the
//! supervision of a running transfer: its completion, ABOR and STAT while it runs.
//!
//! A transfer runs as its own task so the session keeps reading the control connection; the
//! task owns the data connection and the file, and reports back once, through its join handle.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::command::TransferType;
use ferry_proto::Reply;
use tokio::task::JoinHandle;

use super::{Flow, Session};
use crate::data::{self, DataPlan, Progress, Source, TransferError};
use crate::events::{self, Direction, Status, TlsFacts};
use crate::limits::{CountGuard, Throttle};
use crate::permissions::Permission;
use crate::quota;
use crate::storage::{
    uploads, ReadBody, Storage, StorageError, StorageErrorKind, VirtualPath, WriteBody, WriteMode,
};
use crate::stream::MaybeTls;

/// An upload received through a writer chain: inflated first in MODE Z (then converted, for
/// TYPE A), and charged to the quota (if any) as written, so that a MODE Z bomb fills at most
/// the quota.
struct Wrapped {
    inflate: bool,
    ascii: bool,
}

impl Wrapped {
    async fn receive(
        self,
        stream: &mut MaybeTls,
        writer: quota::Charged<WriteBody>,
        progress: &data::Progress,
        stall: std::time::Duration,
        throttle: &Throttle,
    ) -> Result<(u64, Option<WriteBody>), TransferError> {
        let pipe = data::Pipe::to(&writer.inner);
        if !self.inflate {
            let (bytes, writer) =
                data::receive(stream, writer, self.ascii, pipe, progress, stall, throttle).await?;
            return Ok((bytes, Some(writer.inner)));
        }
        let inflating = data::deflate::Inflating::new(writer, self.ascii);
        let (bytes, inflating) =
            data::receive(stream, inflating, false, pipe, progress, stall, throttle).await?;
        match tokio::task::spawn_blocking(move || inflating.finish()).await {
            Ok(Ok(writer)) => Ok((bytes, Some(writer.inner))),
            Ok(Err(error)) => Err(TransferError::Local(error)),
            Err(join) => Err(TransferError::Local(std::io::Error::other(
                join.to_string(),
            ))),
        }
    }
}

/// The TLS of a data connection, for the transfer's event.
fn tls_facts(stream: &MaybeTls) -> Option<TlsFacts> {
    let MaybeTls::Tls(tls) = stream else {
        return None;
    };
    let connection = tls.get_ref().1;
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    Some(TlsFacts {
        version,
        cipher: connection
            .negotiated_cipher_suite()
            .map_or_else(String::new, |suite| format!("{:?}", suite.suite())),
        resumed: connection.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
    })
}

/// Tells a data connection's TLS handshake: a client that did not resume the control
/// connection's session completed a handshake (`ok`), not resumed, and is refused.
fn tell_data_handshake(
    events: &events::Events,
    session: u64,
    secured: &Result<MaybeTls, TransferError>,
) {
    let (ok, resumed) = match secured {
        Ok(stream) => (true, tls_facts(stream).is_some_and(|facts| facts.resumed)),
        Err(TransferError::NotResumed) => (true, false),
        Err(_) => (false, false),
    };
    events.emit(events::Event::TlsHandshake {
        session,
        data: true,
        ok,
        resumed,
    });
}

/// Settling a quota after an upload: what changed on disk, against what was charged.
mod settle {
    use std::sync::Arc;

    use crate::quota::Usage;
    use crate::storage::{FileKind, Storage, VirtualPath};

    /// The bytes and number of the regular files at `paths`.
    pub(super) async fn sizes(storage: &Arc<dyn Storage>, paths: &[VirtualPath]) -> (i64, i64) {
        let (storage, paths) = (Arc::clone(storage), paths.to_vec());
        tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .filter_map(|path| storage.metadata(path).ok())
                .filter(|facts| facts.kind == FileKind::File)
                .fold((0i64, 0i64), |(bytes, files), facts| {
                    (bytes.saturating_add(facts.size as i64), files + 1)
                })
        })
        .await
        .unwrap_or((0, 0))
    }

    /// Settles an ended upload: the change on disk, less what its writes already charged.
    pub(super) async fn upload(
        usage: &Usage,
        storage: &Arc<dyn Storage>,
        paths: &[VirtualPath],
        before: (i64, i64),
        charged: u64,
    ) {
        let after = sizes(storage, paths).await;
        usage.adjust(after.0 - before.0 - charged as i64, after.1 - before.1);
    }
}

/// How an upload treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upload {
    Store,
    Append,
}

/// What the events tell of a transfer, fixed when it starts.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    id: u64,
    verb: &'static str,
    /// The path as the user sees it.
    path: String,
    direction: Direction,
    /// The size a download announced.
    size: Option<u64>,
    ascii: bool,
    passive: bool,
    started: Instant,
}

/// Where an upload writes, and what happens to the file when it ends.
#[derive(Debug)]
struct UploadPlan {
    /// The file the bytes go to.
    target: VirtualPath,
    mode: WriteMode,
    /// For an upload written under a private name: where it is published when complete.
    publish: Option<Publish>,
    /// For a staged upload (an object store's): whether its commit may replace a file there.
    replace: bool,
    /// When the disk is full: the length the file is cut back to (`None`: it is removed), so
    /// nothing half-written is left looking complete.
    rollback_len: Option<u64>,
    /// Holds the private file for this upload alone while it runs.
    _private: Option<CountGuard<String>>,
}

/// Where a complete private upload goes.
#[derive(Debug)]
struct Publish {
    to: VirtualPath,
    /// Whether it may replace a file already there (the user may overwrite).
    replace: bool,
}

impl UploadPlan {
    /// The files the upload may change: the one written, and where it is published.
    fn paths(&self) -> Vec<VirtualPath> {
        let mut paths = vec![self.target.clone()];
        if let Some(publish) = &self.publish {
            paths.push(publish.to.clone());
        }
        paths
    }

    /// The path the client named.
    fn named(&self) -> &VirtualPath {
        self.publish.as_ref().map_or(&self.target, |p| &p.to)
    }

    /// Ends an upload: a staged one is committed when everything arrived (and aborted
    /// otherwise, by being dropped); a file is published, or cut back when the disk filled.
    async fn finish(
        self,
        received: Result<(u64, Option<WriteBody>), TransferError>,
        file: Option<std::fs::File>,
        storage: Arc<dyn Storage>,
    ) -> Result<u64, TransferError> {
        let received = match received {
            Ok((bytes, Some(WriteBody::Staged(upload)))) => {
                let replace = self.replace;
                return match tokio::task::spawn_blocking(move || upload.commit(replace)).await {
                    Ok(Ok(())) => Ok(bytes),
                    Ok(Err(error)) if error.kind == StorageErrorKind::AlreadyExists => {
                        Err(TransferError::Exists)
                    }
                    Ok(Err(error)) => Err(TransferError::Local(error.source)),
                    Err(join) => Err(TransferError::Local(std::io::Error::other(
                        join.to_string(),
                    ))),
                };
            }
            Ok((bytes, _)) => Ok(bytes),
            Err(error) => Err(error),
        };
        let Some(file) = file else {
            return received;
        };
        match received {
            Ok(bytes) => {
                drop(file);
                if let Some(publish) = self.publish {
                    publish_upload(self.target, publish, storage).await?;
                }
                Ok(bytes)
            }
            Err(TransferError::Local(error)) if is_disk_full(&error) => {
                match self.rollback_len {
                    Some(len) => {
                        let target = self.target;
                        let cut = move || {
                            file.set_len(len)
                                .map_err(|e| StorageError::from_io(&target, e))
                        };
                        let _ = blocking(cut).await;
                    }
                    None => {
                        drop(file);
                        let target = self.target;
                        let _ = blocking(move || storage.remove_file(&target)).await;
                    }
                }
                Err(TransferError::Local(error))
            }
            Err(error) => Err(error),
        }
    }
}

/// Gives a complete private upload its name. Where the user may not replace a file, the rename
/// happens only if the name is still free (two uploads of one new name: one wins, the other gets
/// 553 and its file is removed, as it can never be published under that name). After any other
/// failure the file stays, for a REST+STOR to finish or the sweep to remove.
async fn publish_upload(
    private: VirtualPath,
    publish: Publish,
    storage: Arc<dyn Storage>,
) -> Result<(), TransferError> {
    let published = tokio::task::spawn_blocking(move || {
        let result = match publish.replace {
            true => storage.rename(&private, &publish.to),
            false => storage.rename_new(&private, &publish.to),
        };
        if result
            .as_ref()
            .is_err_and(|e| e.kind == StorageErrorKind::AlreadyExists)
        {
            let _ = storage.remove_file(&private);
        }
        result
    })
    .await;
    match published {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) if error.kind == StorageErrorKind::AlreadyExists => {
            Err(TransferError::Exists)
        }
        Ok(Err(error)) => Err(TransferError::Local(error.source)),
        Err(join) => Err(TransferError::Local(std::io::Error::other(
            join.to_string(),
        ))),
    }
}

/// Runs a storage call on the blocking pool inside a transfer task.
async fn blocking<F>(call: F) -> Result<(), TransferError>
where
    F: FnOnce() -> Result<(), StorageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(TransferError::Local(error.source)),
        Err(join) => Err(TransferError::Local(std::io::Error::other(
            join.to_string(),
        ))),
    }
}

fn is_disk_full(error: &std::io::Error) -> bool {
    StorageError::from_io(&VirtualPath::root(), std::io::Error::from(error.kind())).kind
        == StorageErrorKind::NoSpace
        || matches!(error.raw_os_error(), Some(28 | 122))
}

/// The reply to REST+STOR past the end of what there is to resume.
const PAST_THE_END: (u16, &str) = (554, "Restart offset is past the end of the file.");

/// A transfer running beside the session.
#[derive(Debug)]
pub(super) struct RunningTransfer {
    handle: JoinHandle<Result<u64, TransferError>>,
    progress: Arc<Progress>,
    facts: Facts,
}

/// What a finished transfer reports.
pub(super) struct Outcome {
    result: Result<u64, TransferError>,
    transfer: Box<RunningTransfer>,
}

/// Resolves when the running transfer (if any) ends; never resolves when there is none.
pub(super) async fn wait(running: &mut Option<Box<RunningTransfer>>) -> Outcome {
    let Some(transfer) = running.as_mut() else {
        return std::future::pending().await;
    };
    let result = (&mut transfer.handle).await.unwrap_or_else(|join_error| {
        Err(TransferError::Local(std::io::Error::other(
            join_error.to_string(),
        )))
    });
    let transfer = running.take().expect("checked above");
    Outcome { result, transfer }
}

impl RunningTransfer {
    /// Stops the transfer and waits until its connection and file are closed.
    /// An upload's writing thread outlives its task by up to one write; that write is waited
    /// for up to `limit` (a disk that hangs must not hang the session with it).
    pub(super) async fn abort(self, limit: std::time::Duration) {
        self.handle.abort();
        let _ = self.handle.await;
        if tokio::time::timeout(limit, self.progress.writers_done())
            .await
            .is_err()
        {
            tracing::warn!(
                verb = self.facts.verb,
                "an aborted upload's last write to disk is still running"
            );
        }
    }
}

impl Session {
    /// REST (RFC 3659 §5): the next RETR or STOR starts at this byte offset.
    pub(super) async fn rest(&mut self, offset: u64) -> Flow {
        self.restart_offset = offset;
        self.reply(350, format!("Restart position accepted ({offset})."))
            .await
    }

    /// RETR: sends a file.
    pub(super) async fn retr(&mut self, arg: &str) -> Flow {
        let path = self.resolve(arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let plan = match self.take_data_plan() {
            Ok(plan) => plan,
            Err((code, text)) => return self.reply(code, text).await,
        };
        let open_path = path.clone();
        let opened = self.with_storage_quick(move |s| s.open_read(&open_path, offset));
        let (body, size) = match opened.await {
            Ok(opened) => opened,
            Err(error) => return self.reply_storage_error(&error).await,
        };
        if offset > size {
            return self
                .reply(554, "Restart offset is past the end of the file.")
                .await;
        }
        let file = match body {
            ReadBody::File(file) => file,
            ReadBody::Stream(reader) => {
                let source = Source::Stream {
                    reader,
                    len: size - offset,
                };
                return self.retr_stream(plan, path, arg, size, source).await;
            }
        };
        // Held: when the file is sent at once below, the 150 leaves with the 226; otherwise it
        // is flushed before the transfer task starts.
        self.control
            .hold(&Reply::new(150, self.retr_opening(arg, size)));
        let ascii = self.transfer_type == TransferType::Ascii;
        let throttle = self.throttle(Direction::Download);
        let progress = Arc::new(Progress::default());
        let facts = self.facts("RETR", &path, Direction::Download, Some(size), &plan);
        let (mut plan, mut offset) = (plan, offset);
        if !ascii
            && throttle.is_unlimited()
            && self.data_tls(false).is_none()
            && self.deflate.is_none()
        {
            match self.send_now(plan, &file, &mut offset, size, &progress) {
                Ok(rest) => plan = rest,
                Err((result, started)) => {
                    let bytes = progress.bytes.load(Ordering::Relaxed);
                    let facts = Facts { started, ..facts };
                    return self.report_transfer(result, &facts, bytes, None).await;
                }
            }
        }
        if self.flush_held().await == Flow::Quit {
            return Flow::Quit;
        }
        let source = Source::File {
            file,
            offset,
            end: size,
        };
        self.start_download(plan, facts, source, progress);
        Flow::Continue
    }

    /// RETR of a streamed body (an object store's): always through the transfer task.
    async fn retr_stream(
        &mut self,
        plan: DataPlan,
        path: VirtualPath,
        arg: &str,
        size: u64,
        source: Source,
    ) -> Flow {
        if self.reply(150, self.retr_opening(arg, size)).await == Flow::Quit {
            return Flow::Quit;
        }
        let facts = self.facts("RETR", &path, Direction::Download, Some(size), &plan);
        self.start_download(plan, facts, source, Arc::default());
        Flow::Continue
    }

    /// RETR's 150 text.
    fn retr_opening(&self, arg: &str, size: u64) -> String {
        format!(
            "Opening {} mode data connection for {arg} ({size} bytes).",
            self.mode_name()
        )
    }

    /// Starts the transfer task that sends a download's `source`.
    fn start_download(
        &mut self,
        plan: DataPlan,
        facts: Facts,
        source: Source,
        progress: Arc<Progress>,
    ) {
        let ascii = self.transfer_type == TransferType::Ascii;
        let throttle = self.throttle(Direction::Download);
        let deflate = self.deflate.map(u32::from);
        self.start(
            plan,
            facts,
            progress,
            move |stream, context, progress| async move {
                data::send(
                    stream,
                    source,
                    ascii,
                    deflate,
                    &progress,
                    context.stall_timeout,
                    &throttle,
                )
                .await
            },
        );
    }

    /// A passive TYPE I download on a plain connection, sent from the session's own task when
    /// the client is already connected (clients connect before they send RETR): no task, no
    /// registration with the runtime. The held 150 then leaves with the final reply when the
    /// file is sent at once.
    ///
    /// `Err` carries how the transfer ended, and when it began. `Ok` is the plan for the rest:
    /// the same one if the client has not connected yet, or the accepted connection when the
    /// socket could not take the whole file at once (`offset` has moved on, and `progress`
    /// counts what was sent).
    fn send_now(
        &mut self,
        plan: DataPlan,
        file: &std::fs::File,
        offset: &mut u64,
        size: u64,
        progress: &Progress,
    ) -> Result<DataPlan, (Result<u64, TransferError>, Instant)> {
        let DataPlan::Passive(listener) = &plan else {
            return Ok(plan);
        };
        if self.context.proxy.is_some() {
            // The data connection's PROXY header is read on the transfer's task, by data::open.
            return Ok(plan);
        }
        let Some(socket) = data::accept_now(listener, &self.data_context()) else {
            return Ok(plan);
        };
        let started = Instant::now();
        match data::send_file_now(&socket, file, offset, size, &progress.bytes) {
            Ok(true) => Err((Ok(progress.bytes.load(Ordering::Relaxed)), started)),
            Ok(false) => match tokio::net::TcpStream::from_std(socket) {
                Ok(stream) => Ok(DataPlan::Accepted(stream)),
                Err(error) => Err((Err(TransferError::Broken(error)), started)),
            },
            Err(error) => Err((Err(error), started)),
        }
    }

    /// STOR and APPE: receives a file. Replacing a file needs Overwrite (STOR) or Append
    /// (APPE). A user who may only make new files writes under a private name, published only if
    /// the name is still free when the upload is complete: nothing about what exists is told
    /// before the data, and two uploads of one name cannot mix. With atomic uploads every STOR
    /// goes that way.
    pub(super) async fn stor(&mut self, arg: &str, upload: Upload) -> Flow {
        let path = self.resolve(arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let replacing = match upload {
            Upload::Store => Permission::Overwrite,
            Upload::Append => Permission::Append,
        };
        let plan = if self.permitted(replacing, &path).await {
            self.upload_in_place(path, upload, offset).await
        } else if self.permitted(Permission::Upload, &path).await {
            self.private_upload(path, offset, false).await
        } else {
            Err((550, "Permission denied."))
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err((code, text)) => return self.reply(code, text).await,
        };
        if let Some(usage) = self.quota_for(plan.named()) {
            // A private upload's name is not looked up: it counts as a new file.
            let new_file = plan.publish.is_some() || self.file_size(plan.named()).await.is_none();
            if let Some(why) = usage.refuses_upload(new_file) {
                return self.reply(552, why).await;
            }
        }
        let verb = if upload == Upload::Append {
            "APPE"
        } else {
            "STOR"
        };
        let text = format!(
            "Opening {} mode data connection for {arg}.",
            self.mode_name()
        );
        self.receive_into(plan, verb, text).await
    }

    /// An upload by a user who may replace the file: into it directly, or with atomic uploads
    /// through a private name.
    async fn upload_in_place(
        &self,
        path: VirtualPath,
        upload: Upload,
        offset: u64,
    ) -> Result<UploadPlan, (u16, &'static str)> {
        let existing = self.file_size(&path).await;
        if existing.is_none() && !self.permitted(Permission::Upload, &path).await {
            return Err((550, "Permission denied."));
        }
        let staged = self.storage().is_some_and(|s| s.staged_uploads());
        if self.context.config.atomic_uploads && upload == Upload::Store && !staged {
            return self.private_upload(path, offset, true).await;
        }
        let mode = match (upload, offset) {
            (Upload::Append, _) => WriteMode::Append,
            (Upload::Store, 0) => WriteMode::Truncate,
            // Resuming past the end would fill the gap with zeros.
            (Upload::Store, offset) if existing.is_some_and(|size| size >= offset) => {
                WriteMode::Resume(offset)
            }
            (Upload::Store, _) => return Err(PAST_THE_END),
        };
        Ok(UploadPlan {
            target: path,
            mode,
            publish: None,
            replace: true,
            rollback_len: match mode {
                WriteMode::Resume(offset) => Some(offset),
                WriteMode::Append => existing,
                WriteMode::Truncate | WriteMode::CreateNew => None,
            },
            _private: None,
        })
    }

    /// An upload written under its private name (REST+STOR resumes that file), to be published
    /// under `path` when complete, replacing a file there only if `replace`.
    async fn private_upload(
        &self,
        path: VirtualPath,
        offset: u64,
        replace: bool,
    ) -> Result<UploadPlan, (u16, &'static str)> {
        let account = self
            .account()
            .ok_or((530, "Please login with USER and PASS."))?;
        if account.storage.staged_uploads() {
            // Staged uploads are invisible until complete already; a failed one leaves
            // nothing behind to resume.
            if offset > 0 {
                return Err((
                    554,
                    "Nothing to resume: an unfinished upload leaves no file here.",
                ));
            }
            return Ok(UploadPlan {
                target: path,
                mode: WriteMode::Truncate,
                publish: None,
                replace,
                rollback_len: None,
                _private: None,
            });
        }
        if path.file_name().len() > uploads::NAME_MAX {
            // The file system would refuse the name only when the upload is published, after
            // the data: refused now.
            return Err((553, "File name not allowed: too long."));
        }
        let target = uploads::private_name(&path, &account.upload_owner());
        // One upload at a time per private file (two sessions of one user, same name).
        let storage = Arc::as_ptr(&account.storage) as *const () as usize;
        let key = format!("{storage:x}:{target}");
        let held = self
            .context
            .private_uploads
            .acquire(&key, Some(1))
            .ok_or((450, "File busy: an upload to this name is running."))?;
        let mode = match offset {
            0 => WriteMode::Truncate,
            offset
                if self
                    .file_size(&target)
                    .await
                    .is_some_and(|size| size >= offset) =>
            {
                WriteMode::Resume(offset)
            }
            _ => return Err(PAST_THE_END),
        };
        Ok(UploadPlan {
            target,
            mode,
            publish: Some(Publish { to: path, replace }),
            replace: true,
            rollback_len: match mode {
                WriteMode::Resume(offset) => Some(offset),
                _ => None,
            },
            _private: Some(held),
        })
    }

    /// STOU: receives a file under a name the server makes up (RFC 1123 §4.1.2.9: `150 FILE: name`).
    pub(super) async fn stou(&mut self) -> Flow {
        // The clock's nanoseconds, not the session's: several nodes on one bucket make names
        // apart, and the commit is refused if the name was taken meanwhile.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let stem = format!("ferry.{}.{now}", std::process::id());
        for attempt in 0..100 {
            let name = format!("{stem}.{attempt}");
            let path = self.resolve(&name);
            if let Some(why) = self
                .quota_for(&path)
                .and_then(|usage| usage.refuses_upload(true))
            {
                return self.reply(552, why).await;
            }
            if !self.exists(&path).await {
                let plan = UploadPlan {
                    target: path,
                    mode: WriteMode::CreateNew,
                    publish: None,
                    replace: false,
                    rollback_len: None,
                    _private: None,
                };
                return self
                    .receive_into(plan, "STOU", format!("FILE: {name}"))
                    .await;
            }
        }
        self.reply(452, "Cannot find a unique file name.").await
    }

    /// The size of the regular file at `path`, if there is one.
    async fn file_size(&self, path: &VirtualPath) -> Option<u64> {
        let path = path.clone();
        self.with_storage_quick(move |s| s.file_size(&path))
            .await
            .ok()?
    }

    async fn receive_into(&mut self, upload: UploadPlan, verb: &'static str, text: String) -> Flow {
        let plan = match self.take_data_plan() {
            Ok(plan) => plan,
            Err((code, text)) => return self.reply(code, text).await,
        };
        // With a quota, the sizes before the upload opens its file (which may truncate it).
        let settlement = match (self.quota_for(upload.named()), self.storage()) {
            (Some(usage), Some(storage)) => {
                let paths = upload.paths();
                let before = settle::sizes(&storage, &paths).await;
                Some((usage, paths, before))
            }
            _ => None,
        };
        let (target, mode) = (upload.target.clone(), upload.mode);
        let opened = self.with_storage(move |s| match s.open_write(&target, mode)? {
            WriteBody::File(file) => {
                // The writer thread gets its own handle; this one stays for the clean-up.
                let writer = file
                    .try_clone()
                    .map_err(|e| StorageError::from_io(&target, e))?;
                Ok((Some(file), WriteBody::File(writer)))
            }
            staged => Ok((None, staged)),
        });
        let (file, writer) = match opened.await {
            Ok(files) => files,
            Err(error) => return self.reply_storage_error(&error).await,
        };
        let Some(storage) = self.storage() else {
            return Flow::Quit;
        };
        if self.reply(150, text).await == Flow::Quit {
            return Flow::Quit;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        let throttle = self.throttle(Direction::Upload);
        let inflate = self.deflate.is_some();
        let facts = self.facts(verb, upload.named(), Direction::Upload, None, &plan);
        let usage = settlement.as_ref().map(|(usage, ..)| Arc::clone(usage));
        let charged = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&charged);
        self.start(
            plan,
            facts,
            Arc::default(),
            move |stream, context, progress| async move {
                let stall = context.stall_timeout;
                // Only a file takes a slot: an object store's upload goes the async way, and
                // must not hold one of the threads' places while it runs.
                let direct = !ascii && !inflate && usage.is_none() && throttle.is_unlimited();
                let to_file = matches!(writer, WriteBody::File(_));
                let slot = (direct && to_file).then(data::direct::Slot::take).flatten();
                let received = match (stream, writer, slot) {
                    // MODE Z or a quota: through the writer chain that inflates and charges.
                    (mut stream, writer, _) if inflate || usage.is_some() => {
                        let charged = quota::Charged::new(writer, usage, counted);
                        let wrapped = Wrapped { inflate, ascii };
                        wrapped
                            .receive(&mut stream, charged, &progress, stall, &throttle)
                            .await
                    }
                    // Nothing to convert or count: straight from socket (through rustls over
                    // TLS) to file, on a thread of its own if one is free.
                    (stream, WriteBody::File(writer), Some(slot)) => {
                        data::direct::receive(stream, writer, progress, stall, slot)
                            .await
                            .map(|bytes| (bytes, None))
                    }
                    (mut stream, writer, _) => {
                        let pipe = data::Pipe::to(&writer);
                        data::receive(
                            &mut stream,
                            writer,
                            ascii,
                            pipe,
                            &progress,
                            stall,
                            &throttle,
                        )
                        .await
                        .map(|(bytes, writer)| (bytes, Some(writer)))
                    }
                };
                let settle_on = Arc::clone(&storage);
                let result = upload.finish(received, file, storage).await;
                if let Some((usage, paths, before)) = settlement {
                    let charged = charged.load(std::sync::atomic::Ordering::Relaxed);
                    settle::upload(&usage, &settle_on, &paths, before, charged).await;
                }
                result
            },
        );
        Flow::Continue
    }

    /// Sends a listing over a data connection as it is rendered.
    pub(super) async fn send_listing(
        &mut self,
        plan: DataPlan,
        verb: &'static str,
        body: Box<dyn data::Chunks>,
    ) -> Flow {
        if self
            .reply(150, "Opening ASCII mode data connection for /bin/ls.")
            .await
            == Flow::Quit
        {
            return Flow::Quit;
        }
        let facts = self.facts(verb, &self.cwd.clone(), Direction::Download, None, &plan);
        let throttle = self.throttle(Direction::Download);
        let deflate = self.deflate.map(u32::from);
        self.start(
            plan,
            facts,
            Arc::default(),
            move |stream, context, progress| async move {
                data::send(
                    stream,
                    Source::Chunks(body),
                    false,
                    deflate,
                    &progress,
                    context.stall_timeout,
                    &throttle,
                )
                .await
            },
        );
        Flow::Continue
    }

    /// The data plan for this transfer; a plan is used once.
    /// The data plan for this transfer (a plan is used once), or the reply refusing it: no
    /// PORT/PASV yet, or a clear data connection where TLS is required (RFC 4217 §9: 521).
    pub(super) fn take_data_plan(&mut self) -> Result<DataPlan, (u16, &'static str)> {
        if !self.data_protection_ok() {
            return Err((521, "Data connections must be encrypted (PROT P)."));
        }
        self.data_plan
            .take()
            .ok_or((425, "Use PORT or PASV first."))
    }

    /// The bandwidth limits that apply to this account's transfers in one direction.
    fn throttle(&self, direction: Direction) -> Throttle {
        let account = self.account();
        match direction {
            Direction::Download => account.map(|a| a.download.clone()),
            Direction::Upload => account.map(|a| a.upload.clone()),
        }
        .unwrap_or_default()
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    /// What the events will tell of a transfer that starts now.
    fn facts(
        &self,
        verb: &'static str,
        path: &VirtualPath,
        direction: Direction,
        size: Option<u64>,
        plan: &DataPlan,
    ) -> Facts {
        Facts {
            id: self.context.events.next_transfer(),
            verb,
            path: path.to_string(),
            direction,
            size,
            ascii: self.transfer_type == TransferType::Ascii,
            passive: !matches!(plan, DataPlan::Active(_)),
            started: Instant::now(),
        }
    }

    /// Spawns the transfer task: open the data connection, then run `pump` on it.
    fn start<F, Fut>(&mut self, plan: DataPlan, facts: Facts, progress: Arc<Progress>, pump: F)
    where
        F: FnOnce(MaybeTls, data::DataContext, Arc<Progress>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<u64, TransferError>> + Send,
    {
        let context = self.data_context();
        let tls = self.data_tls(facts.direction == Direction::Upload);
        let task_progress = Arc::clone(&progress);
        let proxy = self.context.proxy.clone();
        // Told from the task, only for a TLS data connection.
        let handshakes = tls.as_ref().map(|_| (Arc::clone(&self.context), self.id));
        let handle = tokio::spawn(async move {
            let stream = data::open(plan, &context, proxy.as_deref()).await?;
            let secured = data::secure(stream, tls, context.connect_timeout).await;
            if let Some((server, session)) = handshakes {
                tell_data_handshake(&server.events, session, &secured);
            }
            let stream = secured?;
            if let Some(facts) = tls_facts(&stream) {
                let _ = task_progress.tls.set(facts);
            }
            pump(stream, context, task_progress).await
        });
        self.tell_live(|view| {
            view.transfer = Some(crate::live::TransferView {
                verb: facts.verb,
                path: facts.path.clone(),
                direction: facts.direction,
                size: facts.size,
                started: facts.started,
                progress: Arc::clone(&progress),
            });
        });
        self.transfer = Some(Box::new(RunningTransfer {
            handle,
            progress,
            facts,
        }));
    }

    /// Replies to a finished transfer and tells its events.
    pub(super) async fn finish_transfer(&mut self, outcome: Outcome) -> Flow {
        let Outcome { result, transfer } = outcome;
        let bytes = transfer.progress.bytes.load(Ordering::Relaxed);
        let tls = transfer.progress.tls.get().cloned();
        let flow = self
            .report_transfer(result, &transfer.facts, bytes, tls.as_ref())
            .await;
        self.context.events.emit(events::Event::Command {
            session: self.id,
            verb: transfer.facts.verb,
            code: self.last_code,
        });
        flow
    }

    /// Tells a transfer that ended (one event, which the log line, xferlog, JSON lines and
    /// metrics all write from).
    fn tell_transfer(
        &self,
        facts: &Facts,
        bytes: u64,
        status: Status,
        error: Option<&str>,
        tls: Option<&TlsFacts>,
    ) {
        let account = self.account();
        self.context
            .events
            .emit(events::Event::Transfer(&events::Transfer {
                session: self.id,
                transfer: facts.id,
                peer: self.peer,
                user: self.user_name(),
                anonymous: account.is_some_and(|a| a.anonymous),
                identity: account.map_or("", |a| &*a.identity),
                verb: facts.verb,
                path: &facts.path,
                direction: facts.direction,
                bytes,
                size: facts.size,
                elapsed: facts.started.elapsed(),
                status,
                error,
                ascii: facts.ascii,
                passive: facts.passive,
                tls,
                at: std::time::SystemTime::now(),
            }));
    }

    /// Tells a transfer that ended and sends its final reply.
    async fn report_transfer(
        &mut self,
        result: Result<u64, TransferError>,
        facts: &Facts,
        bytes: u64,
        tls: Option<&TlsFacts>,
    ) -> Flow {
        match &result {
            Ok(_) => self.tell_transfer(facts, bytes, Status::Ok, None, tls),
            Err(error) => {
                // The client's connection going away is its doing; the rest is a failure.
                let status = match error {
                    TransferError::Broken(_) => Status::Aborted,
                    _ => Status::Failed,
                };
                self.tell_transfer(facts, bytes, status, Some(&error.to_string()), tls);
            }
        }
        match result {
            Ok(_) => self.reply(226, "Transfer complete.").await,
            Err(TransferError::Connect(_)) => self.reply(425, "Can't open data connection.").await,
            Err(TransferError::NotResumed) => {
                self.reply(
                    425,
                    "Data connection must resume the control connection's TLS session.",
                )
                .await
            }
            Err(TransferError::Handshake(_)) => {
                self.reply(425, "TLS handshake on the data connection failed.")
                    .await
            }
            Err(TransferError::Exists) => {
                self.reply(553, "File name not allowed: a file of that name exists.")
                    .await
            }
            Err(TransferError::Broken(_)) => {
                self.reply(426, "Connection closed; transfer aborted.")
                    .await
            }
            Err(TransferError::Local(error)) => match error.kind() {
                // EDQUOT: the account's quota (or the file system's), RFC 959's 552.
                std::io::ErrorKind::QuotaExceeded => {
                    self.reply(552, "Quota exceeded; upload stopped.").await
                }
                std::io::ErrorKind::InvalidData => {
                    self.reply(451, "MODE Z data is corrupt or cut short; upload failed.")
                        .await
                }
                _ => {
                    match crate::storage::StorageError::from_io(&VirtualPath::root(), error).kind {
                        StorageErrorKind::NoSpace => {
                            self.reply(452, "Insufficient storage space.").await
                        }
                        _ => self.reply(451, "Local error in processing.").await,
                    }
                }
            },
        }
    }

    /// ABOR during a transfer (RFC 959 §4.1.3): 426 for the transfer, then 226 for the ABOR.
    pub(super) async fn abort_transfer(&mut self) -> Flow {
        let stall = self.context.config.stall_timeout();
        if let Some(verb) = self.stop_transfer(Status::Aborted, "ABOR", stall).await {
            self.context.events.emit(events::Event::Command {
                session: self.id,
                verb,
                code: 426,
            });
        }
        self.data_plan = None;
        if self
            .reply(426, "Connection closed; transfer aborted.")
            .await
            == Flow::Quit
        {
            return Flow::Quit;
        }
        self.reply(226, "ABOR command successful.").await
    }

    /// Breaks the running transfer (if any) off because the server stops: told as failed,
    /// and 426. An upload's last write is waited for up to `write_wait`.
    pub(super) async fn cut_transfer(&mut self, write_wait: std::time::Duration) {
        let cut = self.stop_transfer(Status::Failed, "server shutting down", write_wait);
        if cut.await.is_some() {
            self.reply(426, "Server shutting down; transfer aborted.")
                .await;
        }
    }

    /// Stops the running transfer (if any) and tells it as ended with `status` because of
    /// `why` (ABOR, the server stopping, the session ending): its verb. An upload's last write
    /// is waited for up to `write_wait`.
    pub(super) async fn stop_transfer(
        &mut self,
        status: Status,
        why: &str,
        write_wait: std::time::Duration,
    ) -> Option<&'static str> {
        let running = self.transfer.take()?;
        let bytes = running.progress.bytes.load(Ordering::Relaxed);
        let tls = running.progress.tls.get().cloned();
        self.tell_transfer(&running.facts, bytes, status, Some(why), tls.as_ref());
        let verb = running.facts.verb;
        running.abort(write_wait).await;
        Some(verb)
    }

    /// STAT while a transfer runs: what it is doing and how far it got.
    pub(super) async fn transfer_status(&mut self) -> Flow {
        let Some(running) = &self.transfer else {
            return self.reply(211, "No transfer in progress.").await;
        };
        let bytes = running.progress.bytes.load(Ordering::Relaxed);
        let way = match running.facts.direction {
            Direction::Download => "sent",
            Direction::Upload => "received",
        };
        let text = format!(
            "Status: {} {}, {bytes} bytes {way}.",
            running.facts.verb, running.facts.path
        );
        self.reply(213, text).await
    }
}
