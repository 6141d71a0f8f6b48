//! One-shot use for scripts: `ferry get URL`, `ferry put FILE URL`, `ferry ls URL`.

use std::io::IsTerminal;
use std::sync::Arc;

use ferry_client::{Client, FtpUrl, Secret, TransferType};

use crate::args::Args;
use crate::exit;
use crate::files::{download, local_size, upload};
use crate::printer::{printable, PrintableWriter, Printer};
use crate::progress::{summary, Display};
use crate::tls::{ask_on_terminal, connect, Ask, TrustStore};

/// A one-shot job.
#[derive(Debug)]
pub enum Job {
    Get(FtpUrl),
    Put(String, FtpUrl),
    Ls(FtpUrl),
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
            _ => Err("usage: ferry get URL [-o FILE] [-c] | put FILE URL | ls URL".into()),
        })
    }

    fn url(&self) -> &FtpUrl {
        match self {
            Job::Get(url) | Job::Ls(url) | Job::Put(_, url) => url,
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
    let url = job.url();
    let printer = Arc::new(Printer::new(args.verbose, args.debug, args.verbose));
    let mut config = args.client_config();
    config.transcript = Some(crate::trace::observer(printer));
    config.tls.mode = args.tls_mode(url.implicit_tls);
    let store = TrustStore::new(args.known_hosts.clone(), args.insecure);
    let mut ask = ask_on_terminal;
    let ask: Ask = match std::io::stdin().is_terminal() {
        true => Some(&mut ask),
        false => None,
    };
    let mut client = connect(&url.host, url.port, config, &store, ask).await?;
    let (user, password, account) = credentials(url, args);
    client.login(&user, &password, account.as_deref()).await?;
    client
        .set_type(url.transfer_type.unwrap_or(TransferType::Image))
        .await?;
    let bar = std::io::stderr().is_terminal() && !args.verbose;
    match job {
        Job::Get(url) => get(&mut client, url, args, bar).await?,
        Job::Put(file, url) => put(&mut client, file, url, bar).await?,
        Job::Ls(url) => {
            let path = Some(url.path.as_str()).filter(|p| !p.is_empty());
            client
                .list_into(path, &mut PrintableWriter::default())
                .await?;
        }
    }
    client.quit().await?;
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

async fn put(client: &mut Client, file: &str, url: &FtpUrl, bar: bool) -> anyhow::Result<()> {
    let remote = if url.path.is_empty() || url.path.ends_with('/') {
        let base = std::path::Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow::anyhow!("{file}: no file name"))?;
        format!("{}{base}", url.path)
    } else {
        url.path.clone()
    };
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
