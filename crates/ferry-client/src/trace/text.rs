//! The diagram as plain text: a column per lifeline drawn with `|`, each arrow with its label
//! above it and its details below, and the time since the start on the arrow's line.
//!
//! Every string from the session goes through [`super::escape_controls`], so a reply holding
//! terminal escapes or line breaks shows them as `\x1b` and `\x0d\x0a`.

use super::diagram::{layout, seconds, Diagram, Lifeline, Row};
use super::{escape_controls, Entry};

/// Columns between two lifelines.
const LANE: usize = 26;
/// Columns for the time before the lifelines.
const MARGIN: usize = 11;

/// Renders `entries` as a text sequence diagram.
pub fn render(entries: &[Entry]) -> String {
    render_diagram(&layout(entries))
}

/// Renders a laid-out diagram.
pub fn render_diagram(diagram: &Diagram) -> String {
    let lanes = diagram.lifelines.len();
    let mut out =
        String::from("FTP session recorded by ferry --trace (times in seconds from the start)\n\n");
    let fields: [fn(&Lifeline) -> &str; 3] = [|l| &l.title, |l| &l.role, |l| &l.address];
    for field in fields {
        let mut canvas = Canvas::new(lanes);
        for (lane, lifeline) in diagram.lifelines.iter().enumerate() {
            let head: String = clean(field(lifeline)).chars().take(LANE - 1).collect();
            canvas.write(lane * LANE, &head);
        }
        out.push_str(&canvas.finish(""));
    }
    out.push_str(&Canvas::new(lanes).bars().finish(""));
    for row in &diagram.rows {
        draw_row(&mut out, row, lanes);
    }
    out.push_str(&Canvas::new(lanes).bars().finish(""));
    out
}

fn clean(text: &str) -> String {
    escape_controls(text)
}

fn draw_row(out: &mut String, row: &Row, lanes: usize) {
    let time = seconds(row.at);
    if row.from == row.to {
        let text = format!("[{}]", clean(&row.label));
        let line = Canvas::new(lanes).bars().text(row.from * LANE + 2, &text);
        out.push_str(&line.finish(&time));
        return;
    }
    let left = row.from.min(row.to) * LANE;
    let right = row.from.max(row.to) * LANE;
    let label = Canvas::new(lanes).bars().text(left + 2, &clean(&row.label));
    out.push_str(&label.finish(""));
    out.push_str(
        &Canvas::new(lanes)
            .bars()
            .arrow(left, right, row.to > row.from)
            .finish(&time),
    );
    for detail in &row.details {
        let line = Canvas::new(lanes).bars().text(left + 2, &clean(detail));
        out.push_str(&line.finish(""));
    }
}

/// One line of the drawing.
struct Canvas {
    cells: Vec<char>,
    lanes: usize,
}

impl Canvas {
    fn new(lanes: usize) -> Self {
        Canvas {
            cells: vec![' '; lanes.saturating_sub(1) * LANE + 1],
            lanes,
        }
    }

    /// Puts `text` at column `at`, over whatever is there, growing the line if needed.
    fn write(&mut self, at: usize, text: &str) {
        for (offset, c) in text.chars().enumerate() {
            let column = at + offset;
            if column >= self.cells.len() {
                self.cells.resize(column + 1, ' ');
            }
            self.cells[column] = c;
        }
    }

    fn bars(mut self) -> Self {
        for lane in 0..self.lanes {
            self.cells[lane * LANE] = '|';
        }
        self
    }

    fn text(mut self, at: usize, text: &str) -> Self {
        self.write(at, text);
        self
    }

    fn arrow(mut self, left: usize, right: usize, rightwards: bool) -> Self {
        for cell in &mut self.cells[left + 1..right] {
            *cell = '-';
        }
        if rightwards {
            self.cells[right - 1] = '>';
        } else {
            self.cells[left + 1] = '<';
        }
        self
    }

    /// The line with `time` in the margin.
    fn finish(self, time: &str) -> String {
        let body: String = self.cells.into_iter().collect();
        format!("{time:>width$} {}\n", body.trim_end(), width = MARGIN - 1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::trace::Event;

    #[test]
    fn a_command_is_an_arrow_from_the_client_to_the_control_port() {
        let text = render(&[Entry {
            at: Duration::from_millis(12),
            event: Event::Command {
                line: "USER ftp".into(),
            },
        }]);
        let lines: Vec<&str> = text.lines().collect();
        let arrow = lines.iter().position(|l| l.contains("->")).unwrap();
        assert!(lines[arrow - 1].contains("| USER ftp"), "{text}");
        assert!(lines[arrow].starts_with("   0.012 s "), "{text}");
        let start = lines[arrow].find('|').unwrap();
        let drawn = &lines[arrow][start..];
        assert_eq!(drawn, format!("|{}|{}>|", " ".repeat(25), "-".repeat(50)));
    }

    #[test]
    fn control_bytes_from_the_server_are_shown_escaped() {
        let text = render(&[Entry {
            at: Duration::ZERO,
            event: Event::Reply {
                code: 220,
                lines: vec!["hi\x1b]0;pwned\x07\r\nFAKE".into()],
            },
        }]);
        assert!(
            text.contains("220 hi\\x1b]0;pwned\\x07\\x0d\\x0aFAKE"),
            "{text}"
        );
        assert!(!text.contains('\x1b') && !text.contains('\r'));
    }
}
