//! A real Garage cluster on loopback for the S3 tests: N `garage server` processes, each with
//! its own folder and ports, joined into one layout, with a bucket `ferry` and a key that owns
//! it.
//!
//! Every node runs under a small `sh` watchdog that holds a pipe from the test process: when
//! the pipe closes (the cluster is dropped, or the test process ends, even without running
//! destructors as for a `static` cluster), the watchdog kills its node and removes its folder.
//! Every wait is bounded.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferry_server::storage::s3::{S3Client, S3Config};

/// The bucket every cluster has.
pub const BUCKET: &str = "ferry";

/// The S3 region the nodes are configured with.
pub const REGION: &str = "garage";

/// How long a cluster may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs one node and kills it (and, on end of input, removes its folder) when told.
/// Arguments: garage binary, config file, log file, node folder.
const WATCHDOG: &str = r#"
"$0" -c "$1" server </dev/null >>"$2" 2>&1 &
pid=$!
read -r what || what=exit
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ "$what" != kill ]; then rm -rf "$3"; rmdir "$(dirname "$3")" 2>/dev/null; fi
exit 0
"#;

/// A running Garage cluster; dropping it stops the nodes and removes their folders.
pub struct GarageCluster {
    bin: PathBuf,
    root: PathBuf,
    nodes: Vec<Node>,
    access_key: String,
    secret_key: String,
}

struct Node {
    dir: PathBuf,
    s3_port: u16,
    /// The watchdog; `None` while the node is killed.
    watchdog: Option<(Child, ChildStdin)>,
}

impl GarageCluster {
    /// Starts `nodes` nodes (replication factor `nodes`, at most 3) and waits until every one
    /// serves the bucket; `None` when no `garage` binary is found. Panics if the cluster does
    /// not come up in time.
    pub fn start(nodes: usize) -> Option<GarageCluster> {
        assert!((1..=7).contains(&nodes));
        let bin = find_garage()?;
        let root = unique_dir();
        let secret = random_hex(32);
        let mut cluster = GarageCluster {
            bin,
            root,
            nodes: Vec::new(),
            access_key: format!("GK{}", random_hex(12)),
            secret_key: random_hex(32),
        };
        for i in 0..nodes {
            let dir = cluster.root.join(format!("node{i}"));
            std::fs::create_dir_all(&dir).expect("garage node folder");
            cluster.nodes.push(Node {
                dir,
                s3_port: 0,
                watchdog: None,
            });
            cluster.launch(i, nodes.min(3), &secret);
        }
        cluster.set_up();
        Some(cluster)
    }

