//! The fit and routing conditions compiled together, for deciding about many
//! leads: every distinct cheap test they make (a range of integers, a bit set
//! of countries or numbered values, a part found in a title, a flag) is one
//! bit of a word computed once per lead, in one pass with no short cuts, and
//! each rule whose condition is a flat combination of tests is then three mask
//! checks on that word. A lead's attributes are as good as random from one
//! lead to the next, so what costs is branching on them: the pass computes
//! every test the same way for every lead, and the masks decide with no
//! branch at all.
//!
//! The tests are kept by kind (ranges of employees, of event counts and of the
//! score, numbered values, parts, countries) and each kind is one loop of the
//! same arithmetic, so that the pass has no branch to mispredict either; the
//! few other tests (flags, `exists`, tiers, statuses) go through their check.
//!
//! A rule whose condition does not fit (a test on text that is not numbered,
//! a regex, `not` around `all`, more tests than the word has bits) keeps its
//! condition tree, which decides exactly as before. Both give the same answer
//! for every lead: the tests of `super::tests` compare them.

use super::condition::{ABSENT, Check, Cond, IntField};
use super::field::{Facts, Field};

/// How many distinct tests the word holds.
const BITS: usize = 128;

/// The compiled conditions of a rule set's fit and routing rules.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Tests that read neither the score nor the tier: bits from 0.
    before: Atoms,
    /// Tests that read the score or tier (routing only): the bits after `before`'s.
    after: Atoms,
    /// One per fit rule, in order: `None` keeps the rule's tree.
    fit: Vec<Option<Mask>>,
    /// One per routing rule, in order.
    routes: Vec<Option<Mask>>,
}

/// Tests by kind, each with the bit it sets.
#[derive(Clone, Debug, Default)]
struct Atoms {
    /// Employees in `lo..=hi` (or not, when negated); absent is false.
    employees: Vec<Range>,
    /// An event count, by slot, in `lo..=hi` (or not).
    events: Vec<(usize, Range)>,
    /// The score in `lo..=hi` (or not); false before scoring.
    score: Vec<Range>,
    /// A numbered value in a set of at most 64: (slot, set, negated).
    symbols: Vec<(usize, u64, bool, u128)>,
    /// A part found in a searched field: (slot, bit of the part).
    parts: Vec<(usize, u32, u128)>,
    /// The country among a set of codes: (set, negated).
    countries: Vec<(Box<[u64; 11]>, bool, u128)>,
    /// Anything else, through its check.
    others: Vec<(Check, u128)>,
}

#[derive(Clone, Copy, Debug)]
struct Range {
    lo: i64,
    hi: i64,
    negated: bool,
    /// The test's bit, set.
    bit: u128,
}

/// `bit` when `holds`, with no shift and no branch.
#[inline(always)]
fn set(bit: u128, holds: bool) -> u128 {
    bit & 0u128.wrapping_sub(u128::from(holds))
}

impl Range {
    /// Whether a value that is present (`has`) is in the range as the test
    /// wants it: arithmetic only.
    #[inline(always)]
    fn word(self, has: bool, v: i64) -> u128 {
        set(self.bit, has & ((self.lo <= v) & (v <= self.hi) != self.negated))
    }
}

impl Atoms {
    /// Files `check` under its kind with `bit`.
    fn add(&mut self, check: Check, at: u32) {
        let bit = 1u128 << at;
        match check {
            Check::Int { field, lo, hi, negated } => {
                let range = Range { lo, hi, negated, bit };
                match field {
                    IntField::Employees => self.employees.push(range),
                    IntField::Event(slot) => self.events.push((usize::from(slot), range)),
                    IntField::Score => self.score.push(range),
                }
            }
            // A count is present when above zero.
            Check::Exists { field: Field::Events(slot), want } => {
                let range = Range { lo: 1, hi: i64::MAX, negated: !want, bit };
                self.events.push((usize::from(slot), range));
            }
            Check::Symbol { slot, ref set, negated } if set.len() <= 1 => {
                self.symbols.push((usize::from(slot), set.first().copied().unwrap_or(0), negated, bit));
            }
            Check::Part { slot, bit: part } => self.parts.push((usize::from(slot), u32::from(part), bit)),
            Check::Country { set, negated } => self.countries.push((set, negated, bit)),
            other => self.others.push((other, bit)),
        }
    }

