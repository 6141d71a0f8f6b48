//! Protocol round 2, end to end: checksums (HASH, RANG, XCRC/XMD5/XSHA*), MFMT, MODE Z,
//! quotas (SITE QUOTA, AVBL) and virtual hosts (HOST, SNI), driven by real clients (Python
//! ftplib with hashlib and zlib as the references, lftp, curl, openssl) and raw control lines.

mod support;

use std::io::Read;
use std::path::Path;

use support::{run_tool, TestServer, PASSWORD};

/// Runs a Python script with `PORT ALICE_ROOT PASSWORD` as arguments; returns its output, and
/// fails the test with everything it printed if it fails.
fn python(server: &TestServer, script: &str) -> String {
    let port = server.port().to_string();
    let args = [
        "-",
        port.as_str(),
        server.alice_root.to_str().unwrap(),
        PASSWORD,
    ];
    let (ok, stdout, stderr) = run_tool("python3", &args, Some(script), None);
    assert!(ok, "python failed:\n{stdout}\n{stderr}");
    stdout
}

/// Files of the sizes the issue names, with bytes that are not all alike.
fn write_sample_files(root: &Path) {
    let sized = |len: usize| -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    };
    for (name, len) in [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("readme.bin", 1715),
        ("big.bin", 64 << 20),
    ] {
        std::fs::write(root.join(name), sized(len)).unwrap();
    }
}

const CHECKSUM_SCRIPT: &str = r#"
import ftplib, hashlib, sys, zlib
PORT, ROOT, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ftp = ftplib.FTP(timeout=60)
ftp.connect("127.0.0.1", PORT)
ftp.login("alice", PASSWORD)

def reference(algorithm, data):
    if algorithm == "CRC32":
        return "%08x" % (zlib.crc32(data) & 0xffffffff)
    name = {"SHA-256": "sha256", "SHA-512": "sha512", "SHA-1": "sha1", "MD5": "md5"}[algorithm]
    return hashlib.new(name, data).hexdigest()

feat = ftp.sendcmd("FEAT")
assert " HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32" in feat, feat
assert ftp.sendcmd("OPTS HASH") == "200 SHA-256"
checked = 0
for name in ["empty.bin", "one.bin", "readme.bin", "big.bin"]:
    data = open(ROOT + "/" + name, "rb").read()
    for algorithm in ["SHA-256", "SHA-512", "SHA-1", "MD5", "CRC32"]:
        assert ftp.sendcmd("OPTS HASH " + algorithm.lower()) == "200 " + algorithm
        reply = ftp.sendcmd("HASH " + name)
        code, got_algorithm, span, digest, path = reply.split(" ", 4)
        assert (code, got_algorithm, path) == ("213", algorithm, name), reply
        assert span == "0-%d" % max(len(data) - 1, 0), reply
        assert digest == reference(algorithm, data), (name, algorithm, reply)
        checked += 1
    legacy = {"XCRC": "CRC32", "XMD5": "MD5", "XSHA1": "SHA-1", "XSHA256": "SHA-256", "XSHA512": "SHA-512"}
    for verb, algorithm in legacy.items():
        reply = ftp.sendcmd(verb + " " + name)
        assert reply == "213 " + reference(algorithm, data), (verb, name, reply)
        checked += 1
    if len(data) > 100:
        # Ranges: RANG (inclusive end) for HASH, start and exclusive end for the X* verbs.
        ftp.sendcmd("OPTS HASH MD5")
        assert ftp.sendcmd("RANG 10 99").startswith("350")
        reply = ftp.sendcmd("HASH " + name)
        assert reply.split(" ")[2:4] == ["10-99", reference("MD5", data[10:100])], reply
        assert ftp.sendcmd("XCRC %s 10 100" % name) == "213 " + reference("CRC32", data[10:100])
        assert ftp.sendcmd("XMD5 %s 1000" % name) == "213 " + reference("MD5", data[1000:])
        # RANG holds for one HASH only.
        reply = ftp.sendcmd("HASH " + name)
        assert reply.split(" ")[3] == reference("MD5", data), reply
        checked += 4

def error(command):
    try:
        return ftp.sendcmd(command)
    except ftplib.all_errors as e:
        return str(e)

assert error("OPTS HASH CRC-37").startswith("501"), error("OPTS HASH CRC-37")
assert ftp.sendcmd("OPTS HASH") == "200 MD5"
assert error("HASH missing.bin").startswith("550")
ftp.mkd("folder")
assert error("HASH folder").startswith("553")
assert error("XCRC readme.bin 10 5").startswith("501")
assert error("XCRC readme.bin 5000").startswith("501")
ftp.sendcmd("RANG 0 9")
assert error("RETR readme.bin").startswith("504")
print("checked", checked)
ftp.quit()
"#;

