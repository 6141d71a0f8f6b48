//! Parameters and information: TYPE, STRU, MODE (RFC 959 §4.1.2), FEAT, OPTS (RFC 2389),
//! STAT, HELP (RFC 959 §4.1.3).

use ferry_proto::command::TransferType;
use ferry_proto::listing::{feat_mlst_line, select_mlst_facts};
use ferry_proto::Reply;

use super::{Flow, Session};

/// The commands HELP lists: every verb Ferry implements.
const IMPLEMENTED: &str = "ABOR ACCT ALLO APPE AUTH AVBL CCC CDUP CWD DELE EPRT EPSV FEAT HASH HELP HOST LIST MDTM MFMT MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT RANG REIN REST RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCRC XCUP XCWD XMD5 XMKD XPWD XRMD XSHA1 XSHA256 XSHA512";

impl Session {
    /// TYPE: A (and A N) or I (and L 8); other types are refused by the parser with 504.
    pub(super) async fn set_type(&mut self, kind: TransferType) -> Flow {
        self.transfer_type = kind;
        match kind {
            TransferType::Ascii => self.reply(200, "Switching to ASCII mode.").await,
            TransferType::Image => self.reply(200, "Switching to Binary mode.").await,
        }
    }

    /// STRU: only File structure.
    pub(super) async fn stru(&mut self, code: char) -> Flow {
        match code {
            'F' => self.reply(200, "Structure set to F.").await,
            'R' | 'P' => self.reply(504, "Only STRU F is supported.").await,
            _ => self.reply(501, "Unknown structure code.").await,
        }
    }

    /// MODE: Stream, and Z (deflate, draft-preston-ftpext-deflate) where it is on.
    pub(super) async fn mode(&mut self, code: char) -> Flow {
        match code {
            'S' => {
                self.deflate = None;
                self.reply(200, "Mode set to S.").await
            }
            'Z' if self.context.config.data.mode_z => {
                self.deflate = Some(self.deflate_level);
                self.reply(200, "Mode set to Z.").await
            }
            'B' | 'C' | 'Z' => {
                self.reply(504, "Only MODE S (and Z where enabled) is supported.")
                    .await
            }
            _ => self.reply(501, "Unknown transfer mode.").await,
        }
    }

    /// OPTS MODE Z LEVEL n: the zlib level of MODE Z, up to the configured highest.
    async fn opts_mode(&mut self, value: Option<&str>) -> Flow {
        let words: Vec<String> = value
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if !self.context.config.data.mode_z {
            return self.reply(501, "Option MODE not understood.").await;
        }
        let max = self.context.config.data.mode_z_max_level;
        match words.as_slice() {
            ["Z"] => {
                self.reply(200, format!("MODE Z LEVEL {}", self.deflate_level))
                    .await
            }
            ["Z", "LEVEL", level] => match level.parse::<u32>() {
                Ok(level) if crate::data::deflate::LEVELS.contains(&level) && level <= max => {
                    self.deflate_level = level as u8;
                    if self.deflate.is_some() {
                        self.deflate = Some(self.deflate_level);
                    }
                    self.reply(200, format!("MODE Z LEVEL set to {level}."))
                        .await
                }
                Ok(_) => {
                    self.reply(501, format!("MODE Z LEVEL must be 0 to {max}."))
                        .await
                }
                Err(_) => self.reply(501, "MODE Z LEVEL needs a number.").await,
            },
            _ => self.reply(501, "Usage: OPTS MODE Z LEVEL <0-9>.").await,
        }
    }

