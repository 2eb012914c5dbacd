//! Fast equality for the short strings rules compare: a key made of the length
//! and the first eight bytes settles most comparisons with one integer compare,
//! and the rest of the bytes are compared only when the keys agree. Lists of
//! names (event types, free email domains) are hashed.

use std::collections::HashMap;

use foldhash::fast::FixedState;

/// The length and the first eight bytes of a string (ASCII-lower-cased for
/// comparisons that ignore case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    len: usize,
    head: u64,
}

impl Key {
    #[inline]
    pub fn exact(s: &str) -> Key {
        let bytes = s.as_bytes();
        let mut head = 0u64;
        for (i, b) in bytes.iter().take(8).enumerate() {
            head |= u64::from(*b) << (8 * i);
        }
        Key { len: bytes.len(), head }
    }

    /// The key of `s` with ASCII letters lower-cased.
    #[inline]
    pub fn folded(s: &str) -> Key {
        let bytes = s.as_bytes();
        let mut head = 0u64;
        for (i, b) in bytes.iter().take(8).enumerate() {
            head |= u64::from(b.to_ascii_lowercase()) << (8 * i);
        }
        Key { len: bytes.len(), head }
    }
}

/// A string with its key.
#[derive(Clone, Debug)]
pub struct Keyed {
    text: Box<str>,
    key: Key,
}

impl Keyed {
    pub fn exact(s: &str) -> Self {
        Keyed { key: Key::exact(s), text: s.into() }
    }

    /// For comparisons ignoring ASCII case: `s` must already be lower case.
    pub fn folded(s: &str) -> Self {
        Keyed { key: Key::folded(s), text: s.into() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Equal to `value`, whose exact key is `key`.
    #[inline]
    pub fn eq_exact(&self, value: &str, key: Key) -> bool {
        self.key == key && (value.len() <= 8 || self.text.as_bytes()[8..] == value.as_bytes()[8..])
    }

    /// Equal to `value` ignoring ASCII case, whose folded key is `key`.
    #[inline]
    pub fn eq_folded(&self, value: &str, key: Key) -> bool {
        self.key == key && (value.len() <= 8 || self.text.as_bytes()[8..].eq_ignore_ascii_case(&value.as_bytes()[8..]))
    }
}

/// A list of strings, each with its position in insertion order, looked up by
/// hash: one hash of the bytes and, nearly always, one comparison.
#[derive(Clone, Debug, Default)]
pub struct KeyedList {
    index: HashMap<Box<str>, usize, FixedState>,
    /// In insertion order.
    names: Vec<Box<str>>,
}

impl KeyedList {
    /// Adds `s` unless present; returns its position.
    pub fn insert(&mut self, s: &str) -> usize {
        if let Some(i) = self.position(s) {
            return i;
        }
        self.index.insert(s.into(), self.names.len());
        self.names.push(s.into());
        self.names.len() - 1
    }

    #[inline]
    pub fn position(&self, s: &str) -> Option<usize> {
        self.index.get(s).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decide_short_strings_and_bytes_decide_long_ones() {
        for (a, b, equal) in [
            ("acme.com", "acme.com", true),
            ("acme.com", "acme.co", false),
            ("globex.com", "globex.con", false),
            ("globex.com", "globex.com", true),
            ("", "", true),
            ("a", "", false),
            ("pricing_page_view", "pricing_page_veiw", false),
        ] {
            assert_eq!(Keyed::exact(a).eq_exact(b, Key::exact(b)), equal, "{a} {b}");
        }
    }

    #[test]
    fn folded_keys_ignore_ascii_case() {
        let k = Keyed::folded("software-engineering");
        assert!(k.eq_folded("SoftWare-Engineering", Key::folded("SoftWare-Engineering")));
        assert!(!k.eq_folded("SoftWare-Engineerinx", Key::folded("SoftWare-Engineerinx")));
    }

    #[test]
    fn a_list_finds_its_entries() {
        let mut l = KeyedList::default();
        assert_eq!(l.insert("gmail.com"), 0);
        assert_eq!(l.insert("gmx.de"), 1);
        assert_eq!(l.insert("gmail.com"), 0);
        assert_eq!(l.position("gmx.de"), Some(1));
        assert_eq!(l.position("gmx.net"), None);
        // Same length and first eight bytes: told apart by the rest.
        assert_eq!(l.insert("pricing_page_view"), 2);
        assert_eq!(l.insert("pricing_page_veiw"), 3);
        assert_eq!(l.position("pricing_page_view"), Some(2));
        assert_eq!(l.position("pricing_page_veiw"), Some(3));
        assert_eq!(l.iter().collect::<Vec<_>>(), ["gmail.com", "gmx.de", "pricing_page_view", "pricing_page_veiw"]);
    }
}