#[test]
fn checksums_match_python_references_on_whole_files_and_ranges() {
    let server = TestServer::start();
    write_sample_files(&server.alice_root);
    let output = python(&server, CHECKSUM_SCRIPT);
    assert!(output.contains("checked 48"), "{output}");
}

#[test]
fn checksums_are_bounded() {
    // Anonymous users get none by default; the size cap refuses with 556.
    let server = TestServer::start_with(|c| c.checksums.max_size = 1000);
    write_sample_files(&server.alice_root);
    let mut anonymous = server.login("ftp");
    anonymous.expect("HASH readme.txt", 552);
    let mut alice = server.login("alice");
    alice.expect("XMD5 one.bin", 213);
    let reply = alice.expect("HASH readme.bin", 556);
    assert!(reply.text().contains("1000"), "{reply:?}");
    // A range under the cap is hashed.
    alice.expect("XMD5 readme.bin 0 1000", 213);

    // Turned off: FEAT does not list them and they are refused.
    let off = TestServer::start_with(|c| c.checksums.enabled = false);
    let mut control = off.login("alice");
    let feat = control.expect("FEAT", 211);
    assert!(!feat.lines.join("\n").contains("HASH"), "{feat:?}");
    assert!(feat.lines.join("\n").contains(" MFMT"), "{feat:?}");
    control.expect("HASH notes.txt", 502);
}

#[test]
fn a_busy_server_answers_450_while_its_hash_slots_are_taken() {
    // One slot; a 64 MiB SHA-512 from one session holds it while another asks.
    let server = TestServer::start_with(|c| c.checksums.max_running = 1);
    write_sample_files(&server.alice_root);
    let mut first = server.login("alice");
    let mut second = server.login("alice");
    let mut busy = false;
    for _ in 0..20 {
        first.send("XSHA512 big.bin");
        std::thread::sleep(std::time::Duration::from_millis(5));
        second.send("XCRC one.bin");
        let reply = second.reply();
        assert!(matches!(reply.code, 213 | 450), "{reply:?}");
        let done = first.reply();
        assert_eq!(done.code, 213, "{done:?}");
        if reply.code == 450 {
            busy = true;
            break;
        }
    }
    assert!(busy, "the second session never found the only slot taken");
}

