//! The admin listener (`admin.listen`): `/metrics` (Prometheus text), `/health`, `/ready` and
//! `/status` (an HTML page), over plain HTTP/1.1 with hyper. Off by default. With
//! `admin.token_file`, every request must carry `Authorization: Bearer <token>`.
//!
//! It is apart from FTP service: its own listener and tasks, a cap on its connections, time
//! limits on each, and a bad request gets an HTTP error, never more. It answers from the
//! context serving now: after a reload (SIGHUP), requests need the new token, and the listener
//! moves when `admin.listen` changed (see [`crate::lifecycle`]).

pub mod metrics;
pub mod process;
pub mod status;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

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

/// Connections waiting to be accepted that the admin listener holds.
pub const BACKLOG: u32 = 64;

/// What the admin listener serves from: the metrics writer and the live sessions (both also
/// registered as event writers), and the token, if one is required. A reloaded context gets
/// an `Admin` of its own that shares the counters with the one before ([`Admin::carry_on`]).
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub live: Arc<Live>,
    /// The passive listeners sessions have opened, for `ferry_passive_ports_in_use`.
    pub passive: Arc<PassiveListeners>,
    token: Option<String>,
}

/// What the admin listener serves now: the current context, and where to listen. The server
/// sends a new one when a reload is done.
#[derive(Debug, Clone)]
pub struct Serving {
    pub context: Arc<Context>,
    pub listener: Arc<TcpListener>,
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
            passive: Arc::default(),
            token,
        }
    }

    /// This admin's counters, live sessions and passive listeners, with `reloaded`'s token.
    pub fn carry_on(&self, reloaded: &Admin) -> Admin {
        Admin {
            metrics: Arc::clone(&self.metrics),
            live: Arc::clone(&self.live),
            passive: Arc::clone(&self.passive),
            token: reloaded.token.clone(),
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

/// Serves the admin endpoints, on the listener and from the context `serving` says, until the
/// process ends (during a drain `/ready` says "draining"). When the server is gone, the last
/// listener goes on.
pub async fn serve(mut serving: watch::Receiver<Serving>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut listener = Arc::clone(&serving.borrow_and_update().listener);
    let mut watching = true;
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = serving.changed(), if watching => {
                match changed {
                    Ok(()) => listener = Arc::clone(&serving.borrow_and_update().listener),
                    Err(_) => watching = false,
                }
                continue;
            }
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let serving = serving.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                // Each request from the context serving when it comes (a kept-alive
                // connection sees a reload too).
                let context = Arc::clone(&serving.borrow().context);
                let response = match &context.admin {
                    Some(admin) => respond(&context, admin, &request),
                    None => text(StatusCode::NOT_FOUND, "the admin listener is off\n"),
                };
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
