//! The scale-out topology of `deploy/cluster/`, started by its own script: HAProxy on
//! 127.0.0.1:2121 with PROXY protocol v2 in front of two ferryd nodes (127.0.0.2, 127.0.0.3),
//! both on one bucket of a 3-node Garage cluster. Real clients (curl, lftp, Python ftplib)
//! through HAProxy, and faults: a Garage node and a ferryd node killed with SIGKILL.
//!
//! The topology has fixed ports (2121, 30000-30199, 3900-3921), so this file is one test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::run_tool;

const MIB: usize = 1024 * 1024;
const URL: &str = "ftp://127.0.0.1:2121";
const DEMO: &str = "demo:demo";

/// The running topology; stopped (every process killed, its folder removed) when dropped.
struct Cluster {
    work: PathBuf,
}

impl Cluster {
    fn start(work: &Path) -> Cluster {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cluster/start.sh");
        let output = Command::new("timeout")
            .arg("120")
            .arg(&script)
            .arg(work)
            .env("FERRYD", env!("CARGO_BIN_EXE_ferryd"))
            .env("FERRY_STALL", "2")
            .env("FERRY_ABANDONED", "2")
            .output()
            .unwrap();
        let cluster = Cluster {
            work: work.to_path_buf(),
        };
        assert!(
            output.status.success(),
            "start.sh failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster
    }

    fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.work.join(format!("ferryd-{node}.log"))).unwrap_or_default()
    }

    fn pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.work.join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Transfers logged by a node so far ("transfer" lines with this verb).
    fn transfers(&self, node: &str, verb: &str) -> usize {
        self.log(node)
            .lines()
            .filter(|l| l.contains("transfer peer=") && l.contains(verb))
            .count()
    }

    /// Kills a ferryd node with SIGKILL.
    fn kill_node(&self, node: &str) {
        kill(self.pid(&format!("ferryd-{node}.pid")));
    }

    /// Starts a node again with the command start.sh used.
    fn restart_node(&self, node: &str) {
        let status = Command::new(self.work.join(format!("ferryd-{node}.sh")))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cluster/stop.sh");
        let _ = Command::new(script).arg(&self.work).status();
    }
}

