//! Test support: an in-process `ferryd` on 127.0.0.1 port 0 serving a temporary folder with
//! the workloads' files, for the smoke and soak tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ferry_bench::{Target, TlsClient};
use ferry_server::config::TlsPolicy;
use ferry_server::{Config, Context};

pub const BIG_BYTES: usize = 8 * 1024 * 1024;
pub const SMALL_BYTES: usize = 1715;
pub const FOLDER_ENTRIES: usize = 300;
/// A text file's lines: LF line ends (turned into CRLF in TYPE A), and a CR of its own.
pub const TEXT_LINE: &[u8] = b"a line of text with a stray \r in it, and a bare LF at the end\n";
pub const TEXT_LINES: usize = 20_000;

/// A `ferryd` serving a temporary folder to anonymous users (writable); stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(|_| {})
    }

    /// A server with a self-signed certificate that requires TLS data connections; it also
    /// requires them to resume the control connection's TLS session (ferryd's default).
    pub fn start_tls() -> Server {
        Server::start_with(|config| {
            config.tls.self_signed = true;
            config.tls.data = TlsPolicy::Required;
            config.tls.anonymous_exempt = false;
            assert!(config.tls.require_session_reuse);
        })
    }

    pub fn start_with(configure: impl FnOnce(&mut Config)) -> Server {
        let root = tempfile::tempdir().expect("temporary folder");
        fill(root.path());
        let mut config = Config {
            root: root.path().to_path_buf(),
            server_name: Some("bench.test".into()),
            log_level: "warn".into(),
            ..Config::default()
        };
        config.anonymous.writable = true;
        configure(&mut config);
        let context = Arc::new(Context::new(config).expect("valid configuration"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || serve(listener, context, stopped));
        Server {
            addr,
            root,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn target(&self) -> Target {
        Target {
            addr: self.addr,
            user: "anonymous".into(),
            password: "smoke@test".into(),
            tls: None,
        }
    }

    pub fn tls_target(&self) -> Target {
        Target {
            tls: Some(TlsClient::accept_any_certificate("127.0.0.1").expect("TLS client")),
            ..self.target()
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    context: Arc<Context>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        ferry_server::run(listener, context, async {
            let _ = stopped.await;
        })
        .await;
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn fill(root: &Path) {
    std::fs::write(
        root.join("big.bin"),
        ferry_bench::data::generated_bytes(BIG_BYTES),
    )
    .unwrap();
    std::fs::write(root.join("small.txt"), vec![b'x'; SMALL_BYTES]).unwrap();
    std::fs::write(root.join("text.txt"), TEXT_LINE.repeat(TEXT_LINES)).unwrap();
    std::fs::create_dir(root.join("many")).unwrap();
    for index in 0..FOLDER_ENTRIES {
        std::fs::write(root.join(format!("many/file-{index:05}")), b"").unwrap();
    }
}
