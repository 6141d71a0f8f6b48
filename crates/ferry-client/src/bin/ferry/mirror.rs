//! `mirror REMOTE [LOCAL]` and `mirror -R LOCAL [REMOTE]`: lists both trees, asks
//! [`ferry_client::mirror::plan`] what to do, then does it (or prints it with `--dry-run`),
//! transfers spread over `--parallel N` sessions.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use ferry_client::hash::hash_file;
use ferry_client::mirror::{
    self, Action, Entry, Filter, Kind, Options, Plan, Tree, DEFAULT_MAX_DELETE,
};
use ferry_client::Client;

use crate::copy::{download, upload, CopyOptions, Download, Upload};
use crate::exit::Usage;
use crate::mirror_output::{count_planned, print_plan, print_summary};
use crate::printer::printable;
use crate::report::{print_json, FileReport, MirrorSummary};
use crate::session::{Connector, Retry, Session};
pub use crate::trees::join_remote;
use crate::trees::{local_tree, remote_tree, RemoteTree};

/// The mirror's own options, shared by `ferry mirror` and the shell's `mirror`.
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorFlags {
    /// mirror: upload (LOCAL to REMOTE) instead of download
    #[arg(short = 'R', long = "reverse")]
    pub reverse: bool,
    /// mirror: delete what the source lacks (at most --max-delete entries)
    #[arg(long)]
    pub delete: bool,
    /// mirror: refuse to run when more entries than this would be deleted
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_DELETE)]
    pub max_delete: usize,
    /// mirror: transfer only files newer on the source
    #[arg(long)]
    pub only_newer: bool,
    /// mirror: transfer only files the target lacks
    #[arg(long)]
    pub only_missing: bool,
    /// mirror: transfers over N sessions at once (1-16)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub parallel: usize,
    /// mirror: leave out names matching GLOB (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// mirror: only files matching GLOB (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// mirror: print the commands it would run, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `mirror` as typed in the shell.
#[derive(Debug, Parser)]
#[command(name = "mirror", no_binary_name = true, disable_help_flag = true)]
struct ShellMirror {
    #[command(flatten)]
    flags: MirrorFlags,
    #[arg(short = 'c', long = "continue")]
    resume: bool,
    #[arg(long)]
    verify: bool,
    #[arg(long)]
    json: bool,
    #[arg(short = 'v', long)]
    verbose: bool,
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    #[arg(value_name = "PATHS")]
    paths: Vec<String>,
}

/// One mirror to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub flags: MirrorFlags,
    pub remote: String,
    pub local: PathBuf,
    pub copy: CopyOptions,
    pub json: bool,
    pub verbose: bool,
}

impl Request {
    /// Reads the shell's `mirror [options] REMOTE [LOCAL]` / `mirror -R LOCAL [REMOTE]`.
    pub fn from_shell(words: &[String], verify_setting: bool) -> anyhow::Result<Self> {
        let parsed = ShellMirror::try_parse_from(words)
            .map_err(|error| Usage(error.to_string().trim().to_string()))?;
        let (first, second) = match parsed.paths.as_slice() {
            [first] => (first.clone(), None),
            [first, second] => (first.clone(), Some(second.clone())),
            _ => return Err(Usage(USAGE.into()).into()),
        };
        let (remote, local) = match parsed.flags.reverse {
            false => (
                first.clone(),
                second.unwrap_or_else(|| default_local(&first)),
            ),
            true => (second.unwrap_or_else(|| default_local(&first)), first),
        };
        if remote.is_empty() {
            return Err(Usage(
                "mirror -R: name the REMOTE folder (LOCAL has no name to use)".into(),
            )
            .into());
        }
        let copy = CopyOptions {
            resume: parsed.resume,
            verify: parsed.verify || verify_setting,
            retry: Retry::new(parsed.retries),
        };
        let request = Request {
            flags: parsed.flags,
            remote,
            local: PathBuf::from(local),
            copy,
            json: parsed.json,
            verbose: parsed.verbose,
        };
        request.check()?;
        Ok(request)
    }

    /// Refuses bad option values before anything is listed.
    pub fn check(&self) -> anyhow::Result<()> {
        self.filter()?;
        if self.local.as_os_str().is_empty() {
            return Err(
                Usage("mirror: name the LOCAL folder (REMOTE has no name to use)".into()).into(),
            );
        }
        if !(1..=16).contains(&self.flags.parallel) {
            return Err(Usage("--parallel must be between 1 and 16".into()).into());
        }
        if self.flags.only_newer && self.flags.only_missing {
            return Err(Usage("--only-newer and --only-missing exclude each other".into()).into());
        }
        Ok(())
    }

