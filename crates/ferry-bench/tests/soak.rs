//! The soak in CI: 200 clients for 60 seconds against an in-process `ferryd` (plain and FTPS
//! sessions, uploads read back and compared, REST, ABOR, active and passive, idle clients and
//! clients that vanish). No unexpected error, no byte that differs, and the process's
//! descriptors and threads back where they were once the load stops. (This test is alone in its
//! binary, so no other test's sockets or threads are counted.) `bench/soak.sh` runs the same
//! workload against a release `ferryd` for as long as asked.

mod support;

use std::time::Duration;

use ferry_bench::workloads::{self, SoakLoad};
use ferry_bench::{Limits, Report};
use support::Server;

#[test]
fn two_hundred_clients_for_a_minute_see_no_error_and_leave_nothing_behind() {
    let server = Server::start_with(|config| {
        config.log_level = "error".into();
        config.max_sessions = 1000;
        config.tls.self_signed = true;
        config.limits.max_sessions_per_ip = 0;
        config.limits.ban_after_failures = 0;
    });
    let target = server.target();
    let load = SoakLoad {
        sessions: 200,
        duration: Duration::from_secs(60),
        pid: Some(std::process::id()),
        // Clients run a few sessions each in a minute (more in a release build): every third
        // one over FTPS.
        tls_every: 3,
        host: "127.0.0.1".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    workloads::raise_file_limit(0).unwrap();
    let report = runtime
        .block_on(workloads::soak(&target, None, &Limits::default(), load))
        .unwrap();
    drop(runtime);
    drop(server);
    let Report::Soak(soak) = report else {
        panic!("not a soak report: {report:?}");
    };
    eprintln!("{}", Report::Soak(soak.clone()).to_json(false, None));
    assert_eq!(soak.unexpected_errors, 0, "{:?}", soak.first_errors);
    assert_eq!(soak.mismatches, 0);
    let count = |kind: &str| soak.operations.get(kind).map_or(0, |o| o.count);
    for kind in ["stor", "retr", "retr rest", "list", "abor", "login tls"] {
        assert!(count(kind) > 0, "no {kind} in {:?}", soak.operations);
    }
    assert!(soak.provoked.contains_key("vanished mid-download (reset)"));
    // Sampled until back at the baseline, or for 30 s. This process also runs the bench and
    // the test harness, whose few threads come and go: two threads of slack; descriptors none.
    let (Some(before), Some(after)) = (soak.baseline, soak.after) else {
        panic!("no samples of this process");
    };
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(
        after.fds <= before.fds && after.threads <= before.threads + 2,
        "not back: before {before:?}, after {after:?}; threads now {threads:?}"
    );
}