    /// How many tests, of every kind.
    fn len(&self) -> usize {
        let ranges = self.employees.len() + self.events.len() + self.score.len();
        ranges + self.symbols.len() + self.parts.len() + self.countries.len() + self.others.len()
    }

    /// The bits of every test, for `facts`.
    #[inline]
    fn word(&self, f: &Facts<'_>) -> u128 {
        let mut bits = 0u128;
        let employees = f.profile.employees;
        let (has, v) = (employees.is_some(), employees.unwrap_or(0));
        for range in &self.employees {
            bits |= range.word(has, v);
        }
        for (slot, range) in &self.events {
            bits |= range.word(true, i64::from(f.events.get(*slot).copied().unwrap_or(0)));
        }
        let (has, v) = (f.score.is_some(), f.score.unwrap_or(0));
        for range in &self.score {
            bits |= range.word(has, v);
        }
        for &(slot, named, negated, bit) in &self.symbols {
            // Absent is false; a number past the set's one word is not in it.
            let symbol = f.symbols[slot];
            let member = (symbol < 64) & ((named >> (symbol & 63)) & 1 == 1);
            bits |= set(bit, (symbol != ABSENT) & (member != negated));
        }
        for &(slot, part, bit) in &self.parts {
            bits |= set(bit, (f.parts[slot] >> part) & 1 == 1);
        }
        let country = f.profile.country.map(|c| c.index());
        let (has, at) = (country.is_some(), country.unwrap_or(0));
        for (codes, negated, bit) in &self.countries {
            bits |= set(*bit, has & (((codes[at / 64] >> (at % 64)) & 1 == 1) != *negated));
        }
        for (check, bit) in &self.others {
            bits |= set(*bit, check.holds(f));
        }
        bits
    }
}

/// A flat condition over the word: every bit of `all` set, at least one of
/// `any` set (when `any` is not empty), and none of `none`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mask {
    all: u128,
    any: u128,
    none: u128,
}

impl Mask {
    #[inline(always)]
    fn holds(self, bits: u128) -> bool {
        (bits & self.all == self.all) & ((self.any == 0) | (bits & self.any != 0)) & (bits & self.none == 0)
    }
}

/// The tests being collected, before and after the score.
#[derive(Default)]
struct Tests {
    before: Vec<Check>,
    after: Vec<Check>,
}

impl Tests {
    /// The bit of `check`, shared with an identical test made before.
    fn bit(&mut self, check: &Check) -> Option<Bit> {
        if !check.is_cheap() {
            return None;
        }
        let after = check.reads_score();
        let full = self.before.len() + self.after.len() == BITS;
        let list = if after { &mut self.after } else { &mut self.before };
        let at = match list.iter().position(|c| c.same_as(check)) {
            Some(at) => at,
            None if !full => {
                list.push(check.clone());
                list.len() - 1
            }
            None => return None,
        };
        Some(Bit { after, at })
    }
}

/// Where a test's bit is, until the number of `before` tests is known.
#[derive(Clone, Copy)]
struct Bit {
    after: bool,
    at: usize,
}

/// A mask in the making, with its bits not yet placed.
#[derive(Default)]
struct Draft {
    all: Vec<Bit>,
    any: Vec<Bit>,
    none: Vec<Bit>,
}

impl Draft {
    fn place(&self, before: usize) -> Mask {
        let word = |bits: &[Bit]| {
            bits.iter().fold(0u128, |word, b| word | 1u128 << (if b.after { before + b.at } else { b.at }))
        };
        Mask { all: word(&self.all), any: word(&self.any), none: word(&self.none) }
    }
}

