//! The fit and routing conditions compiled together, for deciding about many
//! leads: every distinct cheap test they make (a range of integers, a set of
//! countries or numbered values, a part found in a title, a flag) is one bit
//! of a word computed once per lead, with no short cuts, and each rule whose
//! condition is a flat combination of tests is then two comparisons on that
//! word. A lead's attributes are as good as random from one lead to the next,
//! so what costs is branching on them: the word is computed the same way for
//! every lead, and the masks decide with no branch at all.
//!
//! The tests are grouped by the value they read, and each group is decided at
//! once by a table built at load: all the tests on employees, on the score or
//! on one event count by the interval the value falls in, all the tests on a
//! numbered field by the value's number, all the tests on the country by its
//! class, all the `contains` tests on one field by the set of its first parts
//! found (when they name no other), all the tests on a yes-or-no field by its
//! value. The few other tests (parts past those, tiers, statuses, the rest)
//! set their bits one by one. The word is 64 bits wide when the tests fit in
//! it, 128 otherwise. A fit rule whose condition reads one value with a table
//! is folded into it: each entry carries the rule's points when the rule holds
//! for it, so that a decision nobody traces adds those points with the
//! lookups, and asks only the other fit rules one by one.
//!
//! A rule whose condition does not fit (a test on text that is not numbered,
//! a regex, `not` around `all`, more tests than the word has bits) keeps its
//! condition tree, which decides exactly as before. Both give the same answer
//! for every lead: the tests of `super::tests` compare them.

use super::condition::{ABSENT, Check, Cond, IntField};
use super::field::{Facts, Field};

/// How many distinct tests the widest word holds.
const BITS: usize = 128;

/// The compiled conditions of a rule set's fit and routing rules, in a word of
/// 64 bits when the tests fit in it (every operation on the word is then one
/// instruction), else of 128.
#[derive(Clone, Debug)]
pub enum Program {
    Narrow(Compiled<u64>),
    Wide(Compiled<u128>),
}

impl Default for Program {
    fn default() -> Self {
        Program::Narrow(Compiled::default())
    }
}

/// The compiled conditions, with the tests' bits in a `W`.
#[derive(Clone, Debug, Default)]
pub struct Compiled<W> {
    /// Tests that read neither the score nor the tier: bits from 0.
    before: Atoms<W>,
    /// Tests that read the score or tier (routing only): the bits after `before`'s.
    after: Atoms<W>,
    /// One per fit rule, in order: `None` keeps the rule's tree.
    fit: Vec<Option<Mask<W>>>,
    /// The fit rules not folded into the tables of `before`; the others'
    /// points come with the tables' entries. `None` when none is folded.
    unfolded: Option<Unfolded<W>>,
    /// One per routing rule, in order.
    routes: Vec<Option<Mask<W>>>,
    /// The routing rules' masks when every one has a mask: the first that
    /// holds is found with no lookup per rule.
    masked_routes: Option<Vec<Mask<W>>>,
}

/// The fit rules a lead's points are asked of one by one, when the others
/// are folded into the tables: with their points, those the word decides
/// apart from those that keep their tree.
#[derive(Clone, Debug, Default)]
struct Unfolded<W> {
    masks: Vec<(Mask<W>, i64)>,
    /// (rule, points).
    trees: Vec<(usize, i64)>,
}

/// The word of test bits: `u64` or `u128`.
pub trait Word:
    Copy
    + Default
    + Eq
    + std::fmt::Debug
    + std::ops::BitOr<Output = Self>
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitOrAssign
{
    const BITS: usize;
    const ZERO: Self;
    /// Every bit set.
    const ONES: Self;
    /// Bit `at` set.
    fn bit(at: usize) -> Self;
    /// `self` when `holds`, else zero, with no branch.
    fn when(self, holds: bool) -> Self;
    /// Whether bit `at` is set.
    fn has(self, at: usize) -> bool;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            const BITS: usize = <$t>::BITS as usize;
            const ZERO: Self = 0;
            const ONES: Self = !0;
            fn bit(at: usize) -> Self {
                1 << at
            }
            #[inline(always)]
            fn when(self, holds: bool) -> Self {
                self & <$t>::from(holds).wrapping_neg()
            }
            fn has(self, at: usize) -> bool {
                self >> at & 1 == 1
            }
        }
    };
}

word!(u64);
word!(u128);

/// What one table says about a lead: the bits of its tests that hold, and the
/// fit points of the rules folded into it (see [`Compiled::place`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry<W> {
    bits: W,
    points: i64,
}

