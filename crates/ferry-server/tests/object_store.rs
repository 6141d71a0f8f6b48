//! ferryd on S3-compatible object storage: a real 3-node Garage cluster (replication factor 3)
//! started by the test, real FTP clients (curl, Python ftplib) and the raw control connection.
//! Every check of what the store holds is made with the S3 client directly, not through ferryd.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_server::storage::s3::S3Client;
use support::garage::GarageCluster;
use support::{run_tool, Control, TestServer, PASSWORD};

const MIB: usize = 1024 * 1024;

/// A 3-node cluster, or `None` (and a skip, which fails under CI) where Garage is missing.
fn cluster() -> Option<GarageCluster> {
    let cluster = GarageCluster::start(3);
    if cluster.is_none() {
        support::skip("garage is not installed (cargo install garage --version 2.5.0 --locked)");
    }
    cluster
}

/// Runs async S3 calls from a test.
struct Store {
    runtime: tokio::runtime::Runtime,
    client: S3Client,
}

impl Store {
    fn new(cluster: &GarageCluster, node: usize) -> Store {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = S3Client::new(cluster.s3_config(node)).unwrap();
        Store { runtime, client }
    }

    fn put(&self, key: &str, bytes: &[u8]) {
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.runtime.block_on(self.client.put(key, body)).unwrap();
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.runtime.block_on(async {
            let mut body = match self.client.get(key, 0).await {
                Ok(body) => body,
                Err(ferry_server::storage::s3::S3Error::NotFound) => return None,
                Err(e) => panic!("GET {key}: {e}"),
            };
            let mut all = Vec::new();
            while let Some(chunk) = body.chunk().await.unwrap() {
                all.extend_from_slice(&chunk);
            }
            Some(all)
        })
    }

    fn exists(&self, key: &str) -> bool {
        self.runtime
            .block_on(self.client.head(key))
            .unwrap()
            .is_some()
    }

    /// Keys of the multipart uploads pending under `prefix`.
    fn pending_uploads(&self, prefix: &str) -> Vec<String> {
        let page = self
            .runtime
            .block_on(self.client.list_multipart_uploads(prefix, None))
            .unwrap();
        page.uploads.into_iter().map(|u| u.key).collect()
    }

    /// Waits (bounded) until no multipart upload is pending under `prefix`.
    fn wait_no_pending_uploads(&self, prefix: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pending = self.pending_uploads(prefix);
            if pending.is_empty() || Instant::now() > deadline {
                return pending;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The AWS shared-credentials file for the cluster's key.
fn credentials_file(dir: &Path, cluster: &GarageCluster) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            cluster.access_key(),
            cluster.secret_key()
        ),
    )
    .unwrap();
    path
}

/// A server on node `node`'s endpoint: anonymous read-only on `s3://ferry/<prefix>/pub`, and the
/// writable user `carol` on `s3://ferry/<prefix>/home`, with 5 MiB parts, 2 in flight.
fn s3_server(
    cluster: &GarageCluster,
    node: usize,
    prefix: &str,
    adjust: impl FnOnce(&mut ferry_server::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[user]]\nname = \"carol\"\npassword = \"{hash}\"\nroot = \"s3://{}/{prefix}/home\"\nwritable = true\n\n\
             [[user]]\nname = \"dave\"\npassword = \"{hash}\"\nroot = \"s3://{}/{prefix}/home\"\n",
            cluster.bucket(),
            cluster.bucket()
        ),
    )
    .unwrap();
    let credentials = credentials_file(dir.path(), cluster);
    let endpoint = cluster.endpoint(node);
    let region = cluster.region().to_string();
    let root = PathBuf::from(format!("s3://{}/{prefix}/pub", cluster.bucket()));
    let server = TestServer::start_with(|config| {
        config.root = root;
        config.users_file = Some(users);
        config.s3.endpoint = Some(endpoint);
        config.s3.region = Some(region);
        config.s3.credentials_file = Some(credentials);
        config.s3.part_size = 5 * MIB as u64;
        config.s3.parts_in_flight = 2;
        adjust(config);
    });
    (server, dir)
}

/// Bytes no two tests share and no pattern hides a misplaced block in.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// RETR over EPSV: the bytes and the final reply code.
fn download(control: &mut Control, command: &str) -> (Vec<u8>, u16) {
    let data = control.epsv();
    control.send(command);
    let reply = control.reply();
    if reply.code != 150 {
        return (Vec::new(), reply.code);
    }
    let bytes = support::read_all(data);
    (bytes, control.reply().code)
}

fn listing(control: &mut Control, command: &str) -> String {
    let (bytes, code) = download(control, command);
    assert_eq!(code, 226, "{command}");
    String::from_utf8(bytes).unwrap()
}

