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
        Key { len: s.len(), head: head_word(s.as_bytes()) }
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
                let short = short_word(bytes);
                (short, short)
            }
        };
        Ends { len: bytes.len(), head, tail }
    }

    /// These ends with ASCII letters lower-cased, when every byte they hold
    /// is ASCII (a string of at most [`WHOLE`] bytes: all of its bytes).
    #[inline]
    fn ascii_lowercase(self) -> Option<Ends> {
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let ascii = (self.head | self.tail) & HIGH == 0;
        ascii.then(|| Ends { len: self.len, head: lowercase_word(self.head), tail: lowercase_word(self.tail) })
    }
}

/// The first eight bytes of a string (all of it when shorter, zero-padded)
/// in a word, read little-endian.
#[inline]
pub fn head_word(bytes: &[u8]) -> u64 {
    bytes.first_chunk::<8>().map_or_else(|| short_word(bytes), |head| u64::from_le_bytes(*head))
}

/// The bytes of a string shorter than eight, in a word as eight bytes read
/// little-endian would be, zero-padded: two reads that overlap, rather than
/// one per byte.
#[inline]
fn short_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(lo), Some(hi)) => {
            u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4))
        }
        _ => match (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
            (Some(lo), Some(hi)) => {
                u64::from(u16::from_le_bytes(*lo)) | u64::from(u16::from_le_bytes(*hi)) << (8 * (n - 2))
            }
            _ => bytes.first().map_or(0, |&b| u64::from(b)),
        },
    }
}

/// Eight ASCII bytes with their letters lower-cased, all at once: a byte's
/// top bit, after adding to it, tells whether it is at least `A` and whether
/// it is past `Z` (no sum of an ASCII byte carries into the next), and the
/// bytes in between gain `0x20`.
/// (Bytes that are not ASCII come out as something else: the caller
/// discards the word.)
#[inline]
pub fn lowercase_word(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let at_least_a = word.wrapping_add(ONES * u64::from(0x80 - b'A'));
    let past_z = word.wrapping_add(ONES * u64::from(0x80 - b'Z' - 1));
    let upper = at_least_a & !past_z & (ONES * 0x80);
    word | upper >> 2
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

    /// The position of the string `s` lower-cases to, when `s` is ASCII and
    /// at most [`WHOLE`] bytes long (the names must be lower case); `None`
    /// for any other `s`, which the caller folds and looks up itself.
    #[inline(always)]
    pub fn position_folding_short(&self, s: &[u8]) -> Option<Option<usize>> {
        if s.len() > WHOLE {
            return None;
        }
        let folded = Ends::of(s).ascii_lowercase()?;
        Some(self.index.get(&folded).copied())
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

    /// Short strings read two overlapping words at a time, as one byte at a
    /// time would; and every ASCII byte lower-cases as `u8` does, in any
    /// place of the word.
    #[test]
    fn words_are_read_and_lower_cased_as_bytes_are() {
        let bytes: Vec<u8> = (1..=255u8).cycle().take(300).collect();
        for n in 0..8 {
            for from in 0..40 {
                let s = &bytes[from..from + n];
                let one_by_one = s.iter().enumerate().fold(0u64, |word, (i, b)| word | u64::from(*b) << (8 * i));
                assert_eq!(short_word(s), one_by_one, "{s:?}");
            }
        }
        for b in 0..0x80u8 {
            for at in 0..8 {
                let word = u64::from(b) << (8 * at) | 0x4142_5a5b_6061_7a7b & !(0xff << (8 * at));
                let want = u64::from_le_bytes(word.to_le_bytes().map(|b| b.to_ascii_lowercase()));
                assert_eq!(lowercase_word(word), want, "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn short_ascii_strings_are_found_in_any_case() {
        let mut l = KeyedList::default();
        for name in ["saas", "fintech", "google-ads", "linkedin-ads", "0123456789abcdef", "", "a"] {
            l.insert(name);
        }
        let found = |s: &str| l.position_folding_short(s.as_bytes());
        assert_eq!(found("SaaS"), Some(Some(0)));
        assert_eq!(found("FINTECH"), Some(Some(1)));
        assert_eq!(found("LinkedIn-Ads"), Some(Some(3)));
        assert_eq!(found("0123456789ABCDEF"), Some(Some(4)));
        assert_eq!(found(""), Some(Some(5)));
        assert_eq!(found("A"), Some(Some(6)));
        assert_eq!(found("saa"), Some(None));
        assert_eq!(found("[a@S"), Some(None));
        // Longer than the ends, or not ASCII: left to the caller.
        assert_eq!(found("0123456789abcdef0"), None);
        assert_eq!(found("énergie"), None);
        assert_eq!(found("SAA\u{212A}"), None);
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
