//! Conditions: compiled once at load into a tree of typed tests, evaluated per
//! lead with no lookups by name and no allocation.

use std::fmt;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use regex::{Regex, RegexBuilder};

use super::diag::suggest;
use super::field::{Case, Facts, Field, Kind, Scope, resolve};
use super::text::{Key, Keyed, KeyedList, head_word, lowercase_word};
use super::words::Words;
use super::yaml::{Doc, MAX_DEPTH, child, is_null, item};
use crate::lead::{CountryCode, Status};

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Cond {
    /// No condition: always holds.
    Always,
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
    /// One field compared with its operands.
    Test(Test),
}

/// A test on one field, compiled at load into a check specialised for the
/// field and the operator: evaluating it is one `match`, with no lookups by
/// name, no indirect call and no allocation.
#[derive(Clone)]
pub struct Test {
    check: Check,
    /// What the test is, as written (`employees gte`).
    what: String,
    /// What it holds for, as `rules lint` reasons about it.
    pub shape: Shape,
}

/// The values a test holds for: every test needs its field present, and then
/// one of these (`Opaque` when the lint cannot reason about it).
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Opaque,
    /// A number in an interval: bounds, and whether each is included.
    Range {
        field: String,
        lo: f64,
        lo_in: bool,
        hi: f64,
        hi_in: bool,
    },
    /// A number among these, or (`not`) any but these.
    Numbers {
        field: String,
        values: Vec<f64>,
        not: bool,
    },
    /// A text among these (lower case, or as normalised), or any but these.
    Texts {
        field: String,
        values: Vec<String>,
        not: bool,
    },
    /// A text with this (lower-case) part: `contains`, `starts_with`, `ends_with`.
    Part {
        field: String,
        how: &'static str,
        part: String,
    },
    Bool {
        field: String,
        value: bool,
    },
    /// A tier or status among a bit set.
    Mask {
        field: String,
        mask: u64,
    },
}

impl Test {
    /// The field as the rule names it (`employees`, `events.demo_request`).
    pub fn field_name(&self) -> String {
        let after = self.what.split_once("when.").map_or(self.what.as_str(), |(_, rest)| rest);
        let mut parts: Vec<&str> =
            after.split('.').filter(|p| !(p.starts_with("all[") || p.starts_with("any[") || *p == "not")).collect();
        if parts.len() > 1 && parts.last().is_some_and(|p| OPERATORS.contains(&p.split('[').next().unwrap_or(p))) {
            parts.pop();
        }
        let name = parts.join(".");
        name.split('[').next().unwrap_or(&name).to_owned()
    }
}

impl fmt::Debug for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Test({})", self.what)
    }
}

/// What a test checks, by the kind of its field.
#[derive(Clone, Debug)]
pub(super) enum Check {
    /// `exists`: the field is present (and non-empty), or not.
    Exists {
        field: Field,
        want: bool,
    },
    /// A boolean field equal to `value`.
    Bool {
        field: Field,
        value: bool,
    },
    /// The tier among a bit set.
    Tier {
        mask: u64,
        negated: bool,
    },
    /// The status among a bit set.
    Status {
        mask: u16,
        negated: bool,
    },
    /// The country among a bit set by code.
    Country {
        set: Box<[u64; 11]>,
        negated: bool,
    },
    Text {
        field: Field,
        op: TextOp,
    },
    Number {
        field: Field,
        op: NumOp,
    },
    /// `eq`, `ne`, `in` or `not_in` on a text field whose value the rule set
    /// numbers once per lead ([`Symbols`]): a bit test.
    Symbol {
        slot: u8,
        set: Box<[u64]>,
        negated: bool,
    },
    /// `contains` on a text field whose value the rule set searches once per
    /// lead for every part its tests look for ([`Parts`]): a bit test.
    Part {
        slot: u8,
        bit: u8,
    },
    /// A number test on an integer field as an inclusive range of integers
    /// (empty when `lo > hi`), rounded at load from the thresholds as written:
    /// two integer compares per lead.
    Int {
        field: IntField,
        lo: i64,
        hi: i64,
        negated: bool,
    },
}

/// The number fields that only hold integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IntField {
    Employees,
    Score,
    Event(u16),
}

impl IntField {
    fn of(field: &Field) -> Option<IntField> {
        match field {
            Field::Employees => Some(IntField::Employees),
            Field::Score => Some(IntField::Score),
            Field::Events(slot) => Some(IntField::Event(*slot)),
            _ => None,
        }
    }

    #[inline]
    fn get(self, f: &Facts<'_>) -> Option<i64> {
        match self {
            IntField::Employees => f.profile.employees,
            IntField::Score => f.score,
            IntField::Event(slot) => Some(i64::from(f.events.get(usize::from(slot)).copied().unwrap_or(0))),
        }
    }
}

/// Thresholds below this magnitude are integers or lie between two, exactly
/// as `f64`; and every integer value compares with them as its `f64` does.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// The integers `op` holds for, as an inclusive range and whether it is
/// negated; `None` when the test is not a comparison with exact thresholds.
fn int_range(op: &NumOp) -> Option<(i64, i64, bool)> {
    let exact = |x: f64| x.is_finite() && x.abs() < EXACT;
    // Within `EXACT`, the conversions below are exact.
    let (ceil, floor) = (|x: f64| x.ceil() as i64, |x: f64| x.floor() as i64);
    let point = |x: f64| if x.fract() == 0.0 { (x as i64, x as i64) } else { (1, 0) };
    Some(match *op {
        NumOp::Gte(x) if exact(x) => (ceil(x), i64::MAX, false),
        NumOp::Gt(x) if exact(x) => (floor(x) + 1, i64::MAX, false),
        NumOp::Lte(x) if exact(x) => (i64::MIN, floor(x), false),
        NumOp::Lt(x) if exact(x) => (i64::MIN, ceil(x) - 1, false),
        NumOp::Between(a, b) if exact(a) && exact(b) => (ceil(a), floor(b), false),
        NumOp::Eq(x) if exact(x) => {
            let (lo, hi) = point(x);
            (lo, hi, false)
        }
        NumOp::Ne(x) if exact(x) => {
            let (lo, hi) = point(x);
            (lo, hi, true)
        }
        _ => return None,
    })
}

impl Check {
    /// Whether the check costs no more than a few compares and a lookup: no
    /// text comparison, no search, no regex.
    pub(super) fn is_cheap(&self) -> bool {
        !matches!(self, Check::Text { .. })
    }

    /// Whether the check reads the score or the tier, which are known only
    /// once the lead has been scored.
    pub(super) fn reads_score(&self) -> bool {
        match self {
            Check::Int { field, .. } => *field == IntField::Score,
            Check::Number { field, .. } | Check::Exists { field, .. } | Check::Text { field, .. } => {
                matches!(field, Field::Score | Field::Tier)
            }
            Check::Tier { .. } => true,
            Check::Bool { .. } | Check::Status { .. } | Check::Country { .. } => false,
            Check::Symbol { .. } | Check::Part { .. } => false,
        }
    }