#[test]
fn anonymous_users_read_an_s3_prefix_with_curl_and_cannot_write() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let readme = support::readme_bytes();
    store.put("anon/pub/readme.txt", &readme);
    store.put("anon/pub/docs/a b%#[ü.txt", b"odd name\n");
    store.put("anon/pub/docs/deep/inner.txt", b"inner\n");
    // Not served: outside the prefix.
    store.put("anon/secret.txt", b"secret\n");
    let (server, _dir) = s3_server(&cluster, 1, "anon", |_| {});

    let (ok, out, err) = run_tool("curl", &["-sS", &server.url("/readme.txt")], None, None);
    assert!(ok, "{err}");
    assert_eq!(out.as_bytes(), readme.as_slice());
    // REST: the tail from byte 1000.
    let (ok, out, err) = run_tool(
        "curl",
        &["-sS", "-r", "1000-", &server.url("/readme.txt")],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.as_bytes(), &readme[1000..]);
    let (ok, out, err) = run_tool("curl", &["-sS", &server.url("/")], None, None);
    assert!(ok, "{err}");
    assert!(out.contains("readme.txt") && out.contains("docs"), "{out}");
    assert!(!out.contains("secret"), "{out}");
    let (ok, out, err) = run_tool("curl", &["-sS", "-l", &server.url("/docs/")], None, None);
    assert!(ok, "{err}");
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["a b%#[ü.txt", "deep"]);

    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    control.expect("CWD /docs/deep", 250);
    control.expect("CWD /nowhere", 550);
    control.expect_text("SIZE /readme.txt", 213, &readme.len().to_string());
    control.expect("MDTM /readme.txt", 213);
    let reply = control.expect("MLST /docs", 250);
    assert!(reply.lines[1].contains("type=dir"), "{reply:?}");
    let (bytes, code) = download(&mut control, "RETR /docs/a b%#[ü.txt");
    assert_eq!((bytes.as_slice(), code), (&b"odd name\n"[..], 226));
    assert_eq!(control.upload("STOR new.txt", b"no"), 550);
    control.expect("DELE /readme.txt", 550);
    control.expect("MKD /made", 550);
    assert!(store.exists("anon/pub/readme.txt"));
    assert!(!store.exists("anon/pub/new.txt"));
    control.expect("QUIT", 221);
}

