//! One-shot use for scripts: `ferry get URL`, `ferry put FILE URL`, `ferry ls URL`,
//! `ferry mirror URL [LOCAL]`, `ferry mirror -R LOCAL URL`.

use std::io::IsTerminal;
use std::sync::Arc;

use ferry_client::{Client, FtpUrl, Secret, TransferType};

use std::path::PathBuf;

use crate::args::Args;
use crate::copy::{self as careful_copy, CopyOptions, Upload};
use crate::exit::{self, Usage};
use crate::files::{download, local_size, upload};
use crate::mirror;
use crate::pget::pget;
use crate::printer::{printable, PrintableWriter, Printer};
use crate::progress::{summary, Display};
use crate::report::{print_json, EntryReport};
use crate::session::{Connector, Retry, Session};
use crate::tls::{ask_on_terminal, connect, Ask, TrustStore};

/// A one-shot job.
#[derive(Debug)]
pub enum Job {
    Get(FtpUrl),
    Put(String, FtpUrl),
    Ls(FtpUrl),
    /// `mirror URL [LOCAL]`.
    Mirror(FtpUrl, Option<String>),
    /// `mirror -R LOCAL URL`.
    MirrorUp(String, FtpUrl),
}

impl Job {
    /// Recognises `get URL`, `put FILE URL` and `ls URL`; `None` for anything else (a host).
    pub fn detect(words: &[String]) -> Option<Result<Job, String>> {
        let first = words.first()?;
        if !words.iter().any(|w| ferry_client::url::looks_like_url(w)) {
            return None;
        }
        let parse = |text: &str| text.parse::<FtpUrl>().map_err(|e| e.to_string());
        Some(match (first.as_str(), &words[1..]) {
            ("get", [url]) => parse(url).map(Job::Get),
            ("ls", [url]) => parse(url).map(Job::Ls),
            ("put", [file, url]) => parse(url).map(|url| Job::Put(file.clone(), url)),
            ("mirror", [url]) => parse(url).map(|url| Job::Mirror(url, None)),
            ("mirror", [first, second]) if ferry_client::url::looks_like_url(first) => {
                parse(first).map(|url| Job::Mirror(url, Some(second.clone())))
            }
            ("mirror", [local, url]) => parse(url).map(|url| Job::MirrorUp(local.clone(), url)),
            _ => Err(
                "usage: ferry get URL [-o FILE] [-c] | put [-c] FILE URL | ls URL | \
                      mirror URL [LOCAL] | mirror -R LOCAL URL"
                    .into(),
            ),
        })
    }

    fn url(&self) -> &FtpUrl {
        match self {
            Job::Get(url)
            | Job::Ls(url)
            | Job::Put(_, url)
            | Job::Mirror(url, _)
            | Job::MirrorUp(_, url) => url,
        }
    }
}

/// Runs a job and returns the exit code.
pub async fn run(job: Job, args: &Args) -> u8 {
    match run_job(&job, args).await {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("ferry: {}", printable(&format!("{error:#}")));
            exit::code_for(&error)
        }
    }
}

async fn run_job(job: &Job, args: &Args) -> anyhow::Result<()> {
    check_job(job, args)?;
    let url = job.url();
    let quiet = args.json && !args.debug;
    let printer = Arc::new(Printer::new(args.verbose && !quiet, args.debug, !quiet));
    let mut config = args.client_config();
    config.transcript = Some(crate::trace::observer(printer));
    config.tls.mode = args.tls_mode(url.implicit_tls);
    let store = TrustStore::new(args.known_hosts.clone(), args.insecure);
    let mut ask = ask_on_terminal;
    let ask: Ask = match std::io::stdin().is_terminal() {
        true => Some(&mut ask),
        false => None,
    };
    let mut client = connect(&url.host, url.port, config.clone(), &store, ask).await?;
    let (user, password, account) = credentials(url, args);
    client.login(&user, &password, account.as_deref()).await?;
    if args.mode_z {
        if let Err(error) = client.set_mode_z(true).await {
            eprintln!("MODE Z refused ({error}); using stream mode.");
        }
    }
    client
        .set_type(url.transfer_type.unwrap_or(TransferType::Image))
        .await?;
    let connector = Connector {
        host: url.host.clone(),
        port: url.port,
        config,
        user,
        password,
        account,
        trust: store,
        directory: None,
    };
    let bar = std::io::stderr().is_terminal() && !args.verbose && !args.json;
    if careful(job, args) {
        let mut session = Session::new(Some(client), Some(connector.clone()));
        let result = careful_job(&mut session, &connector, job, args).await;
        session.quit().await;
        return result;
    }
    match job {
        Job::Get(url) => get(&mut client, url, args, bar).await?,
        Job::Put(file, url) => put(&mut client, file, url, bar).await?,
        Job::Ls(url) => {
            let path = Some(url.path.as_str()).filter(|p| !p.is_empty());
            client
                .list_into(path, &mut PrintableWriter::default())
                .await?;
        }
        Job::Mirror(..) | Job::MirrorUp(..) => {}
    }
    client.quit().await?;
    Ok(())
}