impl<W: Word> Entry<W> {
    fn of(bits: W) -> Self {
        Entry { bits, points: 0 }
    }

    /// Adds `points` when `mask` holds on this entry's bits.
    fn fold(&mut self, mask: Mask<W>, points: i64) {
        if mask.holds(self.bits) {
            self.points += points;
        }
    }
}

impl<W: Word> std::ops::BitOrAssign for Entry<W> {
    /// Bits of two tables together, and their points added.
    #[inline(always)]
    fn bitor_assign(&mut self, other: Self) {
        self.bits |= other.bits;
        self.points += other.points;
    }
}

/// The value a test reads, for folding fit rules that read only one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Employees,
    Event(usize),
    Symbol(usize),
    Country,
    /// The parts found in one searched field, by its slot.
    Parts(usize),
    /// One yes-or-no field, by its place in [`Atoms::flags`].
    Flag(usize),
    /// The score and the rest: not folded.
    Other,
}

/// Tests by the value they read, each kind looked up once per lead: every
/// test on one integer (employees, the score, one event count) is decided by
/// which interval between the tests' bounds the value falls in, every test on
/// a numbered field by the value's number, every test on the country by the
/// country's class, every `contains` test on a field by the parts found in
/// it, every test on a yes-or-no field by its value; the word's bits for it
/// are then one entry of a table computed at load. Only the few other tests
/// are computed one by one.
#[derive(Clone, Debug, Default)]
struct Atoms<W> {
    employees: Intervals<W>,
    score: Intervals<W>,
    /// By event slot, gathered; after [`Atoms::build`] only the slots whose
    /// bounds are past [`DIRECT`].
    events: Vec<(usize, Intervals<W>)>,
    /// The other event slots: (slot, highest count told apart, where its bits
    /// start in `count_bits`). A count is never negative, and every count from
    /// the highest bound on holds the same tests.
    counts: Vec<(usize, u32, usize)>,
    /// By count, from 0 to each slot's highest, slot after slot.
    count_bits: Vec<Entry<W>>,
    /// By numbered field's slot.
    symbols: Vec<(usize, Numbered<W>)>,
    countries: Option<Countries<W>>,
    /// A part found in a searched field: (slot, bit of the part, the test's
    /// bit). After [`Atoms::build`] only those of fields without a table.
    parts: Vec<(usize, u32, W)>,
    /// By searched field's slot, when its tests look for none of the
    /// field's parts past the first [`PART_TABLE_BITS`]: the bits for each
    /// set of those parts found.
    part_tables: Vec<(usize, Vec<Entry<W>>)>,
    /// Tests on yes-or-no fields, by field: the bits for an absent value,
    /// `false` and `true`.
    flags: Vec<(Field, [Entry<W>; 3])>,
    /// Anything else, through its check.
    others: Vec<(Check, W)>,
    /// How many tests, of every kind.
    len: usize,
    /// The value each test reads, by bit from the first of these tests.
    groups: Vec<Group>,
}

/// An inclusive range of integers (empty when `lo > hi`), or its complement
/// when negated; an absent value is in neither.
#[derive(Clone, Copy, Debug)]
struct Range<W> {
    lo: i64,
    hi: i64,
    negated: bool,
    /// The test's bit, set.
    bit: W,
}

impl<W> Range<W> {
    fn holds(self, v: i64) -> bool {
        (self.lo <= v && v <= self.hi) != self.negated
    }
}

/// The tests on one integer, as the sorted bounds where any of them changes
/// and the bits that hold in each interval between them. When the bounds are
/// close together (event counts, the score) the bits are kept for every value
/// between them, and found by the value itself.
#[derive(Clone, Debug, Default)]
struct Intervals<W> {
    /// Empty when `direct`.
    bounds: Vec<i64>,
    /// One more than `bounds`: below the first bound, from each bound on. Or,
    /// when `direct`, below the first bound, then at each value from it to the
    /// last bound.
    bits: Vec<Entry<W>>,
    /// The points of folded rules for an absent value (its bits are none).
    absent: i64,
    /// The value before the first bound, when the bits are by value.
    direct: Option<i64>,
    /// Gathered until [`Intervals::build`].
    ranges: Vec<Range<W>>,
}

/// How many values apart the first and last bounds of a table by value can be.
const DIRECT: i64 = 128;

