//! Setting up a data connection: EPSV, then PASV, then (in auto mode) EPRT/PORT.

use std::net::{IpAddr, SocketAddr};

use ferry_proto::hostport::{
    format_eprt_arg, format_host_port, parse_epsv_reply, parse_pasv_reply,
};
use tokio::net::TcpListener;

use ferry_proto::reply::Reply;

use crate::client::{negative, Client};
use crate::config::DataMode;
use crate::data::{connect_passive, passive_target, PendingData};
use crate::error::FtpError;

impl Client {
    /// Opens a data connection the way the configured [`DataMode`] says.
    pub(crate) async fn open_data(&mut self) -> Result<PendingData, FtpError> {
        if self.tls.is_some() && self.config.tls.protect_data && !self.data_protected {
            self.protect_data().await?;
        }
        match self.config.data_mode {
            DataMode::Active => self.open_active().await,
            DataMode::Passive => self.open_passive().await,
            DataMode::Auto => match self.open_passive().await {
                Ok(pending) => Ok(pending),
                Err(error) if error.is_fatal() => Err(error),
                Err(error) => {
                    self.note(&format!("{error}; trying active mode"));
                    self.open_active().await
                }
            },
        }
    }

    /// EPSV (RFC 2428 §3), then PASV (RFC 959 §4.1.2) when EPSV is refused or unusable.
    async fn open_passive(&mut self) -> Result<PendingData, FtpError> {
        if self.config.use_epsv && !self.epsv_refused {
            match self.try_epsv().await {
                Ok(pending) => return Ok(pending),
                Err(error) if error.is_fatal() || !self.peer.is_ipv4() => return Err(error),
                Err(_) => {}
            }
        }
        if self.pasv_refused {
            return Err(FtpError::DataConnection(
                "the server refuses passive mode".into(),
            ));
        }
        self.try_pasv().await
    }

    async fn try_epsv(&mut self) -> Result<PendingData, FtpError> {
        let reply = self.control.command_final("EPSV").await?;
        if reply.code != 229 {
            self.epsv_refused = is_unimplemented(&reply);
            return Err(negative(reply, "EPSV", None));
        }
        let port = parse_epsv_reply(&reply.text()).map_err(|error| {
            FtpError::DataConnection(format!("cannot read the EPSV reply: {error}"))
        })?;
        let addr = SocketAddr::new(self.peer.ip(), port);
        let stream = connect_passive(addr, self.config.connect_timeout).await?;
        Ok(PendingData::Connected(stream))
    }

    async fn try_pasv(&mut self) -> Result<PendingData, FtpError> {
        let reply = self.control.command_final("PASV").await?;
        if reply.code != 227 {
            self.pasv_refused = is_unimplemented(&reply);
            return Err(negative(reply, "PASV", None));
        }
        let announced = parse_pasv_reply(&reply.text()).map_err(|error| {
            FtpError::DataConnection(format!("cannot read the PASV reply: {error}"))
        })?;
        let addr = passive_target(announced, self.peer, self.config.trust_pasv_address);
        if addr != announced {
            self.note(&format!("ignoring PASV address {announced}, using {addr}"));
        }
        let stream = connect_passive(addr, self.config.connect_timeout).await?;
        Ok(PendingData::Connected(stream))
    }

    /// Listens on the control connection's local address and tells the server with PORT
    /// (IPv4, RFC 959 §4.1.2) or EPRT (IPv6, RFC 2428 §2).
    async fn open_active(&mut self) -> Result<PendingData, FtpError> {
        let listener = TcpListener::bind(SocketAddr::new(self.local.ip(), 0))
            .await
            .map_err(|error| FtpError::DataConnection(format!("listen: {error}")))?;
        let addr = listener
            .local_addr()
            .map_err(|error| FtpError::DataConnection(format!("listen: {error}")))?;
        let line = match addr.ip() {
            IpAddr::V4(ip) => format!("PORT {}", format_host_port(ip, addr.port())),
            IpAddr::V6(_) => format!("EPRT {}", format_eprt_arg(addr)),
        };
        let verb = &line[..4];
        let reply = self.control.command_final(&line).await?;
        if reply.class() != 2 {
            return Err(negative(reply, verb, None));
        }
        Ok(PendingData::Listening(listener))
    }

    fn note(&self, text: &str) {
        if let Some(transcript) = &self.config.transcript {
            transcript.note(text);
        }
    }
}

/// Whether a reply says the command is not known or not implemented (500, 501, 502, 504), so
/// asking again is pointless; 530 (not logged in) and other refusals may pass later.
fn is_unimplemented(reply: &Reply) -> bool {
    matches!(reply.code, 500 | 501 | 502 | 504)
}