/// The bits of tests that are all leaves, `None` otherwise or when empty.
fn leaves(tests: &mut Tests, conds: &[Cond]) -> Option<Vec<Bit>> {
    if conds.is_empty() {
        return None;
    }
    conds.iter().map(|c| c.as_check().and_then(|check| tests.bit(check))).collect()
}

/// `cond` as a draft mask, when it is flat enough: a test; `any` of tests;
/// `not` a test or `any` of tests; or `all` of those, with one `any` at most.
fn draft(tests: &mut Tests, cond: &Cond) -> Option<Draft> {
    let mut d = Draft::default();
    match cond {
        Cond::Always => {}
        Cond::All(parts) => {
            for part in parts.iter() {
                match part {
                    Cond::Always => {}
                    Cond::Any(cs) if d.any.is_empty() => d.any = leaves(tests, cs)?,
                    Cond::All(_) | Cond::Any(_) => return None,
                    _ => {
                        let inner = draft(tests, part)?;
                        d.all.extend(inner.all);
                        d.none.extend(inner.none);
                    }
                }
            }
        }
        Cond::Any(cs) => d.any = leaves(tests, cs)?,
        Cond::Not(inner) => match &**inner {
            Cond::Any(cs) => d.none = leaves(tests, cs)?,
            other => d.none.push(tests.bit(other.as_check()?)?),
        },
        Cond::Test(_) => d.all.push(tests.bit(cond.as_check()?)?),
    }
    Some(d)
}

impl Program {
    /// Compiles the conditions of the fit rules and the routing rules.
    pub fn compile<'a>(fit: impl Iterator<Item = &'a Cond>, routes: impl Iterator<Item = &'a Cond>) -> Program {
        let mut tests = Tests::default();
        let fit: Vec<Option<Draft>> = fit.map(|c| draft(&mut tests, c)).collect();
        let routes: Vec<Option<Draft>> = routes.map(|c| draft(&mut tests, c)).collect();
        let before = tests.before.len();
        let place = |d: Option<Draft>| d.map(|d| d.place(before));
        let atoms = |checks: Vec<Check>, from: usize| {
            let mut atoms = Atoms::default();
            for (i, check) in checks.into_iter().enumerate() {
                atoms.add(check, (from + i) as u32);
            }
            atoms
        };
        Program {
            fit: fit.into_iter().map(place).collect(),
            routes: routes.into_iter().map(place).collect(),
            before: atoms(tests.before, 0),
            after: atoms(tests.after, before),
        }
    }

    /// The word of the tests that do not read the score, for `facts`.
    #[inline]
    pub fn before(&self, facts: &Facts<'_>) -> u128 {
        self.before.word(facts)
    }

    /// The word of every test, once the score and tier are in `facts`.
    #[inline]
    pub fn after(&self, facts: &Facts<'_>, before: u128) -> u128 {
        before | self.after.word(facts)
    }

    /// Whether fit rule `i` holds, from the word or, for a rule the word cannot
    /// decide, from `tree`.
    #[inline(always)]
    pub fn fit_holds(&self, i: usize, bits: u128, tree: impl FnOnce() -> bool) -> bool {
        match self.fit.get(i) {
            Some(Some(mask)) => mask.holds(bits),
            _ => tree(),
        }
    }

    /// The first routing rule that holds, from the word or `tree`.
    #[inline(always)]
    pub fn first_route(&self, bits: u128, tree: impl Fn(usize) -> bool) -> Option<usize> {
        self.routes.iter().enumerate().position(|(i, m)| match m {
            Some(mask) => mask.holds(bits),
            None => tree(i),
        })
    }

    /// How many rules the word decides, of the fit and routing rules; and
    /// how many tests it holds.
    pub fn coverage(&self) -> (usize, usize, usize) {
        let decided = self.fit.iter().chain(&self.routes).filter(|m| m.is_some()).count();
        (decided, self.fit.len() + self.routes.len(), self.before.len() + self.after.len())
    }
}
