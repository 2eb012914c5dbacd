//! `matches` patterns that are a word-bounded alternation of literals, such as
//! `(?i)\b(vp|vice president|head|director)\b`: the usual way to match job
//! titles. On ASCII text such a pattern is decided by comparing its literals
//! where a word boundary is; other text goes to the regex, which stays the
//! reference.
//!
//! The shapes taken are an optional `(?i)` first, then `\b`, one literal or a
//! group (capturing, or `(?:` with no flags) of `|`-separated literals, and
//! `\b`. A literal is one or more ASCII characters, escaped or not. Anything
//! else, including other flags, is left to the regex.
//!
//! On ASCII text the two agree exactly: Unicode `\w` is `[0-9A-Za-z_]` on
//! ASCII characters, and Unicode case folding relates no ASCII character to
//! another except a letter to its other case.

use regex_syntax::ast::{self, AssertionKind, Ast, FlagsItemKind, GroupKind};

/// The literals of a word-bounded alternation, indexed by their first byte.
#[derive(Clone, Debug)]
pub struct Words {
    /// Lower-cased when case is ignored; sorted by first byte.
    literals: Box<[Box<[u8]>]>,
    /// The literals starting with a byte (lower-cased when case is ignored),
    /// as a range of `literals`.
    by_first: Box<[(u8, u8); 256]>,
    ignore_case: bool,
}

/// The text of a branch made of ASCII literal characters only, lower-cased
/// when case is ignored.
fn literal(chars: &[Ast], ignore_case: bool) -> Option<Box<[u8]>> {
    let text = chars
        .iter()
        .map(|a| match a {
            Ast::Literal(l) if l.c.is_ascii() => Some(l.c),
            _ => None,
        })
        .collect::<Option<String>>()?;
    if text.is_empty() {
        return None;
    }
    Some(if ignore_case { text.to_ascii_lowercase() } else { text }.into_bytes().into_boxed_slice())
}

/// The class of a byte: a word character under Unicode `\w` (which on ASCII
/// is `[0-9A-Za-z_]`), another ASCII character, or part of a character that is
/// not ASCII.
const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = if (b as u8).is_ascii_alphanumeric() || b == b'_' as usize { WORD } else { NOT_WORD };
        b += 1;
    }
    t
};
const NOT_WORD: u8 = 0;
const WORD: u8 = 1;
const OTHER: u8 = 2;

impl Words {
    /// The literals of `pattern` when it has one of the shapes above.
    pub fn of(pattern: &str) -> Option<Words> {
        let tree = ast::parse::Parser::new().parse(pattern).ok()?;
        let Ast::Concat(concat) = &tree else { return None };
        let mut items = concat.asts.as_slice();
        let mut ignore_case = false;
        if let [Ast::Flags(set), rest @ ..] = items {
            match set.flags.items.as_slice() {
                [item] if item.kind == FlagsItemKind::Flag(ast::Flag::CaseInsensitive) => ignore_case = true,
                _ => return None,
            }
            items = rest;
        }
        let [Ast::Assertion(open), body @ .., Ast::Assertion(close)] = items else { return None };
        if open.kind != AssertionKind::WordBoundary || close.kind != AssertionKind::WordBoundary {
            return None;
        }
        let body = match body {
            [Ast::Group(group)] => match &group.kind {
                GroupKind::CaptureIndex(_) | GroupKind::CaptureName { .. } => std::slice::from_ref(&*group.ast),
                GroupKind::NonCapturing(flags) if flags.items.is_empty() => std::slice::from_ref(&*group.ast),
                GroupKind::NonCapturing(_) => return None,
            },
            // `\bfounder\b`: one literal, its characters side by side.
            chars => return Words::new(vec![literal(chars, ignore_case)?], ignore_case),
        };
        let branches = match body {
            [Ast::Alternation(alt)] => alt.asts.as_slice(),
            one => one,
        };
        let literals = branches
            .iter()
            .map(|branch| match branch {
                Ast::Concat(c) => literal(&c.asts, ignore_case),
                one => literal(std::slice::from_ref(one), ignore_case),
            })
            .collect::<Option<Vec<_>>>()?;
        Words::new(literals, ignore_case)
    }

    fn new(mut literals: Vec<Box<[u8]>>, ignore_case: bool) -> Option<Words> {
        if literals.len() > usize::from(u8::MAX) {
            return None;
        }
        literals.sort();
        literals.dedup();
        let mut by_first = Box::new([(0u8, 0u8); 256]);
        for (i, lit) in literals.iter().enumerate() {
            let range = &mut by_first[usize::from(lit[0])];
            if range.0 == range.1 {
                range.0 = i as u8;
            }
            range.1 = i as u8 + 1;
        }
        Some(Words { literals: literals.into_boxed_slice(), by_first, ignore_case })
    }