impl<W: Word> Intervals<W> {
    fn build(&mut self) {
        let mut bounds: Vec<i64> = self
            .ranges
            .iter()
            .flat_map(|r| [Some(r.lo).filter(|&lo| lo > i64::MIN), r.hi.checked_add(1)])
            .flatten()
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let at = |v: i64| self.ranges.iter().filter(|r| r.holds(v)).fold(W::ZERO, |bits, r| bits | r.bit);
        match (bounds.first(), bounds.last()) {
            (Some(&first), Some(&last)) if last.checked_sub(first).is_some_and(|d| d <= DIRECT) => {
                // `first` is above i64::MIN: the value before it is one.
                let before = first - 1;
                self.bits = (before..=last).map(at).map(Entry::of).collect();
                self.direct = Some(before);
            }
            _ => {
                // Each range holds or not all through an interval: ask at its start.
                let starts = std::iter::once(i64::MIN).chain(bounds.iter().copied());
                self.bits = starts.map(at).map(Entry::of).collect();
                self.bounds = bounds;
            }
        }
    }

    fn fold(&mut self, mask: Mask<W>, points: i64) {
        self.bits.iter_mut().for_each(|e| e.fold(mask, points));
        if mask.holds(W::ZERO) {
            self.absent += points;
        }
    }

    /// The bits of the tests that hold for `v`; none when absent.
    #[inline(always)]
    fn word(&self, v: Option<i64>) -> Entry<W> {
        let Some(v) = v else { return Entry { bits: W::ZERO, points: self.absent } };
        let at = match self.direct {
            // Below the first bound is the first entry, past the last the last.
            Some(before) => v.saturating_sub(before).clamp(0, self.bits.len() as i64 - 1) as usize,
            // Counted rather than searched: no branch on the value.
            None => self.bounds.iter().fold(0, |n, &b| n + usize::from(b <= v)),
        };
        self.bits.get(at).copied().unwrap_or_default()
    }
}

/// The tests on one numbered field, by the number of the lead's value.
#[derive(Clone, Debug, Default)]
struct Numbered<W> {
    /// By number; numbers past it are in none of the tests' sets.
    bits: Vec<Entry<W>>,
    /// A value no test names.
    unnamed: Entry<W>,
    /// The points of folded rules for an absent value (its bits are none).
    absent: i64,
    /// Gathered until [`Numbered::build`]: (set, negated, bit).
    tests: Vec<(Box<[u64]>, bool, W)>,
}

impl<W: Word> Numbered<W> {
    fn build(&mut self) {
        let numbers = self.tests.iter().map(|(set, _, _)| set.len() * 64).max().unwrap_or(0);
        let holds = |number: usize| {
            self.tests
                .iter()
                .filter(|(set, negated, _)| {
                    let word = set.get(number / 64).copied().unwrap_or(0);
                    (word >> (number % 64) & 1 == 1) != *negated
                })
                .fold(W::ZERO, |bits, (_, _, bit)| bits | *bit)
        };
        self.bits = (0..numbers).map(holds).map(Entry::of).collect();
        self.unnamed = Entry::of(holds(usize::MAX));
    }

    fn fold(&mut self, mask: Mask<W>, points: i64) {
        self.bits.iter_mut().chain([&mut self.unnamed]).for_each(|e| e.fold(mask, points));
        if mask.holds(W::ZERO) {
            self.absent += points;
        }
    }

    #[inline(always)]
    fn word(&self, symbol: u32) -> Entry<W> {
        if symbol == ABSENT {
            Entry { bits: W::ZERO, points: self.absent }
        } else {
            self.bits.get(symbol as usize).copied().unwrap_or(self.unnamed)
        }
    }
}

/// How many country codes there are room for: two letters.
const COUNTRY_CODES: usize = 26 * 26;

/// The tests on the country, by class: countries no two tests tell apart
/// share one.
#[derive(Clone, Debug)]
struct Countries<W> {
    /// By country code's index.
    class: Box<[u16; COUNTRY_CODES]>,
    bits: Vec<Entry<W>>,
    /// The points of folded rules for an absent country (its bits are none).
    absent: i64,
    /// Gathered until [`Countries::build`]: (set, negated, bit).
    tests: Vec<(Box<[u64; 11]>, bool, W)>,
}

impl<W: Word> Countries<W> {
    fn build(&mut self) {
        let mut classes: Vec<W> = Vec::new();
        for at in 0..COUNTRY_CODES {
            let bits = self
                .tests
                .iter()
                .filter(|(set, negated, _)| (set[at / 64] >> (at % 64) & 1 == 1) != *negated)
                .fold(W::ZERO, |bits, (_, _, bit)| bits | *bit);
            let class = classes.iter().position(|&c| c == bits).unwrap_or_else(|| {
                classes.push(bits);
                classes.len() - 1
            });
            // At most one class per code: 676 fit in 16 bits.
            self.class[at] = class as u16;
        }
        self.bits = classes.into_iter().map(Entry::of).collect();
    }

