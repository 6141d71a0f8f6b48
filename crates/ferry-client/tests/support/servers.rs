//! Real FTP servers for tests: pyftpdlib (user `tester`/`secret` with full rights, and
//! anonymous), vsftpd (anonymous, read-only) and Pure-FTPd (virtual users `ftp` and `tester`
//! in a PureDB file, read-write), each on a loopback port in a temp dir.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process that is killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub root: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PYFTPD_SCRIPT: &str = r#"
import os, sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.disable(logging.CRITICAL)
root = sys.argv[1]
authorizer = DummyAuthorizer()
authorizer.add_user("tester", "secret", root, perm="elradfmwMT")
authorizer.add_anonymous(root)
Base = FTPHandler
if os.environ.get("FERRY_TEST_TLS_CERT"):
    from pyftpdlib.handlers import TLS_FTPHandler as Base
import hashlib, zlib
MODE = os.environ.get("FERRY_TEST_HASH", "")
CORRUPT = os.environ.get("FERRY_TEST_CORRUPT") == "1"
def digest(path, algorithm):
    with open(path, "rb") as f:
        data = f.read()
    if algorithm == "CRC32":
        out = "%08X" % (zlib.crc32(data) & 0xffffffff)
    else:
        out = {"SHA-256": hashlib.sha256, "SHA-1": hashlib.sha1, "MD5": hashlib.md5}[algorithm](data).hexdigest()
    if CORRUPT:
        out = ("1" if out[0] == "0" else "0") + out[1:]
    return out, len(data)
class Handler(Base):
    def __init__(self, *args, **kwargs):
        Base.__init__(self, *args, **kwargs)
        self.hash_algorithm = "SHA-256"
        if MODE == "hash":
            self._extra_feats = self._extra_feats + ["HASH SHA-256*;SHA-1;MD5;CRC32"]
        elif MODE == "x":
            self._extra_feats = self._extra_feats + ["XCRC", "XMD5"]
    def _digest_or_550(self, path, algorithm):
        try:
            return digest(path, algorithm)
        except OSError as error:
            self.respond("550 %s." % error.strerror)
            return None, None
    def ftp_HASH(self, path):
        out, size = self._digest_or_550(path, self.hash_algorithm)
        if out is not None:
            self.respond("213 %s 0-%d %s %s" % (self.hash_algorithm, size, out, self.fs.fs2ftp(path)))
    def ftp_XMD5(self, path):
        out, _ = self._digest_or_550(path, "MD5")
        if out is not None:
            self.respond("250 " + out.upper())
    def ftp_XCRC(self, path):
        out, _ = self._digest_or_550(path, "CRC32")
        if out is not None:
            self.respond("213 " + out)
    def ftp_OPTS(self, line):
        if line.upper().startswith("HASH ") and MODE == "hash":
            algorithm = line[5:].strip().upper()
            if algorithm in ("SHA-256", "SHA-1", "MD5", "CRC32"):
                self.hash_algorithm = algorithm
                return self.respond("200 " + algorithm)
            return self.respond("504 Unknown algorithm.")
        return Base.ftp_OPTS(self, line)
if MODE:
    commands = dict(Base.proto_cmds)
    names = ["HASH"] if MODE == "hash" else ["XMD5", "XCRC"]
    for name in names:
        commands[name] = dict(perm="r", auth=True, arg=True, help="Syntax: %s <SP> file-name" % name)
    Handler.proto_cmds = commands
THROTTLE = int(os.environ.get("FERRY_TEST_THROTTLE", "0"))
if THROTTLE:
    from pyftpdlib.handlers import ThrottledDTPHandler
    class Throttled(ThrottledDTPHandler):
        read_limit = THROTTLE
        write_limit = THROTTLE
    Handler.dtp_handler = Throttled
    Handler.use_sendfile = False