#[test]
fn mfmt_sets_times_that_mdtm_and_mlst_report() {
    let server = TestServer::start();
    let mut alice = server.login("alice");
    let feat = alice.expect("FEAT", 211);
    assert!(feat.lines.contains(&" MFMT".to_string()), "{feat:?}");
    let reply = alice.expect("MFMT 20200229123456 notes.txt", 213);
    assert_eq!(reply.text(), "Modify=20200229123456; notes.txt");
    let reply = alice.expect("MDTM notes.txt", 213);
    assert_eq!(reply.text(), "20200229123456");
    let reply = alice.expect("MLST notes.txt", 250);
    assert!(
        reply.lines.join("\n").contains("modify=20200229123456;"),
        "{reply:?}"
    );
    let modified = std::fs::metadata(server.alice_root.join("notes.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let secs = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_582_979_696);
    alice.expect("MFMT 20200229123456 missing.txt", 550);
    alice.expect("MFMT 2020022912345 notes.txt", 501);
    // Read-only users may not change times.
    let mut anonymous = server.login("ftp");
    anonymous.expect("MFMT 20200229123456 readme.txt", 550);
}

const MODE_Z_SCRIPT: &str = r#"
import ftplib, io, ssl, sys, zlib
PORT, ROOT, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
TLS = len(sys.argv) > 4 and sys.argv[4] == "tls"
if TLS:
    ftp = ftplib.FTP_TLS(timeout=30, context=ssl._create_unverified_context())
    ftp.connect("127.0.0.1", PORT)
    ftp.login("alice", PASSWORD)
    ftp.prot_p()
else:
    ftp = ftplib.FTP(timeout=30)
    ftp.connect("127.0.0.1", PORT)
    ftp.login("alice", PASSWORD)
assert " MODE Z" in ftp.sendcmd("FEAT").split("\n"), "FEAT lacks MODE Z"
assert ftp.sendcmd("MODE Z").startswith("200")

def fetch(command, rest=None):
    chunks = []
    ftp.retrbinary(command, chunks.append, rest=rest)
    return b"".join(chunks)

def inflate(wire):
    d = zlib.decompressobj()
    out = d.decompress(wire)
    assert d.eof, "the zlib stream did not end"
    assert d.unused_data == b"", "bytes after the zlib stream"
    return out

data = open(ROOT + "/text.txt", "rb").read()
ftp.voidcmd("TYPE I")
wire = fetch("RETR text.txt")
assert inflate(wire) == data
assert len(wire) < len(data) // 4, (len(wire), len(data))
# REST counts uncompressed bytes; the stream starts afresh there.
assert inflate(fetch("RETR text.txt", rest=1000)) == data[1000:]
# TYPE A converts LF to CRLF before compressing.
ftp.voidcmd("TYPE A")
conn = ftp.transfercmd("RETR text.txt")
wire = b""
while True:
    block = conn.recv(65536)
    if not block:
        break
    wire += block
conn.close()
ftp.voidresp()
assert inflate(wire) == data.replace(b"\n", b"\r\n")
ftp.voidcmd("TYPE I")
# Listings are compressed too.
names = inflate(fetch("NLST")).decode().split("\r\n")
assert "text.txt" in names, names
assert b"type=file;" in inflate(fetch("MLSD"))
assert b"text.txt" in inflate(fetch("LIST"))
# Uploads: a zlib stream in, the plain bytes on disk; levels 0 and 9.
for level in ["0", "9"]:
    assert ftp.sendcmd("OPTS MODE Z LEVEL " + level).startswith("200")
    body = zlib.compress(data[:50000], int(level))
    ftp.storbinary("STOR up%s.txt" % level, io.BytesIO(body))
    assert open(ROOT + "/up%s.txt" % level, "rb").read() == data[:50000]
try:
    ftp.sendcmd("OPTS MODE Z LEVEL 10")
    raise AssertionError("level 10 accepted")
except ftplib.error_perm as e:
    assert str(e).startswith("501"), e
# A cut or corrupt stream: 451, and the upload is not reported complete.
for name, body in [("cut.txt", zlib.compress(data)[:3000]), ("bad.txt", b"\x78\x9c" + b"\xff" * 5000)]:
    try:
        try:
            ftp.storbinary("STOR " + name, io.BytesIO(body))
        except (ssl.SSLError, ConnectionError):
            # The server broke the data connection off (over TLS without close_notify).
            ftp.voidresp()
        raise AssertionError(name + " accepted")
    except ftplib.error_temp as e:
        assert str(e).startswith("451"), e
assert ftp.sendcmd("MODE S").startswith("200")
assert fetch("RETR text.txt") == data
ftp.quit()
print("mode z ok")
"#;

fn write_text(root: &Path) -> Vec<u8> {
    let text: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("line {i}: MODE Z compresses this text well\n").into_bytes())
        .collect();
    std::fs::write(root.join("text.txt"), &text).unwrap();
    text
}

#[test]
fn mode_z_with_python_zlib_downloads_listings_uploads_and_bad_streams() {
    let server = TestServer::start();
    write_text(&server.alice_root);
    let output = python(&server, MODE_Z_SCRIPT);
    assert!(output.contains("mode z ok"), "{output}");
}

#[test]
fn mode_z_over_tls_compresses_then_encrypts() {
    let server = TestServer::start_with(|c| {
        c.tls.self_signed = true;
        c.tls.require_session_reuse = false;
    });
    write_text(&server.alice_root);
    let port = server.port().to_string();
    let args = [
        "-",
        port.as_str(),
        server.alice_root.to_str().unwrap(),
        PASSWORD,
        "tls",
    ];
    let (ok, stdout, stderr) = run_tool("python3", &args, Some(MODE_Z_SCRIPT), None);
    assert!(ok && stdout.contains("mode z ok"), "{stdout}\n{stderr}");
}

#[test]
fn mode_z_is_refused_when_turned_off() {
    let server = TestServer::start_with(|c| c.data.mode_z = false);
    let mut control = server.login("alice");
    let feat = control.expect("FEAT", 211);
    assert!(!feat.lines.iter().any(|l| l.contains("MODE Z")), "{feat:?}");
    control.expect("MODE Z", 504);
    control.expect("OPTS MODE Z LEVEL 1", 501);
}

#[test]
fn lftp_uses_mode_z_both_ways() {
    let server = TestServer::start();
    let text = write_text(&server.alice_root);
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         set xfer:clobber yes; set ftp:use-mode-z on; \
         open -u alice,'{PASSWORD}' -p {} 127.0.0.1; ls; get text.txt -o got.txt; \
         put got.txt -o sent.txt",
        server.port()
    );
    let (ok, stdout, stderr) = run_tool("lftp", &["-d", "-c", &script], None, Some(work.path()));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("---> MODE Z"), "{stderr}");
    assert_eq!(std::fs::read(work.path().join("got.txt")).unwrap(), text);
    assert_eq!(
        std::fs::read(server.alice_root.join("sent.txt")).unwrap(),
        text
    );
}