    fn fold(&mut self, mask: Mask<W>, points: i64) {
        self.bits.iter_mut().for_each(|e| e.fold(mask, points));
        if mask.holds(W::ZERO) {
            self.absent += points;
        }
    }

    #[inline(always)]
    fn word(&self, country: Option<usize>) -> Entry<W> {
        match country {
            None => Entry { bits: W::ZERO, points: self.absent },
            Some(at) => self.class.get(at).and_then(|&c| self.bits.get(usize::from(c))).copied().unwrap_or_default(),
        }
    }
}

/// How many of a searched field's parts its table tells apart: a table of
/// 2 to that power entries.
const PART_TABLE_BITS: u32 = 8;

/// The table entry of a yes-or-no value.
#[inline(always)]
fn flag_index(value: Option<bool>) -> usize {
    match value {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

/// The intervals of `key` in `list`, added when new.
fn keyed<T: Default>(list: &mut Vec<(usize, T)>, key: usize) -> &mut T {
    let at = list.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
        list.push((key, T::default()));
        list.len() - 1
    });
    &mut list[at].1
}

impl<W: Word> Atoms<W> {
    /// Files `check` under the value it reads, with bit `at`.
    fn add(&mut self, check: Check, at: usize) {
        let bit = W::bit(at);
        self.len += 1;
        self.groups.push(match &check {
            Check::Int { field: IntField::Employees, .. } => Group::Employees,
            Check::Int { field: IntField::Event(slot), .. } | Check::Exists { field: Field::Events(slot), .. } => {
                Group::Event(usize::from(*slot))
            }
            Check::Symbol { slot, .. } => Group::Symbol(usize::from(*slot)),
            Check::Country { .. } => Group::Country,
            Check::Part { slot, .. } => Group::Parts(usize::from(*slot)),
            Check::Bool { field, .. } => {
                let at = self.flags.iter().position(|(f, _)| f == field).unwrap_or_else(|| {
                    self.flags.push((field.clone(), [Entry::default(); 3]));
                    self.flags.len() - 1
                });
                Group::Flag(at)
            }
            _ => Group::Other,
        });
        match check {
            Check::Int { field, lo, hi, negated } => {
                let range = Range { lo, hi, negated, bit };
                match field {
                    IntField::Employees => self.employees.ranges.push(range),
                    IntField::Event(slot) => keyed(&mut self.events, usize::from(slot)).ranges.push(range),
                    IntField::Score => self.score.ranges.push(range),
                }
            }
            // A count is present when above zero.
            Check::Exists { field: Field::Events(slot), want } => {
                let range = Range { lo: 1, hi: i64::MAX, negated: !want, bit };
                keyed(&mut self.events, usize::from(slot)).ranges.push(range);
            }
            Check::Symbol { slot, set, negated } => {
                keyed(&mut self.symbols, usize::from(slot)).tests.push((set, negated, bit));
            }
            Check::Part { slot, bit: part } => self.parts.push((usize::from(slot), u32::from(part), bit)),
            Check::Bool { field, value } => {
                if let Some((_, table)) = self.flags.iter_mut().find(|(f, _)| *f == field) {
                    table[flag_index(Some(value))].bits |= bit;
                }
            }
            Check::Country { set, negated } => self
                .countries
                .get_or_insert_with(|| Countries {
                    class: Box::new([0; COUNTRY_CODES]),
                    bits: Vec::new(),
                    absent: 0,
                    tests: Vec::new(),
                })
                .tests
                .push((set, negated, bit)),
            other => self.others.push((other, bit)),
        }
    }

