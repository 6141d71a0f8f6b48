//! Protocol round 2, end to end: checksums (HASH, RANG, XCRC/XMD5/XSHA*), MFMT, MODE Z,
//! quotas (SITE QUOTA, AVBL) and virtual hosts (HOST, SNI), driven by real clients (Python
//! ftplib with hashlib and zlib as the references, lftp, curl, openssl) and raw control lines.

mod support;

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
