//! `ferry`: the Ferry FTP client, an interactive shell in the classic BSD `ftp` style and
//! one-shot `get`/`put`/`ls`/`mirror` of `ftp://` URLs.
//!
//! Exit codes are listed in [`exit`] and in `--help`: 0 success, 1 other failure, 2 usage,
//! 3 connection/DNS failure, 4 login refused, 5 remote file not found, 6 transfer broken,
//! 7 local I/O error, 8 protocol error, 9 TLS failure, 10 server certificate not trusted,
//! 11 checksum mismatch (`--verify`).

mod args;
mod commands;
mod complete;
mod copy;
mod exit;
mod files;
mod generate;
mod input;
mod local;
mod mirror;
mod mirror_output;
mod oneshot;
mod pget;
mod printer;
mod progress;
mod report;
mod session;
mod shell;
mod tls;
mod trace;
mod trees;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    if args.version {
        println!("ferry {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(code) = generate::requested(&args) {
        return code;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let code = match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(error) => {
            eprintln!("ferry: cannot start: {error}");
            exit::OTHER
        }
    };
    ExitCode::from(code)
}

async fn run(args: args::Args) -> u8 {
    let Some(trace) = &args.trace else {
        return run_session(&args).await;
    };
    let format = match trace::Format::of(trace) {
        Ok(format) => format,
        Err(usage) => {
            eprintln!("ferry: {}", printer::printable(&usage));
            return 2;
        }
    };
    if let Err(error) = trace::create(trace) {
        eprintln!("ferry: {}", printer::printable(&error));
        return exit::LOCAL_IO;
    }
    trace::start();
    let words: Vec<String> = args.words.iter().map(|w| trace::masked_word(w)).collect();
    trace::user(format!("ferry {}", words.join(" ")).trim_end());
    let code = run_session(&args).await;
    match trace::write(trace, format) {
        Ok(()) => code,
        Err(error) => {
            eprintln!("ferry: {}", printer::printable(&error));
            if code == exit::OK {
                exit::LOCAL_IO
            } else {
                code
            }
        }
    }
}

async fn run_session(args: &args::Args) -> u8 {
    match oneshot::Job::detect(&args.words) {
        Some(Ok(job)) => oneshot::run(job, args).await,
        Some(Err(usage)) => {
            eprintln!("ferry: {}", printer::printable(&usage));
            2
        }
        None => shell::run(args).await,
    }
}