    /// Whether the two checks hold for the same leads because they are the
    /// same check (false for text and number tests, which are never shared).
    pub(super) fn same_as(&self, other: &Check) -> bool {
        match (self, other) {
            (Check::Exists { field: a, want: x }, Check::Exists { field: b, want: y }) => a == b && x == y,
            (Check::Bool { field: a, value: x }, Check::Bool { field: b, value: y }) => a == b && x == y,
            (Check::Tier { mask: a, negated: x }, Check::Tier { mask: b, negated: y }) => a == b && x == y,
            (Check::Status { mask: a, negated: x }, Check::Status { mask: b, negated: y }) => a == b && x == y,
            (Check::Country { set: a, negated: x }, Check::Country { set: b, negated: y }) => a == b && x == y,
            (Check::Symbol { slot: a, set: s, negated: x }, Check::Symbol { slot: b, set: t, negated: y }) => {
                a == b && s == t && x == y
            }
            (Check::Part { slot: a, bit: x }, Check::Part { slot: b, bit: y }) => a == b && x == y,
            (
                Check::Int { field: a, lo: l1, hi: h1, negated: x },
                Check::Int { field: b, lo: l2, hi: h2, negated: y },
            ) => a == b && l1 == l2 && h1 == h2 && x == y,
            _ => false,
        }
    }

    #[inline(always)]
    pub(super) fn holds(&self, f: &Facts<'_>) -> bool {
        match self {
            Check::Int { field, lo, hi, negated } => field.get(f).is_some_and(|v| (*lo <= v && v <= *hi) != *negated),
            Check::Number { field, op } => field.number(f).is_some_and(|v| op.holds(v)),
            Check::Text { field, op } => field.text(f).is_some_and(|v| op.holds(v)),
            Check::Symbol { slot, set, negated } => match f.symbols[usize::from(*slot)] {
                ABSENT => false,
                symbol => {
                    let word = set.get(symbol as usize / 64).copied().unwrap_or(0);
                    (word >> (symbol % 64) & 1 == 1) != *negated
                }
            },
            Check::Part { slot, bit } => f.parts[usize::from(*slot)] >> bit & 1 == 1,
            Check::Country { set, negated } => {
                f.profile.country.is_some_and(|c| (set[c.index() / 64] >> (c.index() % 64) & 1 == 1) != *negated)
            }
            Check::Bool { field, value } => field.boolean(f) == Some(*value),
            Check::Exists { field, want } => field.exists(f) == *want,
            Check::Tier { mask, negated } => f.tier.is_some_and(|t| (t < 64 && mask & (1 << t) != 0) != *negated),
            Check::Status { mask, negated } => (mask & f.status.bit() != 0) != *negated,
        }
    }
}

#[derive(Clone, Debug)]
pub enum TextOp {
    Eq(Lower),
    Ne(Lower),
    In(Box<[Lower]>),
    NotIn(Box<[Lower]>),
    Contains(Literal),
    StartsWith(Literal),
    EndsWith(Literal),
    /// `matches`: the regex exactly as written.
    Matches(Pattern),
}

/// An operand of `eq`, `ne`, `in` and `not_in`, compared ignoring case: stored
/// lower-cased, or, for fields whose values are normalised (email, country),
/// in their case and compared exactly.
#[derive(Clone, Debug)]
pub struct Lower {
    keyed: Keyed,
    ascii: bool,
    exact: bool,
}

impl Lower {
    fn new(s: &str) -> Self {
        let text = s.to_lowercase();
        Lower { ascii: text.is_ascii(), keyed: Keyed::folded(&text), exact: false }
    }

    fn for_field(s: &str, field: &Field) -> Self {
        let exact = match field.normalised_case() {
            Some(Case::Lower) => s.to_lowercase(),
            Some(Case::Upper) => s.to_uppercase(),
            None => return Lower::new(s),
        };
        Lower { ascii: exact.is_ascii(), keyed: Keyed::exact(&exact), exact: true }
    }

    /// Equal to `value`, which is not ASCII, by Unicode lower-casing.
    fn eq_unicode(&self, value: &str) -> bool {
        value.chars().flat_map(char::to_lowercase).eq(self.keyed.as_str().chars())
    }
}

/// Whether any operand equals `value`.
#[inline]
fn any_eq(xs: &[Lower], value: &str) -> bool {
    let Some(first) = xs.first() else { return false };
    if first.exact {
        let key = Key::exact(value);
        xs.iter().any(|x| x.keyed.eq_exact(value, key))
    } else if value.is_ascii() {
        // Text that lower-cases to ASCII only equals operands that did too.
        let key = Key::folded(value);
        xs.iter().any(|x| x.ascii && x.keyed.eq_folded(value, key))
    } else {
        xs.iter().any(|x| x.eq_unicode(value))
    }
}

/// Below this length a text is searched byte by byte.
const SHORT: usize = 48;

/// A substring operand (`contains`, `starts_with`, `ends_with`), compared
/// ignoring case: bytewise for ASCII text, by a case-insensitive regex otherwise.
#[derive(Clone, Debug)]
pub struct Literal {
    lower: Lower,
    unicode: Regex,
}

impl Literal {
    fn new(s: &str, anchor: (&str, &str)) -> Result<Self, regex::Error> {
        let pattern = format!("{}{}{}", anchor.0, regex::escape(s), anchor.1);
        Ok(Literal { lower: Lower::new(s), unicode: RegexBuilder::new(&pattern).case_insensitive(true).build()? })
    }

    #[inline]
    fn ascii(&self, value: &str) -> Option<&[u8]> {
        (self.lower.ascii && value.is_ascii()).then_some(self.lower.keyed.as_str().as_bytes())
    }

    #[inline]
    fn contained_in(&self, value: &str) -> bool {
        match self.ascii(value) {
            Some(needle) => {
                // Candidates start where the needle's first byte does, in either case.
                let (hay, first) = (value.as_bytes(), needle[0]);
                let last_start = match hay.len().checked_sub(needle.len()) {
                    Some(n) => n,
                    None => return false,
                };
                let confirm = |at: usize| hay[at + 1..at + needle.len()].eq_ignore_ascii_case(&needle[1..]);
                if hay.len() < SHORT {
                    // Titles and names: a plain scan beats setting up a vector search.
                    hay[..=last_start].iter().enumerate().any(|(at, b)| b.to_ascii_lowercase() == first && confirm(at))
                } else {
                    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &hay[..=last_start]).any(confirm)
                }
            }
            None => self.unicode.is_match(value),
        }
    }

    #[inline]
    fn starts(&self, value: &str) -> bool {
        match self.ascii(value) {
            Some(needle) => value.as_bytes().get(..needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)),
            None => self.unicode.is_match(value),
        }
    }

    #[inline]
    fn ends(&self, value: &str) -> bool {
        match self.ascii(value) {
            Some(needle) => value
                .len()
                .checked_sub(needle.len())
                .is_some_and(|at| value.as_bytes()[at..].eq_ignore_ascii_case(needle)),
            None => self.unicode.is_match(value),
        }
    }
}

/// A `matches` regex, and its literals when it is a word-bounded alternation
/// of them.
#[derive(Clone, Debug)]
pub struct Pattern {
    regex: Regex,
    words: Option<Words>,
}

impl Pattern {
    #[inline]
    fn is_match(&self, v: &str) -> bool {
        match self.words.as_ref().and_then(|words| words.find(v.as_bytes())) {
            Some(found) => found,
            None => self.regex.is_match(v),
        }
    }
}

impl TextOp {
    /// Whether the op holds for `v`, a present, non-empty value.
    #[inline]
    fn holds(&self, v: &str) -> bool {
        match self {
            TextOp::Eq(x) => any_eq(std::slice::from_ref(x), v),
            TextOp::Ne(x) => !any_eq(std::slice::from_ref(x), v),
            TextOp::In(xs) => any_eq(xs, v),
            TextOp::NotIn(xs) => !any_eq(xs, v),
            TextOp::Contains(x) => x.contained_in(v),
            TextOp::StartsWith(x) => x.starts(v),
            TextOp::EndsWith(x) => x.ends(v),
            TextOp::Matches(p) => p.is_match(v),
        }
    }
}

