//! The admin listener (`admin.listen`): `/metrics` (Prometheus text), `/health`, `/ready` and
//! `/status` (an HTML page), over plain HTTP/1.1 with hyper. Off by default. With
//! `admin.token_file`, every request must carry `Authorization: Bearer <token>`.
//!
//! It is apart from FTP service: its own listener and tasks, a cap on its connections, time
//! limits on each, and a bad request gets an HTTP error, never more.

pub mod metrics;
pub mod process;
pub mod status;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::live::Live;
use crate::readiness::State;
use crate::server::Context;
use metrics::{Gauges, Metrics};

/// Admin connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 32;

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest an admin connection stays open (keep-alive included).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// What the admin listener serves from: the metrics writer and the live sessions (both also
/// registered as event writers), and the token, if one is required.
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub live: Arc<Live>,
    /// The passive listeners sessions have opened, for `ferry_passive_ports_in_use`.
    pub passive: PassiveListeners,
    token: Option<String>,
}

/// The passive listeners open now: each is tracked by a weak reference, so it is counted until
/// the last of its owners (a session's data plan, its kept listener, a transfer) drops it.
#[derive(Debug, Default)]
pub struct PassiveListeners {
    listeners: std::sync::Mutex<Vec<std::sync::Weak<tokio::net::TcpListener>>>,
}

impl PassiveListeners {
    /// Counts `listener` while it is open.
    pub fn track(&self, listener: &Arc<tokio::net::TcpListener>) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        // Forget closed ones now and then: the list stays within twice the open ones (+64).
        if listeners.len() >= 64 && listeners.len().is_power_of_two() {
            listeners.retain(|weak| weak.strong_count() > 0);
        }
        listeners.push(Arc::downgrade(listener));
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|weak| weak.strong_count() > 0);
        listeners.len()
    }
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub fn new(token: Option<String>) -> Admin {
        process::start_time();
        Admin {
            metrics: Arc::default(),
            live: Arc::default(),
            passive: PassiveListeners::default(),
            token,
        }
    }

    /// Whether a request's `Authorization` header carries the token (or none is needed).
    fn authorized(&self, header: Option<&HeaderValue>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = header
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        same_bytes(given, token.as_bytes())
    }
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, context: Arc<Context>, shutdown: impl Future) {
    let Some(admin) = context.admin.clone() else {
        return;
    };
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => permit,
            _ = &mut shutdown => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (context, admin) = (Arc::clone(&context), Arc::clone(&admin));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&context, &admin, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                tracing::debug!(%error, "admin connection");
            }
            drop(permit);
        });
    }
}

/// The response to one request.
fn respond(context: &Context, admin: &Admin, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !admin.authorized(request.headers().get(AUTHORIZATION)) {
        let mut response = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let body = admin.metrics.render(&gauges(context, admin));
            with_type(
                StatusCode::OK,
                body,
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        "/health" => text(StatusCode::OK, "ok\n"),
        "/ready" => match context.readiness.state() {
            State::Ready => text(StatusCode::OK, "ready\n"),
            State::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            State::Draining => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        },
        "/" | "/status" => {
            let body = page(context, admin).render();
            with_type(StatusCode::OK, body, "text/html; charset=utf-8")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health, /ready or /status\n",
        ),
    }
}

/// The gauges read from the server's state now.
fn gauges(context: &Context, admin: &Admin) -> Gauges {
    Gauges {
        passive_ports_in_use: admin.passive.open(),
        passive_listeners_kept: context.kept_passive.held(),
        bans_active: context.bans.active().len(),
        upload_memory_bytes: context.upload_memory_in_use(),
        process: process::Process::now(),
    }
}

/// The status page's contents now.
fn page(context: &Context, admin: &Admin) -> status::Page {
    status::Page {
        server_name: context.server_name.clone(),
        sessions: admin.live.snapshot(),
        bans: context.bans.active(),
        totals: admin.metrics.totals(),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, body.to_string(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: String, kind: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_must_match_exactly() {
        let admin = Admin::new(Some("s3cret".into()));
        let header = |text: &'static str| HeaderValue::from_static(text);
        assert!(admin.authorized(Some(&header("Bearer s3cret"))));
        assert!(!admin.authorized(Some(&header("Bearer s3cre"))));
        assert!(!admin.authorized(Some(&header("Bearer s3cretx"))));
        assert!(!admin.authorized(Some(&header("s3cret"))));
        assert!(!admin.authorized(None));
        assert!(Admin::new(None).authorized(None));
        assert!(!format!("{admin:?}").contains("s3cret"));
    }
}
