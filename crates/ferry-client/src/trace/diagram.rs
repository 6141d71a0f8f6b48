//! Recorded events laid out as a sequence diagram: the lifelines (user, client, resolver, the
//! server's control port, one per data connection) and the rows between them, each an arrow
//! with a label and details, or a note on one lifeline. Pure: the renderers draw this.

use std::net::SocketAddr;
use std::time::Duration;

use super::{AnswerSource, DataLink, Entry, Event, Opener, TransferEnd};

/// The lifelines before the data connections'.
pub const USER: usize = 0;
pub const CLIENT: usize = 1;
pub const RESOLVER: usize = 2;
pub const CONTROL: usize = 3;

/// What a row is about, for colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Dns,
    Tcp,
    Command,
    Reply,
    Data,
    Note,
}

/// The head of a lifeline: a title, its role, and its address once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifeline {
    pub title: String,
    pub role: String,
    pub address: String,
}

/// One row of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub at: Duration,
    pub kind: Kind,
    /// An arrow from one lifeline to another, or a note on one when `from == to`.
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub details: Vec<String>,
}

/// A whole diagram. Its text is raw, as recorded: renderers escape it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagram {
    pub lifelines: Vec<Lifeline>,
    pub rows: Vec<Row>,
}

/// Lays out `entries`.
pub fn layout(entries: &[Entry]) -> Diagram {
    let mut diagram = Diagram {
        lifelines: vec![
            lifeline("User", ""),
            lifeline("ferry", "the client"),
            lifeline("Resolver", "DNS"),
            lifeline("Server", "control port"),
        ],
        rows: Vec::new(),
    };
    for entry in entries {
        add_rows(&mut diagram, entry);
    }
    diagram
}

fn lifeline(title: &str, role: &str) -> Lifeline {
    Lifeline {
        title: title.to_string(),
        role: role.to_string(),
        address: String::new(),
    }
}

fn add_rows(diagram: &mut Diagram, entry: &Entry) {
    let mut push = |kind, from, to, label: String, details: Vec<String>| {
        diagram.rows.push(Row {
            at: entry.at,
            kind,
            from,
            to,
            label,
            details,
        })
    };
    match &entry.event {
        Event::User { text } => push(Kind::User, USER, CLIENT, text.clone(), vec![]),
        Event::DnsQuery { host } => push(
            Kind::Dns,
            CLIENT,
            RESOLVER,
            "DNS query".into(),
            vec![format!("name = {host} (A and AAAA, by getaddrinfo)")],
        ),
        Event::DnsAnswer {
            addrs,
            source,
            host,
        } => {
            let (from, label, details) = dns_answer(host, addrs, *source);
            push(Kind::Dns, from, CLIENT, label, details)
        }
        Event::DnsFailed { host, error } => push(
            Kind::Dns,
            RESOLVER,
            CLIENT,
            "DNS: no address".into(),
            vec![format!("name = {host}"), error.clone()],
        ),
        Event::ControlConnected { local, remote } => {
            diagram_control(diagram, entry.at, *local, *remote);
        }
        Event::ConnectFailed { remote, error } => push(
            Kind::Tcp,
            CLIENT,
            CONTROL,
            "TCP connect failed".into(),
            vec![format!("dst = {remote}"), error.clone()],
        ),
        Event::Command { line } => push(Kind::Command, CLIENT, CONTROL, line.clone(), vec![]),
        Event::Reply { code, lines } => {
            let first = lines.first().map_or("", String::as_str);
            let rest = lines.iter().skip(1).cloned().collect();
            push(
                Kind::Reply,
                CONTROL,
                CLIENT,
                format!("{code} {first}"),
                rest,
            )
        }
        Event::DataConnected { id, link } => data_connected(diagram, entry.at, *id, link),
        Event::DataFinished { id, link, end } => data_finished(diagram, entry.at, *id, link, end),
        Event::Tls {
            data,
            version,
            cipher_suite,
            resumed,
        } => {
            let lane = match data {
                Some(id) => lane_of(diagram, *id),
                None => Some(CONTROL),
            };
            let resumed = if *resumed { ", session resumed" } else { "" };
            diagram.rows.push(Row {
                at: entry.at,
                kind: Kind::Tcp,
                from: CLIENT,
                to: lane.unwrap_or(CONTROL),
                label: "TLS handshake".into(),
                details: vec![format!("{version} {cipher_suite}{resumed}")],
            });
        }
        Event::ControlClosed { local, remote } => push(
            Kind::Tcp,
            CLIENT,
            CONTROL,
            "TCP close (FIN)".into(),
            vec![ports(*local, *remote)],
        ),
        Event::Note { text } => push(Kind::Note, CLIENT, CLIENT, text.clone(), vec![]),
    }
}