    /// The S3 URL of node `i`: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn region(&self) -> &str {
        REGION
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// A client configuration for node `i` (path-style, HTTP, 3 retries).
    pub fn s3_config(&self, i: usize) -> S3Config {
        S3Config {
            endpoint: self.endpoint(i),
            region: REGION.to_string(),
            bucket: BUCKET.to_string(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            session_token: None,
            path_style: true,
            allow_http: true,
            retries: 3,
        }
    }

    /// A client of node `i`.
    pub fn client(&self, i: usize) -> S3Client {
        S3Client::new(self.s3_config(i)).expect("S3 client")
    }

    /// SIGKILLs node `i` and waits for it to be gone; its folder stays for [`restart`].
    ///
    /// [`restart`]: GarageCluster::restart
    pub fn kill(&mut self, i: usize) {
        if let Some((mut child, mut stdin)) = self.nodes[i].watchdog.take() {
            let _ = stdin.write_all(b"kill\n");
            drop(stdin);
            wait_bounded(&mut child);
        }
    }

    /// Starts node `i` again (after [`kill`]) on its folder and ports, and waits (bounded)
    /// until its S3 port answers.
    ///
    /// [`kill`]: GarageCluster::kill
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].watchdog.is_none(), "node {i} is running");
        self.spawn(i);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.nodes[i].s3_port)).is_err() {
            assert!(Instant::now() < deadline, "garage node {i} did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log of node `i` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("garage.log")).unwrap_or_default()
    }

    /// Gives node `i` two free ports and starts it, and waits until it answers on both. A port
    /// is only free at the time of asking: when another process takes it before the node binds
    /// it (the node's log says "Address already in use"), the node is started again on new
    /// ports, 5 times at most. Something answering on the ports is not enough (the other
    /// process may be listening there): the node must answer `garage node id` over its RPC
    /// port. Panics if the node does not come up in time.
    fn launch(&mut self, i: usize, replication: usize, secret: &str) {
        const TRIES: usize = 5;
        for attempt in 1..=TRIES {
            let rpc_port = free_port();
            let s3_port = (0..100)
                .map(|_| free_port())
                .find(|&port| port != rpc_port)
                .expect("a second free port");
            let node = &mut self.nodes[i];
            node.s3_port = s3_port;
            let _ = std::fs::remove_file(node.dir.join("garage.log"));
            write_config(&node.dir, replication, secret, rpc_port, s3_port);
            self.spawn(i);
            let deadline = Instant::now() + START_TIMEOUT;
            let taken = loop {
                if self.log(i).contains("Address already in use") {
                    break true;
                }
                let s3_answers = std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok();
                if s3_answers && self.garage(i, &["node", "id", "-q"]).is_ok() {
                    // A node that answered may still have failed to bind its other port.
                    break self.log(i).contains("Address already in use");
                }
                assert!(
                    Instant::now() < deadline,
                    "garage node {i} did not come up:\n{}",
                    self.log(i)
                );
                std::thread::sleep(Duration::from_millis(100));
            };
            if !taken {
                return;
            }
            assert!(
                attempt < TRIES,
                "garage node {i} found no free ports in {TRIES} tries:\n{}",
                self.log(i)
            );
            self.kill(i);
        }
    }

    /// Starts the watchdog, and under it the server, of node `i`.
    fn spawn(&mut self, i: usize) {
        let dir = &self.nodes[i].dir;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(&self.bin)
            .arg(dir.join("garage.toml"))
            .arg(dir.join("garage.log"))
            .arg(dir)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the garage watchdog");
        let stdin = child.stdin.take().unwrap();
        self.nodes[i].watchdog = Some((child, stdin));
    }

    /// Joins the nodes, applies a layout, creates the bucket and the key, and waits until
    /// every node serves the bucket.
    fn set_up(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let ids: Vec<String> = (0..self.nodes.len())
            .map(|i| self.until(deadline, i, &["node", "id", "-q"]))
            .map(|out| out.trim().to_string())
            .collect();
        for id in &ids[1..] {
            self.until(deadline, 0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            self.until(
                deadline,
                0,
                &["layout", "assign", "-z", "dc1", "-c", "1G", short],
            );
        }
        self.until(deadline, 0, &["layout", "apply", "--version", "1"]);
        self.until(deadline, 0, &["bucket", "create", BUCKET]);
        let (key, secret) = (self.access_key.as_str(), self.secret_key.as_str());
        self.until(
            deadline,
            0,
            &["key", "import", "-n", "ferry-test", "--yes", key, secret],
        );
        self.until(
            deadline,
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", key,
            ],
        );
        for i in 0..self.nodes.len() {
            self.wait_for_s3(i, deadline);
        }
    }

    /// Runs `garage ARGS` against node `i` until it succeeds (the node may still be starting,
    /// or not yet know the others); its standard output. Panics at `deadline`.
    fn until(&self, deadline: Instant, i: usize, args: &[&str]) -> String {
        loop {
            let error = match self.garage(i, args) {
                Ok(stdout) => return stdout,
                Err(stderr) => stderr,
            };
            assert!(
                Instant::now() < deadline,
                "garage {args:?} kept failing: {error}\nnode log:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs `garage ARGS` once against node `i`: its standard output, or its standard error.
    fn garage(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.bin)
            .arg("-c")
            .arg(self.nodes[i].dir.join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .expect("run garage");
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    /// Waits until a write and a read of a probe object through node `i` succeed (the
    /// bucket and key tables reach every node a little after they are written). Runs on a
    /// thread of its own, so that an async test may call it.
    fn wait_for_s3(&self, i: usize, deadline: Instant) {
        let mut config = self.s3_config(i);
        config.retries = 0;
        let probe = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = S3Client::new(config).unwrap();
                let key = format!("probe-{i}");
                loop {
                    let body = bytes::Bytes::from_static(b"probe");
                    let ready = client.put(&key, body).await.is_ok()
                        && client.head(&key).await.is_ok_and(|h| h.is_some())
                        && client.delete(&key).await.is_ok();
                    if ready {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(client.check().await);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        });
        if let Err(error) = probe.join().unwrap() {
            panic!(
                "garage node {i} does not serve the bucket: {error:?}\nnode log:\n{}",
                self.log(i)
            );
        }
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        // End of input: each watchdog kills its node and removes its folder.
        let children: Vec<Child> = self
            .nodes
            .iter_mut()
            .filter_map(|node| node.watchdog.take())
            .map(|(child, _stdin)| child)
            .collect();
        for mut child in children {
            wait_bounded(&mut child);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `GARAGE_BIN`, else `garage` on the PATH, else in `~/.cargo/bin` (where `cargo install`
/// puts it), else `/root/.cargo/bin/garage`.
fn find_garage() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(bin));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("garage"));
    let cargo_bin = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/garage"))
        .into_iter();
    on_path
        .chain(cargo_bin)
        .chain([PathBuf::from("/root/.cargo/bin/garage")])
        .find(|candidate| candidate.is_file())
}

/// A node's configuration: loopback ports, sqlite, its own folders.
fn write_config(dir: &Path, replication: usize, secret: &str, rpc_port: u16, s3_port: u16) {
    let text = format!(
        r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"#,
        dir = dir.display()
    );
    std::fs::write(dir.join("garage.toml"), text).expect("write the garage configuration");
}

/// A port free at the time of asking, picked at random in 20000..32768: below Linux's
/// ephemeral range (32768..61000 by default), so that the connections and the port-0 listeners
/// of the tests running beside it cannot take it before its node binds it.
fn free_port() -> u16 {
    for _ in 0..1000 {
        let random = random_hex(2);
        let port = 20000 + (u16::from_str_radix(&random, 16).unwrap() % 12768);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32768 after 1000 tries")
}

/// `bytes` random bytes, hex.
fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut random = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .expect("read /dev/urandom");
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new folder under the temporary folder.
fn unique_dir() -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "ferry-garage-{}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed),
        random_hex(4)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).expect("garage cluster folder");
    dir
}

/// Waits for a watchdog to end (10 s at most), then makes sure it has.
fn wait_bounded(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
