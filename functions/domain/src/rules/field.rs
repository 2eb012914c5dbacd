//! The fields a rule can read, resolved once at load into typed accessors over
//! [`Facts`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::lead::{Bant, ProfileField, Status, valid_custom_name};

use super::diag::suggest;
use super::text::KeyedList;

/// What the rule engine sees of one lead while deciding about it.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub profile: &'a crate::lead::Profile,
    /// Whether the email domain is one of `capture.yaml` `free_email_domains`.
    pub free_email: bool,
    /// Event counts by the rule set's event slot (see [`EventCounts::slots_of`]
    /// and [`super::RuleSet::event_slots`]).
    pub events: &'a [u32],
    pub status: Status,
    pub bant: Bant,
    /// Set once scoring has run, for routing rules.
    pub score: Option<i64>,
    /// Index into the tiers of `scoring.yaml`, lowest threshold first.
    pub tier: Option<usize>,
    /// The number of the lead's value in each field the rule set numbers
    /// (see [`super::condition::Symbols`]).
    pub symbols: [u32; super::condition::SYMBOL_SLOTS],
    /// The parts each searched field's value contains (see [`super::condition::Parts`]).
    pub parts: [u64; super::condition::PART_SLOTS],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BantPart {
    Budget,
    Authority,
    Need,
    Timeline,
}

/// A field reference, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Email,
    EmailDomain,
    FreeEmail,
    Country,
    Employees,
    AnnualRevenue,
    /// Any other profile text field.
    Text(ProfileField),
    Custom(Box<str>),
    Score,
    Tier,
    Status,
    /// Event count, by event slot.
    Events(u16),
    Bant(BantPart),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    Lower,
    Upper,
}

/// The type of a field's values, which decides the operators it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    /// One of the tier names of `scoring.yaml`.
    Tier,
    /// One of the lead statuses.
    Status,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "a number",
            Kind::Bool => "true or false",
            Kind::Tier => "a tier name",
            Kind::Status => "a status",
        }
    }
}

impl Field {
    /// The case a text field's values are stored in, when they are normalised:
    /// comparisons on it then need no case folding.
    pub fn normalised_case(&self) -> Option<Case> {
        match self {
            Field::Email | Field::EmailDomain => Some(Case::Lower),
            Field::Country => Some(Case::Upper),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Field::Email | Field::EmailDomain | Field::Country | Field::Text(_) | Field::Custom(_) => Kind::Text,
            Field::Employees | Field::AnnualRevenue | Field::Score | Field::Events(_) => Kind::Number,
            Field::FreeEmail | Field::Bant(_) => Kind::Bool,
            Field::Tier => Kind::Tier,
            Field::Status => Kind::Status,
        }
    }

    /// The text of a text field; `None` when absent or empty.
    #[inline(always)]
    pub fn text<'a>(&self, f: &Facts<'a>) -> Option<&'a str> {
        let value = match self {
            Field::Email => Some(f.profile.email.as_str()),
            Field::EmailDomain => Some(f.profile.email.domain()),
            Field::Country => f.profile.country.as_ref().map(|c| c.as_str()),
            Field::Text(p) => f.profile.text(*p),
            Field::Custom(name) => f.profile.custom.get(&**name).map(String::as_str),
            _ => None,
        };
        value.filter(|v| !v.is_empty())
    }

    #[inline]
    pub fn number(&self, f: &Facts<'_>) -> Option<f64> {
        match self {
            Field::Employees => f.profile.employees.map(|n| n as f64),
            Field::AnnualRevenue => f.profile.annual_revenue,
            Field::Score => f.score.map(|n| n as f64),
            Field::Events(slot) => Some(f.events.get(usize::from(*slot)).copied().unwrap_or(0) as f64),
            _ => None,
        }
    }

    #[inline]
    pub fn boolean(&self, f: &Facts<'_>) -> Option<bool> {
        match self {
            Field::FreeEmail => Some(f.free_email),
            Field::Bant(BantPart::Budget) => f.bant.budget,
            Field::Bant(BantPart::Authority) => f.bant.authority,
            Field::Bant(BantPart::Need) => f.bant.need,
            Field::Bant(BantPart::Timeline) => f.bant.timeline,
            _ => None,
        }
    }

    /// Present and non-empty. An event count is present when it is above zero.
    #[inline]
    pub fn exists(&self, f: &Facts<'_>) -> bool {
        match self.kind() {
            Kind::Text => self.text(f).is_some(),
            Kind::Number => self.number(f).is_some_and(|n| !matches!(self, Field::Events(_)) || n > 0.0),
            Kind::Bool => self.boolean(f).is_some(),
            Kind::Tier => f.tier.is_some(),
            Kind::Status => true,
        }
    }
}

