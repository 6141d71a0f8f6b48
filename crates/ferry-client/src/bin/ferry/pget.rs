//! `pget -n N FILE` and `get --segments N`: one file fetched as N byte ranges (REST + RETR)
//! over N sessions into one `NAME.part`. A status file, `NAME.part.pget`, records how far each
//! range got, so an interrupted pget continues each range where it stopped; it is removed
//! when the file is complete. A server without `REST STREAM` in FEAT gets one plain stream.

use std::cell::{Cell, RefCell};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::AsyncWrite;

use crate::copy::{self, CopyOptions, Download};
use crate::local::part_path;
use crate::report::FileReport;
use crate::session::{retryable, Connector, Session};

/// Segments smaller than this are not worth a session of their own.
const MIN_SEGMENT: u64 = 256 * 1024;

/// How often the status file is rewritten while the ranges run.
const SAVE_EVERY: Duration = Duration::from_millis(500);

/// One byte range: `[start, end)`, of which `done` bytes are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub done: u64,
}

impl Segment {
    fn remaining(&self) -> u64 {
        self.end - self.start - self.done
    }
}

/// What the status file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub size: u64,
    pub modified: Option<i64>,
    pub segments: Vec<Segment>,
}

impl Status {
    /// `count` ranges of nearly equal length covering `size` bytes.
    pub fn new(size: u64, modified: Option<i64>, count: usize) -> Self {
        let count = (count as u64).clamp(1, (size / MIN_SEGMENT).max(1));
        let step = size.div_ceil(count);
        let segments = (0..count)
            .map(|i| Segment {
                start: i * step,
                end: ((i + 1) * step).min(size),
                done: 0,
            })
            .filter(|s| s.end > s.start)
            .collect();
        Status {
            size,
            modified,
            segments,
        }
    }

    /// Reads a status file; `None` for anything malformed or inconsistent.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != "ferry-pget 1" {
            return None;
        }
        let size = lines.next()?.strip_prefix("size ")?.parse().ok()?;
        let modified = match lines.next()?.strip_prefix("modified ")? {
            "-" => None,
            time => Some(time.parse().ok()?),
        };
        let mut segments = Vec::new();
        for line in lines {
            let numbers: Vec<u64> = line
                .strip_prefix("segment ")?
                .split(' ')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            let [start, end, done] = numbers[..] else {
                return None;
            };
            segments.push(Segment { start, end, done });
        }
        let status = Status {
            size,
            modified,
            segments,
        };
        status.is_consistent().then_some(status)
    }

    /// Ranges in order, touching, covering the file, none done past its end.
    fn is_consistent(&self) -> bool {
        let mut next = 0;
        for segment in &self.segments {
            if segment.start != next || segment.end < segment.start {
                return false;
            }
            if segment.done > segment.end - segment.start {
                return false;
            }
            next = segment.end;
        }
        next == self.size && !self.segments.is_empty()
    }

    pub fn render(&self) -> String {
        let modified = self.modified.map_or("-".to_string(), |t| t.to_string());
        let mut text = format!("ferry-pget 1\nsize {}\nmodified {modified}\n", self.size);
        for s in &self.segments {
            text.push_str(&format!("segment {} {} {}\n", s.start, s.end, s.done));
        }
        text
    }

    fn done(&self) -> u64 {
        self.segments.iter().map(|s| s.done).sum()
    }

    fn complete(&self) -> bool {
        self.segments.iter().all(|s| s.remaining() == 0)
    }
}

/// The status file of a download to `local`.
pub fn status_path(local: &Path) -> PathBuf {
    let mut name = part_path(local).into_os_string();
    name.push(".pget");
    PathBuf::from(name)
}

