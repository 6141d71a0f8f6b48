//! `ferryd` in-process for client tests: a server on 127.0.0.1 port 0 over temporary folders,
//! with the seed's `pub/readme.txt`, a read-write user `alice` and a read-only user `bob`.
//! Dropping [`Ferryd`] shuts the server down gracefully.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_server::config::Config;

/// Password of `alice` (read-write) and `bob` (read-only).
pub const PASSWORD: &str = "s3cret pass";

/// A running in-process `ferryd`.
pub struct Ferryd {
    pub addr: SocketAddr,
    /// Anonymous root: `readme.txt`, `pub/readme.txt`.
    pub root: PathBuf,
    /// Root shared by `alice` and `bob`.
    pub user_root: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ferryd {
    /// Starts a server with the seed's defaults (server name `ftp.any-domain.com`).
    pub fn start() -> Ferryd {
        Ferryd::start_with(|_| {})
    }

    /// Starts a server whose configuration `adjust` may change first.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Ferryd {
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let (root, user_root) = (dirs[0].path(), dirs[1].path());
        std::fs::create_dir(root.join("pub")).expect("pub");
        std::fs::write(root.join("pub/readme.txt"), super::readme_bytes()).expect("readme");
        std::fs::write(root.join("readme.txt"), super::readme_bytes()).expect("readme");
        let users_file = users_file(dirs[2].path(), user_root);
        let mut config = Config {
            root: root.to_path_buf(),
            server_name: Some("ftp.any-domain.com".into()),
            users_file: Some(users_file),
            ..Default::default()
        };
        config.timeouts.failed_login_delay_ms = 10;
        config.timeouts.data_connect = 10;
        adjust(&mut config);
        let context = ferry_server::Context::new(config).expect("valid ferryd configuration");
        let listener = bind_with_free_adjacent_port();
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || serve(listener, context, stopped));
        Ferryd {
            addr,
            root: root.to_path_buf(),
            user_root: user_root.to_path_buf(),
            _dirs: dirs,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops the server at once (running transfers cut: `timeouts.shutdown_grace = 0` is
    /// expected of the caller's configuration), then serves the same folders on the same address
    /// again after `pause`, with the configuration `adjust` makes.
    pub fn restart(&mut self, pause: std::time::Duration, adjust: impl FnOnce(&mut Config)) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::thread::sleep(pause);
        let mut config = Config {
            root: self.root.clone(),
            server_name: Some("ftp.any-domain.com".into()),
            users_file: Some(users_file(self._dirs[2].path(), &self.user_root)),
            ..Default::default()
        };
        config.timeouts.failed_login_delay_ms = 10;
        config.timeouts.data_connect = 10;
        adjust(&mut config);
        let context = ferry_server::Context::new(config).expect("valid ferryd configuration");
        let mut listener = None;
        for _ in 0..100 {
            if let Ok(bound) = TcpListener::bind(self.addr) {
                bound.set_nonblocking(true).expect("nonblocking");
                listener = Some(bound);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let listener = listener.expect("the old address is free again");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.thread = Some(std::thread::spawn(move || {
            serve(listener, context, stopped)
        }));
        self.stop = Some(stop);
    }
}

impl Drop for Ferryd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    context: ferry_server::Context,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        ferry_server::run(listener, Arc::new(context), async {
            let _ = stopped.await;
        })
        .await;
    });
}

/// `alice` may write, `bob` may only read; both share `root`.
fn users_file(dir: &Path, root: &Path) -> PathBuf {
    let hash = ferry_server::users::hash_password(PASSWORD).expect("hash");
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{hash}\"\nroot = \"{root}\"\nwritable = true\n\n\
         [[user]]\nname = \"bob\"\npassword = \"{hash}\"\nroot = \"{root}\"\n",
        root = root.display()
    );
    let path = dir.join("users.toml");
    std::fs::write(&path, text).expect("users file");
    path
}

/// Binds 127.0.0.1:0 until port - 1 is free too (at most 50 tries): by default ferryd's active
/// data connections come from the control port minus one, as port 20 does for port 21.
fn bind_with_free_adjacent_port() -> TcpListener {
    for _ in 0..50 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port > 1025 && TcpListener::bind(("127.0.0.1", port - 1)).is_ok() {
            listener.set_nonblocking(true).expect("nonblocking");
            return listener;
        }
    }
    panic!("no port with a free adjacent port");
}
