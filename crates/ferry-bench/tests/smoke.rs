//! Smoke test: every workload runs for about a second, with tiny sizes, against an in-process
//! `ferryd` on 127.0.0.1 port 0, and reports sane figures; the big transfers also over explicit
//! FTPS, against a `ferryd` that requires TLS data connections, and in TYPE A.

mod support;

use std::time::Duration;

use ferry_bench::workloads::{self, Concurrency, SlowLoad};
use ferry_bench::{Limits, Report};
use ferry_proto::command::TransferType;
use support::{Server, BIG_BYTES, FOLDER_ENTRIES, SMALL_BYTES, TEXT_LINE, TEXT_LINES};

fn run(
    future: impl std::future::Future<Output = Result<Report, ferry_bench::BenchError>>,
) -> Report {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("bench runtime");
    let report = runtime.block_on(future).expect("workload runs");
    let json = report.to_json(false, None);
    assert!(
        json.starts_with("{\"workload\":") && !json.contains('\n') && !json.contains("tls"),
        "{json}"
    );
    let tls_json = report.to_json(true, None);
    assert!(tls_json.ends_with(",\"tls\":true}"), "{tls_json}");
    let cpu_json = report.to_json(false, Some(0.5));
    assert!(cpu_json.contains(",\"cpu_s\":0.5"), "{cpu_json}");
    report
}

fn about_a_second(clients: usize) -> Concurrency {
    Concurrency {
        clients,
        duration: Duration::from_secs(1),
    }
}

#[test]
fn retr_big_moves_the_whole_file() {
    let server = Server::start();
    let report = run(workloads::retr_big(
        &server.target(),
        &Limits::default(),
        "big.bin",
        2,
        TransferType::Image,
    ));
    let Report::RetrBig(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.bytes, BIG_BYTES as u64);
    assert_eq!(result.runs, 2);
    assert!(result.mib_per_s > 0.0 && result.best_mib_per_s >= result.mib_per_s);
}

#[test]
fn retr_big_ascii_receives_crlf_line_ends() {
    let server = Server::start();
    let report = run(workloads::retr_big(
        &server.target(),
        &Limits::default(),
        "text.txt",
        2,
        TransferType::Ascii,
    ));
    let json = report.to_json(false, None);
    assert!(
        json.starts_with("{\"workload\":\"retr-big-ascii\","),
        "{json}"
    );
    let Report::RetrBigAscii(result) = report else {
        panic!("{report:?}")
    };
    // One CR more per line; the CR already in each line is sent as it is.
    assert_eq!(result.bytes, ((TEXT_LINE.len() + 1) * TEXT_LINES) as u64);
    assert_eq!(result.runs, 2);
}