fn kill(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// The S3 client on Garage's second node (the first is killed), with the cluster's key.
fn store(work: &Path) -> (tokio::runtime::Runtime, ferry_server::storage::s3::S3Client) {
    let text = std::fs::read_to_string(work.join("credentials")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            .unwrap()
    };
    let config = ferry_server::storage::s3::S3Config {
        endpoint: "http://127.0.0.1:3910".into(),
        region: "garage".into(),
        bucket: "ferry".into(),
        access_key: field("aws_access_key_id"),
        secret_key: field("aws_secret_access_key"),
        session_token: None,
        path_style: true,
        allow_http: true,
        retries: 3,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = ferry_server::storage::s3::S3Client::new(config).unwrap();
    (runtime, client)
}

fn random_file(path: &Path, len: usize, seed: u8) {
    let mut state = u64::from(seed) * 0x9E37_79B9 + 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["-sS", "--ftp-pasv"];
    all.extend_from_slice(args);
    run_tool("curl", &all, None, None)
}

#[test]
fn two_nodes_behind_haproxy_share_one_bucket_and_survive_kills() {
    let missing: Vec<&str> = ["garage", "haproxy"]
        .into_iter()
        .filter(|tool| {
            !run_tool("sh", &["-c", &format!("command -v {tool} || test -x $HOME/.cargo/bin/{tool} || test -x /usr/sbin/{tool}")], None, None).0
        })
        .collect();
    if !missing.is_empty() {
        support::skip(&format!("{missing:?} not installed"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let cluster = Cluster::start(&work);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();

    // A file stored through one node is listed and read byte-exact through both, at once.
    let up = files.join("shared.bin");
    random_file(&up, 3 * MIB + 7, 1);
    let (ok, _, err) = curl(&[
        "-T",
        up.to_str().unwrap(),
        &format!("ftp://{DEMO}@127.0.0.1:2121/shared.bin"),
    ]);
    assert!(ok, "upload: {err}");
    for round in 0..2 {
        let got = files.join(format!("got-{round}.bin"));
        let (ok, _, err) = curl(&[
            "-o",
            got.to_str().unwrap(),
            &format!("ftp://{DEMO}@127.0.0.1:2121/shared.bin"),
        ]);
        assert!(ok, "download {round}: {err}");
        assert!(
            std::fs::read(&got).unwrap() == std::fs::read(&up).unwrap(),
            "download {round} differs"
        );
    }
    assert_eq!(cluster.transfers("a", "RETR"), 1, "{}", cluster.log("a"));
    assert_eq!(cluster.transfers("b", "RETR"), 1, "{}", cluster.log("b"));
    // lftp and ftplib list it, through both nodes.
    for _ in 0..2 {
        let (ok, out, err) = run_tool(
            "lftp",
            &[
                "-u",
                "demo,demo",
                "-e",
                "set ftp:passive-mode on; cls -1; quit",
                URL,
            ],
            None,
            None,
        );
        assert!(
            ok && out.lines().any(|l| l == "shared.bin"),
            "lftp: {out}{err}"
        );
    }
    let script = "import ftplib\nfor _ in range(2):\n    f = ftplib.FTP()\n    f.connect('127.0.0.1', 2121, timeout=20)\n    f.login('demo', 'demo')\n    assert 'shared.bin' in f.nlst(), f.nlst()\n    f.voidcmd('TYPE I')\n    print(f.size('shared.bin'))\n    f.quit()\n";
    let (ok, out, err) = run_tool("python3", &["-c", script], None, None);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [(3 * MIB + 7).to_string(), (3 * MIB + 7).to_string()]
    );
    // Every session's peer is the client, never the proxy.
    for node in ["a", "b"] {
        let log = cluster.log(node);
        assert!(log.contains("peer=127.0.0.1"), "{log}");
    }

    // A Garage node killed during 8 transfers (4 uploads, 4 downloads): none fails.
    let mut downloads = Vec::new();
    for i in 0..4 {
        let path = files.join(format!("down-{i}.bin"));
        random_file(&path, 12 * MIB, 10 + i as u8);
        let (ok, _, err) = curl(&[
            "-T",
            path.to_str().unwrap(),
            &format!("ftp://{DEMO}@127.0.0.1:2121/down-{i}.bin"),
        ]);
        assert!(ok, "{err}");
        downloads.push(path);
    }
    let mut children = Vec::new();
    for i in 0..4 {
        let path = files.join(format!("up-{i}.bin"));
        random_file(&path, 16 * MIB, 20 + i as u8);
        let child = Command::new("curl")
            .args(["-sS", "--limit-rate", "4M", "-T", path.to_str().unwrap()])
            .arg(format!("ftp://{DEMO}@127.0.0.1:2121/up-{i}.bin"))
            .spawn()
            .unwrap();
        children.push((format!("upload {i}"), child));
        let got = files.join(format!("down-{i}.got"));
        let child = Command::new("curl")
            .args(["-sS", "--limit-rate", "4M", "-o", got.to_str().unwrap()])
            .arg(format!("ftp://{DEMO}@127.0.0.1:2121/down-{i}.bin"))
            .spawn()
            .unwrap();
        children.push((format!("download {i}"), child));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // The first store node: the nodes reach the store through HAProxy, which leaves it out.
    let garage1 = std::fs::read_to_string(work.join("pids"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kill(garage1);
    for (name, mut child) in children {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} did not end");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{name} failed with a Garage node down");
    }
    let (runtime, client) = store(&work);
    let read = |key: &str| {
        runtime.block_on(async {
            let mut body = client.get(key, 0).await.unwrap();
            let mut all = Vec::new();
            while let Some(chunk) = body.chunk().await.unwrap() {
                all.extend_from_slice(&chunk);
            }
            all
        })
    };
    for (i, download) in downloads.iter().enumerate() {
        assert!(
            read(&format!("home/up-{i}.bin"))
                == std::fs::read(files.join(format!("up-{i}.bin"))).unwrap(),
            "upload {i} differs"
        );
        assert!(
            std::fs::read(files.join(format!("down-{i}.got"))).unwrap()
                == std::fs::read(download).unwrap(),
            "download {i} differs"
        );
    }

    // A ferryd node killed during a 1 GiB upload: nothing under the final name; the client's
    // next connection goes to the other node and completes; the orphan is swept.
    let big = files.join("big.bin");
    random_file(&big, 1024 * MIB, 3);
    let (a_before, b_before) = (cluster.log("a").len(), cluster.log("b").len());
    let mut upload = Command::new("curl")
        .args(["-sS", "--limit-rate", "100M", "-T", big.to_str().unwrap()])
        .arg(format!("ftp://{DEMO}@127.0.0.1:2121/big.bin"))
        .spawn()
        .unwrap();
    // Which node has it: the one whose log grows with the upload's STOR.
    let deadline = Instant::now() + Duration::from_secs(20);
    let node = loop {
        let a = &cluster.log("a")[a_before..];
        let b = &cluster.log("b")[b_before..];
        if a.contains("login peer=") {
            break "a";
        }
        if b.contains("login peer=") {
            break "b";
        }
        assert!(Instant::now() < deadline, "no node took the upload");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(2500));
    cluster.kill_node(node);
    let status = upload.wait().unwrap();
    assert!(!status.success(), "curl must see the upload fail");
    let head = runtime.block_on(client.head("home/big.bin")).unwrap();
    assert!(head.is_none(), "a cut upload appeared under its name");
    let pending = runtime
        .block_on(client.list_multipart_uploads("home/", None))
        .unwrap();
    assert!(
        pending.uploads.iter().any(|u| u.key == "home/big.bin"),
        "{pending:?}"
    );
    let (ok, _, err) = curl(&[
        "-T",
        big.to_str().unwrap(),
        &format!("ftp://{DEMO}@127.0.0.1:2121/big.bin"),
    ]);
    assert!(ok, "the next connection failed: {err}");
    let head = runtime
        .block_on(client.head("home/big.bin"))
        .unwrap()
        .unwrap();
    assert_eq!(head.size, 1024 * MIB as u64);
    // Started again, the node sweeps the upload its death left (older than 2 s).
    std::thread::sleep(Duration::from_millis(2100));
    cluster.restart_node(node);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pending = runtime
            .block_on(client.list_multipart_uploads("home/", None))
            .unwrap();
        if pending.uploads.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was not swept: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_file(&big);
    drop(cluster);
}