#[test]
fn a_user_stores_appends_resumes_renames_and_deletes_on_s3() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let (server, _dir) = s3_server(&cluster, 0, "rw", |_| {});
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);

    // 12 MiB: three parts of 5, 5 and 2 MiB.
    let big = content(12 * MIB, 1);
    assert_eq!(control.upload("STOR big.bin", &big), 226);
    assert_eq!(
        store.get("rw/home/big.bin").as_deref(),
        Some(big.as_slice())
    );
    let (bytes, code) = download(&mut control, "RETR big.bin");
    assert_eq!(code, 226);
    assert!(bytes == big, "RETR of the 12 MiB upload differs");
    control.expect("REST 7340033", 350);
    let (bytes, code) = download(&mut control, "RETR big.bin");
    assert_eq!(code, 226);
    assert!(bytes == big[7_340_033..], "RETR after REST differs");
    control.expect("REST 12582913", 350);
    assert_eq!(download(&mut control, "RETR big.bin").1, 554);
    control.expect_text("SIZE big.bin", 213, &(12 * MIB).to_string());

    // APPE onto a head of at least 5 MiB: copied inside the store.
    let tail = content(MIB + 17, 2);
    assert_eq!(control.upload("APPE big.bin", &tail), 226);
    let mut expected = big.clone();
    expected.extend_from_slice(&tail);
    assert!(
        store.get("rw/home/big.bin").unwrap() == expected,
        "APPE (copied head)"
    );
    // APPE onto a small head: the head is read into the first part.
    assert_eq!(control.upload("STOR small.txt", b"hello "), 226);
    assert_eq!(control.upload("APPE small.txt", b"world\n"), 226);
    assert_eq!(store.get("rw/home/small.txt").unwrap(), b"hello world\n");
    // APPE to a new name makes it.
    assert_eq!(control.upload("APPE fresh.txt", b"fresh\n"), 226);
    assert_eq!(store.get("rw/home/fresh.txt").unwrap(), b"fresh\n");
    // REST+STOR keeps the first bytes and writes from there.
    control.expect("REST 6", 350);
    assert_eq!(control.upload("STOR small.txt", b"there\n"), 226);
    assert_eq!(store.get("rw/home/small.txt").unwrap(), b"hello there\n");
    control.expect("REST 100", 350);
    assert_eq!(control.upload("STOR small.txt", b"x"), 554);
    assert_eq!(store.get("rw/home/small.txt").unwrap(), b"hello there\n");

    // STOU: a new name, never an existing one.
    let mut data = control.epsv();
    control.send("STOU");
    let reply = control.reply();
    assert_eq!(reply.code, 150, "{reply:?}");
    let name = reply.text().strip_prefix("FILE: ").unwrap().to_string();
    data.write_all(b"unique\n").unwrap();
    drop(data);
    assert_eq!(control.reply().code, 226);
    assert_eq!(store.get(&format!("rw/home/{name}")).unwrap(), b"unique\n");

    // Folders: MKD writes a marker; a folder made only by its files is a folder too.
    control.expect("MKD empty", 257);
    assert!(store.exists("rw/home/empty/"));
    control.expect("MKD empty", 550);
    control.expect("CWD empty", 250);
    control.expect("CWD /", 250);
    store.put("rw/home/implied/file.txt", b"implied\n");
    control.expect("CWD implied", 250);
    control.expect("CWD /", 250);
    let list = listing(&mut control, "MLSD");
    for line in [
        "type=dir",
        "; empty",
        "; implied",
        "; big.bin",
        "; small.txt",
    ] {
        assert!(list.contains(line), "{line} not in {list}");
    }
    control.expect("RMD implied", 550);
    control.expect("RMD big.bin", 550);
    control.expect("RMD empty", 250);
    assert!(!store.exists("rw/home/empty/"));

    // Renames: a file is copied then deleted; a folder with files is refused; a file renamed
    // to its own name stays.
    control.expect("RNFR big.bin", 350);
    control.expect("RNTO big.bin", 250);
    assert!(store.exists("rw/home/big.bin"));
    control.expect("RNFR small.txt", 350);
    control.expect("RNTO renamed.txt", 250);
    assert!(!store.exists("rw/home/small.txt"));
    assert_eq!(store.get("rw/home/renamed.txt").unwrap(), b"hello there\n");
    control.expect("RNFR implied", 350);
    control.expect("RNTO elsewhere", 550);
    assert!(store.exists("rw/home/implied/file.txt"));
    // A folder implied by its files (no marker, as other S3 tools make them) stays when its
    // last file is deleted or moved away, as an emptied folder on disk does: a recursive
    // delete (DELE each file, then RMD) works.
    store.put("rw/home/implied2/only.txt", b"x");
    control.expect("DELE implied2/only.txt", 250);
    control.expect("CWD implied2", 250);
    control.expect("CWD /", 250);
    control.expect("RMD implied2", 250);
    assert!(!store.exists("rw/home/implied2/"));
    // Nested: DELE, then RMD from the inside out.
    store.put("rw/home/deep/er/f.txt", b"x");
    control.expect("DELE deep/er/f.txt", 250);
    control.expect("RMD deep/er", 250);
    control.expect("RMD deep", 250);
    assert!(!store.exists("rw/home/deep/"));
    store.put("rw/home/implied3/f.txt", b"x");
    control.expect("RNFR implied3/f.txt", 350);
    control.expect("RNTO moved.txt", 250);
    control.expect("CWD implied3", 250);
    control.expect("CWD /", 250);
    control.expect("RMD implied3", 250);
    control.expect("DELE moved.txt", 250);

    // Deletes: a missing key is 550 (S3 itself would say 204).
    control.expect("DELE renamed.txt", 250);
    assert!(!store.exists("rw/home/renamed.txt"));
    control.expect("DELE renamed.txt", 550);
    control.expect("SITE CHMOD 644 big.bin", 502);
    // No file goes into a folder that is not there, nor under a file's name (the key would
    // make the file a folder too), by STOR, RNTO or MKD.
    assert_eq!(control.upload("STOR nowhere/file.txt", b"x"), 550);
    assert!(!store.exists("rw/home/nowhere/file.txt"));
    assert_eq!(control.upload("STOR big.bin/file.txt", b"x"), 550);
    assert_eq!(control.upload("STOR plain.txt", b"plain\n"), 226);
    assert_eq!(control.upload("STOR plain.txt/under.txt", b"x"), 550);
    control.expect("RNFR plain.txt", 350);
    control.expect("RNTO big.bin/plain.txt", 550);
    control.expect("RNFR plain.txt", 350);
    control.expect("RNTO nowhere/plain.txt", 550);
    control.expect("MKD plain.txt/sub", 550);
    for key in [
        "rw/home/plain.txt/under.txt",
        "rw/home/big.bin/plain.txt",
        "rw/home/nowhere/plain.txt",
        "rw/home/plain.txt/sub/",
    ] {
        assert!(!store.exists(key), "{key}");
    }
    assert_eq!(store.get("rw/home/plain.txt").unwrap(), b"plain\n");

    // Names round-trip as raw keys.
    let odd = "sp ace %41 #hash [br] ü€.txt";
    assert_eq!(control.upload(&format!("STOR {odd}"), b"odd\n"), 226);
    assert_eq!(store.get(&format!("rw/home/{odd}")).unwrap(), b"odd\n");
    let names = listing(&mut control, "NLST");
    assert!(names.lines().any(|n| n == odd), "{names}");
    control.expect("QUIT", 221);
}

