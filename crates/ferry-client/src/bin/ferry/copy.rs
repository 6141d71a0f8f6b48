//! One file, carefully: downloads into `NAME.part` (renamed only once complete and, with
//! `--verify`, checked), uploads that continue a partial remote file (SIZE, then REST+STOR or
//! APPE), the remote modification time kept on both sides, and retries that reconnect and
//! continue where the broken try stopped.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ferry_client::hash::{hash_file, RemoteHash};
use ferry_client::{Client, FtpError};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::local::part_path;
use crate::report::FileReport;
use crate::session::{retryable, Retry, Session};

/// How files are moved.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Continue what an earlier run left (`NAME.part` locally, the remote file's size).
    pub resume: bool,
    pub verify: bool,
    pub retry: Retry,
}

/// A download: the remote file, its local name, and what the listing said of it.
pub struct Download<'a> {
    pub remote: &'a str,
    pub local: &'a Path,
    pub modified: Option<i64>,
    pub size: Option<u64>,
    /// `NAME.part` is a file of the source's own (a mirror's): the download is written to
    /// `NAME.ferry-part` instead, and never continued.
    pub part_taken: bool,
}

/// Downloads with retries; the report says what happened, the error why it failed.
pub async fn download(
    session: &mut Session,
    job: &Download<'_>,
    options: CopyOptions,
) -> (FileReport, anyhow::Result<()>) {
    let local = job.local.display().to_string();
    let mut report = FileReport::new("download", job.remote, &local);
    let started = Instant::now();
    let part = match job.part_taken {
        true => crate::local::part_path_besides(job.local),
        false => part_path(job.local),
    };
    let mut resume = options.resume && !job.part_taken;
    let mut result = Ok(());
    for attempt in 0..=options.retry.retries {
        if attempt > 0 {
            tokio::time::sleep(options.retry.wait(attempt)).await;
            report.retries = attempt;
        }
        result = download_once(session, job, &part, resume, &mut report).await;
        match &result {
            Err(error) if retryable(error) && session.can_reconnect() => {
                session.drop_client();
                // What this run already wrote is ours: go on from there.
                resume = true;
            }
            _ => break,
        }
    }
    if result.is_ok() {
        result = finish_download(session, job, &part, options, &mut report).await;
    } else if report.bytes == 0 && report.resumed_from == 0 {
        // Nothing arrived (a missing file, say): no empty `.part` is left behind.
        let _ = std::fs::remove_file(&part);
    }
    finish_report(&mut report, &result, started);
    (report, result)
}

async fn download_once(
    session: &mut Session,
    job: &Download<'_>,
    part: &Path,
    resume: bool,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let offset = match resume {
        true => std::fs::metadata(part).map_or(0, |m| m.len()),
        false => 0,
    };
    if report.bytes == 0 && report.retries == 0 {
        report.resumed_from = offset;
    }
    let mut file = open_part(part, offset).await?;
    let client = session.client().await?;
    let mut counter = crate::progress::Meter::new(&mut file, crate::progress::Display::None);
    let mut result = client.retrieve(job.remote, &mut counter, offset).await;
    if let Err(FtpError::ResumePastEnd { .. }) = result {
        // The `.part` is longer than the server's file (which changed since): not a part of
        // it. Start over.
        drop(counter);
        file = open_part(part, 0).await?;
        report.resumed_from = 0;
        counter = crate::progress::Meter::new(&mut file, crate::progress::Display::None);
        result = client.retrieve(job.remote, &mut counter, 0).await;
    }
    report.bytes += counter.total();
    drop(counter);
    // Whatever arrived is on disk before a retry measures the `.part` file.
    let flushed = file.flush().await;
    result?;
    flushed.map_err(FtpError::Local)?;
    Ok(())
}

async fn open_part(part: &Path, offset: u64) -> anyhow::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true);
    let mut file = options
        .open(part)
        .await
        .with_context(|| format!("{}: cannot open", part.display()))?;
    file.set_len(offset).await.map_err(FtpError::Local)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(FtpError::Local)?;
    Ok(file)
}

/// The downloaded `.part` gets the remote time, is checked, then takes its final name.
async fn finish_download(
    session: &mut Session,
    job: &Download<'_>,
    part: &Path,
    options: CopyOptions,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let client = session.client().await?;
    let modified = match job.modified {
        Some(time) => Some(time),
        None if client.features().await?.has("MDTM") => client.mdtm(job.remote).await.ok(),
        None => None,
    };
    if options.verify {
        verify(client, job.remote, part, job.size, report).await?;
    }
    if let Some(time) = modified {
        set_local_time(part, time)?;
    }
    std::fs::rename(part, job.local).with_context(|| {
        format!(
            "{}: cannot rename to {}",
            part.display(),
            job.local.display()
        )
    })?;
    Ok(())
}