/// A users file whose `carol` (password [`PASSWORD`]) may write `root` under a quota.
fn quota_users(dir: &Path, root: &Path, bytes: u64, files: u64) -> std::path::PathBuf {
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let text = format!(
        "[[user]]\nname = \"carol\"\npassword = \"{hash}\"\nroot = \"{}\"\nwritable = true\n\
         quota_bytes = {bytes}\nquota_files = {files}\n",
        root.display()
    );
    let path = dir.join("users.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const QUOTA_SCRIPT: &str = r#"
import ftplib, io, os, sys, zlib
PORT, ROOT, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def login():
    ftp = ftplib.FTP(timeout=30)
    ftp.connect("127.0.0.1", PORT)
    ftp.login("carol", PASSWORD)
    return ftp

def quota(ftp):
    lines = ftp.sendcmd("SITE QUOTA").split("\n")
    used = [int(l.split()[1]) for l in lines if l.strip().startswith(("Bytes:", "Files:"))]
    return tuple(used)

def refused(code, call, *args):
    try:
        call(*args)
    except ftplib.all_errors as e:
        assert str(e).startswith(code), e
        return
    raise AssertionError("expected " + code)

ftp = login()
# 10,000 bytes in 2 files were there at login.
assert quota(ftp) == (10000, 2), quota(ftp)
assert ftp.sendcmd("AVBL") == "213 90000", ftp.sendcmd("AVBL")
ftp.storbinary("STOR a.bin", io.BytesIO(b"a" * 50000))
assert quota(ftp) == (60000, 3), quota(ftp)
# Overwriting gives back the old size first.
ftp.storbinary("STOR a.bin", io.BytesIO(b"b" * 30000))
assert quota(ftp) == (40000, 3), quota(ftp)
# An upload that would pass the limit stops at it with 552; the new file is removed.
refused("552", ftp.storbinary, "STOR big.bin", io.BytesIO(b"c" * 200000))
assert not os.path.exists(ROOT + "/big.bin")
assert quota(ftp) == (40000, 3), quota(ftp)
# APPE past the limit: cut back to what it was.
refused("552", ftp.storbinary, "APPE a.bin", io.BytesIO(b"d" * 100000))
assert os.path.getsize(ROOT + "/a.bin") == 30000
assert quota(ftp) == (40000, 3), quota(ftp)
# A MODE Z bomb: 2 MB of zeros in a few kilobytes fills at most the quota.
ftp.sendcmd("MODE Z")
refused("552", ftp.storbinary, "STOR bomb.bin", io.BytesIO(zlib.compress(b"\0" * 2000000, 9)))
ftp.sendcmd("MODE S")
assert not os.path.exists(ROOT + "/bomb.bin")
# Two sessions share the usage: together they cannot pass it.
other = login()
ftp.storbinary("STOR b.bin", io.BytesIO(b"e" * 40000))
assert quota(other) == (80000, 4), quota(other)
refused("552", other.storbinary, "STOR c.bin", io.BytesIO(b"f" * 30000))
# The file count: the fifth file is the last.
other.storbinary("STOR c.bin", io.BytesIO(b"g" * 100))
refused("552", other.storbinary, "STOR d.bin", io.BytesIO(b"h"))
refused("552", other.sendcmd, "STOU")
# Deleting and renaming over a file give back.
other.delete("c.bin")
other.rename("b.bin", "a.bin")
assert quota(ftp) == (50000, 3), quota(ftp)
# At the byte limit, uploads are refused before any data.
ftp.storbinary("STOR fill.bin", io.BytesIO(b"i" * 50000))
assert ftp.sendcmd("AVBL") == "213 0", ftp.sendcmd("AVBL")
refused("552", ftp.storbinary, "STOR more.bin", io.BytesIO(b"j"))
print("quota ok")
"#;

#[test]
fn quotas_stop_uploads_and_are_shared_by_sessions() {
    let users = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("sub")).unwrap();
    std::fs::write(home.path().join("x"), [0u8; 4000]).unwrap();
    std::fs::write(home.path().join("sub/y"), [0u8; 6000]).unwrap();
    let file = quota_users(users.path(), home.path(), 100_000, 5);
    let server = TestServer::start_with(|c| c.users_file = Some(file));
    let port = server.port().to_string();
    let args = ["-", port.as_str(), home.path().to_str().unwrap(), PASSWORD];
    let (ok, stdout, stderr) = run_tool("python3", &args, Some(QUOTA_SCRIPT), None);
    assert!(ok && stdout.contains("quota ok"), "{stdout}\n{stderr}");
}

#[test]
fn anonymous_quota_counts_the_upload_folder() {
    let server = TestServer::start_with(|c| {
        c.anonymous.upload_folder = Some("/incoming".into());
        c.anonymous.quota_bytes = Some(1000);
    });
    std::fs::create_dir(server.root.join("incoming")).unwrap();
    let mut control = server.login("ftp");
    let reply = control.expect("SITE QUOTA", 200);
    assert!(
        reply
            .lines
            .iter()
            .any(|l| l.contains("Bytes: 0 used of 1000")),
        "{reply:?}"
    );
    assert_eq!(control.upload("STOR /incoming/a.txt", &[b'x'; 600]), 226);
    assert_eq!(control.upload("STOR /incoming/b.txt", &[b'x'; 600]), 552);
    assert!(!server.root.join("incoming/b.txt").exists());
    control.expect("AVBL /incoming", 213);
}

/// Two virtual hosts beside the default one, each with its folder and a certificate from one
/// test CA: `site-a.test` (with its own users file: `dave`) and `localhost` (a banner of its
/// own). The default host's certificate names `default.test`.
struct Vhosts {
    dir: tempfile::TempDir,
}

impl Vhosts {
    fn new() -> Vhosts {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Ferry vhost test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        std::fs::write(path.join("ca.pem"), ca_cert.pem()).unwrap();
        for name in ["site-a.test", "localhost", "default.test"] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(path.join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(path.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        for (folder, file) in [("a", "a.txt"), ("l", "l.txt")] {
            std::fs::create_dir(path.join(folder)).unwrap();
            std::fs::write(path.join(folder).join(file), format!("{file} contents\n")).unwrap();
        }
        std::fs::create_dir(path.join("dave")).unwrap();
        let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
        std::fs::write(
            path.join("a-users.toml"),
            format!(
                "[[user]]\nname = \"dave\"\npassword = \"{hash}\"\nroot = \"{}\"\n",
                path.join("dave").display()
            ),
        )
        .unwrap();
        Vhosts { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn configure(&self, config: &mut ferry_server::Config) {
        let toml = format!(
            r#"
            [tls]
            certificate = "{dir}/default.test.pem"
            key = "{dir}/default.test.key"

            [[vhost]]
            name = "site-a.test"
            aliases = ["www.site-a.test"]
            root = "{dir}/a"
            users_file = "{dir}/a-users.toml"
            certificate = "{dir}/site-a.test.pem"
            key = "{dir}/site-a.test.key"

            [[vhost]]
            name = "localhost"
            root = "{dir}/l"
            banner = "Local site ready"
            certificate = "{dir}/localhost.pem"
            key = "{dir}/localhost.key"
            "#,
            dir = self.dir.path().display()
        );
        let parsed: ferry_server::Config = toml::from_str(&toml).unwrap();
        config.tls = parsed.tls;
        config.vhosts = parsed.vhosts;
    }
}

#[test]
fn host_chooses_the_virtual_host_before_login() {
    let vhosts = Vhosts::new();
    let server = TestServer::start_with(|c| vhosts.configure(c));
    let mut control = server.connect();
    let feat = control.expect("FEAT", 211);
    assert!(feat.lines.contains(&" HOST".to_string()), "{feat:?}");
    control.expect_text("HOST SITE-A.test", 220, "SITE-A.TEST FTP Service");
    control.expect("USER ftp", 331);
    control.expect("PASS x@y", 230);
    // Anonymous users see the vhost's folder.
    let mut data = control.epsv();
    control.expect("NLST", 150);
    let mut names = String::new();
    data.read_to_string(&mut names).unwrap();
    assert_eq!(names, "a.txt\r\n");
    assert_eq!(control.reply().code, 226);
    control.expect("HOST localhost", 503);
    control.expect_text("QUIT", 221, "Thank you for visiting site-a.test.");

    // An alias, and the vhost's own accounts (which the default host does not have).
    let mut control = server.connect();
    control.expect_text("HOST www.site-a.test", 220, "SITE-A.TEST FTP Service");
    control.expect("USER dave", 331);
    control.expect(&format!("PASS {PASSWORD}"), 230);
    let mut control = server.connect();
    control.expect("USER dave", 331);
    control.expect(&format!("PASS {PASSWORD}"), 530);

    // After USER, HOST is too late; an unknown name is refused; the banner is the vhost's.
    let mut control = server.connect();
    control.expect("HOST nowhere.test", 504);
    control.expect_text("HOST localhost", 220, "Local site ready");
    control.expect("USER ftp", 331);
    control.expect("HOST site-a.test", 503);
    // REIN forgets the HOST: the default host's accounts again.
    control.expect("REIN", 220);
    control.expect("USER alice", 331);
    control.expect(&format!("PASS {PASSWORD}"), 230);

    let fallback = TestServer::start_with(|c| {
        vhosts.configure(c);
        c.unknown_host = ferry_server::config::UnknownHost::Default;
    });
    let mut control = fallback.connect();
    control.expect_text("HOST nowhere.test", 220, "ANY-DOMAIN.COM FTP Service");
}

/// Anonymous sessions of one host share one account profile (root, rights) while any of them is
/// open: each host's must still be its own, whichever host's sessions are open beside it.
#[test]
fn open_anonymous_sessions_of_other_hosts_never_lend_their_root() {
    let vhosts = Vhosts::new();
    let server = TestServer::start_with(|c| vhosts.configure(c));
    let login = |host: Option<&str>, user: &str| {
        let mut control = server.connect();
        if let Some(host) = host {
            control.expect(&format!("HOST {host}"), 220);
        }
        control.expect(&format!("USER {user}"), 331);
        control.expect("PASS x@y", 230);
        control
    };
    let names = |control: &mut support::Control| -> String {
        let mut data = control.epsv();
        control.expect("NLST", 150);
        let mut names = String::new();
        data.read_to_string(&mut names).unwrap();
        assert_eq!(control.reply().code, 226);
        names
    };
    let mut first_a = login(Some("site-a.test"), "ftp");
    assert_eq!(names(&mut first_a), "a.txt\r\n");
    // While site-a's anonymous session is open: localhost's and the default host's see theirs.
    let mut local = login(Some("localhost"), "ftp");
    assert_eq!(names(&mut local), "l.txt\r\n");
    let mut default = login(None, "ftp");
    let default_names = names(&mut default);
    assert!(
        !default_names.contains("a.txt") && !default_names.contains("l.txt"),
        "{default_names}"
    );
    // And a second site-a session, whatever case its user name is in, sees site-a's.
    let mut second_a = login(Some("site-a.test"), "FTP");
    assert_eq!(names(&mut second_a), "a.txt\r\n");
    let mut third_a = login(Some("www.site-a.test"), "anonymous");
    assert_eq!(names(&mut third_a), "a.txt\r\n");
    for mut control in [first_a, local, default, second_a, third_a] {
        control.expect("QUIT", 221);
    }
}

const HOST_SCRIPT: &str = r#"
import ftplib, ssl, sys
PORT = int(sys.argv[1])
ftp = ftplib.FTP(timeout=20)
ftp.connect("127.0.0.1", PORT)
assert ftp.sendcmd("HOST site-a.test") == "220 SITE-A.TEST FTP Service"
ftp.login()
assert ftp.nlst() == ["a.txt"], ftp.nlst()
ftp.quit()

# TLS: the server name (SNI) chooses the host; HOST must then agree.
context = ssl._create_unverified_context()
ftp = ftplib.FTP_TLS(timeout=20, context=context)
ftp.connect("localhost", PORT)
ftp.auth()
assert ftp.sock.getpeercert(binary_form=True)
try:
    ftp.sendcmd("HOST site-a.test")
    raise AssertionError("a HOST that disagrees with SNI was accepted")
except ftplib.error_perm as e:
    assert str(e).startswith("504"), e
assert ftp.sendcmd("HOST localhost") == "220 Local site ready"
ftp.login()
ftp.prot_p()
assert ftp.nlst() == ["l.txt"], ftp.nlst()
ftp.quit()

# HOST first, then a TLS server name that disagrees: the session ends with 421.
ftp = ftplib.FTP_TLS(timeout=20, context=context)
ftp.connect("localhost", PORT)
ftp.sendcmd("HOST site-a.test")
try:
    ftp.auth()
    ftp.sendcmd("NOOP")
    raise AssertionError("SNI that disagrees with HOST was accepted")
except (ftplib.error_temp, EOFError, OSError) as e:
    assert "421" in str(e) or isinstance(e, (EOFError, OSError)), e
print("host ok")
"#;

#[test]
fn ftplib_sends_host_and_sni_must_agree() {
    let vhosts = Vhosts::new();
    // Python's ftplib does not resume the control connection's TLS session on data connections.
    let server = TestServer::start_with(|c| {
        vhosts.configure(c);
        c.tls.require_session_reuse = false;
    });
    let port = server.port().to_string();
    let (ok, stdout, stderr) = run_tool("python3", &["-", &port], Some(HOST_SCRIPT), None);
    assert!(ok && stdout.contains("host ok"), "{stdout}\n{stderr}");
}

#[test]
fn curl_and_openssl_get_each_vhosts_certificate_by_sni() {
    let vhosts = Vhosts::new();
    let server = TestServer::start_with(|c| vhosts.configure(c));
    let port = server.port();
    // curl names site-a.test (pinned to 127.0.0.1): the certificate verifies against the
    // CA for that name, and the file comes from that host's folder.
    let resolve = format!("site-a.test:{port}:127.0.0.1");
    let url = format!("ftp://site-a.test:{port}/a.txt");
    let ca = vhosts.path("ca.pem");
    let (ok, stdout, stderr) = run_tool(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "--resolve",
            &resolve,
            "--cacert",
            ca.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "a.txt contents\n");

    let connect = format!("127.0.0.1:{port}");
    for (name, subject) in [
        ("site-a.test", "CN=site-a.test"),
        ("localhost", "CN=localhost"),
        ("other.test", "CN=default.test"),
    ] {
        let (_, stdout, stderr) = run_tool(
            "openssl",
            &[
                "s_client",
                "-starttls",
                "ftp",
                "-connect",
                &connect,
                "-servername",
                name,
            ],
            Some("QUIT\r\n"),
            None,
        );
        let text = format!("{stdout}{stderr}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("subject="))
            .unwrap_or_else(|| panic!("no subject for {name}:\n{text}"));
        assert!(line.replace(" ", "").contains(subject), "{name}: {line}");
    }
}

/// lftp cannot send HOST before it logs in (it logs in before any `quote`); the TLS server name
/// takes it to its vhost, and its protected data connections resume that host's TLS session (which
/// the server requires by default).
#[test]
fn lftp_reaches_a_vhost_by_its_tls_server_name() {
    let vhosts = Vhosts::new();
    let server = TestServer::start_with(|c| vhosts.configure(c));
    let ca = vhosts.path("ca.pem");
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 10; \
         set ftp:ssl-force yes; set ftp:ssl-allow-anonymous yes; set ftp:ssl-protect-data yes; \
         set ssl:ca-file {}; \
         open -p {} localhost; cls -1",
        ca.display(),
        server.port()
    );
    let (ok, stdout, stderr) = run_tool("lftp", &["-d", "-c", &script], None, None);
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "l.txt", "{stderr}");
}

/// lftp's `mirror -R` sets each uploaded file's time with MFMT; MDTM then reports it.
#[test]
fn lftp_mirror_up_keeps_times_with_mfmt() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("site");
    std::fs::create_dir(&local).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for name in ["a.txt", "b.txt"] {
        let path = local.join(name);
        std::fs::write(&path, format!("{name}\n")).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(old).unwrap();
    }
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         open -u alice,'{PASSWORD}' -p {} 127.0.0.1; mirror -R {} site",
        server.port(),
        local.display()
    );
    let (ok, stdout, stderr) = run_tool("lftp", &["-d", "-c", &script], None, None);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("---> MFMT 20200913122640 "), "{stderr}");
    let mut control = server.login("alice");
    for name in ["a.txt", "b.txt"] {
        let reply = control.expect(&format!("MDTM site/{name}"), 213);
        assert_eq!(reply.text(), "20200913122640");
        let modified = std::fs::metadata(server.alice_root.join("site").join(name))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, old);
    }
}

