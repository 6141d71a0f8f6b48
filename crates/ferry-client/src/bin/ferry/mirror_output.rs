//! What a mirror shows: the `--dry-run` commands and the closing summary.

use ferry_client::mirror::{Action, Kind, Plan};

use crate::mirror::Request;
use crate::printer::printable;
use crate::report::{print_json, MirrorSummary};
use crate::trees::join_remote;

/// What a dry run would do, in the summary's counts.
pub fn count_planned(plan: &Plan, summary: &mut MirrorSummary) {
    for action in &plan.actions {
        match action {
            Action::MakeDir { .. } => summary.directories_made += 1,
            Action::Transfer { size, .. } => {
                summary.transferred += 1;
                summary.bytes += size.unwrap_or(0);
            }
            Action::Delete { path, .. } => summary.deleted.push(path.clone()),
        }
    }
}

/// `--dry-run`: the commands the mirror would send and the local changes it would make.
pub fn print_plan(plan: &Plan, request: &Request, root_missing: bool) {
    match (root_missing, request.flags.reverse) {
        (true, false) => println!("mkdir {}", printable(&request.local.display().to_string())),
        (true, true) => println!("MKD {}", printable(&request.remote)),
        (false, _) => {}
    }
    for action in &plan.actions {
        for line in commands_for(action, request) {
            println!("{}", printable(&line));
        }
    }
}

/// The exact commands one step runs.
fn commands_for(action: &Action, request: &Request) -> Vec<String> {
    let local = |rel: &str| request.local.join(rel).display().to_string();
    let remote = |rel: &str| join_remote(&request.remote, rel);
    match (action, request.flags.reverse) {
        (Action::MakeDir { path }, false) => vec![format!("mkdir {}", local(path))],
        (Action::MakeDir { path }, true) => vec![format!("MKD {}", remote(path))],
        (
            Action::Transfer {
                path, resume_from, ..
            },
            false,
        ) => {
            let mut lines = Vec::new();
            if *resume_from > 0 {
                lines.push(format!("REST {resume_from}"));
            }
            lines.push(format!("RETR {} > {}.part", remote(path), local(path)));
            lines.push(format!("rename {}.part {}", local(path), local(path)));
            lines
        }
        (
            Action::Transfer {
                path, resume_from, ..
            },
            true,
        ) => {
            let mut lines = Vec::new();
            if *resume_from > 0 {
                lines.push(format!("REST {resume_from}"));
            }
            lines.push(format!("STOR {}.part < {}", remote(path), local(path)));
            lines.push(format!("RNFR {}.part", remote(path)));
            lines.push(format!("RNTO {}", remote(path)));
            lines
        }
        (
            Action::Delete {
                path,
                kind: Kind::File,
            },
            false,
        ) => vec![format!("rm {}", local(path))],
        (
            Action::Delete {
                path,
                kind: Kind::Dir,
            },
            false,
        ) => vec![format!("rmdir {}", local(path))],
        (
            Action::Delete {
                path,
                kind: Kind::File,
            },
            true,
        ) => vec![format!("DELE {}", remote(path))],
        (
            Action::Delete {
                path,
                kind: Kind::Dir,
            },
            true,
        ) => vec![format!("RMD {}", remote(path))],
    }
}

pub fn print_summary(summary: &MirrorSummary, request: &Request) {
    if request.json {
        print_json(summary);
        return;
    }
    let deleted = if summary.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for path in &summary.deleted {
        println!("{deleted} {}", printable(path));
    }
    println!(
        "mirror: {} files transferred ({} bytes), {} failed, {} unchanged, {} excluded, {} deleted, {} directories made, in {:.2} s{}",
        summary.transferred,
        summary.bytes,
        summary.failed,
        summary.unchanged,
        summary.excluded,
        summary.deleted.len(),
        summary.directories_made,
        summary.seconds,
        if summary.dry_run { " (dry run: planned, nothing changed)" } else { "" }
    );
}