/// Where a DNS answer starts, its label and details: from the resolver when it was asked, a
/// note on the client for a `--resolve` pin or an address.
fn dns_answer(
    host: &str,
    addrs: &[std::net::IpAddr],
    source: AnswerSource,
) -> (usize, String, Vec<String>) {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let list = list.join(", ");
    match source {
        AnswerSource::Resolver => (
            RESOLVER,
            "DNS answer".into(),
            vec![format!("answers = {}: {list}", addrs.len())],
        ),
        AnswerSource::Pinned => (
            CLIENT,
            format!("{host} is {list} by --resolve: no DNS query"),
            vec![],
        ),
        AnswerSource::Literal => (
            CLIENT,
            format!("{host} is an address: no DNS query"),
            vec![],
        ),
    }
}

/// The lifeline of data connection `id`, if it has one yet.
fn lane_of(diagram: &Diagram, id: u32) -> Option<usize> {
    let title = format!("Data {id}");
    diagram.lifelines.iter().position(|l| l.title == title)
}

/// `src = A, dst = B`.
fn ports(source: SocketAddr, destination: SocketAddr) -> String {
    format!("src = {source}, dst = {destination}")
}

fn tcp_row(at: Duration, from: usize, to: usize, label: &str, detail: String) -> Row {
    Row {
        at,
        kind: Kind::Tcp,
        from,
        to,
        label: label.to_string(),
        details: vec![detail],
    }
}

fn diagram_control(diagram: &mut Diagram, at: Duration, local: SocketAddr, remote: SocketAddr) {
    diagram.lifelines[CONTROL].address = remote.to_string();
    diagram.lifelines[CLIENT].address = local.to_string();
    diagram.rows.push(tcp_row(
        at,
        CLIENT,
        CONTROL,
        "TCP connect (SYN)",
        ports(local, remote),
    ));
    diagram.rows.push(tcp_row(
        at,
        CONTROL,
        CLIENT,
        "TCP accept (SYN+ACK)",
        ports(remote, local),
    ));
}

/// The lifeline of data connection `id`, added when first seen.
fn data_lane(diagram: &mut Diagram, id: u32, link: &DataLink) -> usize {
    if let Some(index) = lane_of(diagram, id) {
        return index;
    }
    let title = format!("Data {id}");
    let role = match link.opener {
        Opener::Client => "data port, passive",
        Opener::Server => "data port, active",
    };
    diagram.lifelines.push(Lifeline {
        title,
        role: role.to_string(),
        address: link.remote.to_string(),
    });
    diagram.lifelines.len() - 1
}

fn data_connected(diagram: &mut Diagram, at: Duration, id: u32, link: &DataLink) {
    let lane = data_lane(diagram, id, link);
    let (local, remote) = (link.local, link.remote);
    let rows = match link.opener {
        Opener::Client => [
            tcp_row(at, CLIENT, lane, "TCP connect (SYN)", ports(local, remote)),
            tcp_row(
                at,
                lane,
                CLIENT,
                "TCP accept (SYN+ACK)",
                ports(remote, local),
            ),
        ],
        Opener::Server => [
            tcp_row(at, lane, CLIENT, "TCP connect (SYN)", ports(remote, local)),
            tcp_row(
                at,
                CLIENT,
                lane,
                "TCP accept (SYN+ACK)",
                ports(local, remote),
            ),
        ],
    };
    diagram.rows.extend(rows);
}