#[derive(Clone, Debug)]
pub enum NumOp {
    Eq(f64),
    Ne(f64),
    In(Box<[f64]>),
    NotIn(Box<[f64]>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Between(f64, f64),
}

impl NumOp {
    #[inline]
    fn holds(&self, v: f64) -> bool {
        match *self {
            NumOp::Eq(x) => v == x,
            NumOp::Ne(x) => v != x,
            NumOp::In(ref xs) => xs.contains(&v),
            NumOp::NotIn(ref xs) => !xs.contains(&v),
            NumOp::Gt(x) => v > x,
            NumOp::Gte(x) => v >= x,
            NumOp::Lt(x) => v < x,
            NumOp::Lte(x) => v <= x,
            NumOp::Between(a, b) => a <= v && v <= b,
        }
    }
}

impl Cond {
    /// Whether the condition holds for these facts. Tests, the leaves, are
    /// checked in place; only nested groups cost a call.
    #[inline]
    pub fn holds(&self, f: &Facts<'_>) -> bool {
        match self {
            Cond::Test(t) => t.check.holds(f),
            Cond::Always => true,
            group => group.group_holds(f),
        }
    }

    /// The check of a test; `None` for a group.
    pub(super) fn as_check(&self) -> Option<&Check> {
        match self {
            Cond::Test(t) => Some(&t.check),
            _ => None,
        }
    }

    fn group_holds(&self, f: &Facts<'_>) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.holds(f)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(f)),
            Cond::Not(c) => !c.holds(f),
            Cond::Test(t) => t.check.holds(f),
            Cond::Always => true,
        }
    }

    /// Every one of `parts`, cheapest first: conditions have no effects, so
    /// the order only decides how soon a group is settled.
    fn all(mut parts: Vec<Cond>) -> Cond {
        parts.sort_by_key(Cond::cost);
        Cond::All(parts.into())
    }

    /// Any of `parts`, cheapest first.
    fn any(mut parts: Vec<Cond>) -> Cond {
        parts.sort_by_key(Cond::cost);
        Cond::Any(parts.into())
    }

    /// A rough cost of checking the condition: masks and integers before
    /// numbers, equality on text before searches in it, searches before regexes.
    fn cost(&self) -> u32 {
        match self {
            Cond::Always => 0,
            Cond::Test(t) => match &t.check {
                Check::Int { .. }
                | Check::Bool { .. }
                | Check::Tier { .. }
                | Check::Status { .. }
                | Check::Symbol { .. }
                | Check::Part { .. } => 1,
                Check::Exists { .. } | Check::Country { .. } | Check::Number { .. } => 2,
                Check::Text { op: TextOp::Eq(_) | TextOp::Ne(_), .. } => 3,
                Check::Text { op: TextOp::In(xs) | TextOp::NotIn(xs), .. } => 3 + xs.len().min(64) as u32,
                Check::Text { op: TextOp::Matches(_), .. } => 200,
                Check::Text { .. } => 100,
            },
            Cond::Not(c) => c.cost(),
            Cond::All(cs) | Cond::Any(cs) => cs.iter().map(Cond::cost).fold(0u32, u32::saturating_add),
        }
    }

    /// Turns every `eq`, `ne`, `in` and `not_in` test on a text field into a
    /// bit test on the value's number in `symbols`, as far as it has slots.
    /// Turns every `contains` test on a text field into a bit test on the
    /// parts that field's value was found to contain, as far as `parts` has room.
    pub fn search_once(&mut self, parts: &mut Parts) {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter_mut().for_each(|c| c.search_once(parts)),
            Cond::Not(c) => c.search_once(parts),
            Cond::Always => {}
            Cond::Test(t) => {
                let Check::Text { field, op: TextOp::Contains(literal) } = &t.check else { return };
                if let Some((slot, bit)) = parts.add(field, literal) {
                    t.check = Check::Part { slot, bit };
                }
            }
        }
    }

    pub fn symbolise(&mut self, symbols: &mut Symbols) {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter_mut().for_each(|c| c.symbolise(symbols)),
            Cond::Not(c) => c.symbolise(symbols),
            Cond::Always => {}
            Cond::Test(t) => {
                let Check::Text { field, op } = &t.check else { return };
                let (operands, negated) = match op {
                    TextOp::Eq(x) => (std::slice::from_ref(x), false),
                    TextOp::Ne(x) => (std::slice::from_ref(x), true),
                    TextOp::In(xs) => (&xs[..], false),
                    TextOp::NotIn(xs) => (&xs[..], true),
                    _ => return,
                };
                let Some(slot) = symbols.slot(field) else { return };
                let mut set: Vec<u64> = Vec::new();
                for x in operands {
                    let symbol = symbols.number(slot, x.keyed.as_str()) as usize;
                    if set.len() <= symbol / 64 {
                        set.resize(symbol / 64 + 1, 0);
                    }
                    set[symbol / 64] |= 1 << (symbol % 64);
                }
                t.check = Check::Symbol { slot: slot as u8, set: set.into(), negated };
            }
        }
    }

    /// Whether the condition always holds (so any later first-match rule is unreachable).
    pub fn is_unconditional(&self) -> bool {
        match self {
            Cond::Always => true,
            Cond::All(cs) => cs.iter().all(Cond::is_unconditional),
            _ => false,
        }
    }
}

/// How many text fields a rule set numbers the values of; tests on further
/// fields compare text.
pub const SYMBOL_SLOTS: usize = 8;

/// A lead's value in a numbered field: the field is absent or empty.
pub const ABSENT: u32 = u32::MAX;
/// A lead's value in a numbered field: present, but no test names it.
const UNNAMED: u32 = u32::MAX - 1;

/// The text values that `eq`, `ne`, `in` and `not_in` tests name, numbered
/// per field at load. Each lead's value of such a field is looked up once
/// (folded as the tests compare it) and every test on the field is then a bit
/// test, however many tests and operands there are.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    fields: Vec<SymbolField>,
}

#[derive(Clone, Debug)]
struct SymbolField {
    field: Field,
    /// Values normalised by the field (email, country) compare exactly;
    /// others ignoring case.
    exact: bool,
    /// Each value's number is its position.
    numbers: KeyedList,
    /// The longest value named, in bytes: a longer ASCII value names none.
    longest: usize,
}

impl Symbols {
    /// The slot of `field`, given one if there is room.
    fn slot(&mut self, field: &Field) -> Option<usize> {
        if let Some(slot) = self.fields.iter().position(|f| f.field == *field) {
            return Some(slot);
        }
        if self.fields.len() == SYMBOL_SLOTS {
            return None;
        }
        let exact = field.normalised_case().is_some();
        self.fields.push(SymbolField { field: field.clone(), exact, numbers: KeyedList::default(), longest: 0 });
        Some(self.fields.len() - 1)
    }

    /// The number of `value` (as the tests store it: folded, or normalised) in `slot`.
    fn number(&mut self, slot: usize, value: &str) -> u32 {
        let field = &mut self.fields[slot];
        field.longest = field.longest.max(value.len());
        field.numbers.insert(value) as u32
    }

