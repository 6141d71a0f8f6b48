//! Showing a transfer as it runs (hash marks or an indicatif bar) and summing it up after:
//! `1715 bytes received in 0.00 secs (1.6 MB/s)`.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes per hash mark, as in the classic client.
pub const HASH_BYTES: u64 = 1024;

/// The most marks a transfer of known size prints with the default mark size.
pub const MAX_MARKS: u64 = 100;

/// The default bytes per mark for a transfer of `expected` bytes: the classic 1024, doubled
/// until the file takes at most [`MAX_MARKS`] marks (a 300 MB file: 4 MiB a mark, 71 marks).
/// Unknown sizes keep 1024.
pub fn default_mark(expected: Option<u64>) -> u64 {
    let mut mark = HASH_BYTES;
    let Some(expected) = expected else {
        return mark;
    };
    while expected.div_ceil(mark) > MAX_MARKS && mark < u64::MAX / 2 {
        mark *= 2;
    }
    mark
}

/// A hash mark size as `hash SIZE` takes it: bytes, or with a `k`, `m` or `g` suffix (1024s).
pub fn parse_mark(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(digits) => (digits, &lower[digits.len()..]),
        None => (lower.as_str(), ""),
    };
    let scale: u64 = match unit {
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => 1,
    };
    let number: u64 = digits.parse().ok()?;
    number.checked_mul(scale).filter(|&bytes| bytes > 0)
}

/// How a transfer shows its progress.
pub enum Display {
    None,
    Hash {
        printed: u64,
        ended: bool,
        mark: u64,
    },
    Bar(ProgressBar),
}

impl Display {
    /// Hash marks when asked for (of [`default_mark`] size), else a bar on a terminal
    /// (`expected` bytes if known).
    pub fn new(hash: bool, bar: bool, expected: Option<u64>) -> Self {
        if hash {
            return Display::marks(default_mark(expected));
        }
        if !bar {
            return Display::None;
        }
        let progress = ProgressBar::with_draw_target(expected, ProgressDrawTarget::stderr());
        let template = match expected {
            Some(_) => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            None => "{spinner} {bytes} {bytes_per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            progress.set_style(style);
        }
        Display::Bar(progress)
    }

    /// A `#` for every `mark` bytes.
    pub fn marks(mark: u64) -> Self {
        Display::Hash {
            printed: 0,
            ended: false,
            mark: mark.max(1),
        }
    }

    fn advance(&mut self, total: u64) {
        match self {
            Display::None => {}
            Display::Hash { printed, mark, .. } => {
                let mut stdout = std::io::stdout();
                while (*printed + 1).saturating_mul(*mark) <= total {
                    let _ = stdout.write_all(b"#");
                    *printed += 1;
                }
                let _ = stdout.flush();
            }
            Display::Bar(bar) => bar.set_position(total),
        }
    }

    /// Ends the display (a newline after hash marks, the bar cleared); only the first call
    /// does anything, so the data's end can end it before the server's final reply shows.
    pub fn finish(&mut self) {
        match self {
            Display::None => {}
            Display::Hash { printed, ended, .. } => {
                if *printed > 0 && !*ended {
                    println!();
                }
                *ended = true;
            }
            Display::Bar(bar) => bar.finish_and_clear(),
        }
    }
}

/// Wraps a reader or writer, counting bytes and updating a [`Display`].
pub struct Meter<T> {
    inner: T,
    total: u64,
    display: Display,
}

impl<T> Meter<T> {
    pub fn new(inner: T, display: Display) -> Self {
        Meter {
            inner,
            total: 0,
            display,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn finish(&mut self) {
        self.display.finish();
    }

    fn count(&mut self, bytes: usize) {
        self.total += bytes as u64;
        self.display.advance(self.total);
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Meter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            self.count(written);
        }
        polled
    }

    /// The library flushes once the data connection has ended: the display ends here.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.display.finish();
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Meter<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = buf.filled().len() - before;
            self.count(read);
            if read == 0 {
                self.display.finish();
            }
        }
        polled
    }
}

/// Standard output as an `AsyncWrite`, written synchronously so that it interleaves in order
/// with the `println!` of the transcript.
pub struct StdoutWriter;

impl AsyncWrite for StdoutWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(std::io::stdout().write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(std::io::stdout().flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(std::io::stdout().flush())
    }
}

/// The classic summary line: `1715 bytes received in 0.00 secs (1.6 MB/s)`.
pub fn summary(bytes: u64, direction: &str, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    format!(
        "{bytes} bytes {direction} in {seconds:.2} secs ({})",
        rate(bytes, seconds)
    )
}

/// A transfer rate with a decimal unit: `512 B/s`, `1.6 kB/s`, `25.2 MB/s`.
pub fn rate(bytes: u64, seconds: f64) -> String {
    let per_second = bytes as f64 / seconds.max(1e-6);
    let units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut value = per_second;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_the_classic_shape() {
        let line = summary(1715, "received", Duration::from_millis(1));
        assert_eq!(line, "1715 bytes received in 0.00 secs (1.7 MB/s)");
        assert_eq!(
            summary(0, "sent", Duration::ZERO),
            "0 bytes sent in 0.00 secs (0 B/s)"
        );
    }

    #[test]
    fn rates_pick_a_unit() {
        assert_eq!(rate(512, 1.0), "512 B/s");
        assert_eq!(rate(1_600, 1.0), "1.6 kB/s");
        assert_eq!(rate(25_200_000, 1.0), "25.2 MB/s");
    }

    #[test]
    fn the_default_mark_scales_with_the_size() {
        assert_eq!(default_mark(None), 1024);
        assert_eq!(default_mark(Some(5000)), 1024);
        assert_eq!(default_mark(Some(100 * 1024)), 1024);
        assert_eq!(default_mark(Some(100 * 1024 + 1)), 2048);
        let big = 300_000_000;
        let mark = default_mark(Some(big));
        assert_eq!(mark, 4 << 20);
        assert!(big.div_ceil(mark) <= MAX_MARKS);
        assert!(default_mark(Some(u64::MAX)) > 0);
    }

    #[test]
    fn mark_sizes_parse_with_units() {
        assert_eq!(parse_mark("4096"), Some(4096));
        assert_eq!(parse_mark("64k"), Some(65536));
        assert_eq!(parse_mark("1M"), Some(1 << 20));
        assert_eq!(parse_mark("2g"), Some(2 << 30));
        for bad in [
            "",
            "0",
            "k",
            "-1",
            "1.5m",
            "99999999999999999999",
            "20000000000g",
        ] {
            assert_eq!(parse_mark(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn meter_counts_what_passes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut writer = Meter::new(Vec::new(), Display::None);
        writer.write_all(b"hello").await.unwrap();
        assert_eq!(writer.total(), 5);
        let mut reader = Meter::new(&b"abc"[..], Display::None);
        let mut out = String::new();
        reader.read_to_string(&mut out).await.unwrap();
        assert_eq!(reader.total(), 3);
    }
}