#[test]
fn a_user_who_may_not_overwrite_cannot_replace_an_object() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    store.put("nover/home/kept.txt", b"kept\n");
    let (server, _dir) = s3_server(&cluster, 0, "nover", |_| {});
    // dave is read-only: no uploads at all.
    let mut control = server.login("dave");
    assert_eq!(control.upload("STOR kept.txt", b"replaced\n"), 550);
    assert_eq!(store.get("nover/home/kept.txt").unwrap(), b"kept\n");
    control.expect("QUIT", 221);
}

#[test]
fn an_aborted_or_broken_upload_leaves_nothing_in_the_store() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let (server, _dir) = s3_server(&cluster, 2, "cut", |config| {
        config.timeouts.stalled_transfer = 2;
    });
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);
    let part = content(11 * MIB, 3);

    // ABOR after two full parts went out.
    let mut data = control.epsv();
    control.expect("STOR aborted.bin", 150);
    data.write_all(&part).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    control.send("ABOR");
    let first = control.reply().code;
    assert!(first == 426 || first == 226, "{first}");
    if first == 426 {
        assert_eq!(control.reply().code, 226);
    }
    drop(data);

    // A connection cut off without the end of the data (reset).
    let data = control.epsv();
    control.expect("STOR reset.bin", 150);
    (&data).write_all(&part).unwrap();
    socket2::SockRef::from(&data)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(data);
    let code = control.reply().code;
    assert_eq!(code, 426);

    // A stalled upload: nothing more arrives for the stall timeout.
    let mut data = control.epsv();
    control.expect("STOR stalled.bin", 150);
    data.write_all(&part[..6 * MIB]).unwrap();
    assert_eq!(control.reply().code, 426);
    drop(data);

    // The session's end during an upload.
    let mut data = control.epsv();
    control.expect("STOR ended.bin", 150);
    data.write_all(&part[..6 * MIB]).unwrap();
    drop(control);
    drop(data);

    for name in ["aborted.bin", "reset.bin", "stalled.bin", "ended.bin"] {
        assert!(
            !store.exists(&format!("cut/home/{name}")),
            "{name} appeared"
        );
    }
    assert_eq!(store.wait_no_pending_uploads("cut/"), Vec::<String>::new());
}

#[test]
fn abandoned_multipart_uploads_are_swept_at_start() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let upload = store
        .runtime
        .block_on(store.client.create_multipart("sweep/home/left.bin"))
        .unwrap();
    let other = store
        .runtime
        .block_on(store.client.create_multipart("elsewhere/left.bin"))
        .unwrap();
    // Started as long ago, but running (on another node, say): it had a part just now.
    let running = store
        .runtime
        .block_on(store.client.create_multipart("sweep/home/a-running.bin"))
        .unwrap();
    let mut pending = store.pending_uploads("sweep/");
    pending.sort();
    assert_eq!(pending, ["sweep/home/a-running.bin", "sweep/home/left.bin"]);
    std::thread::sleep(Duration::from_millis(2100));
    let part = bytes::Bytes::from_static(b"a part just uploaded");
    store
        .runtime
        .block_on(
            store
                .client
                .upload_part("sweep/home/a-running.bin", &running, 1, part),
        )
        .unwrap();
    let (_server, _dir) = s3_server(&cluster, 0, "sweep", |config| {
        config.timeouts.stalled_transfer = 1;
        config.timeouts.abandoned_upload = 2;
    });
    assert_eq!(
        store.wait_no_pending_uploads("sweep/home/left"),
        Vec::<String>::new()
    );
    // The same pass looked at the running one (a few requests apart): given two seconds
    // more, it is still there.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !store.pending_uploads("sweep/home/a-").is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        store.pending_uploads("sweep/"),
        ["sweep/home/a-running.bin"],
        "an upload with a recent part is not abandoned"
    );
    // Outside the served prefixes: not this server's to sweep.
    assert_eq!(store.pending_uploads("elsewhere/"), ["elsewhere/left.bin"]);
    for (key, id) in [
        ("sweep/home/left.bin", upload),
        ("elsewhere/left.bin", other),
        ("sweep/home/a-running.bin", running),
    ] {
        let _ = store
            .runtime
            .block_on(store.client.abort_multipart(key, &id));
    }
}