    /// Builds the tables, once every test has been added.
    fn build(&mut self) {
        self.employees.build();
        self.score.build();
        for (slot, mut intervals) in std::mem::take(&mut self.events) {
            let bounds = intervals.ranges.iter().flat_map(|r| [Some(r.lo), r.hi.checked_add(1)]).flatten();
            let top = bounds.filter(|&b| b > 0).max();
            match top.map_or(Some(0), |top| u32::try_from(top).ok().filter(|&t| i64::from(t) <= DIRECT)) {
                Some(top) => {
                    self.counts.push((slot, top, self.count_bits.len()));
                    let at =
                        |v: i64| intervals.ranges.iter().filter(|r| r.holds(v)).fold(W::ZERO, |bits, r| bits | r.bit);
                    self.count_bits.extend((0..=i64::from(top)).map(at).map(Entry::of));
                }
                None => {
                    intervals.build();
                    self.events.push((slot, intervals));
                }
            }
        }
        self.symbols.iter_mut().for_each(|(_, s)| s.build());
        if let Some(countries) = &mut self.countries {
            countries.build();
        }
        let mut slots: Vec<usize> = self.parts.iter().map(|&(slot, _, _)| slot).collect();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let tests = || self.parts.iter().filter(move |&&(s, _, _)| s == slot);
            if tests().any(|&(_, part, _)| part >= PART_TABLE_BITS) {
                continue;
            }
            let at = |found: u32| {
                tests().filter(|&&(_, part, _)| found >> part & 1 == 1).fold(W::ZERO, |bits, &(_, _, bit)| bits | bit)
            };
            let table = (0..1 << PART_TABLE_BITS).map(at).map(Entry::of).collect();
            self.part_tables.push((slot, table));
            self.parts.retain(|&(s, _, _)| s != slot);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The one value `mask` reads, when it reads one that has a table.
    fn group_of(&self, mask: Mask<W>) -> Option<Group> {
        let read = mask.all | mask.any | mask.none;
        let mut groups = (0..W::BITS).filter(|&at| read.has(at)).map(|at| self.groups.get(at).copied());
        let first = groups.next()??;
        let tabled = match first {
            Group::Parts(slot) => self.part_tables.iter().any(|(s, _)| *s == slot),
            Group::Other => false,
            _ => true,
        };
        (tabled && groups.all(|g| g == Some(first))).then_some(first)
    }

    /// Folds a fit rule worth `points` whose condition `mask` reads only
    /// `group` into that group's table.
    fn fold(&mut self, group: Group, mask: Mask<W>, points: i64) {
        match group {
            Group::Employees => self.employees.fold(mask, points),
            Group::Event(slot) => {
                if let Some(&(_, top, start)) = self.counts.iter().find(|(s, _, _)| *s == slot) {
                    let table = &mut self.count_bits[start..=start + top as usize];
                    table.iter_mut().for_each(|e| e.fold(mask, points));
                } else if let Some((_, intervals)) = self.events.iter_mut().find(|(s, _)| *s == slot) {
                    intervals.fold(mask, points);
                }
            }
            Group::Symbol(slot) => {
                if let Some((_, numbered)) = self.symbols.iter_mut().find(|(s, _)| *s == slot) {
                    numbered.fold(mask, points);
                }
            }
            Group::Country => {
                if let Some(countries) = &mut self.countries {
                    countries.fold(mask, points);
                }
            }
            Group::Parts(slot) => {
                if let Some((_, table)) = self.part_tables.iter_mut().find(|(s, _)| *s == slot) {
                    table.iter_mut().for_each(|e| e.fold(mask, points));
                }
            }
            Group::Flag(at) => {
                if let Some((_, table)) = self.flags.get_mut(at) {
                    table.iter_mut().for_each(|e| e.fold(mask, points));
                }
            }
            Group::Other => {}
        }
    }

    /// The bits of every test, for `facts`, and the points of the fit rules
    /// folded into the tables.
    #[inline(always)]
    fn word(&self, f: &Facts<'_>) -> Entry<W> {
        let mut entry = self.employees.word(f.profile.employees);
        entry |= self.score.word(f.score);
        for &(slot, top, start) in &self.counts {
            let count = f.events.get(slot).copied().unwrap_or(0);
            entry |= self.count_bits.get(start + count.min(top) as usize).copied().unwrap_or_default();
        }
        for (slot, counts) in &self.events {
            entry |= counts.word(Some(i64::from(f.events.get(*slot).copied().unwrap_or(0))));
        }
        for (slot, numbered) in &self.symbols {
            entry |= numbered.word(f.symbols[*slot]);
        }
        if let Some(countries) = &self.countries {
            entry |= countries.word(f.profile.country.map(|c| c.index()));
        }
        for (slot, table) in &self.part_tables {
            let found = f.parts[*slot] & ((1 << PART_TABLE_BITS) - 1);
            entry |= table.get(found as usize).copied().unwrap_or_default();
        }
        for (field, table) in &self.flags {
            entry |= table[flag_index(field.boolean(f))];
        }
        let mut bits = entry.bits;
        for &(slot, part, bit) in &self.parts {
            bits |= bit.when((f.parts[slot] >> part) & 1 == 1);
        }
        for (check, bit) in &self.others {
            bits |= bit.when(check.holds(f));
        }
        Entry { bits, points: entry.points }
    }
}

/// A flat condition over the word: every bit of `all` set, at least one of
/// `any` set (when `any` is not empty), and none of `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mask<W> {
    all: W,
    any: W,
    none: W,
    /// `all` and `none` together: the bits whose value the mask names.
    care: W,
    /// `any`; nothing when `any` is empty (`anyless` answers then) or when a
    /// bit is in both `all` and `none`.
    some: W,
    /// Every bit when `any` is empty, else none; nothing when a bit is in
    /// both `all` and `none`.
    anyless: W,
}

