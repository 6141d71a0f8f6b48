//! File transfers: RETR, STOR, APPE, STOU, REST (RFC 959 §4.1.3, RFC 3659 §5), and the
//! supervision of a running transfer: its completion, ABOR and STAT while it runs.
//!
//! A transfer runs as its own task so the session keeps reading the control connection; the
//! task owns the data connection and the file, and reports back once, through its join handle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::command::TransferType;
use tokio::task::JoinHandle;

use super::{Flow, Session};
use crate::data::{self, DataPlan, Source, TransferError};
use crate::storage::{StorageErrorKind, VirtualPath, WriteMode};

/// How an upload treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upload {
    Store,
    Append,
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Download,
    Upload,
}

/// A transfer running beside the session.
#[derive(Debug)]
pub(super) struct RunningTransfer {
    handle: JoinHandle<Result<u64, TransferError>>,
    progress: Arc<AtomicU64>,
    verb: &'static str,
    path: String,
    direction: Direction,
    started: Instant,
}

/// What a finished transfer reports.
pub(super) struct Outcome {
    result: Result<u64, TransferError>,
    transfer: RunningTransfer,
}

/// Resolves when the running transfer (if any) ends; never resolves when there is none.
pub(super) async fn wait(running: &mut Option<RunningTransfer>) -> Outcome {
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
    pub(super) async fn abort(self) {
        self.handle.abort();
        let _ = self.handle.await;
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
        let Some(plan) = self.take_data_plan() else {
            return self.reply(425, "Use PORT or PASV first.").await;
        };
        let open_path = path.clone();
        let opened = self.with_storage(move |s| {
            let file = s.open_read(&open_path)?;
            let size = file
                .metadata()
                .map_err(|e| crate::storage::StorageError::from_io(&open_path, e))?
                .len();
            Ok((file, size))
        });
        let (file, size) = match opened.await {
            Ok(opened) => opened,
            Err(error) => return self.reply_storage_error(&error).await,
        };
        let mut file = tokio::fs::File::from_std(file);
        if offset > 0 {
            use tokio::io::AsyncSeekExt;
            if offset > size || file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
                return self
                    .reply(554, "Restart offset is past the end of the file.")
                    .await;
            }
        }
        let text = format!(
            "Opening {} mode data connection for {arg} ({size} bytes).",
            self.mode_name()
        );
        if self.reply(150, text).await == Flow::Quit {
            return Flow::Quit;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.start(
            plan,
            "RETR",
            path,
            Direction::Download,
            move |mut stream, context, progress| async move {
                data::send(
                    &mut stream,
                    Source::File(file),
                    ascii,
                    &progress,
                    context.stall_timeout,
                )
                .await
            },
        );
        Flow::Continue
    }

    /// STOR and APPE: receives a file.
    pub(super) async fn stor(&mut self, arg: &str, upload: Upload) -> Flow {
        let path = self.resolve(arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let mode = match (upload, offset) {
            (Upload::Append, _) => WriteMode::Append,
            (Upload::Store, 0) => WriteMode::Truncate,
            (Upload::Store, offset) => WriteMode::Resume(offset),
        };
        let verb = if upload == Upload::Append {
            "APPE"
        } else {
            "STOR"
        };
        let text = format!(
            "Opening {} mode data connection for {arg}.",
            self.mode_name()
        );
        self.receive_into(path, mode, verb, text).await
    }

    /// STOU: receives a file under a name the server makes up (RFC 1123 §4.1.2.9: `150 FILE: name`).
    pub(super) async fn stou(&mut self) -> Flow {
        let stem = format!(
            "ferry.{}.{}",
            std::process::id(),
            self.started.elapsed().as_nanos()
        );
        for attempt in 0..100 {
            let name = format!("{stem}.{attempt}");
            let path = self.resolve(&name);
            let probe = path.clone();
            if self
                .with_storage(move |s| s.metadata(&probe))
                .await
                .is_err()
            {
                return self
                    .receive_into(path, WriteMode::CreateNew, "STOU", format!("FILE: {name}"))
                    .await;
            }
        }
        self.reply(452, "Cannot find a unique file name.").await
    }

    async fn receive_into(
        &mut self,
        path: VirtualPath,
        mode: WriteMode,
        verb: &'static str,
        text: String,
    ) -> Flow {
        let Some(plan) = self.take_data_plan() else {
            return self.reply(425, "Use PORT or PASV first.").await;
        };
        let open_path = path.clone();
        let file = match self
            .with_storage(move |s| s.open_write(&open_path, mode))
            .await
        {
            Ok(file) => tokio::fs::File::from_std(file),
            Err(error) => return self.reply_storage_error(&error).await,
        };
        if self.reply(150, text).await == Flow::Quit {
            return Flow::Quit;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.start(
            plan,
            verb,
            path,
            Direction::Upload,
            move |mut stream, context, progress| async move {
                let mut file = file;
                data::receive(
                    &mut stream,
                    &mut file,
                    ascii,
                    &progress,
                    context.stall_timeout,
                )
                .await
            },
        );
        Flow::Continue
    }

    /// Sends a listing already rendered in memory over a data connection.
    pub(super) async fn send_listing(
        &mut self,
        plan: DataPlan,
        verb: &'static str,
        body: Vec<u8>,
    ) -> Flow {
        if self
            .reply(150, "Opening ASCII mode data connection for /bin/ls.")
            .await
            == Flow::Quit
        {
            return Flow::Quit;
        }
        let path = self.cwd.clone();
        self.start(
            plan,
            verb,
            path,
            Direction::Download,
            move |mut stream, context, progress| async move {
                data::send(
                    &mut stream,
                    Source::Bytes(body),
                    false,
                    &progress,
                    context.stall_timeout,
                )
                .await
            },
        );
        Flow::Continue
    }

    /// The data plan for this transfer; a plan is used once.
    pub(super) fn take_data_plan(&mut self) -> Option<DataPlan> {
        self.data_plan.take()
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    /// Spawns the transfer task: open the data connection, then run `pump` on it.
    fn start<F, Fut>(
        &mut self,
        plan: DataPlan,
        verb: &'static str,
        path: VirtualPath,
        direction: Direction,
        pump: F,
    ) where
        F: FnOnce(tokio::net::TcpStream, data::DataContext, Arc<AtomicU64>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<u64, TransferError>> + Send,
    {
        let context = self.data_context;
        let progress = Arc::new(AtomicU64::new(0));
        let task_progress = Arc::clone(&progress);
        let handle = tokio::spawn(async move {
            let stream = data::open(plan, &context).await?;
            pump(stream, context, task_progress).await
        });
        self.transfer = Some(RunningTransfer {
            handle,
            progress,
            verb,
            path: path.to_string(),
            direction,
            started: Instant::now(),
        });
    }

    /// Replies to a finished transfer and logs it.
    pub(super) async fn finish_transfer(&mut self, outcome: Outcome) -> Flow {
        let Outcome { result, transfer } = outcome;
        let seconds = transfer.started.elapsed().as_secs_f64();
        let bytes = transfer.progress.load(Ordering::Relaxed);
        let user = self.user_name().to_string();
        let path = super::login::escape(&transfer.path);
        match &result {
            Ok(_) => {
                tracing::info!(peer = %self.peer, user, verb = transfer.verb, path, bytes, seconds, "transfer")
            }
            Err(error) => {
                tracing::warn!(peer = %self.peer, user, verb = transfer.verb, path, bytes, seconds, %error, "transfer failed")
            }
        }
        match result {
            Ok(_) => self.reply(226, "Transfer complete.").await,
            Err(TransferError::Connect(_)) => self.reply(425, "Can't open data connection.").await,
            Err(TransferError::Broken(_)) => {
                self.reply(426, "Connection closed; transfer aborted.")
                    .await
            }
            Err(TransferError::Local(error)) => {
                let kind = crate::storage::StorageError::from_io(&VirtualPath::root(), error).kind;
                match kind {
                    StorageErrorKind::NoSpace => {
                        self.reply(452, "Insufficient storage space.").await
                    }
                    _ => self.reply(451, "Local error in processing.").await,
                }
            }
        }
    }

    /// ABOR during a transfer (RFC 959 §4.1.3): 426 for the transfer, then 226 for the ABOR.
    pub(super) async fn abort_transfer(&mut self) -> Flow {
        if let Some(running) = self.transfer.take() {
            let bytes = running.progress.load(Ordering::Relaxed);
            tracing::info!(peer = %self.peer, verb = running.verb, path = %super::login::escape(&running.path), bytes, "transfer aborted");
            running.abort().await;
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

    /// STAT while a transfer runs: what it is doing and how far it got.
    pub(super) async fn transfer_status(&mut self) -> Flow {
        let Some(running) = &self.transfer else {
            return self.reply(211, "No transfer in progress.").await;
        };
        let bytes = running.progress.load(Ordering::Relaxed);
        let way = match running.direction {
            Direction::Download => "sent",
            Direction::Upload => "received",
        };
        let text = format!(
            "Status: {} {}, {bytes} bytes {way}.",
            running.verb, running.path
        );
        self.reply(213, text).await
    }
}