BREAK = int(os.environ.get("FERRY_TEST_BREAK_FIRST", "0"))
broken = [False]
if BREAK:
    DtpBase = Handler.dtp_handler
    class Breaking(DtpBase):
        sent_so_far = 0
        def send(self, data):
            if not broken[0] and not self.receive:
                self.sent_so_far += len(data)
                if self.sent_so_far > BREAK:
                    broken[0] = True
                    control = self.cmd_channel
                    self.close()
                    control.close()
                    return 0
            return DtpBase.send(self, data)
    Handler.dtp_handler = Breaking
    Handler.use_sendfile = False
if os.environ.get("FERRY_TEST_TLS_CERT"):
    Handler.certfile = os.environ["FERRY_TEST_TLS_CERT"]
    Handler.keyfile = os.environ["FERRY_TEST_TLS_KEY"]
    Handler.tls_control_required = True
    Handler.tls_data_required = True
Handler.authorizer = authorizer
Handler.banner = "ANY-DOMAIN.COM FTP Service"
if os.environ.get("FERRY_TEST_MASQUERADE"):
    Handler.masquerade_address = os.environ["FERRY_TEST_MASQUERADE"]
server = FTPServer((os.environ.get("FERRY_TEST_HOST", "127.0.0.1"), 0), Handler)
print(server.address[1], flush=True)
server.serve_forever()
"#;

/// A peer that is missing here: the test says so and is skipped; under CI (`CI=true`, as
/// `.ci/run` sets) it fails instead, so that a green CI always means the interop tests ran.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}: CI must run this test");
    }
    eprintln!("SKIP: {reason}");
}