impl<W: Word> Mask<W> {
    fn new(all: W, any: W, none: W) -> Self {
        let (some, anyless) = if all & none != W::ZERO {
            // Never holds.
            (W::ZERO, W::ZERO)
        } else if any == W::ZERO {
            (W::ZERO, W::ONES)
        } else {
            (any, W::ZERO)
        };
        Mask { all, any, none, care: all | none, some, anyless }
    }

    /// Two comparisons: the bits named are as `all` has them (set there,
    /// clear in `none`), and one of `any` is set unless it is empty.
    #[inline(always)]
    fn holds(self, bits: W) -> bool {
        (bits & self.care == self.all) & ((bits & self.some) | self.anyless != W::ZERO)
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
    fn place<W: Word>(&self, before: usize) -> Mask<W> {
        let word = |bits: &[Bit]| {
            bits.iter().fold(W::ZERO, |word, b| word | W::bit(if b.after { before + b.at } else { b.at }))
        };
        Mask::new(word(&self.all), word(&self.any), word(&self.none))
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
    /// Compiles the conditions of the fit rules (with their points) and the
    /// routing rules.
    pub fn compile<'a>(fit: impl Iterator<Item = (&'a Cond, i64)>, routes: impl Iterator<Item = &'a Cond>) -> Program {
        let mut tests = Tests::default();
        let fit: Vec<(Option<Draft>, i64)> = fit.map(|(c, points)| (draft(&mut tests, c), points)).collect();
        let routes: Vec<Option<Draft>> = routes.map(|c| draft(&mut tests, c)).collect();
        if tests.before.len() + tests.after.len() <= u64::BITS as usize {
            Program::Narrow(Compiled::place(tests, fit, routes))
        } else {
            Program::Wide(Compiled::place(tests, fit, routes))
        }
    }

    /// How many rules the word decides, of the fit and routing rules; and
    /// how many tests it holds.
    pub fn coverage(&self) -> (usize, usize, usize) {
        match self {
            Program::Narrow(p) => p.coverage(),
            Program::Wide(p) => p.coverage(),
        }
    }

    /// How many fit rules are folded into the tables.
    pub fn folded(&self) -> usize {
        match self {
            Program::Narrow(p) => p.folded(),
            Program::Wide(p) => p.folded(),
        }
    }
}

impl<W: Word> Compiled<W> {
    /// Places the tests' bits and masks, and folds each fit rule whose
    /// condition reads one value with a table (employees, one event count, one
    /// numbered field, the country, the parts of one field, one yes-or-no
    /// field) into that table: every entry then carries
    /// the rule's points when the rule holds for it, and a lead's fit points
    /// are mostly the sum of the entries it looks up anyway. Only when no sum
    /// of the fit points can overflow, so that the order of adding is free.
    fn place(tests: Tests, fit: Vec<(Option<Draft>, i64)>, routes: Vec<Option<Draft>>) -> Self {
        let before = tests.before.len();
        let place = |d: Option<Draft>| d.map(|d| d.place(before));
        let atoms = |checks: Vec<Check>, from: usize| {
            let mut atoms = Atoms::default();
            for (i, check) in checks.into_iter().enumerate() {
                atoms.add(check, from + i);
            }
            atoms.build();
            atoms
        };
        let exact = fit.iter().try_fold(0i64, |sum, (_, points)| sum.checked_add(points.checked_abs()?)).is_some();
        let (drafts, points): (Vec<Option<Draft>>, Vec<i64>) = fit.into_iter().unzip();
        let fit: Vec<Option<Mask<W>>> = drafts.into_iter().map(place).collect();
        let mut before_atoms = atoms(tests.before, 0);
        let mut unfolded = Unfolded::default();
        for (i, mask) in fit.iter().enumerate() {
            match (mask, mask.and_then(|m| before_atoms.group_of(m))) {
                (Some(mask), Some(group)) if exact => before_atoms.fold(group, *mask, points[i]),
                (Some(mask), _) => unfolded.masks.push((*mask, points[i])),
                (None, _) => unfolded.trees.push((i, points[i])),
            }
        }
        let routes: Vec<Option<Mask<W>>> = routes.into_iter().map(place).collect();
        Compiled {
            unfolded: Some(unfolded).filter(|u| u.masks.len() + u.trees.len() < fit.len()),
            fit,
            masked_routes: routes.iter().copied().collect(),
            routes,
            before: before_atoms,
            after: atoms(tests.after, before),
        }
    }

