//! The diagram as an SVG document, written directly: lifeline heads across the top, a dashed
//! line down from each, and each row an arrow with its label above and its first details
//! below (a note is a box on its lifeline). The layout depends only on the number of
//! lifelines and rows, never on the text, so equal sessions give equal drawings.
//!
//! Everything from the session is XML-escaped (and its control characters written as `\xNN`,
//! which XML 1.0 could not carry anyway), so a server cannot add markup or script.

use std::fmt::Write as _;

use super::diagram::{layout, seconds, Diagram, Kind, Row};
use super::{escape_controls, Entry};

const LANE: usize = 240;
const LEFT: usize = 150;
const TOP: usize = 90;
const HEAD: usize = 56;
const ROW: usize = 46;
const NOTE_ROW: usize = 30;
/// Details shown under an arrow; the rest are counted.
const MAX_DETAILS: usize = 2;
/// Characters of a label kept (the text form keeps all).
const MAX_CHARS: usize = 110;

/// Renders `entries` as an SVG document.
pub fn render(entries: &[Entry]) -> String {
    render_diagram(&layout(entries))
}

/// Renders a laid-out diagram.
pub fn render_diagram(diagram: &Diagram) -> String {
    let lanes = diagram.lifelines.len();
    let width = LEFT + lanes * LANE;
    let height = TOP + HEAD + 20 + diagram.rows.iter().map(row_height).sum::<usize>() + 30;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans Mono, monospace\" \
         font-size=\"12\">"
    );
    out.push_str(STYLE);
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n\
         <text x=\"20\" y=\"34\" font-size=\"18\" font-weight=\"bold\">FTP session recorded by \
         ferry --trace</text>\n<text x=\"20\" y=\"56\" class=\"detail\">times in seconds from \
         the start; ports as src = client/server address</text>"
    );
    for (lane, lifeline) in diagram.lifelines.iter().enumerate() {
        let x = center(lane);
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{TOP}\" width=\"{}\" height=\"{HEAD}\" rx=\"6\" class=\"head\"/>\n\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n\
             {}{}<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" class=\"life\"/>",
            x - LANE / 2 + 10,
            LANE - 20,
            TOP + 18,
            escape(&lifeline.title),
            head_line(x, TOP + 34, &lifeline.role),
            head_line(x, TOP + 49, &lifeline.address),
            TOP + HEAD,
            height - 20,
        );
    }
    let mut y = TOP + HEAD + 20;
    for row in &diagram.rows {
        draw_row(&mut out, row, y);
        y += row_height(row);
    }
    out.push_str("</svg>\n");
    out
}

/// A line of a lifeline's head; nothing when empty.
fn head_line(x: usize, y: usize, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!(
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" class=\"detail\">{}</text>\n",
        escape(text)
    )
}

const STYLE: &str = "<defs>\
<marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
fill=\"context-stroke\"/></marker></defs>\n<style>\
.head{fill:#eef3fb;stroke:#34495e;stroke-width:1.5}\
.life{stroke:#7f8c8d;stroke-dasharray:6 4}\
.detail{fill:#555555;font-size:11px}\
.time{fill:#7f8c8d;font-size:11px}\
.note{fill:#fff8dc;stroke:#b7950b}\
line.arrow{stroke-width:1.6;marker-end:url(#head)}\
line.User{stroke:#000000}text.User{fill:#000000}line.Dns{stroke:#8e44ad}text.Dns{fill:#8e44ad}\
line.Tcp{stroke:#7f8c8d}text.Tcp{fill:#5d6d7e}line.Command{stroke:#1f618d}text.Command{fill:#1f618d}\
line.Reply{stroke:#1e8449}text.Reply{fill:#1e8449}line.Data{stroke:#ca6f1e}text.Data{fill:#ca6f1e}\
text.Note{fill:#7d6608}\
text{stroke:#ffffff;stroke-width:4px;stroke-linejoin:round;paint-order:stroke}\
</style>\n";

fn center(lane: usize) -> usize {
    LEFT + lane * LANE + LANE / 2
}

fn row_height(row: &Row) -> usize {
    if row.from == row.to {
        NOTE_ROW
    } else {
        ROW + 13 * row.details.len().min(MAX_DETAILS + 1).saturating_sub(1)
    }
}

fn kind_class(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "User",
        Kind::Dns => "Dns",
        Kind::Tcp => "Tcp",
        Kind::Command => "Command",
        Kind::Reply => "Reply",
        Kind::Data => "Data",
        Kind::Note => "Note",
    }
}

fn draw_row(out: &mut String, row: &Row, y: usize) {
    let class = kind_class(row.kind);
    let time = seconds(row.at);
    let arrow_y = y + 18;
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"{}\" class=\"time\">{time}</text>",
        arrow_y + 4
    );
    if row.from == row.to {
        let x = center(row.from) + 8;
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"22\" class=\"note\"/>\n\
             <text x=\"{}\" y=\"{}\" class=\"Note\">{}</text>",
            y + 4,
            LANE * 2 - 20,
            x + 6,
            y + 19,
            escape(&row.label)
        );
        return;
    }
    let (x1, x2) = (center(row.from), center(row.to));
    let middle = (x1 + x2) / 2;
    let _ = writeln!(
        out,
        "<text x=\"{middle}\" y=\"{}\" text-anchor=\"middle\" class=\"{class}\">{}</text>\n\
         <line x1=\"{x1}\" y1=\"{arrow_y}\" x2=\"{x2}\" y2=\"{arrow_y}\" class=\"arrow {class}\"/>",
        arrow_y - 5,
        escape(&row.label)
    );
    for (index, detail) in details(row)
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
    {
        let _ = writeln!(
            out,
            "<text x=\"{middle}\" y=\"{}\" text-anchor=\"middle\" class=\"detail\">{}</text>",
            arrow_y + 15 + 13 * index,
            escape(detail)
        );
    }
}

/// The details shown: the first few, then how many more the text trace has.
fn details(row: &Row) -> Vec<String> {
    let mut shown: Vec<String> = row.details.iter().take(MAX_DETAILS).cloned().collect();
    if row.details.len() > MAX_DETAILS {
        shown.push(format!(
            "(and {} more lines)",
            row.details.len() - MAX_DETAILS
        ));
    }
    shown
}

/// Text made safe for XML character data and attribute values, control characters written as
/// `\xNN`, cut at [`MAX_CHARS`] characters.
pub fn escape(text: &str) -> String {
    let visible = escape_controls(text);
    let mut out = String::with_capacity(visible.len());
    for (count, c) in visible.chars().enumerate() {
        if count == MAX_CHARS {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::trace::Event;

    #[test]
    fn markup_from_the_server_is_escaped() {
        let svg = render(&[Entry {
            at: Duration::ZERO,
            event: Event::Reply {
                code: 220,
                lines: vec!["</text><script>alert(1)</script>&\x1b".into()],
            },
        }]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("220 &lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;\\x1b"));
        assert!(!svg.contains('\x1b'));
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(500);
        assert_eq!(escape(&long).chars().count(), MAX_CHARS + 1);
    }

    #[test]
    fn the_layout_does_not_depend_on_the_text() {
        let one = |line: &str| {
            render(&[Entry {
                at: Duration::ZERO,
                event: Event::Command { line: line.into() },
            }])
        };
        let (short, long) = (one("PWD"), one("CWD a/much/longer/path"));
        let strip = |svg: &str| svg.replace("PWD", "").replace("CWD a/much/longer/path", "");
        assert_eq!(strip(&short), strip(&long));
    }
}