    fn filter(&self) -> anyhow::Result<Filter> {
        Filter::new(self.flags.include.clone(), self.flags.exclude.clone())
            .map_err(|error| Usage(error.to_string()).into())
    }

    fn options(&self) -> Options {
        Options {
            delete: self.flags.delete,
            max_delete: self.flags.max_delete,
            only_newer: self.flags.only_newer,
            only_missing: self.flags.only_missing,
            resume: self.copy.resume,
        }
    }
}

pub const USAGE: &str =
    "usage: mirror [options] REMOTE [LOCAL] | mirror -R [options] LOCAL [REMOTE]";

/// The last name of a path, the default name of the other side; empty when there is none
/// (`/`, `.`, `..`): the current folder is never the default, so a `--delete` cannot empty
/// it by accident.
pub fn default_local(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|name| !matches!(*name, "" | "." | ".."))
        .unwrap_or("")
        .to_string()
}

/// Runs a mirror on `session`; with a connector, `--parallel` opens more sessions. The first
/// failure is returned after every other file was tried and the summary printed.
pub async fn run(
    session: &mut Session,
    connector: Option<&Connector>,
    request: &Request,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let filter = request.filter()?;
    let (source, target, root_missing, unread) =
        trees(session.client().await?, request, &filter).await?;
    let mut options = request.options();
    if options.delete && unread > 0 && !request.flags.reverse {
        // The source listing may lack entries it has: what the target has beyond it is not
        // known to be gone.
        eprintln!("ferry: warning: nothing is deleted: {unread} line(s) of the server's listings could not be read");
        options.delete = false;
    }
    let mut plan = mirror::plan(&source, &target, &filter, &options)?;
    if request.copy.verify {
        compare_checksums(session.client().await?, request, &source, &mut plan).await?;
    }
    let mut summary = MirrorSummary {
        record: "summary",
        unchanged: plan.unchanged,
        excluded: plan.excluded,
        conflicts: plan.conflicts.clone(),
        dry_run: request.flags.dry_run,
        ..MirrorSummary::default()
    };
    for path in &plan.conflicts {
        eprintln!(
            "ferry: {}: a file on one side, a directory on the other; left alone",
            printable(path)
        );
    }
    let first_error = match request.flags.dry_run {
        true => {
            print_plan(&plan, request, root_missing);
            count_planned(&plan, &mut summary);
            None
        }
        false => match make_root(session, request, root_missing).await {
            Ok(()) => execute(session, connector, request, &plan, &mut summary).await,
            Err(error) => Some(error),
        },
    };
    summary.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    print_summary(&summary, request);
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The source and target trees: remote then local for a download, the other way for -R;
/// whether the target's root is missing; and how many remote listing lines could not be read.
async fn trees(
    client: &mut Client,
    request: &Request,
    filter: &Filter,
) -> anyhow::Result<(Tree, Tree, bool, usize)> {
    let reverse = request.flags.reverse;
    let RemoteTree {
        tree: remote,
        unread,
    } = remote_tree(client, &request.remote, filter, reverse).await?;
    if !reverse {
        return match request.local.exists() {
            true => Ok((
                remote.unwrap_or_default(),
                local_tree(&request.local, filter)?,
                false,
                unread,
            )),
            false => Ok((remote.unwrap_or_default(), Tree::new(), true, unread)),
        };
    }
    let local = local_tree(&request.local, filter)?;
    let root_missing = remote.is_none();
    let remote = remote.unwrap_or_default();
    // Without MFMT, uploaded files carry the time of the upload: compare sizes only.
    let keeps_times = client.features().await?.has("MFMT");
    let remote = match keeps_times {
        true => remote,
        false => remote
            .into_iter()
            .map(|(p, e)| {
                (
                    p,
                    Entry {
                        modified: None,
                        ..e
                    },
                )
            })
            .collect(),
    };
    Ok((local, remote, root_missing, unread))
}

/// With `--verify`, files alike in size and time are compared by checksum too (while the
/// server has checksums); those that differ are transferred again.
async fn compare_checksums(
    client: &mut Client,
    request: &Request,
    source: &Tree,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    for path in plan.unchanged_paths.clone() {
        let remote = join_remote(&request.remote, &path);
        let local = request.local.join(&path);
        let Some(entry) = source.get(&path) else {
            continue;
        };
        let Some(theirs) = client.remote_hash(&remote, entry.size).await? else {
            return Ok(());
        };
        let algorithm = theirs.algorithm;
        let ours = tokio::task::spawn_blocking(move || hash_file(&local, algorithm))
            .await
            .map_err(|error| anyhow::anyhow!("hashing {path}: {error}"))?
            .with_context(|| format!("{}: cannot read", request.local.join(&path).display()))?;
        if ours != theirs.hex {
            plan.retransfer(entry, source);
        }
    }
    Ok(())
}

/// Creates the target's root folder when it is missing.
async fn make_root(session: &mut Session, request: &Request, missing: bool) -> anyhow::Result<()> {
    match (missing, request.flags.reverse) {
        (false, _) => Ok(()),
        (true, false) => std::fs::create_dir_all(&request.local)
            .with_context(|| format!("{}: cannot create", request.local.display())),
        (true, true) => {
            session.client().await?.mkdir(&request.remote).await?;
            Ok(())
        }
    }
}

/// Does the plan: directories, transfers (over the workers), deletions.
async fn execute(
    session: &mut Session,
    connector: Option<&Connector>,
    request: &Request,
    plan: &Plan,
    summary: &mut MirrorSummary,
) -> Option<anyhow::Error> {
    let mut first_error = None;
    for action in &plan.actions {
        if let Action::MakeDir { path } = action {
            match make_dir(session, request, path).await {
                Ok(()) => summary.directories_made += 1,
                Err(error) => {
                    eprintln!("ferry: {}", printable(&format!("{error:#}")));
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    let jobs: Vec<Action> = plan.transfers().cloned().collect();
    let reports = match (request.flags.parallel, connector) {
        (parallel, Some(connector)) if parallel > 1 && jobs.len() > 1 => {
            transfer_parallel(jobs, connector, request).await
        }
        _ => transfer_all(session, jobs, request).await,
    };
    for (report, error) in reports {
        summary.bytes += report.bytes;
        match error {
            Some(error) => {
                summary.failed += 1;
                first_error.get_or_insert(error);
            }
            None => summary.transferred += 1,
        }
    }
    for action in plan.deletions() {
        if let Action::Delete { path, kind } = action {
            match delete(session, request, path, *kind).await {
                Ok(()) => summary.deleted.push(path.clone()),
                Err(error) => {
                    eprintln!("ferry: {}", printable(&format!("{error:#}")));
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    first_error
}

type Outcome = (FileReport, Option<anyhow::Error>);

/// Transfers one after the other on one session, reporting each as it ends.
async fn transfer_all(session: &mut Session, jobs: Vec<Action>, request: &Request) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for job in jobs {
        let (report, result) = transfer(session, &job, request).await;
        show(&report, request);
        outcomes.push((report, result.err()));
    }
    outcomes
}

/// Transfers over `--parallel` sessions of their own, each taking the next file when free.
/// The workers run on this thread (a `LocalSet`): the session code need not be `Send`.
async fn transfer_parallel(
    jobs: Vec<Action>,
    connector: &Connector,
    request: &Request,
) -> Vec<Outcome> {
    let queue = Rc::new(RefCell::new(VecDeque::from(jobs)));
    let local = tokio::task::LocalSet::new();
    let run = async {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..request.flags.parallel {
            let queue = queue.clone();
            let request = request.clone();
            let session = Session::new(None, Some(connector.clone()));
            workers.spawn_local(worker(queue, session, request));
        }
        let mut outcomes = Vec::new();
        while let Some(done) = workers.join_next().await {
            match done {
                Ok(mut list) => outcomes.append(&mut list),
                Err(error) => eprintln!("ferry: a transfer worker failed: {error}"),
            }
        }
        outcomes
    };
    local.run_until(run).await
}

async fn worker(
    queue: Rc<RefCell<VecDeque<Action>>>,
    mut session: Session,
    request: Request,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    loop {
        let next = queue.borrow_mut().pop_front();
        let Some(job) = next else {
            break;
        };
        let (report, result) = transfer(&mut session, &job, &request).await;
        show(&report, &request);
        outcomes.push((report, result.err()));
    }
    session.quit().await;
    outcomes
}

async fn transfer(
    session: &mut Session,
    action: &Action,
    request: &Request,
) -> (FileReport, anyhow::Result<()>) {
    let Action::Transfer {
        path,
        size,
        modified,
        resume_from,
        part_taken,
        ..
    } = action
    else {
        return (FileReport::new("download", "", ""), Ok(()));
    };
    // The plan says what may be continued: nothing when there is no usable `.part` (none, one
    // longer than the source, or one that is a source file of its own).
    let copy = CopyOptions {
        resume: request.copy.resume && *resume_from > 0,
        ..request.copy
    };
    let remote = join_remote(&request.remote, path);
    let local = request.local.join(path);
    match request.flags.reverse {
        false => {
            if let Err(error) = no_link_on_the_way(&request.local, path, false) {
                let mut report = FileReport::new("download", &remote, &local.display().to_string());
                report.error = Some(format!("{error:#}"));
                return (report, Err(error));
            }
            let job = Download {
                remote: &remote,
                local: &local,
                modified: *modified,
                size: *size,
                part_taken: *part_taken,
            };
            download(session, &job, copy).await
        }
        true => {
            let job = Upload {
                local: &local,
                remote: &remote,
                via_part: true,
            };
            upload(session, &job, request.copy).await
        }
    }
}

fn show(report: &FileReport, request: &Request) {
    if request.json {
        print_json(report);
    } else if request.verbose || report.error.is_some() {
        println!("{}", report.text());
    }
}

async fn make_dir(session: &mut Session, request: &Request, path: &str) -> anyhow::Result<()> {
    match request.flags.reverse {
        false => {
            no_link_on_the_way(&request.local, path, true)?;
            let local = request.local.join(path);
            std::fs::create_dir_all(&local)
                .with_context(|| format!("{}: cannot create", local.display()))
        }
        true => {
            let client = session.client().await?;
            client.mkdir(&join_remote(&request.remote, path)).await?;
            Ok(())
        }
    }
}

/// That no folder on the way from the mirror's local root to `rel` (nor `rel` itself, with
/// `whole`) is a symbolic link: the local tree does not follow links, so writing through one
/// would put files outside the target (where a link leads) that no later run sees.
fn no_link_on_the_way(root: &Path, rel: &str, whole: bool) -> anyhow::Result<()> {
    let parts: Vec<&str> = rel.split('/').collect();
    let count = if whole { parts.len() } else { parts.len() - 1 };
    let mut path = root.to_path_buf();
    for part in &parts[..count] {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                anyhow::bail!(
                    "{}: a symbolic link where the mirror needs a folder; not written through",
                    path.display()
                )
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
            Err(error) => return Err(anyhow::Error::new(error).context(path.display().to_string())),
        }
    }
    Ok(())
}

async fn delete(
    session: &mut Session,
    request: &Request,
    path: &str,
    kind: Kind,
) -> anyhow::Result<()> {
    match request.flags.reverse {
        false => {
            let local = request.local.join(path);
            let removed = match kind {
                Kind::File => std::fs::remove_file(&local),
                Kind::Dir => std::fs::remove_dir(&local),
            };
            removed.with_context(|| format!("{}: cannot delete", local.display()))
        }
        true => {
            let remote = join_remote(&request.remote, path);
            let client = session.client().await?;
            match kind {
                Kind::File => client.delete(&remote).await?,
                Kind::Dir => client.rmdir(&remote).await?,
            };
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn shell_mirror_arguments() {
        let request = Request::from_shell(
            &words(&["--delete", "--exclude", "*.tmp", "pub", "here"]),
            false,
        )
        .unwrap();
        assert_eq!(
            (request.remote.as_str(), request.local.to_str()),
            ("pub", Some("here"))
        );
        assert!(request.flags.delete && !request.flags.reverse);
        let upload = Request::from_shell(&words(&["-R", "site"]), true).unwrap();
        assert_eq!(
            (upload.remote.as_str(), upload.local.to_str()),
            ("site", Some("site"))
        );
        assert!(upload.copy.verify);
        assert!(Request::from_shell(&words(&["--exclude=", "pub"]), false).is_err());
        assert!(Request::from_shell(&words(&["--parallel", "0", "pub"]), false).is_err());
        assert!(Request::from_shell(&words(&[]), false).is_err());
        assert!(Request::from_shell(&words(&["/"]), false).is_err());
        assert!(Request::from_shell(&words(&["-R", "."]), false).is_err());
    }

    #[test]
    fn remote_paths() {
        assert_eq!(join_remote("", "a"), "a");
        assert_eq!(join_remote("/", "a"), "/a");
        assert_eq!(join_remote("pub/", "a/b"), "pub/a/b");
        assert_eq!(join_remote("pub", ""), "pub");
        assert_eq!(default_local("pub/site/"), "site");
        assert_eq!(default_local("/"), "");
        assert_eq!(default_local("."), "");
    }
}