/// Compares the server's checksum of `remote` with the local file's; a mismatch is an error
/// (exit code 11). A server without checksums leaves `hash_verified` null, with a warning.
pub async fn verify(
    client: &mut Client,
    remote: &str,
    local: &Path,
    size: Option<u64>,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let size = match size {
        Some(size) => Some(size),
        None => std::fs::metadata(local).ok().map(|m| m.len()),
    };
    let Some(RemoteHash { algorithm, hex }) = client.remote_hash(remote, size).await? else {
        eprintln!(
            "ferry: warning: {}: the server offers no checksum (HASH, XSHA256, XSHA1, XMD5, XCRC); not verified",
            crate::printer::printable(remote)
        );
        return Ok(());
    };
    let path = local.to_path_buf();
    let local_hex = tokio::task::spawn_blocking(move || hash_file(&path, algorithm))
        .await
        .map_err(|error| anyhow::anyhow!("hashing {}: {error}", local.display()))?
        .map_err(FtpError::Local)?;
    report.hash = Some(algorithm.name());
    report.hash_verified = Some(local_hex == hex);
    if local_hex != hex {
        return Err(FtpError::HashMismatch {
            path: remote.to_string(),
            algorithm: algorithm.name(),
            local: local_hex,
            remote: hex,
        }
        .into());
    }
    Ok(())
}

/// Sets a local file's modification time (seconds since the epoch).
pub fn set_local_time(path: &Path, time: i64) -> anyhow::Result<()> {
    let when = match u64::try_from(time) {
        Ok(secs) => UNIX_EPOCH + std::time::Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    };
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    file.set_modified(when)
        .with_context(|| format!("{}: cannot set the modification time", path.display()))
}

/// A local file's modification time in seconds since the epoch.
pub fn local_time(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    i64::try_from(secs).ok()
}

/// An upload: the local file and where it goes; with `via_part` it is written as
/// `REMOTE.part` and renamed once complete (and verified), as a mirror does.
pub struct Upload<'a> {
    pub local: &'a Path,
    pub remote: &'a str,
    pub via_part: bool,
}

/// Uploads with retries; with `resume`, continues the remote file (or `REMOTE.part`).
pub async fn upload(
    session: &mut Session,
    job: &Upload<'_>,
    options: CopyOptions,
) -> (FileReport, anyhow::Result<()>) {
    let local = job.local.display().to_string();
    let mut report = FileReport::new("upload", job.remote, &local);
    let started = Instant::now();
    let target = match job.via_part {
        true => format!("{}{}", job.remote, ferry_client::mirror::PART_SUFFIX),
        false => job.remote.to_string(),
    };
    let mut resume = options.resume;
    let mut result = Ok(());
    for attempt in 0..=options.retry.retries {
        if attempt > 0 {
            tokio::time::sleep(options.retry.wait(attempt)).await;
            report.retries = attempt;
        }
        result = upload_once(session, job.local, &target, resume, &mut report).await;
        match &result {
            Err(error) if retryable(error) && session.can_reconnect() => {
                session.drop_client();
                resume = true;
            }
            _ => break,
        }
    }
    if result.is_ok() {
        result = finish_upload(session, job, &target, options, &mut report).await;
    }
    finish_report(&mut report, &result, started);
    (report, result)
}

async fn upload_once(
    session: &mut Session,
    local: &Path,
    target: &str,
    resume: bool,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let mut file = tokio::fs::File::open(local)
        .await
        .with_context(|| format!("{}: cannot open", local.display()))?;
    let length = file.metadata().await.map_err(FtpError::Local)?.len();
    let client = session.client().await?;
    let offset = match resume {
        true => remote_size(client, target).await?.filter(|&s| s <= length),
        false => None,
    }
    .unwrap_or(0);
    if report.retries == 0 {
        report.resumed_from = offset;
    }
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(FtpError::Local)?;
    let mut counter = crate::progress::Meter::new(file, crate::progress::Display::None);
    let result = match offset {
        0 => client.store(target, &mut counter, 0).await,
        _ => resume_store(client, target, &mut counter, offset).await,
    };
    report.bytes += counter.total();
    result?;
    Ok(())
}

/// REST+STOR; a server that refuses REST before STOR gets APPE instead.
async fn resume_store<R: tokio::io::AsyncRead + Unpin>(
    client: &mut Client,
    target: &str,
    reader: &mut R,
    offset: u64,
) -> Result<u64, FtpError> {
    match client.store(target, reader, offset).await {
        Err(FtpError::Refused { command, .. }) if command == "REST" => {
            client.append(target, reader).await
        }
        other => other,
    }
}

/// The remote file's size, `None` when it does not exist; a server that will not tell (no
/// SIZE) gets the whole file again, with a warning.
async fn remote_size(client: &mut Client, path: &str) -> anyhow::Result<Option<u64>> {
    match client.size(path).await {
        Ok(size) => Ok(Some(size)),
        Err(FtpError::FileUnavailable { .. }) => Ok(None),
        Err(error) if error.is_fatal() => Err(error.into()),
        Err(error) => {
            eprintln!(
                "ferry: warning: {}: no size from the server ({error}); sending the whole file",
                crate::printer::printable(path)
            );
            Ok(None)
        }
    }
}

async fn finish_upload(
    session: &mut Session,
    job: &Upload<'_>,
    target: &str,
    options: CopyOptions,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let client = session.client().await?;
    if options.verify {
        verify(client, target, job.local, None, report).await?;
    }
    if job.via_part {
        client.rename(target, job.remote).await?;
    }
    // Servers without MFMT keep the upload's own time; the mirror then compares sizes.
    if let (Some(time), true) = (local_time(job.local), client.features().await?.has("MFMT")) {
        let _ = client.set_modified(job.remote, time).await;
    }
    Ok(())
}

fn finish_report(report: &mut FileReport, result: &anyhow::Result<()>, started: Instant) {
    report.set_time(started.elapsed().as_secs_f64());
    if let Err(error) = result {
        report.result = "failed";
        report.error = Some(format!("{error:#}"));
    }
}