/// The names every rule can use, for resolution and suggestions.
const FIXED_FIELDS: &[&str] = &[
    "email",
    "email_domain",
    "free_email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone",
    "country",
    "state",
    "industry",
    "employees",
    "annual_revenue",
    "website",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "score",
    "tier",
    "status",
    "bant.budget",
    "bant.authority",
    "bant.need",
    "bant.timeline",
];

/// The event types the rules know about: every engagement type of
/// `scoring.yaml`, every lifecycle event and every re-activation event. Each gets
/// a slot, so that counting and reading events needs no lookups per lead.
#[derive(Clone, Debug, Default)]
pub struct EventVocabulary(Arc<Names>);

/// The names of a vocabulary, shared with the [`EventCounts`] made with it.
#[derive(Clone, Debug, Default)]
struct Names {
    /// By slot.
    names: Vec<String>,
    /// The same names, for lookups.
    keyed: KeyedList,
}

impl Names {
    /// One hash of the name and one comparison.
    #[inline]
    fn slot(&self, name: &str) -> Option<u16> {
        self.keyed.position(name).and_then(|i| u16::try_from(i).ok())
    }
}

impl EventVocabulary {
    pub fn declare(&mut self, name: &str) -> u16 {
        let vocabulary = Arc::make_mut(&mut self.0);
        let slot = vocabulary.keyed.insert(name);
        if slot == vocabulary.names.len() {
            vocabulary.names.push(name.to_owned());
        }
        u16::try_from(slot).unwrap_or(u16::MAX)
    }

    /// One hash of the name and one comparison.
    #[inline]
    pub fn slot(&self, name: &str) -> Option<u16> {
        self.0.slot(name)
    }

    pub fn names(&self) -> &[String] {
        &self.0.names
    }

    pub fn len(&self) -> usize {
        self.0.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.names.is_empty()
    }
}

/// A lead's event counts as the readers hand them to the engine: one count
/// per type of the vocabulary they were counted against, by slot, so that the
/// engine reads them with no lookup; and the types outside it by name, which
/// score nothing under those rules but may under another rule set's.
#[derive(Clone, Debug)]
pub struct EventCounts {
    vocabulary: Arc<Names>,
    by_slot: Vec<u32>,
    /// Types outside the vocabulary.
    others: BTreeMap<String, u32>,
}

impl EventCounts {
    /// No events, counted against `vocabulary`.
    pub fn new(vocabulary: &EventVocabulary) -> Self {
        EventCounts {
            vocabulary: Arc::clone(&vocabulary.0),
            by_slot: vec![0; vocabulary.len()],
            others: BTreeMap::new(),
        }
    }

    /// Counts `name`: by slot when the vocabulary knows it. A type set twice
    /// keeps its last count.
    pub fn set(&mut self, name: &str, count: u32) {
        match self.vocabulary.slot(name) {
            Some(slot) => self.by_slot[usize::from(slot)] = count,
            None => {
                self.others.insert(name.to_owned(), count);
            }
        }
    }

    /// The count of `name` (zero when the lead has none).
    pub fn count(&self, name: &str) -> u32 {
        match self.vocabulary.slot(name) {
            Some(slot) => self.by_slot[usize::from(slot)],
            None => self.others.get(name).copied().unwrap_or(0),
        }
    }

    /// Counts by slot of the vocabulary these counts were made with.
    pub fn by_slot(&self) -> &[u32] {
        &self.by_slot
    }

    /// Every type with a count above zero: the vocabulary's in slot order,
    /// then the others by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        let known = self.vocabulary.names.iter().zip(&self.by_slot);
        known.chain(&self.others).filter(|(_, c)| **c > 0).map(|(n, c)| (n.as_str(), *c))
    }

    /// The counts by slot of `vocabulary`: these counts themselves when they
    /// were made with the same event types (no work per lead), else copied
    /// type by type into `scratch`.
    #[inline]
    pub fn slots_of<'a>(&'a self, vocabulary: &EventVocabulary, scratch: &'a mut Vec<u32>) -> &'a [u32] {
        if Arc::ptr_eq(&self.vocabulary, &vocabulary.0) || self.vocabulary.names == vocabulary.0.names {
            return &self.by_slot;
        }
        scratch.clear();
        scratch.resize(vocabulary.len(), 0);
        for (name, count) in self.iter() {
            if let Some(slot) = vocabulary.slot(name) {
                scratch[usize::from(slot)] = count;
            }
        }
        scratch
    }
}

/// Counts are equal when every type has the same count, whatever vocabulary
/// each was made with.
impl PartialEq for EventCounts {
    fn eq(&self, other: &Self) -> bool {
        fn sorted(c: &EventCounts) -> Vec<(&str, u32)> {
            let mut all: Vec<(&str, u32)> = c.iter().collect();
            all.sort_unstable();
            all
        }
        sorted(self) == sorted(other)
    }
}

impl Eq for EventCounts {}

