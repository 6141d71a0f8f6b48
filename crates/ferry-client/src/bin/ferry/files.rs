//! Moving one file between a local path and the server, shared by the shell and one-shot
//! commands: downloads go to `NAME.part` and are renamed only after the server's 226.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_client::Client;
use tokio::fs::{File, OpenOptions};

use crate::local::{check_local_name, part_path};
use crate::progress::{Display, Meter, StdoutWriter};

/// What one transfer moved, and how long it took.
pub struct Moved {
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Downloads `remote` to `local` (`-` is standard output). With `resume`, continues a partial
/// download left in `NAME.part` (or in `NAME` itself, which becomes the `.part` file) with REST.
/// A local name that [`check_local_name`] refuses fails before anything is sent or created.
pub async fn download(
    client: &mut Client,
    remote: &str,
    local: &str,
    resume: bool,
    display: Display,
) -> anyhow::Result<Moved> {
    let started = Instant::now();
    if local == "-" {
        let mut meter = Meter::new(StdoutWriter, display);
        let result = client.retrieve(remote, &mut meter, 0).await;
        meter.finish();
        result?;
        return Ok(Moved {
            bytes: meter.total(),
            elapsed: started.elapsed(),
        });
    }
    check_local_name(local)?;
    let local = Path::new(local);
    let part = part_path(local);
    let (offset, moved) = if resume {
        resume_offset(local, &part)?
    } else {
        (0, false)
    };
    let file = open_part(&part, offset > 0).await?;
    let mut meter = Meter::new(file, display);
    let result = client.retrieve(remote, &mut meter, offset).await;
    meter.finish();
    let bytes = meter.total();
    drop(meter);
    if let Err(error) = result {
        if moved && bytes == 0 {
            // Nothing was added to the file taken as the part: it keeps its name.
            let _ = std::fs::rename(&part, local);
        }
        discard_empty_part(&part, offset);
        return Err(error.into());
    }
    std::fs::rename(&part, local)
        .with_context(|| format!("{}: cannot rename to {}", part.display(), local.display()))?;
    Ok(Moved {
        bytes,
        elapsed: started.elapsed(),
    })
}

/// The byte to continue from: the size of `NAME.part`, or of `NAME` (moved to `NAME.part`:
/// then `true`, so that a download that adds nothing gives it its name back).
fn resume_offset(local: &Path, part: &Path) -> anyhow::Result<(u64, bool)> {
    let moved = !part.exists() && local.exists();
    if moved {
        std::fs::rename(local, part)
            .with_context(|| format!("{}: cannot rename to {}", local.display(), part.display()))?;
    }
    match std::fs::metadata(part) {
        Ok(metadata) => Ok((metadata.len(), moved)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok((0, moved)),
        Err(error) => Err(anyhow::Error::new(error).context(part.display().to_string())),
    }
}

async fn open_part(part: &Path, append: bool) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    options
        .open(part)
        .await
        .with_context(|| format!("{}: cannot open", part.display()))
}

/// A download that failed before any byte arrived leaves no file behind.
fn discard_empty_part(part: &Path, offset: u64) {
    let empty = std::fs::metadata(part).is_ok_and(|m| m.len() == 0);
    if offset == 0 && empty {
        let _ = std::fs::remove_file(part);
    }
}

/// Uploads `local` as `remote` (STOR, or APPE with `append`).
pub async fn upload(
    client: &mut Client,
    local: &str,
    remote: &str,
    append: bool,
    display: Display,
) -> anyhow::Result<Moved> {
    let started = Instant::now();
    let file = File::open(local)
        .await
        .with_context(|| format!("{local}: cannot open"))?;
    let mut meter = Meter::new(file, display);
    let result = if append {
        client.append(remote, &mut meter).await
    } else {
        client.store(remote, &mut meter, 0).await
    };
    meter.finish();
    result?;
    Ok(Moved {
        bytes: meter.total(),
        elapsed: started.elapsed(),
    })
}

/// The size of a local file, for a progress bar.
pub fn local_size(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}
