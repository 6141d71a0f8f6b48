//! [`Names`]: a folder's names for NLST, held in one buffer and sorted by byte order.
//!
//! A big folder's NLST is mostly reading names, sorting and writing them out: one buffer and a
//! table of spans make no allocation per name, and sorting by a 16-byte prefix key compares
//! integers, not strings behind pointers, until two names share those bytes.

/// Names, each a span of one text buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names {
    text: String,
    /// (prefix key, start, length) of each name.
    spans: Vec<(u128, u32, u32)>,
}

impl Names {
    pub fn new() -> Names {
        Names::default()
    }

    /// Adds a name (ignored in the impossible case of a buffer past 4 GiB).
    pub fn push(&mut self, name: &str) {
        let (Ok(start), Ok(len)) = (u32::try_from(self.text.len()), u32::try_from(name.len()))
        else {
            return;
        };
        self.text.push_str(name);
        self.spans.push((prefix_key(name.as_bytes()), start, len));
    }

    /// Sorts by byte order, like `str`'s `Ord`.
    pub fn sort(&mut self) {
        let text = self.text.as_bytes();
        let bytes = |start: u32, len: u32| &text[start as usize..(start + len) as usize];
        self.spans.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| bytes(a.1, a.2).cmp(bytes(b.1, b.2)))
        });
    }

    /// Keeps the names `keep` accepts, in order.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let text = &self.text;
        self.spans
            .retain(|&(_, start, len)| keep(&text[start as usize..(start + len) as usize]));
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.spans
            .iter()
            .map(|&(_, start, len)| &self.text[start as usize..(start + len) as usize])
    }

    /// The names from the `start`th on, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &str> {
        self.spans
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .map(|&(_, start, len)| &self.text[start as usize..(start + len) as usize])
    }

    /// All the names, one after the other.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Memory held, roughly: the text and the span table.
    pub fn bytes(&self) -> usize {
        self.text.capacity() + self.spans.capacity() * std::mem::size_of::<(u128, u32, u32)>()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Names {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Names {
        let mut all = Names::new();
        for name in names {
            all.push(name.as_ref());
        }
        all
    }
}

/// The first 16 bytes, big-endian, zero-padded: keys order as the names do, except between
/// names that share their first 16 bytes (names hold no NUL, so a shorter name's padding sorts
/// it first, as byte order does).
fn prefix_key(name: &[u8]) -> u128 {
    let mut key = [0u8; 16];
    let n = name.len().min(16);
    key[..n].copy_from_slice(&name[..n]);
    u128::from_be_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn sorts_like_strings_do() {
        let mut words: Vec<String> = [
            "b",
            "a",
            "ab",
            "abc",
            "",
            "ü",
            "z",
            "file-00010.txt",
            "file-00002.txt",
            "a-very-long-shared-prefix-2",
            "a-very-long-shared-prefix-10",
            "a-very-long-shared-prefix-1",
            "a-very-long-shared-prefix",
            "A",
            "_",
            "~",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut names: Names = words.iter().collect();
        names.sort();
        words.sort();
        assert_eq!(names.iter().collect::<Vec<_>>(), words);
        assert_eq!(names.len(), words.len());
    }

    #[test]
    fn retain_keeps_order() {
        let mut names: Names = ["c", ".hidden", "a", "b"].into_iter().collect();
        names.sort();
        names.retain(|name| !name.starts_with('.'));
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        names.retain(|_| false);
        assert!(names.is_empty());
    }
}