/// Whether pyftpdlib can be imported.
pub fn have_pyftpdlib() -> bool {
    Command::new("python3")
        .args(["-c", "import pyftpdlib"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts pyftpdlib on `root`; with `masquerade`, its PASV replies announce that address.
pub fn pyftpd(root: &Path, masquerade: Option<&str>) -> Option<Server> {
    pyftpd_on(root, "127.0.0.1", masquerade)
}

/// Starts pyftpdlib's `TLS_FTPHandler` on `root` with a PEM certificate and key; TLS is
/// required on control and data connections. Needs pyOpenSSL.
pub fn pyftpd_tls(root: &Path, cert: &Path, key: &Path) -> Option<Server> {
    let have_openssl = Command::new("python3")
        .args(["-c", "import OpenSSL"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_openssl {
        skip("pyOpenSSL is not installed (pip install pyopenssl)");
        return None;
    }
    let tls = [("FERRY_TEST_TLS_CERT", cert), ("FERRY_TEST_TLS_KEY", key)];
    pyftpd_with(root, "127.0.0.1", None, &tls)
}

/// Starts pyftpdlib on 127.0.0.1 with test options in its environment: `FERRY_TEST_HASH`
/// (`hash`: HASH with SHA-256, SHA-1, MD5, CRC32 and OPTS HASH; `x`: XMD5 answering 250 and
/// XCRC answering 213), `FERRY_TEST_CORRUPT=1` (every checksum answered wrong),
/// `FERRY_TEST_THROTTLE` (bytes per second on each data connection, both ways),
/// `FERRY_TEST_BREAK_FIRST` (the server's first download is cut after that many bytes, its
/// data and control connections closed).
pub fn pyftpd_options(root: &Path, options: &[(&str, &str)]) -> Option<Server> {
    let environment: Vec<(&str, &Path)> =
        options.iter().map(|(k, v)| (*k, Path::new(*v))).collect();
    pyftpd_with(root, "127.0.0.1", None, &environment)
}

/// Starts pyftpdlib on `root`, listening on `host` (`127.0.0.1` or `::1`).
pub fn pyftpd_on(root: &Path, host: &str, masquerade: Option<&str>) -> Option<Server> {
    pyftpd_with(root, host, masquerade, &[])
}

fn pyftpd_with(
    root: &Path,
    host: &str,
    masquerade: Option<&str>,
    environment: &[(&str, &Path)],
) -> Option<Server> {
    if !have_pyftpdlib() {
        skip("pyftpdlib is not installed (pip install pyftpdlib)");
        return None;
    }
    let mut command = Command::new("python3");
    command.envs(environment.iter().copied());
    command.args(["-c", PYFTPD_SCRIPT]).arg(root);
    command.env("FERRY_TEST_HOST", host);
    if let Some(address) = masquerade {
        command.env("FERRY_TEST_MASQUERADE", address);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pyftpdlib");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read port");
    let port = line.trim().parse().expect("pyftpdlib printed its port");
    let server = Server {
        child,
        port,
        root: root.to_path_buf(),
    };
    wait_listening(host, port);
    Some(server)
}

const VSFTPD: &str = "/usr/sbin/vsftpd";

/// Starts vsftpd for anonymous, read-only access to `root` (made mode 555, as vsftpd refuses
/// a writable chroot). `scratch` holds the config, log and the empty secure_chroot_dir.
pub fn vsftpd(root: &Path, scratch: &Path) -> Option<Server> {
    vsftpd_with(root, scratch, "")
}

/// Starts vsftpd like [`vsftpd`], with `extra` configuration lines (TLS settings, say).
pub fn vsftpd_with(root: &Path, scratch: &Path, extra: &str) -> Option<Server> {
    if !Path::new(VSFTPD).exists() {
        skip(&format!(
            "{VSFTPD} is not installed (apt-get install vsftpd)"
        ));
        return None;
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir empty");
    let log = scratch.join("vsftpd.log");
    start_on_free_port("vsftpd", root, &log, |port| {
        let config = scratch.join("vsftpd.conf");
        let text = vsftpd_config(root, &empty, scratch, port) + extra;
        std::fs::write(&config, text).expect("config");
        Command::new(VSFTPD)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vsftpd")
    })
}

/// Starts a server with `start` on a free loopback port until it listens there (5 tries: a
/// port found free may be taken before the server binds it); `log` is named if it never does.
fn start_on_free_port(
    name: &str,
    root: &Path,
    log: &Path,
    mut start: impl FnMut(u16) -> Child,
) -> Option<Server> {
    for _attempt in 0..5 {
        let port = super::dead_port();
        let mut server = Server {
            child: start(port),
            port,
            root: root.to_path_buf(),
        };
        if wait_listening("127.0.0.1", port) {
            return Some(server);
        }
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    panic!("{name} did not start; see {}", log.display());
}

fn vsftpd_config(root: &Path, empty: &Path, scratch: &Path, port: u16) -> String {
    format!(
        "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
         anonymous_enable=YES\nlocal_enable=NO\nwrite_enable=NO\nanon_root={}\n\
         no_anon_password=NO\nbackground=NO\nsecure_chroot_dir={}\nnopriv_user=nobody\n\
         seccomp_sandbox=NO\nconnect_from_port_20=NO\nxferlog_enable=NO\n\
         pasv_enable=YES\nport_enable=YES\nascii_download_enable=YES\nftpd_banner=ANY-DOMAIN.COM FTP Service\n\
         vsftpd_log_file={}\nlog_ftp_protocol=YES\n",
        root.display(),
        empty.display(),
        scratch.join("vsftpd.log").display()
    )
}

/// Where `.ci/run` puts Pure-FTPd: the root of `dpkg -x pure-ftpd_*.deb` (the Debian package is
/// not installed, as it conflicts with vsftpd's).
pub const PURE_FTPD_ROOT: &str = "/opt/pure-ftpd";

/// Pure-FTPd's passive ports (`-p`): below Linux's ephemeral range, so no client socket holds
/// one; servers started at once share it, as Pure-FTPd tries the next port when one is taken.
pub const PURE_FTPD_PASSIVE: (u16, u16) = (24000, 24999);

/// Pure-FTPd's virtual users, each with its password: `ftp` takes the seed's e-mail address
/// as its password, `tester` is the account pyftpdlib's tests use.
pub const PURE_FTPD_USERS: [(&str, &str); 2] =
    [("ftp", "abc@any-domain.com"), ("tester", "secret")];

/// The users' password hashes, SHA-512 crypt (`openssl passwd -6 -salt ferrytest PASSWORD`),
/// which Pure-FTPd checks with crypt(3). `pure-pw useradd` would make argon2id hashes tuned to
/// take a second or more each to make and to check: seconds per test on a loaded machine.
const PURE_FTPD_HASHES: [&str; 2] = [
    "$6$ferrytest$piiTY8Wi0Rfdj5.uPapbm5U7k5Cj/sGDv2Or0STKaeml7kzwbkS7oPx4bTeGaJQaOGEte2/i36dBIo3akgCdt/",
    "$6$ferrytest$cF6wORyQRK44IaRx2VnTBXllw4M3GAr90ZuFxe/ai.ItwJDUGMBHcI1hnKlYnkgSL615PqG8v3QrARAcfenUw/",
];

/// The uid and gid the virtual users run as (`nobody`, `nogroup`); `root` is given to them.
const PURE_FTPD_OWNER: u32 = 65534;

/// Starts Pure-FTPd (from [`PURE_FTPD_ROOT`]) on 127.0.0.1 serving `root`, which it makes the
/// chroot of the virtual users [`PURE_FTPD_USERS`]: they live in a PureDB file made by
/// `pure-pw mkdb` in `scratch` (`-l puredb:`), so no system account is touched. Anonymous login is
/// off (`-E`: Pure-FTPd's anonymous root is the system user `ftp`'s home), which makes `USER
/// ftp` an ordinary login of the virtual user `ftp`. `root` and everything in it is given to
/// uid/gid 65534, the users' identity, so they can write. `scratch` also holds the pid file
/// and the server's stderr (`pure-ftpd.log`). Pure-FTPd must run as root.
pub fn pure_ftpd(root: &Path, scratch: &Path) -> Option<Server> {
    let binary = Path::new(PURE_FTPD_ROOT).join("usr/sbin/pure-ftpd");
    let pure_pw = Path::new(PURE_FTPD_ROOT).join("usr/bin/pure-pw");
    if !binary.exists() || !pure_pw.exists() {
        skip(&format!(
            "{} is not there (apt-get download pure-ftpd; dpkg -x pure-ftpd_*.deb {PURE_FTPD_ROOT})",
            binary.display()
        ));
        return None;
    }
    give_to(root, PURE_FTPD_OWNER);
    let passwd = scratch.join("pureftpd.passwd");
    let database = scratch.join("pureftpd.pdb");
    // pure-pw's text format: login:hash:uid:gid:gecos:home, where "/./" ends a chroot, then
    // twelve limits (bandwidth, ratios, sessions, quotas, addresses, hours), all unset.
    let lines: String = PURE_FTPD_USERS
        .iter()
        .zip(PURE_FTPD_HASHES)
        .map(|((user, _), hash)| {
            let id = PURE_FTPD_OWNER;
            format!(
                "{user}:{hash}:{id}:{id}::{}/./{}\n",
                root.display(),
                ":".repeat(12)
            )
        })
        .collect();
    std::fs::write(&passwd, lines).expect("pureftpd.passwd");
    let made = Command::new(&pure_pw)
        .arg("mkdb")
        .arg(&database)
        .arg("-f")
        .arg(&passwd)
        .status()
        .expect("pure-pw mkdb");
    assert!(made.success(), "pure-pw mkdb");
    let log = scratch.join("pure-ftpd.log");
    let (first, last) = PURE_FTPD_PASSIVE;
    start_on_free_port("pure-ftpd", root, &log, |port| {
        Command::new(&binary)
            // No syslog; bind, passive ports, PureDB users only, chroot, numeric hosts, 2 min idle.
            .args(["-f", "none", "-S", &format!("127.0.0.1,{port}")])
            .args(["-p", &format!("{first}:{last}"), "-c", "50", "-C", "50"])
            .arg("-l")
            .arg(format!("puredb:{}", database.display()))
            .args(["-E", "-A", "-H", "-I", "2", "-g"])
            .arg(scratch.join("pure-ftpd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start pure-ftpd")
    })
}

/// Gives `path` and everything under it to `uid` (with the same gid); a symlink itself, never
/// what it points to.
fn give_to(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("lchown");
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            give_to(&entry.expect("entry").path(), uid);
        }
    }
}

/// Waits (at most 5 s) until something accepts connections on the port.
fn wait_listening(host: &str, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect((host, port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