#[test]
fn ftplib_and_ftps_work_unchanged_on_s3() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let (server, dir) = s3_server(&cluster, 1, "tls", |config| {
        config.tls.self_signed = true;
    });
    let local = dir.path().join("up.bin");
    let bytes = content(6 * MIB + 3, 4);
    std::fs::write(&local, &bytes).unwrap();
    // Plain, with Python's ftplib.
    let script = format!(
        r#"
import ftplib, io
f = ftplib.FTP(timeout=30)
f.connect("127.0.0.1", {port})
f.login("carol", "{PASSWORD}")
with open("{local}", "rb") as src:
    f.storbinary("STOR plain.bin", src)
got = io.BytesIO()
f.retrbinary("RETR plain.bin", got.write)
assert got.getvalue() == open("{local}", "rb").read(), "round trip differs"
assert "plain.bin" in f.nlst()
f.voidcmd("TYPE I")
print("size", f.size("plain.bin"))
f.quit()
"#,
        port = server.port(),
        local = local.display()
    );
    let (ok, out, err) = run_tool("python3", &["-c", &script], None, None);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("size {}", bytes.len())), "{out}");
    assert!(store.get("tls/home/plain.bin").unwrap() == bytes);
    // FTPS (AUTH TLS, PROT P, the session resumed on data connections), with curl.
    let url = format!(
        "ftp://carol:{}@{}/tls.bin",
        PASSWORD.replace(' ', "%20"),
        server.addr
    );
    let (ok, _, err) = run_tool(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "-T",
            local.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert!(store.get("tls/home/tls.bin").unwrap() == bytes);
    let got = dir.path().join("got.bin");
    let (ok, _, err) = run_tool(
        "curl",
        &["-sS", "--ssl-reqd", "-k", "-o", got.to_str().unwrap(), &url],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert!(
        std::fs::read(&got).unwrap() == bytes,
        "FTPS download differs"
    );
}

#[test]
fn a_file_stored_through_one_node_reads_through_another_at_once() {
    let Some(cluster) = cluster() else { return };
    // Two servers, each on its own Garage node's endpoint, one bucket.
    let (a, _dir_a) = s3_server(&cluster, 0, "two", |_| {});
    let (b, _dir_b) = s3_server(&cluster, 2, "two", |_| {});
    let bytes = content(3 * MIB + 5, 5);
    let mut on_a = a.login("carol");
    on_a.expect("TYPE I", 200);
    for round in 0..3 {
        let name = format!("shared-{round}.bin");
        assert_eq!(on_a.upload(&format!("STOR {name}"), &bytes), 226);
        let mut on_b = b.login("carol");
        on_b.expect("TYPE I", 200);
        let names = listing(&mut on_b, "NLST");
        assert!(
            names.lines().any(|n| n == name),
            "{name} not listed by B: {names}"
        );
        let (got, code) = download(&mut on_b, &format!("RETR {name}"));
        assert_eq!(code, 226);
        assert!(got == bytes, "B read other bytes");
        on_b.expect(&format!("DELE {name}"), 250);
        // A sees the delete at once: nothing is cached.
        on_a.expect(&format!("SIZE {name}"), 550);
        on_b.expect("QUIT", 221);
    }
    on_a.expect("QUIT", 221);
}

#[test]
fn check_config_says_what_is_wrong_with_the_store() {
    let Some(cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = |endpoint: &str, bucket: &str, secret: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"));
        command
            .args(["--check-config", "--root", &format!("s3://{bucket}/x")])
            .args(["--s3-endpoint", endpoint, "--s3-region", cluster.region()])
            .env("AWS_ACCESS_KEY_ID", cluster.access_key())
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .current_dir(dir.path());
        let output = command.output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let good = cluster.endpoint(0);
    let (ok, out) = run(&good, cluster.bucket(), cluster.secret_key());
    assert!(ok, "{out}");
    assert!(out.contains("configuration OK"), "{out}");
    let (ok, out) = run(&good, "no-such-bucket", cluster.secret_key());
    assert!(!ok);
    assert!(out.to_lowercase().contains("bucket"), "{out}");
    let (ok, out) = run(&good, cluster.bucket(), "wrong-secret");
    assert!(!ok);
    assert!(
        !out.contains("wrong-secret"),
        "the secret was printed: {out}"
    );
    assert!(
        out.to_lowercase().contains("key") || out.to_lowercase().contains("signature"),
        "{out}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (ok, out) = run(
        &format!("http://127.0.0.1:{port}"),
        cluster.bucket(),
        cluster.secret_key(),
    );
    assert!(!ok);
    assert!(
        out.to_lowercase().contains("unreachable") || out.contains("connect"),
        "{out}"
    );
}

#[test]
fn ferryd_serves_an_s3_root_with_only_the_aws_environment() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let readme = support::readme_bytes();
    store.put("env/pub/readme.txt", &readme);
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--root",
            &format!("s3://{}/env/pub", cluster.bucket()),
        ])
        .env("AWS_ACCESS_KEY_ID", cluster.access_key())
        .env("AWS_SECRET_ACCESS_KEY", cluster.secret_key())
        .env("AWS_REGION", cluster.region())
        .env("AWS_ENDPOINT_URL", cluster.endpoint(1))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    let addr: std::net::SocketAddr = loop {
        if let Some(line) = seen
            .lines()
            .find_map(|l| l.strip_prefix("ferryd listening on "))
        {
            if seen.ends_with('\n') {
                break line.trim().parse().unwrap();
            }
        }
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "ferryd exited: {seen}");
        seen.push(byte[0] as char);
        assert!(seen.len() < 10_000);
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = format!("ftp://{addr}/readme.txt");
    let (ok, out, err) = run_tool("curl", &["-sS", &url], None, None);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{err}");
    assert_eq!(out.as_bytes(), readme.as_slice());
}