/// A valid event type name: lower-case letters, digits and `_`.
pub fn valid_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Where a condition is used, which decides what it may read.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub events: &'a EventVocabulary,
    /// Tier names, lowest threshold first; `None` when `scoring.yaml` did not load.
    pub tiers: Option<&'a [String]>,
    /// False for fit rules: they compute the score, so they cannot read it.
    pub score_known: bool,
}

/// Why a field name did not resolve.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownField {
    pub message: String,
    pub suggestion: Option<String>,
}

pub fn resolve(name: &str, scope: &Scope<'_>) -> Result<Field, UnknownField> {
    let field = match name {
        "email" => Field::Email,
        "email_domain" => Field::EmailDomain,
        "free_email" => Field::FreeEmail,
        "country" => Field::Country,
        "employees" => Field::Employees,
        "annual_revenue" => Field::AnnualRevenue,
        "score" => Field::Score,
        "tier" => Field::Tier,
        "status" => Field::Status,
        "bant.budget" => Field::Bant(BantPart::Budget),
        "bant.authority" => Field::Bant(BantPart::Authority),
        "bant.need" => Field::Bant(BantPart::Need),
        "bant.timeline" => Field::Bant(BantPart::Timeline),
        _ => {
            if let Some(custom) = name.strip_prefix("custom.") {
                if !valid_custom_name(custom) {
                    return Err(UnknownField {
                        message: format!("`{name}`: custom field names use letters, digits, `_` and `-`"),
                        suggestion: None,
                    });
                }
                Field::Custom(custom.into())
            } else if let Some(event) = name.strip_prefix("events.") {
                match scope.events.slot(event) {
                    Some(slot) => Field::Events(slot),
                    None => {
                        return Err(UnknownField {
                            message: format!(
                                "unknown event type `{event}`; declare it under `engagement` in scoring.yaml (0 points is fine)"
                            ),
                            suggestion: suggest(event, scope.events.names().iter().map(String::as_str))
                                .map(|s| format!("events.{s}")),
                        });
                    }
                }
            } else if let Some(p) = ProfileField::from_name(name) {
                Field::Text(p)
            } else {
                let mut known: Vec<String> = FIXED_FIELDS.iter().map(|s| (*s).to_owned()).collect();
                known.extend(scope.events.names().iter().map(|e| format!("events.{e}")));
                return Err(UnknownField {
                    message: format!("unknown field `{name}`"),
                    suggestion: suggest(name, known.iter().map(String::as_str)),
                });
            }
        }
    };
    if !scope.score_known && matches!(field, Field::Score | Field::Tier) {
        return Err(UnknownField {
            message: format!("fit rules compute the score, so they cannot read `{name}`"),
            suggestion: None,
        });
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary(names: &[&str]) -> EventVocabulary {
        let mut v = EventVocabulary::default();
        for name in names {
            v.declare(name);
        }
        v
    }

    #[test]
    fn counts_are_kept_by_slot_and_unknown_types_by_name() {
        let v = vocabulary(&["demo_request", "email_open"]);
        let mut counts = EventCounts::new(&v);
        counts.set("email_open", 3);
        counts.set("chat_started", 2);
        counts.set("email_open", 4);
        assert_eq!(counts.by_slot(), [0, 4]);
        assert_eq!(counts.count("email_open"), 4);
        assert_eq!(counts.count("chat_started"), 2);
        assert_eq!(counts.count("demo_request"), 0);
        assert_eq!(counts.iter().collect::<Vec<_>>(), [("email_open", 4), ("chat_started", 2)]);
        let mut scratch = vec![9; 7];
        assert_eq!(counts.slots_of(&v, &mut scratch), [0, 4]);
        assert_eq!(scratch, [9; 7], "the same vocabulary is read in place");
    }

    /// Counts made with one rule set's event types, read by another's (as
    /// `rules diff` reads a line once for both): every type lands in the
    /// other's slot, including the ones only the other knows.
    #[test]
    fn counts_are_read_by_another_vocabulary_by_name() {
        let base = vocabulary(&["demo_request", "email_open"]);
        let head = vocabulary(&["trial_signup", "email_open", "demo_request", "webinar_attended"]);
        let mut counts = EventCounts::new(&base);
        counts.set("demo_request", 1);
        counts.set("email_open", 5);
        counts.set("trial_signup", 2);
        let mut scratch = Vec::new();
        assert_eq!(counts.slots_of(&head, &mut scratch), [2, 5, 1, 0]);
        let mut again = EventCounts::new(&head);
        for (name, n) in counts.iter() {
            again.set(name, n);
        }
        assert_eq!(again, counts, "equal counts are equal whatever vocabulary they were made with");
        assert_eq!(again.slots_of(&base, &mut scratch), [1, 5]);
        // An equal vocabulary built apart is read in place too.
        let twin = vocabulary(&["demo_request", "email_open"]);
        assert_eq!(counts.slots_of(&twin, &mut Vec::new()), [1, 5]);
        let mut fewer = counts.clone();
        fewer.set("trial_signup", 0);
        assert_ne!(fewer, counts);
    }
}
