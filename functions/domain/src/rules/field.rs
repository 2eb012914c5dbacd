//! The fields a rule can read, resolved once at load into typed accessors over
//! [`Facts`].

use crate::lead::{Bant, ProfileField, Status, valid_custom_name};

use super::diag::suggest;
use super::text::KeyedList;

/// What the rule engine sees of one lead while deciding about it.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub profile: &'a crate::lead::Profile,
    /// Whether the email domain is one of `capture.yaml` `free_email_domains`.
    pub free_email: bool,
    /// Event counts by the rule set's event slot (see [`super::RuleSet::event_slots`]).
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
pub struct EventVocabulary {
    /// By slot.
    names: Vec<String>,
    /// The same names, for lookups.
    keyed: KeyedList,
}

impl EventVocabulary {
    pub fn declare(&mut self, name: &str) -> u16 {
        let slot = self.keyed.insert(name);
        if slot == self.names.len() {
            self.names.push(name.to_owned());
        }
        u16::try_from(slot).unwrap_or(u16::MAX)
    }

    /// One hash of the name and one comparison.
    #[inline]
    pub fn slot(&self, name: &str) -> Option<u16> {
        self.keyed.position(name).and_then(|i| u16::try_from(i).ok())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

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