    /// Whether one of the literals stands between two word boundaries in
    /// `hay`; `None` when that takes reading a character that is not ASCII,
    /// whose case and word class only the regex knows.
    #[inline]
    pub fn find(&self, hay: &[u8]) -> Option<bool> {
        let mut before = NOT_WORD;
        for (at, &b) in hay.iter().enumerate() {
            let class = CLASS[usize::from(b)];
            if class == OTHER {
                return None;
            }
            if class != before {
                // A boundary: literals may start here.
                let key = if self.ignore_case { b.to_ascii_lowercase() } else { b };
                let (lo, hi) = self.by_first[usize::from(key)];
                for lit in &self.literals[usize::from(lo)..usize::from(hi)] {
                    let end = at + lit.len();
                    let Some(seen) = hay.get(at..end) else { continue };
                    let same = if self.ignore_case { seen.eq_ignore_ascii_case(lit) } else { seen == &**lit };
                    if same {
                        // The literal's last character and the one after it.
                        let last = CLASS[usize::from(lit[lit.len() - 1])];
                        match hay.get(end).map(|b| CLASS[usize::from(*b)]) {
                            Some(OTHER) => return None,
                            Some(next) if next != last => return Some(true),
                            None if last == WORD => return Some(true),
                            _ => {}
                        }
                    }
                }
            }
            before = class;
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    #[test]
    fn takes_word_bounded_alternations_of_literals() {
        for pattern in [
            r"(?i)\b(vp|vice president|head|director|chief|cto|ceo)\b",
            r"\b(?:vp|head)\b",
            r"\bfounder\b",
            r"(?i)\bco\-founder\b",
            r"(?i)\b(?P<t>cto|c\.t\.o)\b",
            r"\b(a|b)\b",
        ] {
            assert!(Words::of(pattern).is_some(), "{pattern}");
        }
    }

    #[test]
    fn leaves_every_other_pattern_to_the_regex() {
        for pattern in [
            r"(?i)\b(vp|head)",
            r"(vp|head)\b",
            r"(?i)(vp|head)",
            r"(?x)\b(vp|head)\b",
            r"(?i-u)\b(vp|head)\b",
            r"(?is)\b(vp|head)\b",
            r"(?i)\b(vp|)\b",
            r"\b(?i:vp|head)\b",
            r"(?i)\B(vp|head)\B",
            r"(?i)\b{start}(vp|head)\b{end}",
            r"(?i)\b(v.p|head)\b",
            r"(?i)\b(vp+|head)\b",
            r"(?i)\b(dé|head)\b",
            r"(?i)\b((vp)|head)\b",
            r"(?i)\b(vp|head)\b(?-i)",
            r"^(vp|head)$",
            r"",
            r"(",
        ] {
            assert!(Words::of(pattern).is_none(), "{pattern}");
        }
    }

    /// Characters that make words, separate them, and are regex syntax.
    fn piece() -> impl Strategy<Value = char> {
        prop::sample::select(vec!['a', 'A', 'b', 'B', 'k', 'K', 's', '_', '1', ' ', '-', '.', '|', '(', '\t'])
    }

    fn literal() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 1..5).prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// On ASCII text, the literals decide as the regex does, with case
        /// ignored or not, at every position and overlap.
        #[test]
        fn agrees_with_the_regex(
            literals in prop::collection::vec(literal(), 1..6),
            hay in prop::collection::vec(prop::sample::select((0u8..128).collect::<Vec<_>>()), 0..12),
            sample in prop::collection::vec(literal(), 0..4),
            ignore_case: bool,
            capture: bool,
        ) {
            let alternation = literals.iter().map(|l| regex::escape(l)).collect::<Vec<_>>().join("|");
            let group = if capture { format!("({alternation})") } else { format!("(?:{alternation})") };
            let pattern = format!(r"{}\b{group}\b", if ignore_case { "(?i)" } else { "" });
            let words = Words::of(&pattern).expect("a word-bounded alternation");
            let regex = Regex::new(&pattern).unwrap();
            // Random bytes, and text made of the literals' own pieces.
            let mixed = literals.join("").to_ascii_uppercase();
            for text in [String::from_utf8(hay).unwrap(), sample.concat(), sample.join(" "), literals.join(""), mixed] {
                prop_assert_eq!(words.find(text.as_bytes()), Some(regex.is_match(&text)), "{} on {:?}", pattern, text);
            }
        }
    }
}