    /// The word of the tests that do not read the score, for `facts`, and
    /// the points of the fit rules folded into their tables.
    #[inline]
    pub fn before(&self, facts: &Facts<'_>) -> (W, i64) {
        let entry = self.before.word(facts);
        (entry.bits, entry.points)
    }

    /// The word of every test, once the score and tier are in `facts`.
    #[inline]
    pub fn after(&self, facts: &Facts<'_>, before: W) -> W {
        before | self.after.word(facts).bits
    }

    /// Whether some fit rules are folded into the tables: then a lead's fit
    /// points are [`Compiled::before`]'s plus [`Compiled::rest_of_fit`]'s.
    #[inline(always)]
    pub fn folds(&self) -> bool {
        self.unfolded.is_some()
    }

    /// The points of the fit rules not folded into the tables that hold,
    /// from the word or, for a rule the word cannot decide, from `tree`. No
    /// sum of fit points overflows when rules are folded: the order of
    /// adding is free.
    #[inline(always)]
    pub fn rest_of_fit(&self, bits: W, tree: impl Fn(usize) -> bool) -> i64 {
        let Some(unfolded) = &self.unfolded else { return 0 };
        let by_word = unfolded
            .masks
            .iter()
            .fold(0i64, |sum, (mask, points)| sum + std::hint::select_unpredictable(mask.holds(bits), *points, 0));
        unfolded.trees.iter().fold(by_word, |sum, &(i, points)| if tree(i) { sum + points } else { sum })
    }

    /// Whether fit rule `i` holds, from the word or, for a rule the word cannot
    /// decide, from `tree`.
    #[inline(always)]
    pub fn fit_holds(&self, i: usize, bits: W, tree: impl FnOnce() -> bool) -> bool {
        match self.fit.get(i) {
            Some(Some(mask)) => mask.holds(bits),
            _ => tree(),
        }
    }

    /// The first routing rule that holds, from the word or `tree`.
    #[inline(always)]
    pub fn first_route(&self, bits: W, tree: impl Fn(usize) -> bool) -> Option<usize> {
        if let Some(masks) = &self.masked_routes {
            return masks.iter().position(|mask| mask.holds(bits));
        }
        self.routes.iter().enumerate().position(|(i, m)| match m {
            Some(mask) => mask.holds(bits),
            None => tree(i),
        })
    }

    fn folded(&self) -> usize {
        self.unfolded.as_ref().map_or(0, |u| self.fit.len() - u.masks.len() - u.trees.len())
    }

