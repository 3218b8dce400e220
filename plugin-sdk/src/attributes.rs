//! A session's attributes, read in place from the text the host sent.
//!
//! The host hands a snapshot over as one text buffer and spans into it (contract 0.2),
//! with attributes sorted by key, keys lower-case and unique. Keeping that buffer and
//! binary-searching the spans costs no allocation per attribute; building a map of
//! owned strings was most of what a route call with a few sniffed headers cost.

use std::borrow::Cow;
use std::fmt;

/// The text a (start, length) span of `text` covers; `None` when it is out of range or
/// not on character boundaries.
pub(crate) fn span_str(text: &str, (start, len): (u32, u32)) -> Option<&str> {
    let start = start as usize;
    text.get(start..start.saturating_add(len as usize))
}

/// `key` lower-cased, copied only when it is not lower case already.
fn lower(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        key.to_ascii_lowercase().into()
    } else {
        key.into()
    }
}

/// (start, length) of a piece of the text, as the contract's spans say it.
type Span = (u32, u32);

/// The attributes of a session: lower-case keys, each once, iterated in key order.
#[derive(Clone, Default)]
pub struct Attributes {
    text: String,
    /// (key, value) spans of `text`, sorted by key, keys unique.
    entries: Vec<(Span, Span)>,
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key` (looked up lower-cased).
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.find(&lower(key)).ok()?;
        self.entries.get(i).map(|&(_, v)| self.slice(v))
    }

    /// Sets `key` (lower-cased) to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let key = lower(key.as_ref());
        let value = self.push(value.as_ref());
        match self.find(&key) {
            Ok(i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.1 = value;
                }
            }
            Err(i) => {
                let key = self.push(&key);
                self.entries.insert(i, (key, value));
            }
        }
    }

    /// Removes `key` (lower-cased), if present.
    pub fn remove(&mut self, key: impl AsRef<str>) {
        if let Ok(i) = self.find(&lower(key.as_ref())) {
            self.entries.remove(i);
        }
    }

    /// (key, value) of every attribute, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            attributes: self,
            entries: self.entries.iter(),
        }
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without attributes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// From the host's text and (key, value) spans. When the spans are what the
    /// contract promises (in range, keys lower-case, sorted, unique) the text is kept as
    /// it is; otherwise every pair is re-inserted, a span that is out of range reading
    /// as empty and a repeated key keeping its last value.
    pub(crate) fn from_wire(text: String, spans: impl IntoIterator<Item = (Span, Span)>) -> Self {
        let entries = spans.into_iter().collect();
        let kept = Attributes { text, entries };
        if kept.well_formed() {
            return kept;
        }
        let mut fixed = Attributes::new();
        for &(k, v) in &kept.entries {
            fixed.insert(kept.checked(k).unwrap_or(""), kept.checked(v).unwrap_or(""));
        }
        fixed
    }

    fn well_formed(&self) -> bool {
        let mut previous: Option<&str> = None;
        for &(k, v) in &self.entries {
            let (Some(key), Some(_)) = (self.checked(k), self.checked(v)) else {
                return false;
            };
            if key.bytes().any(|b| b.is_ascii_uppercase()) || previous.is_some_and(|p| p >= key) {
                return false;
            }
            previous = Some(key);
        }
        true
    }

    fn checked(&self, span: Span) -> Option<&str> {
        span_str(&self.text, span)
    }

    /// Entries are only built from checked ranges (or by `push`), so this reads as
    /// empty only in theory.
    fn slice(&self, span: Span) -> &str {
        self.checked(span).unwrap_or_default()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|&(k, _)| self.slice(k).cmp(key))
    }

    fn push(&mut self, s: &str) -> Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let start = clamp(self.text.len());
        self.text.push_str(s);
        (start, clamp(s.len()))
    }
}

/// Iterates (key, value) pairs in key order.
pub struct Iter<'a> {
    attributes: &'a Attributes,
    entries: std::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let &(k, v) = self.entries.next()?;
        Some((self.attributes.slice(k), self.attributes.slice(v)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Attributes {}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for Attributes {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut attributes = Attributes::new();
        attributes.extend(pairs);
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_iterate() {
        let mut a: Attributes = [("Host", "a"), ("accept", "*/*")].into_iter().collect();
        a.insert("HOST", "b");
        assert_eq!(a.get("host"), Some("b"));
        assert_eq!(a.get("Host"), Some("b"));
        assert_eq!(a.len(), 2);
        a.remove("Accept");
        assert_eq!(a.get("accept"), None);
        a.extend([(":path", "/")]);
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all, [(":path", "/"), ("host", "b")]);
        assert_eq!(format!("{a:?}"), r#"{":path": "/", "host": "b"}"#);
    }

    #[test]
    fn well_formed_wire_text_is_kept_as_it_is() {
        let text = "cache-controlno-cachehostx".to_string();
        let a = Attributes::from_wire(text, [((0, 13), (13, 8)), ((21, 4), (25, 1))]);
        assert_eq!(a.text, "cache-controlno-cachehostx");
        assert_eq!(a.get("cache-control"), Some("no-cache"));
        assert_eq!(a.get("host"), Some("x"));
    }

    #[test]
    fn malformed_wire_spans_are_normalised_not_trusted() {
        // Unsorted, upper-case, repeated, and one span out of range.
        let text = "HostaAcceptbhostc".to_string();
        let a = Attributes::from_wire(
            text,
            [
                ((0, 4), (4, 1)),
                ((5, 6), (11, 1)),
                ((12, 4), (16, 1)),
                ((99, 1), (0, u32::MAX)),
            ],
        );
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all, [("", ""), ("accept", "b"), ("host", "c")]);
    }
}
