//! Packaging: `ferry --generate-man FOLDER` writes the man page made from `--help`, and
//! `ferry --generate-completions FOLDER` the bash, zsh and fish completions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::Args;

/// Writes what the hidden flags ask for; `None` when they ask for nothing.
pub fn requested(args: &Args) -> Option<ExitCode> {
    let written = match (&args.generate_man, &args.generate_completions) {
        (Some(folder), _) => man(folder),
        (None, Some(folder)) => completions(folder),
        (None, None) => return None,
    };
    Some(match written {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ferry: {error}");
            ExitCode::FAILURE
        }
    })
}

fn man(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let path = folder.join("ferry.1");
    let mut page = Vec::new();
    clap_mangen::Man::new(Args::command())
        .render(&mut page)
        .map_err(|e| e.to_string())?;
    std::fs::write(&path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(vec![path])
}

fn completions(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let mut command = Args::command();
    let shells = [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ];
    shells
        .into_iter()
        .map(|shell| {
            clap_complete::generate_to(shell, &mut command, "ferry", folder)
                .map_err(|e| format!("cannot write completions into {}: {e}", folder.display()))
        })
        .collect()
}
