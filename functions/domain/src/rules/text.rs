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
/// hash of a fixed-size key: the length and the first and last eight bytes,
/// which is the whole string up to 16 bytes (names of events and domains
/// mostly are), so that a lookup hashes three words and compares nothing
/// more; longer strings are confirmed byte by byte.
#[derive(Clone, Debug, Default)]
pub struct KeyedList {
    index: HashMap<Ends, usize, FixedState>,
    /// In insertion order.
    names: Vec<Box<str>>,
}

/// The length and the first and last eight bytes of a string (they overlap
/// below 16 bytes, and are zero-padded below 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ends {
    len: usize,
    head: u64,
    tail: u64,
}

impl Ends {
    #[inline]
    fn of(bytes: &[u8]) -> Ends {
        let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
            _ => {
                let short = bytes.iter().enumerate().fold(0u64, |word, (i, b)| word | u64::from(*b) << (8 * i));
                (short, short)
            }
        };
        Ends { len: bytes.len(), head, tail }
    }
}

/// Strings this long or shorter are determined by their [`Ends`].
const WHOLE: usize = 16;

impl KeyedList {
    /// Adds `s` unless present; returns its position.
    pub fn insert(&mut self, s: &str) -> usize {
        if let Some(i) = self.position(s) {
            return i;
        }
        // A longer string with the ends of one already listed keeps the first's
        // place in the index, and is found by the scan in `position`.
        self.index.entry(Ends::of(s.as_bytes())).or_insert(self.names.len());
        self.names.push(s.into());
        self.names.len() - 1
    }

    #[inline(always)]
    pub fn position(&self, s: &str) -> Option<usize> {
        self.position_of_bytes(s.as_bytes())
    }

    /// The position of the string whose bytes are `s`.
    #[inline(always)]
    pub fn position_of_bytes(&self, s: &[u8]) -> Option<usize> {
        let i = *self.index.get(&Ends::of(s))?;
        if s.len() <= WHOLE || *self.names[i].as_bytes() == *s {
            return Some(i);
        }
        self.names.iter().position(|name| *name.as_bytes() == *s)
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

    #[test]
    fn strings_with_the_same_ends_are_told_apart() {
        let mut l = KeyedList::default();
        // Same length, same first and last eight bytes.
        assert_eq!(l.insert("webinar_AAA_attended"), 0);
        assert_eq!(l.insert("webinar_BBB_attended"), 1);
        assert_eq!(l.insert("webinar_AAA_attended"), 0);
        assert_eq!(l.position("webinar_BBB_attended"), Some(1));
        assert_eq!(l.position("webinar_CCC_attended"), None);
        // Short strings, zero-padded, and the empty one.
        assert_eq!(l.insert("a"), 2);
        assert_eq!(l.position("a\0"), None);
        assert_eq!(l.position(""), None);
        assert_eq!(l.insert(""), 3);
        assert_eq!(l.position(""), Some(3));
        // Up to 16 bytes the ends are the whole string.
        assert_eq!(l.insert("0123456789abcdef"), 4);
        assert_eq!(l.position("0123456789abcdeF"), None);
        assert_eq!(l.position("0123456789Abcdef"), None);
    }
}
