//! Setting up the next data connection: PORT, PASV (RFC 959 §4.1.2), EPRT, EPSV (RFC 2428).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ferry_proto::command::EpsvArg;
use ferry_proto::hostport::{format_epsv_reply, format_pasv_reply};
use tokio::net::TcpListener;

use super::{Flow, Session};
use crate::data::{drain_stale, passive_listener, DataPlan};
use crate::limits::BudgetGuard;

/// A passive listener the session keeps after a transfer and offers again at its next PASV:
/// binding a new port in a range full of TIME_WAIT connections is the most expensive step of a
/// small transfer (the kernel walks them all), and a session that fetches many files does it
/// once instead of once per file.
#[derive(Debug)]
pub(super) struct KeptPassive {
    listener: Arc<TcpListener>,
    port: u16,
    _budget: BudgetGuard,
}

impl Session {
    /// PORT and EPRT: the server will connect to `target`. Only the control connection's peer
    /// and ports from 1024 up are accepted, checked before any connection is tried
    /// (RFC 2577 §3, bounce attacks).
    pub(super) async fn port(&mut self, target: SocketAddr, verb: &str) -> Flow {
        if self.epsv_all {
            return self
                .reply(503, format!("{verb} not allowed after EPSV ALL."))
                .await;
        }
        if !self.context.config.data.active_enabled {
            return self
                .reply(502, "Active mode is disabled on this server.")
                .await;
        }
        let target = SocketAddr::new(target.ip().to_canonical(), target.port());
        if verb == "EPRT" && target.is_ipv4() != self.peer.ip().to_canonical().is_ipv4() {
            // RFC 2428 §2: the other family than the control connection's.
            let protocols = match self.peer.ip().to_canonical().is_ipv4() {
                true => "(1)",
                false => "(2)",
            };
            return self
                .reply(
                    522,
                    format!("Network protocol not supported, use {protocols}."),
                )
                .await;
        }
        if target.ip() != self.peer.ip() && !self.context.config.data.allow_fxp {
            tracing::warn!(peer = %self.peer, %target, "refused a data address other than the client's");
            return self
                .reply(500, "Illegal PORT command: address must be yours.")
                .await;
        }
        if target.port() < 1024 {
            return self
                .reply(500, "Illegal PORT command: port below 1024.")
                .await;
        }
        self.data_plan = Some(DataPlan::Active(target));
        // A client that has gone active gives its kept passive port back.
        self.kept_passive = None;
        self.reply(200, format!("{verb} command successful.")).await
    }

    /// PASV: listen on an IPv4 address and tell the client where.
    pub(super) async fn pasv(&mut self) -> Flow {
        if self.epsv_all {
            return self.reply(503, "PASV not allowed after EPSV ALL.").await;
        }
        let IpAddr::V4(local) = self.local.ip() else {
            return self.reply(522, "PASV is IPv4 only; use EPSV (1,2).").await;
        };
        let Some(port) = self.listen_passive().await else {
            return self.reply(425, "Can't open passive connection.").await;
        };
        let advertised = self
            .context
            .passive_addresses
            .as_ref()
            .and_then(|addresses| addresses.for_client(self.peer.ip()))
            .unwrap_or(local);
        self.reply(227, format_pasv_reply(advertised, port)).await
    }

    /// EPSV (RFC 2428 §3), including `EPSV ALL`.
    pub(super) async fn epsv(&mut self, arg: EpsvArg) -> Flow {
        let local_is_v4 = self.local.is_ipv4();
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return self.reply(200, "EPSV ALL ok.").await;
            }
            EpsvArg::Protocol(1) if !local_is_v4 => {
                return self
                    .reply(522, "Network protocol not supported, use (2)")
                    .await
            }
            EpsvArg::Protocol(2) if local_is_v4 => {
                return self
                    .reply(522, "Network protocol not supported, use (1)")
                    .await
            }
            _ => {}
        }
        match self.listen_passive().await {
            Some(port) => self.reply(229, format_epsv_reply(port)).await,
            None => self.reply(425, "Can't open passive connection.").await,
        }
    }

    /// Opens a passive listener on the control connection's local address, or offers again the
    /// one this session kept; replaces any earlier unused one, so a client holds at most one
    /// passive port.
    async fn listen_passive(&mut self) -> Option<u16> {
        if !self.context.config.data.passive_enabled {
            return None;
        }
        self.data_plan = None;
        if let Some(kept) = &self.kept_passive {
            // Once no transfer is still waiting on it, it is this session's alone.
            if Arc::strong_count(&kept.listener) == 1 {
                drain_stale(&kept.listener);
                self.data_plan = Some(DataPlan::Passive(Arc::clone(&kept.listener)));
                return Some(kept.port);
            }
            self.kept_passive = None;
        }
        let ip = self.local.ip();
        match passive_listener(ip, self.context.passive_ports).await {
            Ok(listener) => {
                let port = listener.local_addr().ok()?.port();
                let listener = Arc::new(listener);
                if let Some(admin) = &self.context.admin {
                    admin.passive.track(&listener);
                }
                self.kept_passive = self.context.kept_passive.take().map(|budget| KeptPassive {
                    listener: Arc::clone(&listener),
                    port,
                    _budget: budget,
                });
                self.data_plan = Some(DataPlan::Passive(listener));
                Some(port)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a passive listener");
                None
            }
        }
    }
}