#[test]
fn help_names_the_new_verbs() {
    let server = TestServer::start();
    let mut control = server.connect();
    let help = control.expect("HELP", 214).lines.join(" ");
    for verb in [
        "AVBL", "HASH", "HOST", "MFMT", "RANG", "XCRC", "XMD5", "XSHA1", "XSHA256", "XSHA512",
    ] {
        assert!(help.split_whitespace().any(|w| w == verb), "{verb}: {help}");
        control.expect(&format!("HELP {verb}"), 214);
    }
}

/// Implicit FTPS: the TLS server name picks the vhost's certificate, and the greeting, sent
/// after the handshake, is that vhost's.
#[test]
fn implicit_ftps_greets_as_the_vhost_its_server_name_chose() {
    let vhosts = Vhosts::new();
    let mut config = ferry_server::Config::default();
    vhosts.configure(&mut config);
    let tls = &config.tls;
    let (certificate, key) = (tls.certificate.clone().unwrap(), tls.key.clone().unwrap());
    let mut file = format!(
        "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\nimplicit_listen = \"127.0.0.1:0\"\n",
        certificate.display(),
        key.display()
    );
    for vhost in &config.vhosts {
        file.push_str(&format!(
            "[[vhost]]\nname = \"{}\"\nroot = \"{}\"\nbanner = \"{} here\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            vhost.name,
            vhost.root.display(),
            vhost.name,
            vhost.certificate.as_ref().unwrap().display(),
            vhost.key.as_ref().unwrap().display()
        ));
    }
    let path = vhosts.path("implicit.toml");
    std::fs::write(&path, file).unwrap();
    let root = vhosts.path("a");
    let server = support::Ferryd::start(&root, &["--config", path.to_str().unwrap()]);
    let connect = server
        .implicit
        .expect("an implicit FTPS listener")
        .to_string();
    for (name, subject, greeting) in [
        ("localhost", "CN=localhost", "220 localhost here"),
        ("site-a.test", "CN=site-a.test", "220 site-a.test here"),
    ] {
        let (_, stdout, stderr) = run_tool(
            "openssl",
            &[
                "s_client",
                "-connect",
                &connect,
                "-servername",
                name,
                "-ign_eof",
            ],
            Some("QUIT\r\n"),
            None,
        );
        let text = format!("{stdout}{stderr}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("subject="))
            .unwrap_or_else(|| panic!("no subject for {name}:\n{text}"));
        assert!(line.replace(' ', "").contains(subject), "{name}: {line}");
        assert!(stdout.contains(greeting), "{name}:\n{stdout}");
    }
}

/// Accounts of two hosts are two accounts, even with one name: each has its own session limit
/// and its own quota usage (they were shared by name).
#[test]
fn same_named_accounts_of_two_hosts_have_their_own_limits_and_quota() {
    let vhosts = Vhosts::new();
    let hash = ferry_server::users::hash_password(PASSWORD).unwrap();
    let account = |root: &str| {
        std::fs::create_dir(vhosts.path(root)).unwrap();
        format!(
            "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{}\"\nwritable = true\n\
             max_sessions = 1\nquota_files = 2\n",
            vhosts.path(root).display()
        )
    };
    // The default host's alice has one file of her two; site-a's has none.
    let default_users = account("alice-default");
    std::fs::write(vhosts.path("alice-default").join("one.txt"), "1\n").unwrap();
    std::fs::write(vhosts.path("default-users.toml"), default_users).unwrap();
    let site_a_users = std::fs::read_to_string(vhosts.path("a-users.toml")).unwrap();
    let site_a_users = format!("{site_a_users}\n{}", account("alice-a"));
    std::fs::write(vhosts.path("a-users.toml"), site_a_users).unwrap();
    let server = TestServer::start_with(|c| {
        vhosts.configure(c);
        c.users_file = Some(vhosts.path("default-users.toml"));
    });
    let login = |host: Option<&str>, code: u16| {
        let mut control = server.connect();
        if let Some(host) = host {
            control.expect(&format!("HOST {host}"), 220);
        }
        control.expect("USER alice", 331);
        control.expect(&format!("PASS {PASSWORD}"), code);
        control
    };
    let mut default_alice = login(None, 230);
    login(None, 421);
    // One session each: the default host's does not use up site-a's.
    let mut site_a_alice = login(Some("site-a.test"), 230);
    login(Some("site-a.test"), 421);
    // Two files each: site-a's alice stores two, the default host's one more.
    assert_eq!(site_a_alice.upload("STOR a.txt", b"a"), 226);
    assert_eq!(site_a_alice.upload("STOR b.txt", b"b"), 226);
    assert_eq!(site_a_alice.upload("STOR c.txt", b"c"), 552);
    assert_eq!(default_alice.upload("STOR two.txt", b"2"), 226);
    assert_eq!(default_alice.upload("STOR three.txt", b"3"), 552);
    assert!(vhosts.path("alice-a").join("b.txt").exists());
    assert!(!vhosts.path("alice-default").join("three.txt").exists());
}