    /// The lead's value of every numbered field.
    #[inline]
    pub fn of(&self, f: &Facts<'_>) -> [u32; SYMBOL_SLOTS] {
        let mut out = [ABSENT; SYMBOL_SLOTS];
        for (slot, field) in self.fields.iter().enumerate() {
            out[slot] = match field.field.text(f) {
                None => ABSENT,
                Some(value) => field.lookup(value),
            };
        }
        out
    }
}

impl SymbolField {
    #[inline]
    fn lookup(&self, value: &str) -> u32 {
        let found = if self.exact {
            self.numbers.position(value)
        } else if let Some(found) = self.numbers.position_folding_short(value.as_bytes()) {
            found
        } else if value.is_ascii() {
            if value.len() > self.longest {
                return UNNAMED;
            }
            let mut buffer = [0u8; 64];
            match buffer.get_mut(..value.len()) {
                Some(folded) => {
                    folded.copy_from_slice(value.as_bytes());
                    folded.make_ascii_lowercase();
                    self.numbers.position_of_bytes(folded)
                }
                None => self.numbers.position(&value.to_ascii_lowercase()),
            }
        } else {
            // As the tests compare: each character lower-cased on its own.
            let folded: String = value.chars().flat_map(char::to_lowercase).collect();
            self.numbers.position(&folded)
        };
        found.map_or(UNNAMED, |number| number as u32)
    }
}

/// How many text fields a rule set searches once per lead for the parts its
/// `contains` tests look for; and how many parts per field.
pub const PART_SLOTS: usize = 4;
const PARTS_PER_FIELD: usize = 64;

/// The parts that `contains` tests look for, per field, searched for all at
/// once in each lead's value (ignoring ASCII case, as the tests do): every
/// `contains` test on the field is then a bit test.
///
/// The values searched are short (titles, names) and the parts few, so the
/// search is one pass that looks at every position of the value on its own:
/// the two bytes there index a table of the parts that start with them, and
/// only those parts are compared, rarely more than one. No position waits on
/// the one before, as the states of an automaton walked byte by byte would.
/// Text that is not ASCII is searched part by part under Unicode case rules.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    fields: Vec<PartField>,
}

#[derive(Clone, Debug)]
struct PartField {
    field: Field,
    literals: Vec<Literal>,
    /// Built by [`Parts::finish`] over the literals, all ASCII.
    starts: Starts,
}

/// The literals of one field by the bytes they start with.
#[derive(Clone, Debug)]
struct Starts {
    /// Each byte's class, either case of a letter alike: the first and second
    /// bytes of the literals numbered from 1, every other byte 0.
    column: Box<[u8; 256]>,
    /// Each byte's class times the number of classes: its row of `pairs`.
    row: Box<[u16; 256]>,
    /// By class of a byte and class of the next: the literals of two bytes or
    /// more that start with those two, a bit each.
    pairs: Vec<u64>,
    /// By byte, when some literals are one byte long: those literals.
    singles: Option<Box<[u64; 256]>>,
    /// The literals, by bit.
    needles: Vec<Needle>,
}

/// A literal, lower-case, with its first eight bytes (fewer when shorter) in
/// a word and the mask of those bytes, to compare a candidate at once.
#[derive(Clone, Debug)]
struct Needle {
    bytes: Box<[u8]>,
    head: u64,
    mask: u64,
}

impl Default for Starts {
    fn default() -> Self {
        Starts::new(Vec::new())
    }
}

impl Starts {
    /// The table of `needles` (lower-case ASCII, not empty, at most 64).
    fn new(needles: Vec<Box<[u8]>>) -> Starts {
        let mut column = Box::new([0u8; 256]);
        let mut classes = 1usize;
        for &byte in needles.iter().flat_map(|n| n.iter().take(2)) {
            if column[usize::from(byte)] == 0 {
                // At most 128 distinct bytes over 64 literals: room in a u8.
                column[usize::from(byte)] = classes as u8;
                column[usize::from(byte.to_ascii_uppercase())] = classes as u8;
                classes += 1;
            }
        }
        // At most 129 classes: 129 * 129 rows and columns fit in a u16.
        let row = Box::new(column.map(|class| (usize::from(class) * classes) as u16));
        let mut pairs = vec![0u64; classes * classes];
        let mut singles: Option<Box<[u64; 256]>> = None;
        for (bit, needle) in needles.iter().enumerate() {
            match **needle {
                [only] => {
                    let singles = singles.get_or_insert_with(|| Box::new([0; 256]));
                    singles[usize::from(only)] |= 1 << bit;
                    singles[usize::from(only.to_ascii_uppercase())] |= 1 << bit;
                }
                [a, b, ..] => pairs[usize::from(row[usize::from(a)]) + usize::from(column[usize::from(b)])] |= 1 << bit,
                [] => {}
            }
        }
        let needles = needles
            .into_iter()
            .map(|bytes| Needle {
                head: head_word(&bytes),
                mask: u64::MAX.checked_shr(8 * (8 - bytes.len().min(8)) as u32).unwrap_or(0),
                bytes,
            })
            .collect();
        Starts { column, row, pairs, singles, needles }
    }

    /// The literals `hay` contains, a bit each, when it is ASCII.
    #[inline]
    fn search(&self, hay: &[u8]) -> Option<u64> {
        let mut found = 0u64;
        if let Some(singles) = &self.singles {
            found = hay.iter().fold(0, |found, b| found | singles[usize::from(*b)]);
        }
        let Some((&first, rest)) = hay.split_first() else { return Some(found) };
        // Each position looks up the pair it starts by the row of its byte
        // and the column of the next; most pairs start no literal.
        let mut row = usize::from(self.row[usize::from(first)]);
        for (at, &next) in rest.iter().enumerate() {
            let candidates = self.pairs.get(row + usize::from(self.column[usize::from(next)])).copied().unwrap_or(0);
            row = usize::from(self.row[usize::from(next)]);
            if candidates != 0 {
                found |= self.confirm(hay, at, candidates);
            }
        }
        hay.is_ascii().then_some(found)
    }

    /// Which of `candidates`, literals whose first two bytes are at `at`,
    /// `hay` holds there in full.
    #[cold]
    fn confirm(&self, hay: &[u8], at: usize, mut candidates: u64) -> u64 {
        let mut found = 0;
        while candidates != 0 {
            let bit = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let Needle { bytes: needle, head, mask } = &self.needles[bit as usize];
            let matches = match hay.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
                // Eight bytes from here, lower-cased at once, against the literal's first eight.
                Some(word) => {
                    lowercase_word(u64::from_le_bytes(*word)) & mask == *head
                        && (needle.len() <= 8
                            || hay.get(at + 8..at + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(&needle[8..])))
                }
                None => hay.get(at..at + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)),
            };
            if matches {
                found |= 1 << bit;
            }
        }
        found
    }
}

impl Parts {
    /// The slot and bit of `literal` on `field`; `None` when the part is not
    /// ASCII (it may match ASCII text under Unicode case rules: the Kelvin
    /// sign is a `k`) or there is no room.
    fn add(&mut self, field: &Field, literal: &Literal) -> Option<(u8, u8)> {
        let needle = literal.lower.keyed.as_str();
        if !literal.lower.ascii || needle.is_empty() {
            return None;
        }
        let slot = match self.fields.iter().position(|f| f.field == *field) {
            Some(slot) => slot,
            None if self.fields.len() < PART_SLOTS => {
                self.fields.push(PartField { field: field.clone(), literals: Vec::new(), starts: Starts::default() });
                self.fields.len() - 1
            }
            None => return None,
        };
        let entry = &mut self.fields[slot];
        let bit = match entry.literals.iter().position(|l| l.lower.keyed.as_str() == needle) {
            Some(bit) => bit,
            None if entry.literals.len() < PARTS_PER_FIELD => {
                entry.literals.push(literal.clone());
                entry.literals.len() - 1
            }
            None => return None,
        };
        Some((slot as u8, bit as u8))
    }