    /// FEAT (RFC 2389 §3): exactly the extensions that work.
    pub(super) async fn feat(&mut self) -> Flow {
        let mut lines = vec!["Features:".to_string()];
        lines.extend(self.tls_features().iter().map(|f| format!(" {f}")));
        let features = [
            "EPRT",
            "EPSV",
            // RFC 7151 §3.2: a server with virtual hosts says it takes HOST (without, there is
            // one host, and a client has no reason to name it).
            if self.context.vhosts.is_empty() {
                ""
            } else {
                "HOST"
            },
            "MDTM",
            "MFMT",
            &feat_mlst_line(self.mlst_facts()),
            if self.context.config.data.mode_z {
                "MODE Z"
            } else {
                ""
            },
            "PASV",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ];
        lines.extend(
            features
                .iter()
                .filter(|f| !f.is_empty())
                .map(|f| format!(" {f}")),
        );
        lines.extend(self.checksum_features().iter().map(|f| format!(" {f}")));
        lines.push("End".to_string());
        self.send(Reply::multi(211, lines)).await
    }

    /// OPTS (RFC 2389 §4): `UTF8 ON` (RFC 2640 drafts; names are always UTF-8 here) and
    /// `MLST facts` (RFC 3659 §7.9).
    pub(super) async fn opts(&mut self, name: &str, value: Option<&str>) -> Flow {
        match (name, value.map(|v| v.trim().to_ascii_uppercase())) {
            ("UTF8" | "UTF-8", v) if v.as_deref().is_none_or(|v| v == "ON") => {
                self.reply(200, "Always in UTF8 mode.").await
            }
            ("UTF8" | "UTF-8", _) => self.reply(504, "UTF8 cannot be turned off.").await,
            ("HASH", _) => self.opts_hash(value).await,
            ("MODE", _) => self.opts_mode(value).await,
            ("MLST", _) => {
                let chosen = select_mlst_facts(value.unwrap_or(""));
                let facts: String = chosen.iter().map(|f| format!("{f};")).collect();
                self.mlst_facts = Some(chosen.into_boxed_slice());
                self.reply(200, format!("MLST OPTS {facts}")).await
            }
            _ => {
                self.reply(501, format!("Option {name} not understood."))
                    .await
            }
        }
    }

    /// STAT: the session's status, or a listing over the control connection with a path.
    pub(super) async fn stat(&mut self, arg: Option<&str>) -> Flow {
        if let Some(path) = arg {
            return self.stat_path(path).await;
        }
        let mut lines = vec![format!("{} FTP server status:", self.server_name())];
        lines.push(format!("Connected to {}", self.peer.ip()));
        match self.account() {
            Some(account) => lines.push(format!("Logged in as {}", account.name)),
            None => lines.push("Not logged in".to_string()),
        }
        lines.push(format!(
            "TYPE: {}",
            if self.transfer_type == TransferType::Ascii {
                "ASCII"
            } else {
                "BINARY"
            }
        ));
        lines.push(match &self.data_plan {
            Some(crate::data::DataPlan::Active(addr)) => {
                format!("Data connection: active to {addr}")
            }
            Some(crate::data::DataPlan::Passive(_) | crate::data::DataPlan::Accepted(_)) => {
                "Data connection: passive, waiting".to_string()
            }
            None => "No data connection".to_string(),
        });
        lines.push("End of status".to_string());
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 || l.starts_with("End") {
                    l
                } else {
                    format!(" {l}")
                }
            })
            .collect();
        self.send(Reply::multi(211, lines)).await
    }

    /// HELP: the implemented commands, or whether one is.
    pub(super) async fn help(&mut self, arg: Option<&str>) -> Flow {
        if let Some(verb) = arg {
            let verb = verb.to_ascii_uppercase();
            return if IMPLEMENTED.split(' ').any(|v| v == verb) {
                self.reply(214, format!("{verb} is implemented.")).await
            } else {
                self.reply(
                    502,
                    format!(
                        "{} is not implemented.",
                        verb.chars().take(16).collect::<String>()
                    ),
                )
                .await
            };
        }
        let mut lines = vec!["The following commands are recognized.".to_string()];
        let verbs: Vec<&str> = IMPLEMENTED.split(' ').collect();
        lines.extend(
            verbs
                .chunks(12)
                .map(|chunk| format!(" {}", chunk.join(" "))),
        );
        lines.push("Help OK.".to_string());
        self.send(Reply::multi(214, lines)).await
    }
}