/// Option combinations that make no sense, refused before connecting (exit code 2).
fn check_job(job: &Job, args: &Args) -> anyhow::Result<()> {
    let reverse = args.mirror.reverse;
    match job {
        Job::Mirror(..) if reverse => {
            Err(Usage("mirror -R LOCAL URL: the URL comes last".into()).into())
        }
        Job::MirrorUp(..) if !reverse => Err(Usage(
            "mirror URL LOCAL downloads; to upload give -R: ferry mirror -R LOCAL URL".into(),
        )
        .into()),
        Job::Mirror(url, local) => {
            mirror_request(url, local.as_deref().unwrap_or(""), args).check()
        }
        Job::MirrorUp(local, url) => mirror_request(url, local, args).check(),
        _ if !(1..=16).contains(&args.segments) => {
            Err(Usage("--segments must be between 1 and 16".into()).into())
        }
        _ => Ok(()),
    }
}

/// Whether the job takes the path with reports, retries and more sessions.
fn careful(job: &Job, args: &Args) -> bool {
    let transfer = matches!(job, Job::Get(_) | Job::Put(..));
    let plain_get = matches!(job, Job::Get(_)) && args.output.as_deref() == Some("-");
    let careful_transfer = args.verify || args.json || args.retries > 0 || args.segments > 1;
    let resumed_put = matches!(job, Job::Put(..)) && args.resume;
    !matches!(job, Job::Get(_) | Job::Put(..) | Job::Ls(_))
        || (transfer && careful_transfer && !plain_get)
        || resumed_put
        || (matches!(job, Job::Ls(_)) && args.json)
}

fn mirror_request(url: &FtpUrl, local: &str, args: &Args) -> mirror::Request {
    let local = match local {
        "" => mirror::default_local(&url.path),
        local => local.to_string(),
    };
    mirror::Request {
        flags: args.mirror.clone(),
        remote: url.path.clone(),
        local: PathBuf::from(local),
        copy: copy_options(args),
        json: args.json,
        verbose: args.verbose,
    }
}

fn copy_options(args: &Args) -> CopyOptions {
    CopyOptions {
        resume: args.resume,
        verify: args.verify,
        retry: Retry::new(args.retries),
    }
}

/// Mirrors, verified or retried transfers, pget, resumed uploads and `ls --json`.
async fn careful_job(
    session: &mut Session,
    connector: &Connector,
    job: &Job,
    args: &Args,
) -> anyhow::Result<()> {
    let (report, result) = match job {
        Job::Mirror(url, local) => {
            let request = mirror_request(url, local.as_deref().unwrap_or(""), args);
            return mirror::run(session, Some(connector), &request).await;
        }
        Job::MirrorUp(local, url) => {
            return mirror::run(session, Some(connector), &mirror_request(url, local, args)).await;
        }
        Job::Ls(url) => return ls_json(session, url).await,
        Job::Get(url) => {
            let name = url
                .file_name()
                .ok_or_else(|| anyhow::anyhow!("the URL names no file"))?;
            let local = args.output.clone().unwrap_or_else(|| name.to_string());
            crate::local::check_local_name(&local)?;
            let local = PathBuf::from(local);
            pget(
                session,
                Some(connector),
                &url.path,
                &local,
                args.segments,
                copy_options(args),
            )
            .await
        }
        Job::Put(file, url) => {
            let remote = remote_name(file, url)?;
            let job = Upload {
                local: std::path::Path::new(file),
                remote: &remote,
                via_part: false,
            };
            careful_copy::upload(session, &job, copy_options(args)).await
        }
    };
    if args.json {
        print_json(&report);
    } else if args.verbose {
        eprintln!("{}", report.text());
    }
    result
}

