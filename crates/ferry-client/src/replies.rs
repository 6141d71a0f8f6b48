//! Reading meaning out of reply texts: 257 paths, 213 sizes and times, 211 feature lists.

use std::collections::BTreeSet;

use ferry_proto::reply::Reply;
use ferry_proto::time::parse_time_val;

/// The path in a 257 reply: `257 "/pub/a ""quoted"" dir" created` (RFC 959 Appendix II,
/// a quote inside the name is doubled).
pub fn parse_257_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut path = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            path.push(c);
        } else if chars.peek() == Some(&'"') {
            chars.next();
            path.push('"');
        } else {
            return Some(path);
        }
    }
    None
}

/// The number of a `213 <size>` reply (RFC 3659 §4).
pub fn parse_size(reply: &Reply) -> Option<u64> {
    reply.lines.last()?.trim().parse().ok()
}

/// The time of a `213 YYYYMMDDHHMMSS[.sss]` reply, in seconds since the epoch (RFC 3659 §3).
pub fn parse_mdtm(reply: &Reply) -> Option<i64> {
    parse_time_val(reply.lines.last()?.trim())
}

/// The extensions a server announced in its FEAT reply (RFC 2389 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    names: BTreeSet<String>,
    lines: Vec<String>,
}

impl Features {
    /// Reads a 211 reply: every line between the first and the last is one feature.
    pub fn from_reply(reply: &Reply) -> Self {
        let mut features = Features::default();
        if reply.code != 211 || reply.lines.len() < 2 {
            return features;
        }
        for line in &reply.lines[1..reply.lines.len() - 1] {
            let line = line.trim();
            if let Some(name) = line.split(' ').next().filter(|n| !n.is_empty()) {
                features.names.insert(name.to_ascii_uppercase());
                features.lines.push(line.to_string());
            }
        }
        features
    }

    /// Whether the feature `name` (case-insensitive, e.g. `MLST`, `SIZE`, `EPSV`) was announced.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(&name.to_ascii_uppercase())
    }

    /// The feature lines as the server sent them, e.g. `MLST type*;size*;modify*;`.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_doubled_quotes() {
        assert_eq!(
            parse_257_path("\"/pub\" is the current directory"),
            Some("/pub".into())
        );
        assert_eq!(
            parse_257_path("\"/a \"\"b\"\" c\" created"),
            Some("/a \"b\" c".into())
        );
        assert_eq!(parse_257_path("no quotes"), None);
        assert_eq!(parse_257_path("\"unterminated"), None);
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size(&Reply::new(213, "1715")), Some(1715));
        assert_eq!(parse_size(&Reply::new(213, "lots")), None);
        assert_eq!(
            parse_mdtm(&Reply::new(213, "20261124233100")),
            Some(1_795_563_060)
        );
    }

    #[test]
    fn features_from_rfc_2389_example() {
        let reply = Reply::multi(
            211,
            vec![
                "Extensions supported:".into(),
                "MLST size*;create;modify*;perm;media-type".into(),
                "SIZE".into(),
                "COMPRESSION".into(),
                "MDTM".into(),
                "END".into(),
            ],
        );
        let features = Features::from_reply(&reply);
        assert!(features.has("mlst") && features.has("SIZE") && features.has("MDTM"));
        assert!(!features.has("EPSV") && !features.has("END"));
        assert_eq!(features.lines().len(), 4);
        assert!(!Features::from_reply(&Reply::new(500, "no")).has("SIZE"));
    }
}