/// Downloads `remote` to `local` over `count` sessions (one stream when that cannot work).
pub async fn pget(
    session: &mut Session,
    connector: Option<&Connector>,
    remote: &str,
    local: &Path,
    count: usize,
    options: CopyOptions,
) -> (FileReport, anyhow::Result<()>) {
    let facts = match facts(session, remote).await {
        Ok(facts) => facts,
        Err(error) => {
            let mut report = FileReport::new("download", remote, &local.display().to_string());
            report.result = "failed";
            report.error = Some(format!("{error:#}"));
            return (report, Err(error));
        }
    };
    let (size, modified, has_rest) = facts;
    let ranged = size.filter(|&size| count > 1 && has_rest && size >= 2 * MIN_SEGMENT);
    let (Some(connector), Some(size)) = (connector, ranged) else {
        if count > 1 && !has_rest {
            eprintln!("ferry: the server has no REST STREAM; downloading in one stream");
        }
        let job = Download {
            remote,
            local,
            modified,
            size,
            part_taken: false,
        };
        return copy::download(session, &job, options).await;
    };
    let started = Instant::now();
    let mut report = FileReport::new("download", remote, &local.display().to_string());
    let result = segmented(
        session,
        connector,
        remote,
        local,
        (size, modified, count),
        options,
        &mut report,
    )
    .await;
    report.set_time(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        report.result = "failed";
        report.error = Some(format!("{error:#}"));
    }
    (report, result)
}

/// Size (a missing file is an error; a server without SIZE gets one stream), time, and
/// whether ranges are possible.
async fn facts(
    session: &mut Session,
    remote: &str,
) -> anyhow::Result<(Option<u64>, Option<i64>, bool)> {
    let client = session.client().await?;
    let size = match client.size(remote).await {
        Ok(size) => Some(size),
        Err(error @ ferry_client::FtpError::FileUnavailable { .. }) => return Err(error.into()),
        Err(_) => None,
    };
    let features = client.features().await?;
    let modified = match features.has("MDTM") {
        true => client.mdtm(remote).await.ok(),
        false => None,
    };
    let has_rest = features
        .lines()
        .iter()
        .any(|l| l.eq_ignore_ascii_case("REST STREAM"));
    Ok((size, modified, has_rest))
}

async fn segmented(
    session: &mut Session,
    connector: &Connector,
    remote: &str,
    local: &Path,
    (size, modified, count): (u64, Option<i64>, usize),
    options: CopyOptions,
    report: &mut FileReport,
) -> anyhow::Result<()> {
    let part = part_path(local);
    let status_file = status_path(local);
    let status = resumable(&status_file, &part, size, modified)
        .unwrap_or_else(|| Status::new(size, modified, count));
    report.resumed_from = status.done();
    let file = prepare_part(&part, size, report.resumed_from > 0)?;
    let status = Rc::new(RefCell::new(status));
    save(&status_file, &status.borrow())?;
    let retries = Rc::new(Cell::new(0));
    let ranges = Ranges {
        connector,
        remote,
        file: &file,
        status: &status,
        retries: &retries,
    };
    let failures = ranges.run(&status_file, options).await;
    report.retries = retries.get();
    save(&status_file, &status.borrow())?;
    report.bytes = status.borrow().done() - report.resumed_from;
    if let Some(error) = failures {
        return Err(error);
    }
    if !status.borrow().complete() {
        anyhow::bail!("{remote}: some ranges are incomplete; run pget again to continue");
    }
    drop(file);
    let client = session.client().await?;
    if options.verify {
        copy::verify(client, remote, &part, Some(size), report).await?;
    }
    if let Some(time) = modified {
        copy::set_local_time(&part, time)?;
    }
    std::fs::rename(&part, local)
        .with_context(|| format!("{}: cannot rename to {}", part.display(), local.display()))?;
    let _ = std::fs::remove_file(&status_file);
    Ok(())
}

/// The saved status, when it is for this same file and its `.part` is there.
fn resumable(status_file: &Path, part: &Path, size: u64, modified: Option<i64>) -> Option<Status> {
    let status = Status::parse(&std::fs::read_to_string(status_file).ok()?)?;
    let part_ok = std::fs::metadata(part).is_ok_and(|m| m.len() == size);
    (status.size == size && status.modified == modified && part_ok).then_some(status)
}

fn prepare_part(part: &Path, size: u64, keep: bool) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!keep)
        .open(part)
        .with_context(|| format!("{}: cannot open", part.display()))?;
    file.set_len(size)
        .with_context(|| format!("{}: cannot size", part.display()))?;
    Ok(file)
}

fn save(status_file: &Path, status: &Status) -> anyhow::Result<()> {
    let temporary = status_file.with_extension("pget.new");
    std::fs::write(&temporary, status.render())
        .and_then(|()| std::fs::rename(&temporary, status_file))
        .with_context(|| format!("{}: cannot write", status_file.display()))
}