#[test]
fn missing_credentials_and_bad_roots_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = |root: &str, credentials: &str| ferry_server::Config {
        root: PathBuf::from(root),
        s3: ferry_server::config::S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials_file: Some(dir.path().join(credentials)),
            ..Default::default()
        },
        ..ferry_server::Config::default()
    };
    let error = ferry_server::Context::new(config("s3://ferry/pub", "missing"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("s3://ferry/pub") && error.contains("credentials_file"),
        "{error}"
    );
    std::fs::write(dir.path().join("other"), "[other]\naws_access_key_id = x\n").unwrap();
    let error = ferry_server::Context::new(config("s3://ferry/pub", "other"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("[default]"), "{error}");
    for (root, what) in [
        ("s3://Bad_Bucket/x", "bucket name"),
        ("s3://ferry/a/../b", "key prefix"),
    ] {
        let error = ferry_server::Context::new(config(root, "other"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(what), "{root}: {error}");
    }
}

#[test]
fn a_store_that_stays_down_fails_the_transfer_with_451_and_commits_nothing() {
    let Some(mut cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let big = content(12 * MIB, 6);
    store.put("down/home/big.bin", &big);
    // The server talks to node 2 only; node 2 dies mid-transfer and stays dead.
    let (server, _dir) = s3_server(&cluster, 2, "down", |_| {});
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);

    let mut data = control.epsv();
    control.expect("STOR lost.bin", 150);
    data.write_all(&big[..6 * MIB]).unwrap();
    cluster.kill(2);
    // Bounded: the rest is refused or taken until the server gives up.
    let _ = data.write_all(&big[6 * MIB..]);
    drop(data);
    let reply = control.reply();
    assert_eq!(reply.code, 451, "{reply:?}");

    let data = control.epsv();
    control.send("RETR big.bin");
    let reply = control.reply();
    assert_eq!(reply.code, 451, "{reply:?}");
    drop(data);
    control.expect("QUIT", 221);
    // Through a living node: nothing under the name, and the upload was not completed.
    assert!(!store.exists("down/home/lost.bin"));
}

/// The store refusing the server's own credentials (a wrong secret here; an expired token,
/// a skewed clock) is no answer about the file: 451, which clients retry, not the 550 of a
/// file the key may not touch. HEAD answers say nothing of why; a listing does.
#[test]
fn refused_server_credentials_are_451_not_550() {
    let Some(cluster) = cluster() else { return };
    let (server, dir) = s3_server(&cluster, 0, "badkey", |config| {
        let wrong = std::env::temp_dir().join(format!("ferry-wrong-{}", std::process::id()));
        std::fs::write(
            &wrong,
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n",
                cluster.access_key()
            ),
        )
        .unwrap();
        config.s3.credentials_file = Some(wrong);
    });
    let _dir = dir;
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);
    control.expect("SIZE any.bin", 451);
    control.expect("DELE any.bin", 451);
    assert_eq!(control.upload("STOR any.bin", b"x"), 451);
    control.expect("QUIT", 221);
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("ferry-wrong-{}", std::process::id())),
    );
}

/// RETR opens the object with one GET: replaced after that, the download still gives the
/// object as it was at RETR (as a local file opened before a rename over it), or fails with
/// 451 if the store cannot give it any more; never a mix of the two objects.
#[test]
fn an_object_replaced_during_its_download_is_never_mixed() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let old = content(3 * MIB, 7);
    let new = content(3 * MIB, 8);
    store.put("swap/pub/file.bin", &old);
    let (server, _dir) = s3_server(&cluster, 0, "swap", |_| {});
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    // The client connects only after the object is replaced.
    let reply = control.expect("EPSV", 229);
    let port = ferry_proto::hostport::parse_epsv_reply(reply.text()).unwrap();
    control.expect("RETR file.bin", 150);
    store.put("swap/pub/file.bin", &new);
    let data = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let received = support::read_all(data);
    let reply = control.reply();
    assert!(
        old.starts_with(&received),
        "{} bytes that are not the object as it was at RETR",
        received.len()
    );
    match reply.code {
        226 => assert_eq!(received.len(), old.len(), "226 after a short download"),
        451 => assert!(received.len() < old.len()),
        _ => panic!("{reply:?}"),
    }
    // The next download gets the new object whole.
    let (bytes, code) = download(&mut control, "RETR file.bin");
    assert_eq!(code, 226);
    assert!(bytes == new);
}

#[test]
fn a_tls_upload_cut_without_close_notify_commits_nothing() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let (server, _dir) = s3_server(&cluster, 0, "notify", |config| {
        config.tls.self_signed = true;
        // Python's ftplib does not resume the TLS session on data connections.
        config.tls.require_session_reuse = false;
    });
    let script = format!(
        r#"
import ftplib, socket, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port})
f.login("carol", "{PASSWORD}")
f.prot_p()
f.voidcmd("TYPE I")
# Whole: committed.
conn = f.transfercmd("STOR whole.bin")
conn.sendall(b"w" * (6 * 1024 * 1024))
conn.unwrap().close()
print("whole", f.voidresp())
# Cut: the TCP connection ends without TLS's close_notify.
conn = f.transfercmd("STOR cut.bin")
conn.sendall(b"c" * (6 * 1024 * 1024))
conn.shutdown(socket.SHUT_RDWR)
conn.close()
try:
    print("cut", f.voidresp())