/// `ls --json`: one JSON object per entry, from MLSD where the server has it, else LIST.
async fn ls_json(session: &mut Session, url: &FtpUrl) -> anyhow::Result<()> {
    let client = session.client().await?;
    let from_mlsd = client.features().await?.has("MLST");
    let path = Some(url.path.as_str()).filter(|p| !p.is_empty());
    for entry in client.entries(path, crate::shell::now()).await? {
        print_json(&EntryReport::of(&entry, from_mlsd));
    }
    Ok(())
}

/// User, password and account: from the URL, else `.netrc`, else anonymous.
fn credentials(url: &FtpUrl, args: &Args) -> (String, Secret, Option<String>) {
    if let Some(user) = &url.user {
        let password = url.password.clone().unwrap_or_else(|| Secret::new(""));
        return (user.clone(), password, None);
    }
    let netrc = args.load_netrc();
    if let Some(entry) = netrc.lookup(&url.host) {
        if let Some(login) = &entry.login {
            let password = entry.password.clone().unwrap_or_else(|| Secret::new(""));
            return (login.clone(), password, entry.account.clone());
        }
    }
    ("anonymous".into(), Secret::new("ferry@"), None)
}

async fn get(client: &mut Client, url: &FtpUrl, args: &Args, bar: bool) -> anyhow::Result<()> {
    let name = url
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("the URL names no file"))?;
    let local = args.output.clone().unwrap_or_else(|| name.to_string());
    let expected = if bar {
        client.size(&url.path).await.ok()
    } else {
        None
    };
    let display = Display::new(false, bar && local != "-", expected);
    let moved = download(client, &url.path, &local, args.resume, display).await?;
    if args.verbose {
        eprintln!("{}", summary(moved.bytes, "received", moved.elapsed));
    }
    Ok(())
}

/// Where `put FILE URL` stores: the URL's path, or the file's name under a folder URL.
fn remote_name(file: &str, url: &FtpUrl) -> anyhow::Result<String> {
    if url.path.is_empty() || url.path.ends_with('/') {
        let base = std::path::Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow::anyhow!("{file}: no file name"))?;
        Ok(format!("{}{base}", url.path))
    } else {
        Ok(url.path.clone())
    }
}

async fn put(client: &mut Client, file: &str, url: &FtpUrl, bar: bool) -> anyhow::Result<()> {
    let remote = remote_name(file, url)?;
    let display = Display::new(false, bar, local_size(file));
    upload(client, file, &remote, false, display).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn recognises_jobs_and_leaves_hosts_alone() {
        assert!(Job::detect(&words(&["ftp.example.com"])).is_none());
        assert!(Job::detect(&words(&["get", "2121"])).is_none());
        let job = Job::detect(&words(&["get", "ftp://h/f"])).unwrap().unwrap();
        assert!(matches!(job, Job::Get(url) if url.path == "f"));
        let job = Job::detect(&words(&["put", "a.txt", "ftp://h/"]))
            .unwrap()
            .unwrap();
        assert!(matches!(job, Job::Put(file, _) if file == "a.txt"));
        assert!(Job::detect(&words(&["get", "ftp://h/f", "extra"]))
            .unwrap()
            .is_err());
        assert!(Job::detect(&words(&["ls", "ftp://h:bad/"]))
            .unwrap()
            .is_err());
        let job = Job::detect(&words(&["ls", "ftps://h/"])).unwrap().unwrap();
        assert!(matches!(job, Job::Ls(url) if url.implicit_tls && url.port == 990));
    }
}