    fn coverage(&self) -> (usize, usize, usize) {
        let decided = self.fit.iter().chain(&self.routes).filter(|m| m.is_some()).count();
        (decided, self.fit.len() + self.routes.len(), self.before.len() + self.after.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two comparisons of a mask decide as its three parts say, for
    /// every mask and word over four bits, contradictory masks included.
    #[test]
    fn masks_hold_as_all_any_and_none_say() {
        for all in 0u64..16 {
            for any in 0u64..16 {
                for none in 0u64..16 {
                    let mask = Mask::new(all, any, none);
                    for bits in 0u64..16 {
                        let said = bits & all == all && (any == 0 || bits & any != 0) && bits & none == 0;
                        assert_eq!(mask.holds(bits), said, "all {all:b} any {any:b} none {none:b} bits {bits:b}");
                    }
                }
            }
        }
    }

    /// Every range's verdict, at and around every bound and at the ends of
    /// the integers, is the verdict of the interval the value falls in.
    #[test]
    fn intervals_decide_as_their_ranges_at_every_bound() {
        let mut rng = fastrand::Rng::with_seed(17);
        for _ in 0..500 {
            let mut intervals = Intervals::<u64>::default();
            let edge = |rng: &mut fastrand::Rng| match rng.u8(..8) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => rng.i64(-20..20),
            };
            for at in 0..rng.u32(1..9) {
                let (lo, hi) = (edge(&mut rng), edge(&mut rng));
                intervals.ranges.push(Range { lo, hi, negated: rng.bool(), bit: 1 << at });
            }
            intervals.build();
            let mut values = vec![i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX];
            for r in &intervals.ranges {
                for v in [r.lo, r.hi] {
                    values.extend([v.saturating_sub(1), v, v.saturating_add(1)]);
                }
            }
            for v in values {
                let want = intervals.ranges.iter().filter(|r| r.holds(v)).fold(0, |bits, r| bits | r.bit);
                assert_eq!(intervals.word(Some(v)).bits, want, "{v} in {:?}", intervals.ranges);
            }
            assert_eq!(intervals.word(None).bits, 0);
        }
    }

    /// A numbered value is in a set by its number, absent in none, unnamed
    /// in the negated ones only; a country by its class.
    #[test]
    fn numbered_values_and_countries_read_their_tables() {
        let mut numbered = Numbered::<u64>::default();
        numbered.tests.push((vec![0b101].into_boxed_slice(), false, 1));
        numbered.tests.push((vec![0, 1].into_boxed_slice(), true, 2));
        numbered.build();
        assert_eq!(numbered.word(0).bits, 0b01 | 0b10);
        assert_eq!(numbered.word(1).bits, 0b10);
        assert_eq!(numbered.word(64).bits, 0);
        assert_eq!(numbered.word(ABSENT - 1).bits, 0b10);
        assert_eq!(numbered.word(ABSENT).bits, 0);

        let code = |c: &str| crate::lead::CountryCode::parse(c).ok().map(|c| c.index());
        let mut set = [0u64; 11];
        for c in ["US", "CA"] {
            let at = code(c).expect("code");
            set[at / 64] |= 1 << (at % 64);
        }
        let mut countries =
            Countries::<u64> { class: Box::new([0; COUNTRY_CODES]), bits: Vec::new(), absent: 0, tests: Vec::new() };
        countries.tests.push((Box::new(set), false, 1));
        countries.tests.push((Box::new(set), true, 2));
        countries.build();
        assert_eq!(countries.bits.len(), 2);
        assert_eq!(countries.word(code("US")).bits, 1);
        assert_eq!(countries.word(code("CA")).bits, 1);
        assert_eq!(countries.word(code("DE")).bits, 2);
        assert_eq!(countries.word(None).bits, 0);
    }

    /// Event counts are looked up by count up to the highest bound, or
    /// counted against the bounds past it; either way as the ranges say.
    #[test]
    fn event_counts_decide_as_their_ranges() {
        let mut rng = fastrand::Rng::with_seed(23);
        let profile = crate::lead::Profile::new(crate::lead::Email::parse("a@b.example").expect("email"));
        for _ in 0..300 {
            let mut atoms = Atoms::<u128>::default();
            let mut ranges = Vec::new();
            for at in 0..rng.u32(1..12) {
                let slot = rng.u16(..3);
                let lo = [0, 1, 2, 3, 127, 128, 129, 5000, i64::MIN][rng.usize(..9)];
                let hi = [0, 2, 3, 128, 4999, i64::MAX][rng.usize(..6)];
                let negated = rng.bool();
                ranges.push((usize::from(slot), Range { lo, hi, negated, bit: 1 << at }));
                atoms.add(Check::Int { field: IntField::Event(slot), lo, hi, negated }, at as usize);
            }
            atoms.build();
            for _ in 0..50 {
                let counts: Vec<u32> =
                    (0..3).map(|_| [0, 1, 2, 3, 127, 128, 129, 4999, 5000, u32::MAX][rng.usize(..10)]).collect();
                let facts = Facts {
                    profile: &profile,
                    free_email: false,
                    events: &counts,
                    status: crate::lead::Status::Nurturing,
                    bant: crate::lead::Bant::default(),
                    score: None,
                    tier: None,
                    symbols: [ABSENT; super::super::condition::SYMBOL_SLOTS],
                    parts: [0; super::super::condition::PART_SLOTS],
                };
                let want = ranges
                    .iter()
                    .filter(|(slot, r)| r.holds(i64::from(counts[*slot])))
                    .fold(0, |bits, (_, r)| bits | r.bit);
                assert_eq!(atoms.word(&facts).bits, want, "{counts:?} {ranges:?}");
            }
        }
    }
}