    /// Builds the tables, once every test has been added.
    pub fn finish(&mut self) {
        for field in &mut self.fields {
            let needles = field.literals.iter().map(|l| l.lower.keyed.as_str().as_bytes().into()).collect();
            field.starts = Starts::new(needles);
        }
    }

    /// For every searched field, the parts the lead's value contains, a bit each.
    #[inline]
    pub fn of(&self, f: &Facts<'_>) -> [u64; PART_SLOTS] {
        let mut out = [0; PART_SLOTS];
        for (slot, field) in self.fields.iter().enumerate() {
            let Some(value) = field.field.text(f) else { continue };
            out[slot] = field.starts.search(value.as_bytes()).unwrap_or_else(|| {
                field
                    .literals
                    .iter()
                    .enumerate()
                    .filter(|(_, literal)| literal.contained_in(value))
                    .fold(0, |bits, (bit, _)| bits | 1 << bit)
            });
        }
        out
    }
}

/// Every operator a condition can use.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "exists",
];

/// Compiles the condition `node` (a map) at `path`. Problems are reported to
/// `doc` and compile to `None`; the walk goes on to find the others.
pub fn compile(doc: &mut Doc<'_>, node: &Node, path: &str, scope: &Scope<'_>) -> Option<Cond> {
    compile_at(doc, node, path, scope, 0)
}