#[test]
fn slow_readers_read_at_the_rate_asked_for() {
    let server = Server::start();
    let rate = 65_536;
    let report = run(workloads::slow_readers(
        &server.target(),
        &Limits::default(),
        SlowLoad {
            clients: 3,
            rate,
            duration: Duration::from_secs(2),
            transfer_type: TransferType::Image,
        },
        "big.bin",
        &[std::process::id()],
    ));
    let Report::SlowReaders(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!((result.readers, result.errors), (3, 0), "{result:?}");
    // Each client reads one 16 KiB chunk at once, then 64 KiB a second: 144 KiB in 2 s.
    let per_client = result.bytes as f64 / 3.0;
    assert!(
        (100_000.0..=200_000.0).contains(&per_client),
        "{per_client} bytes per client: {result:?}"
    );
    let client_rate = result.client_rate / rate as f64;
    assert!((0.8..=1.3).contains(&client_rate), "{result:?}");
    assert!(result.samples >= 2 && result.rss_peak_kib >= result.rss_before_kib);
    assert!(result.kib_per_client.is_finite() && result.rss_after_kib > 0);
}

#[test]
fn stor_big_uploads_and_deletes() {
    let server = Server::start();
    let target = server.target();
    let report = run(workloads::stor_big(
        &target,
        &Limits::default(),
        "up.bin",
        3_000_000,
        1,
    ));
    let Report::StorBig(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.bytes, 3_000_000);
    assert!(result.mib_per_s > 0.0);
    assert!(
        !server.root.path().join("up.bin.0").exists(),
        "upload deleted after the run"
    );
}

#[test]
fn retr_big_over_tls_resumes_the_control_session() {
    let server = Server::start_tls();
    let report = run(workloads::retr_big(
        &server.tls_target(),
        &Limits::default(),
        "big.bin",
        3,
        TransferType::Image,
    ));
    let Report::RetrBig(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.bytes, BIG_BYTES as u64);
    assert_eq!(result.runs, 3);
}

#[test]
fn stor_big_over_tls_uploads_every_byte() {
    let server = Server::start_tls();
    let report = run(workloads::stor_big(
        &server.tls_target(),
        &Limits::default(),
        "up.bin",
        3_000_000,
        3,
    ));
    let Report::StorBig(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.bytes, 3_000_000);
    assert_eq!(result.runs, 3);
    assert!(
        !server.root.path().join("up.bin.2").exists(),
        "upload deleted after the run"
    );
}

#[test]
fn logins_complete_without_errors() {
    let server = Server::start();
    let report = run(workloads::logins(
        &server.target(),
        &Limits::default(),
        about_a_second(4),
        None,
    ));
    let Report::Logins(result) = report else {
        panic!("{report:?}")
    };
    assert!(result.completed > 0 && result.errors == 0, "{result:?}");
    assert!(result.per_second > 0.0 && result.p99_ms >= result.p50_ms);
    assert!(result.offered_per_second.is_none());
}

#[test]
fn paced_logins_keep_to_their_schedule() {
    let server = Server::start();
    let report = run(workloads::logins(
        &server.target(),
        &Limits::default(),
        about_a_second(4),
        Some(100.0),
    ));
    let json = report.to_json(false, None);
    let Report::Logins(result) = report else {
        panic!("{report:?}")
    };
    // 4 clients, each due every 40 ms for about a second (after a 50 ms lead): about 24 logins
    // each, where a closed loop would make thousands.
    assert!(
        (60..=104).contains(&result.completed) && result.errors == 0,
        "{result:?}"
    );
    assert_eq!(result.offered_per_second, Some(100.0));
    assert!(json.contains("\"offered_per_second\":100.0"), "{json}");
}

#[test]
fn retr_small_moves_whole_files() {
    let server = Server::start();
    let load = about_a_second(4);
    let report = run(workloads::retr_small(
        &server.target(),
        &Limits::default(),
        load,
        "small.txt",
    ));
    let Report::RetrSmall(result) = report else {
        panic!("{report:?}")
    };
    assert!(result.completed > 0 && result.errors == 0, "{result:?}");
    assert_eq!(result.bytes, result.completed * SMALL_BYTES as u64);
}

#[test]
fn list_big_counts_every_entry() {
    let server = Server::start();
    let report = run(workloads::list_big(
        &server.target(),
        &Limits::default(),
        "many",
        2,
    ));
    let Report::ListBig(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.nlst_lines, FOLDER_ENTRIES as u64);
    assert!(result.list_lines >= FOLDER_ENTRIES as u64);
    assert!(
        result
            .mlsd_lines
            .is_some_and(|lines| lines >= FOLDER_ENTRIES as u64),
        "{result:?}"
    );
    assert!(result.list_ms > 0.0 && result.nlst_ms > 0.0);
}

#[test]
fn idle_sessions_are_measured() {
    let server = Server::start();
    let pid = [std::process::id()];
    let report = run(workloads::idle(
        &server.target(),
        &Limits::default(),
        20,
        &pid,
    ));
    let Report::Idle(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.clients, 20);
    assert!(result.connect_seconds > 0.0, "{result:?}");
    assert!(result.rss_before_kib > 0 && result.rss_after_kib > 0);
    assert!(result.kib_per_session.is_finite() && result.pss_kib_per_session.is_finite());
}

#[test]
fn ceiling_copies_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("big.bin");
    std::fs::write(&path, ferry_bench::data::generated_bytes(BIG_BYTES)).unwrap();
    let report = workloads::ceiling(&path, 1, &Limits::default()).expect("ceiling runs");
    let Report::Ceiling(result) = report else {
        panic!("{report:?}")
    };
    assert_eq!(result.bytes, BIG_BYTES as u64);
    assert!(result.mib_per_s > 0.0);
}