except ftplib.Error as e:
    print("cut", e)
f.quit()
"#,
        port = server.port()
    );
    let (ok, out, err) = run_tool("python3", &["-c", &script], None, None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("whole 226"), "{out}");
    assert!(out.contains("cut 426"), "{out}");
    assert_eq!(store.get("notify/home/whole.bin").unwrap().len(), 6 * MIB);
    assert!(
        !store.exists("notify/home/cut.bin"),
        "a cut TLS upload was committed"
    );
    assert_eq!(
        store.wait_no_pending_uploads("notify/"),
        Vec::<String>::new()
    );
}

#[test]
fn an_upload_running_when_the_server_stops_commits_nothing() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let (mut server, _dir) = s3_server(&cluster, 0, "stop", |config| {
        config.timeouts.shutdown_grace = 1;
    });
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);
    let mut data = control.epsv();
    control.expect("STOR running.bin", 150);
    data.write_all(&content(6 * MIB, 9)).unwrap();
    server.stop();
    let reply = control.reply();
    assert_eq!(reply.code, 426, "{reply:?}");
    drop(data);
    assert!(
        !store.exists("stop/home/running.bin"),
        "committed at shutdown"
    );
}

#[test]
fn bandwidth_limits_hold_on_s3() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    let bytes = content(4 * MIB, 10);
    store.put("rate/pub/big.bin", &bytes);
    let (server, _dir) = s3_server(&cluster, 0, "rate", |config| {
        config.limits.download_rate = 2 * MIB as u64;
        config.limits.upload_rate = 2 * MIB as u64;
    });
    let mut control = server.login("ftp");
    control.expect("TYPE I", 200);
    let started = Instant::now();
    let (got, code) = download(&mut control, "RETR big.bin");
    assert_eq!(code, 226);
    assert!(got == bytes);
    // 4 MiB at 2 MiB/s with 2 MiB of burst: at least about one second.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "download in {took:?}");
    let mut control = server.login("carol");
    control.expect("TYPE I", 200);
    let started = Instant::now();
    assert_eq!(control.upload("STOR up.bin", &bytes), 226);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "upload in {took:?}");
    assert!(store.get("rate/home/up.bin").unwrap() == bytes);
}

/// Waits (at most 10 s) until the server holds `bytes` of upload memory; says what it held.
fn wait_for_upload_memory(server: &TestServer, bytes: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held = server.context.upload_memory_in_use();
    for _ in 0..1000 {
        if held == bytes as u64 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        held = server.context.upload_memory_in_use();
    }
    assert_eq!(held, bytes as u64, "upload memory {what}");
}

#[test]
fn an_upload_aborted_while_it_waits_for_memory_stops_at_once() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    // 12 MiB with 5 MiB parts: A and C grow to a part each (10 MiB), B holds its first 1 MiB
    // and cannot grow (1 MiB free). The stall timeout is long: only the abort may end B.
    let (server, _dir) = s3_server(&cluster, 0, "waiting", |config| {
        config.s3.upload_memory = 12 * MIB as u64;
        config.timeouts.stalled_transfer = 300;
    });
    let start = |name: &str| {
        let mut control = server.login("carol");
        control
            .stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        control.expect("TYPE I", 200);
        let data = control.epsv();
        control.expect(&format!("STOR {name}"), 150);
        (control, data)
    };
    let a_bytes = content(6 * MIB, 50);
    let c_bytes = content(6 * MIB + 7, 51);
    let (mut a, mut a_data) = start("a.bin");
    a_data.write_all(&a_bytes[..2 * MIB]).unwrap();
    wait_for_upload_memory(&server, 5 * MIB, "after A's first 2 MiB");
    let (mut b, mut b_data) = start("b.bin");
    let b_bytes = content(2 * MIB, 52);
    b_data.write_all(&b_bytes[..MIB / 4]).unwrap();
    wait_for_upload_memory(&server, 6 * MIB, "after B's first bytes");
    let (mut c, mut c_data) = start("c.bin");
    c_data.write_all(&c_bytes[..2 * MIB]).unwrap();
    wait_for_upload_memory(&server, 11 * MIB, "after C's first 2 MiB");
    // B passes its first room: its writer now waits for 4 MiB more, holding the 1 MiB that is
    // free meanwhile (a waiter takes room as it frees up).
    b_data.write_all(&b_bytes[MIB / 4..]).unwrap();
    wait_for_upload_memory(&server, 12 * MIB, "while B waits");

    let asked = Instant::now();
    b.send("ABOR");
    let first = b.reply().code;
    assert!(first == 426 || first == 226, "{first}");
    if first == 426 {
        assert_eq!(b.reply().code, 226);
    }
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "ABOR answered in {took:?}");
    wait_for_upload_memory(&server, 10 * MIB, "after B's abort");
    b.expect("NOOP", 200);
    drop(b_data);

    // A new upload waits to be admitted (a part and its first room are not free); its data
    // connection is reset: 426 at once, not when room comes or the wait gives up.
    let mut b_data = b.epsv();
    b.expect("STOR b2.bin", 150);
    b_data.write_all(&b_bytes[..MIB / 4]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    socket2::SockRef::from(&b_data)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    let cut = Instant::now();
    drop(b_data);
    assert_eq!(b.reply().code, 426);
    let took = cut.elapsed();
    assert!(took < Duration::from_secs(10), "426 after {took:?}");
    assert_eq!(server.context.upload_memory_in_use(), 10 * MIB as u64);

    // The others were not disturbed, and finish whole.
    a_data.write_all(&a_bytes[2 * MIB..]).unwrap();
    drop(a_data);
    assert_eq!(a.reply().code, 226);
    c_data.write_all(&c_bytes[2 * MIB..]).unwrap();
    drop(c_data);
    assert_eq!(c.reply().code, 226);
    assert!(store.get("waiting/home/a.bin").as_deref() == Some(a_bytes.as_slice()));
    assert!(store.get("waiting/home/c.bin").as_deref() == Some(c_bytes.as_slice()));
    for name in ["b.bin", "b2.bin"] {
        let key = format!("waiting/home/{name}");
        assert!(!store.exists(&key), "the aborted upload {name} appeared");
    }
    wait_for_upload_memory(&server, 0, "after every upload");
}