fn compile_at(doc: &mut Doc<'_>, node: &Node, path: &str, scope: &Scope<'_>, depth: usize) -> Option<Cond> {
    if depth > MAX_DEPTH {
        doc.error(node.span(), path, format!("conditions nest deeper than {MAX_DEPTH} levels"));
        return None;
    }
    if is_null(node) {
        return Some(Cond::Always);
    }
    let map = doc.map(node, path)?;
    let mut parts = Vec::new();
    let mut ok = true;
    for (key, value) in map.iter() {
        let key_path = child(path, key.as_str());
        let compiled = match key.as_str() {
            "all" | "any" => compile_list(doc, value, &key_path, scope, depth)
                .map(|cs| if key.as_str() == "all" { Cond::all(cs) } else { Cond::any(cs) }),
            "not" => compile_at(doc, value, &key_path, scope, depth + 1).map(|c| Cond::Not(Box::new(c))),
            name => match resolve(name, scope) {
                Ok(field) => compile_field(doc, field, value, &key_path, scope),
                Err(unknown) => {
                    doc.error_hint(key.span(), &key_path, unknown.message, unknown.suggestion);
                    None
                }
            },
        };
        match compiled {
            Some(c) => parts.push(c),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(match parts.len() {
        0 => Cond::Always,
        1 => parts.pop().unwrap_or(Cond::Always),
        _ => Cond::all(parts),
    })
}

fn compile_list(doc: &mut Doc<'_>, node: &Node, path: &str, scope: &Scope<'_>, depth: usize) -> Option<Vec<Cond>> {
    let seq = doc.seq(node, path)?;
    if seq.is_empty() {
        doc.error(seq.span(), path, "needs at least one condition");
        return None;
    }
    let mut out = Vec::with_capacity(seq.len());
    let mut ok = true;
    for (i, c) in seq.iter().enumerate() {
        match compile_at(doc, c, &item(path, i), scope, depth + 1) {
            Some(c) => out.push(c),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn compile_field(doc: &mut Doc<'_>, field: Field, node: &Node, path: &str, scope: &Scope<'_>) -> Option<Cond> {
    match node {
        Node::Mapping(ops) => compile_ops(doc, field, ops, path, scope),
        Node::Sequence(_) => compile_op(doc, &field, "in", node, path, scope),
        Node::Scalar(_) if is_null(node) => {
            doc.error(node.span(), path, "expected a value, a list of values, or a map of operators");
            None
        }
        Node::Scalar(_) => compile_op(doc, &field, "eq", node, path, scope),
    }
}

fn compile_ops(
    doc: &mut Doc<'_>,
    field: Field,
    ops: &MarkedMappingNode,
    path: &str,
    scope: &Scope<'_>,
) -> Option<Cond> {
    if ops.is_empty() {
        doc.error(ops.span(), path, "expected at least one operator");
        return None;
    }
    let mut parts = Vec::new();
    let mut ok = true;
    for (op, operand) in ops.iter() {
        let op_path = child(path, op.as_str());
        if !OPERATORS.contains(&op.as_str()) {
            let hint = suggest(op.as_str(), OPERATORS.iter().copied());
            doc.error_hint(op.span(), &op_path, format!("unknown operator `{}`", op.as_str()), hint);
            ok = false;
            continue;
        }
        match compile_op(doc, &field, op.as_str(), operand, &op_path, scope) {
            Some(c) => parts.push(c),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(if parts.len() == 1 { parts.pop().unwrap_or(Cond::Always) } else { Cond::all(parts) })
}

/// Operand scalars as text, for a list or a single value.
fn operand_list<'n>(doc: &mut Doc<'_>, node: &'n Node, path: &str) -> Option<Vec<&'n Node>> {
    let seq = doc.seq(node, path)?;
    if seq.is_empty() {
        doc.error(seq.span(), path, "the list is empty, so it can never match");
        return None;
    }
    Some(seq.iter().collect())
}

fn compile_op(doc: &mut Doc<'_>, field: &Field, op: &str, node: &Node, path: &str, scope: &Scope<'_>) -> Option<Cond> {
    let kind = field.kind();
    if op == "exists" {
        return doc.boolean(node, path).map(|want| test(path, Check::Exists { field: field.clone(), want }));
    }
    let allowed = match kind {
        Kind::Text => !matches!(op, "gt" | "gte" | "lt" | "lte" | "between"),
        Kind::Number => !matches!(op, "contains" | "starts_with" | "ends_with" | "matches"),
        Kind::Bool => matches!(op, "eq" | "ne"),
        Kind::Tier | Kind::Status => matches!(op, "eq" | "ne" | "in" | "not_in"),
    };
    if !allowed {
        doc.error(node.span(), path, format!("`{op}` cannot be used here: the field holds {}", kind.describe()));
        return None;
    }
    match kind {
        Kind::Text => compile_text(doc, field, op, node, path),
        Kind::Number => compile_number(doc, field, op, node, path),
        Kind::Bool => {
            let want = doc.boolean(node, path)?;
            let negated = op == "ne";
            let shape = Shape::Bool { field: field_name(field), value: want != negated };
            Some(shaped(test(path, Check::Bool { field: field.clone(), value: want != negated }), shape))
        }
        Kind::Tier => {
            let Some(tiers) = scope.tiers else {
                // scoring.yaml did not load; its own errors are reported there.
                return Some(Cond::Always);
            };
            let names: Vec<&str> = tiers.iter().map(String::as_str).collect();
            let mask = compile_set(doc, op, node, path, &names)?;
            let negated = matches!(op, "ne" | "not_in");
            // Tiers past the 64th are not in the mask: the lint does not reason about them.
            let shape = if names.len() >= 64 {
                Shape::Opaque
            } else {
                let all = (1u64 << names.len()) - 1;
                Shape::Mask { field: "tier".to_owned(), mask: if negated { all & !mask } else { mask } }
            };
            Some(shaped(test(path, Check::Tier { mask, negated }), shape))
        }
        Kind::Status => {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            let mask = compile_set(doc, op, node, path, &names)?;
            let negated = matches!(op, "ne" | "not_in");
            let all = (1u64 << names.len()) - 1;
            let shape = Shape::Mask { field: "status".to_owned(), mask: if negated { all & !mask } else { mask } };
            let mask = mask as u16;
            Some(shaped(test(path, Check::Status { mask, negated }), shape))
        }
    }
}

/// A set of names, as a bit per position in `names`.
fn compile_set(doc: &mut Doc<'_>, op: &str, node: &Node, path: &str, names: &[&str]) -> Option<u64> {
    let values: Vec<&Node> = if matches!(op, "in" | "not_in") { operand_list(doc, node, path)? } else { vec![node] };
    let mut mask = 0u64;
    let mut ok = true;
    for (i, v) in values.into_iter().enumerate() {
        let p = if matches!(op, "in" | "not_in") { item(path, i) } else { path.to_owned() };
        let Some(text) = doc.text(v, &p) else {
            ok = false;
            continue;
        };
        match names.iter().position(|n| n.eq_ignore_ascii_case(&text)) {
            Some(ix) if ix < 64 => mask |= 1 << ix,
            _ => {
                let expected = names.join(", ");
                doc.error_hint(
                    v.span(),
                    &p,
                    format!("`{text}` is not one of {expected}"),
                    suggest(&text, names.iter().copied()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(mask)
}

fn compile_text(doc: &mut Doc<'_>, field: &Field, op: &str, node: &Node, path: &str) -> Option<Cond> {
    if *field == Field::Country && matches!(op, "eq" | "ne" | "in" | "not_in") {
        return compile_countries(doc, op, node, path);
    }
    let field = field.clone();
    let op = match op {
        "eq" | "ne" => {
            let s = Lower::for_field(&doc.text(node, path)?, &field);
            if op == "eq" { TextOp::Eq(s) } else { TextOp::Ne(s) }
        }
        "in" | "not_in" => {
            let nodes = operand_list(doc, node, path)?;
            let mut values = Vec::with_capacity(nodes.len());
            for (i, n) in nodes.into_iter().enumerate() {
                values.push(Lower::for_field(&doc.text(n, &item(path, i))?, &field));
            }
            let values = values.into_boxed_slice();
            if op == "in" { TextOp::In(values) } else { TextOp::NotIn(values) }
        }
        "contains" | "starts_with" | "ends_with" => {
            let s = doc.text(node, path)?;
            let anchor = match op {
                "starts_with" => (r"\A", ""),
                "ends_with" => ("", r"\z"),
                _ => ("", ""),
            };
            let literal = match Literal::new(&s, anchor) {
                Ok(l) => l,
                Err(e) => {
                    doc.error(node.span(), path, format!("cannot compile `{s}`: {}", one_line(&e.to_string())));
                    return None;
                }
            };
            match op {
                "starts_with" => TextOp::StartsWith(literal),
                "ends_with" => TextOp::EndsWith(literal),
                _ => TextOp::Contains(literal),
            }
        }
        "matches" => {
            let s = doc.scalar(node, path)?.as_str().to_owned();
            match RegexBuilder::new(&s).size_limit(1 << 20).build() {
                Ok(regex) => TextOp::Matches(Pattern { words: Words::of(&s), regex }),
                Err(e) => {
                    doc.error(node.span(), path, format!("invalid regex: {}", one_line(&e.to_string())));
                    return None;
                }
            }
        }
        _ => return None,
    };
    let shape = text_shape(&field, &op);
    Some(shaped(test(path, Check::Text { field, op }), shape))
}

/// What a text test holds for. Only ASCII operands are reasoned about: other
/// text is compared by Unicode case folding, which lower-casing cannot follow.
fn text_shape(field: &Field, op: &TextOp) -> Shape {
    let ascii = match op {
        TextOp::Eq(x) | TextOp::Ne(x) => x.ascii,
        TextOp::In(xs) | TextOp::NotIn(xs) => xs.iter().all(|x| x.ascii),
        TextOp::Contains(l) | TextOp::StartsWith(l) | TextOp::EndsWith(l) => l.lower.ascii,
        TextOp::Matches(_) => false,
    };
    if !ascii {
        return Shape::Opaque;
    }
    let field = field_name(field);
    let texts = |xs: &[Lower]| xs.iter().map(|x| x.keyed.as_str().to_owned()).collect();
    match op {
        TextOp::Eq(x) => Shape::Texts { field, values: texts(std::slice::from_ref(x)), not: false },
        TextOp::Ne(x) => Shape::Texts { field, values: texts(std::slice::from_ref(x)), not: true },
        TextOp::In(xs) => Shape::Texts { field, values: texts(xs), not: false },
        TextOp::NotIn(xs) => Shape::Texts { field, values: texts(xs), not: true },
        TextOp::Contains(l) => Shape::Part { field, how: "contains", part: l.lower.keyed.as_str().to_owned() },
        TextOp::StartsWith(l) => Shape::Part { field, how: "starts_with", part: l.lower.keyed.as_str().to_owned() },
        TextOp::EndsWith(l) => Shape::Part { field, how: "ends_with", part: l.lower.keyed.as_str().to_owned() },
        TextOp::Matches(_) => Shape::Opaque,
    }
}

/// Country comparisons as a set with a bit per code: one lookup per lead,
/// however long the list. Every operand must be a two-letter code.
fn compile_countries(doc: &mut Doc<'_>, op: &str, node: &Node, path: &str) -> Option<Cond> {
    let list = matches!(op, "in" | "not_in");
    let values: Vec<&Node> = if list { operand_list(doc, node, path)? } else { vec![node] };
    let mut set = [0u64; 11];
    let mut codes = Vec::new();
    let mut ok = true;
    for (i, v) in values.into_iter().enumerate() {
        let p = if list { item(path, i) } else { path.to_owned() };
        let Some(text) = doc.text(v, &p) else {
            ok = false;
            continue;
        };
        match CountryCode::parse(&text) {
            Ok(code) => {
                set[code.index() / 64] |= 1 << (code.index() % 64);
                codes.push(code.as_str().to_owned());
            }
            Err(e) => {
                doc.error(v.span(), &p, e.to_string());
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let negated = matches!(op, "ne" | "not_in");
    let shape = Shape::Texts { field: field_name(&Field::Country), values: codes, not: negated };
    Some(shaped(test(path, Check::Country { set: Box::new(set), negated }), shape))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn compile_number(doc: &mut Doc<'_>, field: &Field, op: &str, node: &Node, path: &str) -> Option<Cond> {
    let field = field.clone();
    let op = match op {
        "in" | "not_in" => {
            let nodes = operand_list(doc, node, path)?;
            let mut values = Vec::with_capacity(nodes.len());
            for (i, n) in nodes.into_iter().enumerate() {
                values.push(doc.number(n, &item(path, i))?);
            }
            let values = values.into_boxed_slice();
            if op == "in" { NumOp::In(values) } else { NumOp::NotIn(values) }
        }
        "between" => {
            let nodes = doc.seq(node, path)?;
            if nodes.len() != 2 {
                doc.error(node.span(), path, "`between` takes two numbers: [low, high]");
                return None;
            }
            let lo = doc.number(&nodes[0], &item(path, 0))?;
            let hi = doc.number(&nodes[1], &item(path, 1))?;
            if lo > hi {
                doc.error(node.span(), path, format!("`between` low {lo} is above high {hi}, so it can never match"));
                return None;
            }
            NumOp::Between(lo, hi)
        }
        _ => {
            let x = doc.number(node, path)?;
            match op {
                "eq" => NumOp::Eq(x),
                "ne" => NumOp::Ne(x),
                "gt" => NumOp::Gt(x),
                "gte" => NumOp::Gte(x),
                "lt" => NumOp::Lt(x),
                "lte" => NumOp::Lte(x),
                _ => return None,
            }
        }
    };
    let shape = number_shape(&field, &op);
    let check = match (IntField::of(&field), int_range(&op)) {
        (Some(field), Some((lo, hi, negated))) => Check::Int { field, lo, hi, negated },
        _ => Check::Number { field, op },
    };
    Some(shaped(test(path, check), shape))
}

fn number_shape(field: &Field, op: &NumOp) -> Shape {
    let field = field_name(field);
    let inf = f64::INFINITY;
    let range =
        |lo: f64, lo_in: bool, hi: f64, hi_in: bool| Shape::Range { field: field.clone(), lo, lo_in, hi, hi_in };
    match op {
        NumOp::Eq(x) => Shape::Numbers { field, values: vec![*x], not: false },
        NumOp::Ne(x) => Shape::Numbers { field, values: vec![*x], not: true },
        NumOp::In(xs) => Shape::Numbers { field, values: xs.to_vec(), not: false },
        NumOp::NotIn(xs) => Shape::Numbers { field, values: xs.to_vec(), not: true },
        NumOp::Gt(x) => range(*x, false, inf, false),
        NumOp::Gte(x) => range(*x, true, inf, false),
        NumOp::Lt(x) => range(-inf, false, *x, false),
        NumOp::Lte(x) => range(-inf, false, *x, true),
        NumOp::Between(a, b) => range(*a, true, *b, true),
    }
}

fn test(path: &str, check: Check) -> Cond {
    Cond::Test(Test { check, what: path.to_owned(), shape: Shape::Opaque })
}

/// The condition `c` (a test) with its shape.
fn shaped(c: Cond, shape: Shape) -> Cond {
    match c {
        Cond::Test(mut t) => {
            t.shape = shape;
            Cond::Test(t)
        }
        other => other,
    }
}

/// A field's identity in a shape: two tests on the same field have the same.
fn field_name(field: &Field) -> String {
    format!("{field:?}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Check, Cond, Literal, Lower, NumOp, Parts, Pattern, Symbols, TextOp, int_range, test};
    use crate::Status;
    use crate::lead::{Bant, Email, FieldTarget, Profile, ProfileField};
    use crate::rules::field::{Facts, Field};

    /// Text from letters whose case rules are tricky: German sharp s, the
    /// three Greek sigmas, dotted capital I, the Kelvin sign.
    fn tricky_text(max: usize) -> impl Strategy<Value = String> {
        let letter = prop_oneof![
            Just("a"),
            Just("A"),
            Just("b"),
            Just("ß"),
            Just("Σ"),
            Just("σ"),
            Just("ς"),
            Just("İ"),
            Just("i"),
            Just("\u{212A}"),
            Just("k"),
            Just(" "),
            Just("-"),
        ];
        // Few ASCII letters, so that values often equal operands but for case.
        let ascii = prop_oneof![Just("a"), Just("A"), Just("b"), Just("B")];
        prop_oneof![
            3 => proptest::collection::vec(letter, 1..max).prop_map(|parts| parts.concat()),
            3 => proptest::collection::vec(ascii, 1..3).prop_map(|parts| parts.concat()),
            1 => (1usize..3).prop_map(|n| "Ab".repeat(40 * n)),
        ]
    }

    fn text_op() -> impl Strategy<Value = TextOp> {
        (proptest::collection::vec(tricky_text(5), 1..4), 0u8..4).prop_map(|(operands, how)| {
            let mut lower: Vec<Lower> = operands.iter().map(|o| Lower::new(o)).collect();
            match how {
                0 => TextOp::Eq(lower.swap_remove(0)),
                1 => TextOp::Ne(lower.swap_remove(0)),
                2 => TextOp::In(lower.into()),
                _ => TextOp::NotIn(lower.into()),
            }
        })
    }

    /// The facts of `profile` alone, nothing numbered or searched yet.
    fn facts_of(profile: &Profile) -> Facts<'_> {
        Facts {
            profile,
            free_email: false,
            events: &[],
            status: Status::Nurturing,
            bant: Bant::default(),
            score: None,
            tier: None,
            symbols: [super::ABSENT; super::SYMBOL_SLOTS],
            parts: [0; super::PART_SLOTS],
        }
    }

    /// Each op as a text test on `field`, beside the same test after `rewrite`.
    fn both_ways(field: &Field, ops: Vec<TextOp>, mut rewrite: impl FnMut(&mut Cond)) -> Vec<(Cond, Cond)> {
        ops.into_iter()
            .map(|op| {
                let plain = test("when.field", Check::Text { field: field.clone(), op });
                let mut rewritten = plain.clone();
                rewrite(&mut rewritten);
                (plain, rewritten)
            })
            .collect()
    }

    /// Checks every op on `value` both ways: as text, and as numbered values.
    fn numbered_agrees(ops: Vec<TextOp>, value: Option<&str>) -> Result<(), TestCaseError> {
        let mut symbols = Symbols::default();
        let tests = both_ways(&Field::Text(ProfileField::Industry), ops, |c| c.symbolise(&mut symbols));
        let mut profile = Profile::new(Email::parse("ana@example.com").unwrap());
        if let Some(value) = value {
            profile.set(&FieldTarget::Profile(ProfileField::Industry), value).unwrap();
        }
        let mut facts = facts_of(&profile);
        facts.symbols = symbols.of(&facts);
        for (plain, numbered) in &tests {
            let Cond::Test(t) = numbered else { panic!("a test") };
            prop_assert!(matches!(t.check, Check::Symbol { .. }), "numbered");
            prop_assert_eq!(plain.holds(&facts), numbered.holds(&facts), "{:?} on {:?}", plain, value);
        }
        Ok(())
    }

    proptest! {
        /// A numbered test holds for exactly the values the text comparison
        /// holds for, present, absent or unnamed, in any case and script.
        #[test]
        fn numbered_tests_agree_with_text_comparisons(
            ops in proptest::collection::vec(text_op(), 1..4),
            value in proptest::option::of(tricky_text(7)),
        ) {
            numbered_agrees(ops, value.as_deref())?;
        }
    }

    /// Checks `contains` of every part on `value` both ways: searched for
    /// on its own, and with all the parts at once.
    fn searched_once_agrees(needles: &[String], value: &str) -> Result<(), TestCaseError> {
        let mut parts = Parts::default();
        let ops = needles.iter().map(|needle| TextOp::Contains(Literal::new(needle, ("", "")).unwrap())).collect();
        let tests = both_ways(&Field::Text(ProfileField::JobTitle), ops, |c| c.search_once(&mut parts));
        parts.finish();
        let mut profile = Profile::new(Email::parse("ana@example.com").unwrap());
        profile.set(&FieldTarget::Profile(ProfileField::JobTitle), value).unwrap();
        let mut facts = facts_of(&profile);
        facts.parts = parts.of(&facts);
        for (plain, searched) in &tests {
            prop_assert_eq!(plain.holds(&facts), searched.holds(&facts), "{:?} on {:?}", plain, value);
        }
        Ok(())
    }

    proptest! {
        /// Parts searched for all at once are found exactly where each part
        /// searched for on its own is, in any case and script.
        #[test]
        fn parts_searched_once_agree_with_single_searches(
            needles in proptest::collection::vec(tricky_text(4), 1..8),
            value in tricky_text(12),
        ) {
            searched_once_agrees(&needles, &value)?;
        }

        /// Over a few ASCII letters, where parts share their first bytes, end
        /// the value or run past it, and start again inside one another.
        #[test]
        fn ascii_parts_sharing_their_starts_are_all_found(
            needles in proptest::collection::vec("[abAB-]{1,5}|[abAB]{6,11}", 1..24),
            value in "[abcABC -]{0,30}|[abAB]{0,24}",
        ) {
            searched_once_agrees(&needles, &value)?;
        }
    }

    proptest! {
        /// A word-bounded alternation decides as its regex on any text: by
        /// its literals on ASCII text, by the regex on the rest (the Kelvin
        /// sign is a `k` to `(?i)`, and a word character to `\b`).
        #[test]
        fn word_patterns_agree_with_their_regex(
            words in proptest::collection::vec("[akAK-]{1,3}", 1..5),
            value in tricky_text(10),
            ignore_case: bool,
        ) {
            let alternation = words.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|");
            let source = format!(r"{}\b({alternation})\b", if ignore_case { "(?i)" } else { "" });
            let regex = regex::Regex::new(&source).unwrap();
            let pattern = Pattern { words: super::Words::of(&source), regex: regex.clone() };
            prop_assert!(pattern.words.is_some());
            prop_assert_eq!(pattern.is_match(&value), regex.is_match(&value), "{} on {:?}", source, value);
        }
    }

    #[test]
    fn parts_overlapping_or_inside_one_another_are_all_found() {
        let needles: Vec<String> = ["vp", "vice president", "president", "res", "intern", "k", "\u{212A}"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        for value in ["Vice President, Sales", "VP of Interns", "Kelvin", "\u{212A}elvin", "Präsident", "intern"] {
            searched_once_agrees(&needles, value).unwrap();
        }
        // A part holding a NUL, and values ending where a part would start.
        let nul: Vec<String> = ["k\u{0}", "\u{0}", "ke"].iter().map(|n| n.to_string()).collect();
        for value in ["k", "K", "ke", "k\u{0}", "a\u{0}k"] {
            searched_once_agrees(&nul, value).unwrap();
        }
        // Past the parts a field has room for, tests keep searching on their own.
        let many: Vec<String> = (0..70).map(|i| format!("part{i}")).collect();
        searched_once_agrees(&many, "part5 and part69").unwrap();
    }

    #[test]
    fn numbered_tests_fold_case_as_text_comparisons_do() {
        // Each character lower-cased on its own: a final capital sigma is `σ`, not `ς`.
        for (operand, value) in
            [("ΟΔΟΣ", "ΟΔΟΣ"), ("οδοσ", "ΟΔΟΣ"), ("οδος", "ΟΔΟΣ"), ("STRASSE", "straße"), ("İstanbul", "istanbul")]
        {
            for op in [TextOp::Eq(Lower::new(operand)), TextOp::NotIn(vec![Lower::new(operand)].into())] {
                numbered_agrees(vec![op], Some(value)).unwrap();
            }
        }
    }

    #[test]
    fn numbered_tests_on_normalised_fields_compare_exactly() {
        for (email, operands) in [
            ("ana@acme.com", ["ACME.com", "globex.com"]),
            ("ana@ACME.COM", ["acme.com", "x.io"]),
            ("ana@acme.co", ["acme.com", "acme.co.uk"]),
            ("ana@müller.de", ["MÜLLER.DE", "mueller.de"]),
        ] {
            let field = Field::EmailDomain;
            let lower = |o: &str| Lower::for_field(o, &field);
            let ops = vec![
                TextOp::Eq(lower(operands[0])),
                TextOp::Ne(lower(operands[0])),
                TextOp::In(operands.map(lower).into()),
                TextOp::NotIn(operands.map(lower).into()),
            ];
            let mut symbols = Symbols::default();
            let tests = both_ways(&field, ops, |c| c.symbolise(&mut symbols));
            let profile = Profile::new(Email::parse(email).unwrap());
            let mut facts = facts_of(&profile);
            facts.symbols = symbols.of(&facts);
            for (plain, numbered) in &tests {
                assert!(matches!(numbered, Cond::Test(t) if matches!(t.check, Check::Symbol { .. })));
                assert_eq!(plain.holds(&facts), numbered.holds(&facts), "{plain:?} on {email}");
            }
        }
    }

    #[test]
    fn fields_past_the_slots_keep_comparing_text() {
        let mut symbols = Symbols::default();
        let fields = ProfileField::ALL.iter().filter(|f| {
            !matches!(
                f,
                ProfileField::Email | ProfileField::Country | ProfileField::Employees | ProfileField::AnnualRevenue
            )
        });
        let mut numbered = 0;
        for (i, field) in fields.enumerate() {
            let mut cond = test("when.x", Check::Text { field: Field::Text(*field), op: TextOp::Eq(Lower::new("x")) });
            cond.symbolise(&mut symbols);
            let Cond::Test(t) = cond else { panic!("a test") };
            match t.check {
                Check::Symbol { slot, .. } => {
                    assert_eq!(usize::from(slot), i);
                    numbered += 1;
                }
                Check::Text { .. } => assert!(i >= super::SYMBOL_SLOTS, "field {i} kept as text"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(numbered, super::SYMBOL_SLOTS);
    }

    fn ops(x: f64, y: f64) -> Vec<NumOp> {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        vec![NumOp::Eq(x), NumOp::Ne(x), NumOp::Gt(x), NumOp::Gte(x), NumOp::Lt(x), NumOp::Lte(x), NumOp::Between(a, b)]
    }

    fn threshold() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-50i64..50).prop_map(|n| n as f64),
            (-5000i64..5000).prop_map(|n| n as f64 / 4.0),
            any::<f64>(),
            Just(f64::NAN),
            Just(9_007_199_254_740_992.0),
            Just(-9_007_199_254_740_991.5),
        ]
    }

    fn value() -> impl Strategy<Value = i64> {
        prop_oneof![-60i64..60, any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(9_007_199_254_740_993)]
    }

    proptest! {
        /// An integer test as a range holds for exactly the values the
        /// comparison in `f64` holds for.
        #[test]
        fn integer_ranges_agree_with_comparisons(x in threshold(), y in threshold(), v in value()) {
            for op in ops(x, y) {
                if let Some((lo, hi, negated)) = int_range(&op) {
                    prop_assert_eq!((lo <= v && v <= hi) != negated, op.holds(v as f64), "{:?} on {}", op, v);
                }
            }
        }
    }

    #[test]
    fn thresholds_outside_exact_integers_stay_comparisons() {
        for x in [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300, 9_007_199_254_740_992.0] {
            assert_eq!(int_range(&NumOp::Gte(x)), None, "{x}");
        }
        assert_eq!(int_range(&NumOp::Gt(2.5)), Some((3, i64::MAX, false)));
        assert_eq!(int_range(&NumOp::Lt(-2.5)), Some((i64::MIN, -3, false)));
        assert_eq!(int_range(&NumOp::Eq(2.5)), Some((1, 0, false)));
        assert_eq!(int_range(&NumOp::Ne(2.5)), Some((1, 0, true)));
    }
}
