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
//! A rule whose condition does not fit (a test on text that is not numbered,
//! a regex, `not` around `all`, more tests than the word has bits) keeps its
//! condition tree, which decides exactly as before. Both give the same answer
//! for every lead: the tests of `super::tests` compare them.

use super::condition::{Check, Cond};
use super::field::Facts;

/// How many distinct tests the word holds.
const BITS: usize = 128;

/// The compiled conditions of a rule set's fit and routing rules.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Tests that read neither the score nor the tier: bits from 0.
    before: Vec<Check>,
    /// Tests that read the score or tier (routing only): the bits after `before`.
    after: Vec<Check>,
    /// One per fit rule, in order: `None` keeps the rule's tree.
    fit: Vec<Option<Mask>>,
    /// One per routing rule, in order.
    routes: Vec<Option<Mask>>,
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
        Program {
            fit: fit.into_iter().map(place).collect(),
            routes: routes.into_iter().map(place).collect(),
            before: tests.before,
            after: tests.after,
        }
    }

    /// The word of the tests that do not read the score, for `facts`.
    #[inline]
    pub fn before(&self, facts: &Facts<'_>) -> u128 {
        self.before.iter().enumerate().fold(0, |bits, (i, c)| bits | u128::from(c.holds(facts)) << i)
    }

    /// The word of every test, once the score and tier are in `facts`.
    #[inline]
    pub fn after(&self, facts: &Facts<'_>, before: u128) -> u128 {
        let offset = self.before.len();
        self.after.iter().enumerate().fold(before, |bits, (i, c)| bits | u128::from(c.holds(facts)) << (offset + i))
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