/// What every range worker shares.
struct Ranges<'a> {
    connector: &'a Connector,
    remote: &'a str,
    file: &'a std::fs::File,
    status: &'a Rc<RefCell<Status>>,
    /// Tries after the first, over all ranges.
    retries: &'a Rc<Cell<u32>>,
}

impl Ranges<'_> {
    /// Runs every unfinished range on its own session, saving the status file as they go;
    /// returns the first failure.
    async fn run(&self, status_file: &Path, options: CopyOptions) -> Option<anyhow::Error> {
        let (connector, remote, status) = (self.connector, self.remote, self.status);
        let file = Rc::new(self.file.try_clone().ok()?);
        let local = tokio::task::LocalSet::new();
        let run = async {
            let mut workers = tokio::task::JoinSet::new();
            for index in 0..status.borrow().segments.len() {
                let range = Range {
                    remote: remote.to_string(),
                    index,
                    file: file.clone(),
                    status: status.clone(),
                    retries: self.retries.clone(),
                };
                let session = Session::new(None, Some(connector.clone()));
                workers.spawn_local(range.run(session, options));
            }
            let mut first_error = None;
            loop {
                tokio::select! {
                    done = workers.join_next() => match done {
                        None => break,
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(error))) => { first_error.get_or_insert(error); }
                        Some(Err(error)) => { first_error.get_or_insert(anyhow::anyhow!("range worker: {error}")); }
                    },
                    _ = tokio::time::sleep(SAVE_EVERY) => {
                        if let Err(error) = save(status_file, &status.borrow()) {
                            first_error.get_or_insert(error);
                        }
                    }
                }
            }
            first_error
        };
        local.run_until(run).await
    }
}

/// One range's worker.
struct Range {
    remote: String,
    index: usize,
    file: Rc<std::fs::File>,
    status: Rc<RefCell<Status>>,
    retries: Rc<Cell<u32>>,
}

impl Range {
    async fn run(self, mut session: Session, options: CopyOptions) -> anyhow::Result<()> {
        let mut result = Ok(());
        for attempt in 0..=options.retry.retries {
            if attempt > 0 {
                tokio::time::sleep(options.retry.wait(attempt)).await;
                self.retries.set(self.retries.get() + 1);
            }
            result = self.once(&mut session).await;
            match &result {
                Err(error) if retryable(error) => session.drop_client(),
                _ => break,
            }
        }
        session.quit().await;
        result
    }

    async fn once(&self, session: &mut Session) -> anyhow::Result<()> {
        let (offset, remaining) = {
            let status = self.status.borrow();
            let segment = &status.segments[self.index];
            (segment.start + segment.done, segment.remaining())
        };
        if remaining == 0 {
            return Ok(());
        }
        let client = session.client().await?;
        let mut writer = RangeWriter {
            file: &self.file,
            position: offset,
            index: self.index,
            status: &self.status,
        };
        let got = client
            .retrieve_range(&self.remote, &mut writer, offset, remaining)
            .await?;
        if got < remaining {
            anyhow::bail!(
                "{}: the file ended {} bytes early (changed on the server?)",
                self.remote,
                remaining - got
            );
        }
        Ok(())
    }
}

/// Writes a range's bytes at their place in the `.part` file and counts them as done.
struct RangeWriter<'a> {
    file: &'a std::fs::File,
    position: u64,
    index: usize,
    status: &'a RefCell<Status>,
}

impl AsyncWrite for RangeWriter<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.file.write_all_at(buf, self.position)?;
        self.position += buf.len() as u64;
        self.status.borrow_mut().segments[self.index].done += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_file() {
        let status = Status::new(64 << 20, Some(7), 4);
        assert_eq!(status.segments.len(), 4);
        assert_eq!(status.segments[3].end, 64 << 20);
        assert!(status.is_consistent());
        let small = Status::new(1000, None, 4);
        assert_eq!(small.segments.len(), 1);
    }

    #[test]
    fn status_round_trip_and_bad_files() {
        let mut status = Status::new(10 * MIN_SEGMENT + 5, None, 3);
        status.segments[1].done = 42;
        assert_eq!(Status::parse(&status.render()), Some(status.clone()));
        let tampered = status.render().replace("segment 0 ", "segment 1 ");
        assert_eq!(Status::parse(&tampered), None);
        assert_eq!(Status::parse("ferry-pget 2\n"), None);
        let overdone = status.render().replace(" 42\n", " 99999999\n");
        assert_eq!(Status::parse(&overdone), None);
    }
}