fn data_finished(diagram: &mut Diagram, at: Duration, id: u32, link: &DataLink, end: &TransferEnd) {
    let lane = data_lane(diagram, id, link);
    let (local, remote) = (link.local, link.remote);
    let (from, to) = if end.upload {
        (CLIENT, lane)
    } else {
        (lane, CLIENT)
    };
    let time = seconds(end.elapsed);
    let (label, details) = match (&end.bytes, &end.error) {
        (Some(bytes), _) => (
            format!("DATA {bytes} bytes in {time}"),
            vec![ports(
                if end.upload { local } else { remote },
                if end.upload { remote } else { local },
            )],
        ),
        (None, error) => (
            format!("DATA broken after {time}"),
            vec![error.clone().unwrap_or_default()],
        ),
    };
    diagram.rows.push(Row {
        at,
        kind: Kind::Data,
        from,
        to,
        label,
        details,
    });
    // A download ends with the server's FIN (the client reads to the end of the stream);
    // the client then closes its side. An upload or a broken transfer: the client closes.
    if !end.upload && end.bytes.is_some() {
        let row = tcp_row(at, lane, CLIENT, "TCP close (FIN)", ports(remote, local));
        diagram.rows.push(row);
    }
    let row = tcp_row(at, CLIENT, lane, "TCP close (FIN)", ports(local, remote));
    diagram.rows.push(row);
}

/// A duration as seconds with three decimals: `0.012 s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event: Event) -> Entry {
        Entry {
            at: Duration::from_millis(5),
            event,
        }
    }

    #[test]
    fn a_passive_download_gets_its_own_lifeline_and_both_fins() {
        let link = DataLink {
            local: "127.0.0.1:40000".parse().unwrap(),
            remote: "127.0.0.1:50000".parse().unwrap(),
            opener: Opener::Client,
        };
        let end = TransferEnd {
            bytes: Some(1715),
            elapsed: Duration::from_millis(3),
            upload: false,
            error: None,
        };
        let diagram = layout(&[
            entry(Event::DataConnected { id: 1, link }),
            entry(Event::DataFinished { id: 1, link, end }),
        ]);
        assert_eq!(diagram.lifelines.len(), 5);
        assert_eq!(diagram.lifelines[4].role, "data port, passive");
        assert_eq!(diagram.lifelines[4].address, "127.0.0.1:50000");
        let labels: Vec<_> = diagram.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "TCP connect (SYN)",
                "TCP accept (SYN+ACK)",
                "DATA 1715 bytes in 0.003 s",
                "TCP close (FIN)",
                "TCP close (FIN)"
            ]
        );
        assert_eq!((diagram.rows[2].from, diagram.rows[2].to), (4, CLIENT));
        assert_eq!(
            diagram.rows[0].details,
            ["src = 127.0.0.1:40000, dst = 127.0.0.1:50000"]
        );
    }

    #[test]
    fn only_the_resolver_is_drawn_as_a_dns_exchange() {
        let answer = |source| {
            entry(Event::DnsAnswer {
                host: "ftp.example.com".into(),
                addrs: vec!["192.0.2.1".parse().unwrap()],
                source,
            })
        };
        let asked = layout(&[
            entry(Event::DnsQuery {
                host: "ftp.example.com".into(),
            }),
            answer(AnswerSource::Resolver),
        ]);
        let ends: Vec<_> = asked.rows.iter().map(|r| (r.from, r.to)).collect();
        assert_eq!(ends, [(CLIENT, RESOLVER), (RESOLVER, CLIENT)]);
        assert_eq!(asked.rows[1].details, ["answers = 1: 192.0.2.1"]);
        let pinned = layout(&[answer(AnswerSource::Pinned)]);
        assert_eq!((pinned.rows[0].from, pinned.rows[0].to), (CLIENT, CLIENT));
        assert!(pinned.rows[0].label.contains("by --resolve: no DNS query"));
    }

    #[test]
    fn a_multi_line_reply_keeps_its_lines_as_details() {
        let diagram = layout(&[entry(Event::Reply {
            code: 211,
            lines: vec!["Features:".into(), " EPSV".into(), "End".into()],
        })]);
        let row = &diagram.rows[0];
        assert_eq!(row.label, "211 Features:");
        assert_eq!(row.details, [" EPSV", "End"]);
        assert_eq!((row.from, row.to), (CONTROL, CLIENT));
    }
}