#[test]
fn uploads_share_the_servers_upload_memory_and_all_finish() {
    let Some(cluster) = cluster() else { return };
    let store = Store::new(&cluster, 0);
    // The least room there may be: one part (5 MiB) and one upload's first 1 MiB. Four clients
    // storing two parts each at once must take turns, and every one must finish, whole.
    let (server, _dir) = s3_server(&cluster, 0, "room", |config| {
        config.s3.upload_memory = 6 * MIB as u64;
    });
    // Every client sends its first 256 KiB, and only when all have, the rest: without a part
    // kept free, all four would take a first room, then wait for one another to grow. A client
    // that fails still meets the others at the barrier, so that none waits there for ever.
    const HEAD: usize = 256 * 1024;
    let all_started = std::sync::Arc::new(std::sync::Barrier::new(4));
    let uploads: Vec<_> = (0..4u64)
        .map(|n| {
            let mut control = server.login("carol");
            // Each waits for the others' parts to be stored: more than the usual 20 s on a
            // loaded machine.
            let patience = Some(Duration::from_secs(90));
            control.stream.set_read_timeout(patience).unwrap();
            let all_started = std::sync::Arc::clone(&all_started);
            std::thread::spawn(move || {
                let bytes = content(6 * MIB + n as usize * 1000, 20 + n);
                control.expect("TYPE I", 200);
                let mut data = control.epsv();
                data.set_write_timeout(patience).unwrap();
                control.send(&format!("STOR shared{n}.bin"));
                let opened = control.reply().code;
                let head = match opened {
                    150 => data.write_all(&bytes[..HEAD]),
                    _ => Ok(()),
                };
                all_started.wait();
                assert_eq!(opened, 150, "upload {n}");
                let sent = head.and_then(|()| data.write_all(&bytes[HEAD..]));
                drop(data);
                let reply = control.reply();
                assert!(sent.is_ok(), "upload {n}: {sent:?}, then {reply:?}");
                (n, reply.code, bytes)
            })
        })
        .collect();
    for upload in uploads {
        let (n, code, bytes) = upload.join().unwrap();
        assert_eq!(code, 226, "upload {n}");
        let stored = store.get(&format!("room/home/shared{n}.bin"));
        assert!(
            stored.as_deref() == Some(bytes.as_slice()),
            "upload {n} differs"
        );
    }
    // Small uploads need only their first room, but each admission keeps a part free: here
    // they take turns as well.
    let small: Vec<_> = (0..6u64)
        .map(|n| {
            let mut control = server.login("carol");
            std::thread::spawn(move || {
                let bytes = content(300 * 1024, 40 + n);
                control.expect("TYPE I", 200);
                (
                    n,
                    control.upload(&format!("STOR small{n}.bin"), &bytes),
                    bytes,
                )
            })
        })
        .collect();
    for upload in small {
        let (n, code, bytes) = upload.join().unwrap();
        assert_eq!(code, 226, "small upload {n}");
        let stored = store.get(&format!("room/home/small{n}.bin"));
        assert!(
            stored.as_deref() == Some(bytes.as_slice()),
            "small upload {n} differs"
        );
    }
}
