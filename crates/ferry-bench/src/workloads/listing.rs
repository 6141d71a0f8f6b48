//! Listing one big folder with LIST, MLSD (when FEAT offers MLST) and NLST.

use std::time::Instant;

use super::{Listing, Report};
use crate::control::{Control, Target};
use crate::data::{close, count_lines};
use crate::error::BenchError;
use crate::limits::Limits;
use crate::stats::median;

/// Lists `path` `runs` times with each verb; reports the median milliseconds of each.
pub async fn list_big(
    target: &Target,
    limits: &Limits,
    path: &str,
    runs: u32,
) -> Result<Report, BenchError> {
    let mut control = Control::login(target, limits).await?;
    let has_mlst = offers_mlst(&mut control).await?;
    let (list_ms, list_lines) = time_verb(&mut control, limits, "LIST", path, runs).await?;
    let mlsd = match has_mlst {
        true => Some(time_verb(&mut control, limits, "MLSD", path, runs).await?),
        false => None,
    };
    let (nlst_ms, nlst_lines) = time_verb(&mut control, limits, "NLST", path, runs).await?;
    let _ = control.quit().await;
    Ok(Report::ListBig(Listing {
        path: path.to_string(),
        runs: runs.max(1),
        list_ms,
        list_lines,
        mlsd_ms: mlsd.map(|(ms, _)| ms),
        mlsd_lines: mlsd.map(|(_, lines)| lines),
        nlst_ms,
        nlst_lines,
    }))
}

/// Whether the FEAT reply lists MLST (RFC 3659 §7.8).
async fn offers_mlst(control: &mut Control) -> Result<bool, BenchError> {
    let feat = control.command("FEAT").await?;
    Ok(feat.class() == 2
        && feat
            .lines
            .iter()
            .any(|line| line.trim_start().to_ascii_uppercase().starts_with("MLST")))
}

/// Median milliseconds of `runs` listings with `verb`, and the line count of the last one.
async fn time_verb(
    control: &mut Control,
    limits: &Limits,
    verb: &str,
    path: &str,
    runs: u32,
) -> Result<(f64, u64), BenchError> {
    let mut timings = Vec::new();
    let mut lines = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let passive = control.open_passive().await?;
        let mut data = control
            .start_transfer(&format!("{verb} {path}"), passive)
            .await?;
        lines = count_lines(&mut data, control.addr(), limits).await?;
        close(data, limits).await;
        control.finish_transfer(verb).await?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(&mut timings), lines))
}
