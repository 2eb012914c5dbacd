//! A lead as rule tests, `rules explain` and `rules replay` give it: lead fields,
//! plus optional event counts and idle days.
//!
//! Two shapes are accepted: `{lead: {...}, events: {...}, idle_days: N}` (as in
//! a rule test) and the flat `{email: ..., country: ..., events: {...}, idle_days: N}`.
//! Besides the lead fields, the lead may give `status` and `bant`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use super::RuleSet;
use super::diag::suggest;
use super::field::{EventCounts, EventVocabulary};
use crate::lead::{Bant, Email, FieldTarget, Profile, ProfileField, Status};

/// One lead to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadInput {
    pub profile: Profile,
    /// Counted against the event types of the rules that read the lead.
    pub events: EventCounts,
    pub idle_days: u32,
    pub status: Status,
    pub bant: Bant,
}

/// Everything wrong with one lead input.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{}", .0.join("; "))]
pub struct InputError(pub Vec<String>);

/// How strictly event types are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTypes {
    /// An event type the rules do not know is an error (rule tests, explain).
    Known,
    /// Unknown event types are ignored; they score nothing (replay of history).
    Any,
}

/// A JSON scalar as text (what a lead field or a form value holds).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl RuleSet {
    /// Reads one lead input against these rules, from JSON already parsed.
    pub fn lead_input(&self, value: &Value, event_types: EventTypes) -> Result<LeadInput, InputError> {
        let seed = LeadSeed { vocabulary: &self.events, types: event_types };
        match seed.deserialize(value) {
            Ok(read) => read.input,
            Err(e) => Err(InputError(vec![e.to_string()])),
        }
    }
}

/// One line of a leads file (`rules replay`, `rules diff`): the lead, or
/// everything wrong with it, and its `id` when it has one.
#[derive(Debug)]
pub struct LeadLine {
    pub id: Option<String>,
    pub input: Result<LeadInput, InputError>,
}

/// Reads one lead from JSON text straight into a [`LeadInput`], with no
/// intermediate JSON tree: text fields are borrowed from the line unless they
/// hold escapes, and events are counted by slot of `vocabulary` as they are
/// read. Event types outside it are errors with [`EventTypes::Known`]; with
/// [`EventTypes::Any`] they are kept by name and score nothing.
pub fn read_lead(json: &str, vocabulary: &EventVocabulary, types: EventTypes) -> LeadLine {
    let mut de = serde_json::Deserializer::from_str(json);
    let read = LeadSeed { vocabulary, types }.deserialize(&mut de).and_then(|read| de.end().map(|()| read));
    match read {
        Ok(read) => LeadLine { id: read.id, input: read.input },
        Err(e) => LeadLine { id: None, input: Err(InputError(vec![e.to_string()])) },
    }
}

/// Keys of the nested shape that decide nothing: a rule test's `name` and
/// `expect`, and what `leadflow leads export` adds.
const NESTED_EXTRAS: [&str; 5] = ["name", "expect", "id", "stored", "history"];

/// What a lead's input reads to, before the shape is known.
struct Read {
    id: Option<String>,
    input: Result<LeadInput, InputError>,
}

/// An error, filed so that errors read in the same order whatever order the
/// keys came in: the shape first, then the email, the fields by name, the
/// events by type and `idle_days`.
type Filed = ((u8, String), String);

/// The fields of a lead as they are read: the profile (with no email until
/// the real one is known), status, BANT and the errors so far.
struct Fields {
    email: Option<Result<Email, String>>,
    profile: Profile,
    status: Status,
    bant: Bant,
    errors: Vec<Filed>,
}

impl Fields {
    fn new() -> Self {
        Fields {
            email: None,
            profile: Profile::new(Email::pending()),
            status: Status::Nurturing,
            bant: Bant::default(),
            errors: Vec::new(),
        }
    }

    fn error(&mut self, key: &str, message: String) {
        self.errors.push(((2, key.to_owned()), message));
    }

    /// Reads the value of the lead field `key`.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "email" => {
                let value = map.next_value::<Scalar<'de>>()?;
                self.email = value.text().map(|text| Email::parse(&text).map_err(|e| e.to_string()));
            }
            "status" => {
                let value = map.next_value::<Scalar<'de>>()?;
                match value.as_str().map(str::parse::<Status>) {
                    Some(Ok(status)) => self.status = status,
                    _ => self.error(key, format!("`status`: {} is not a status", value.describe())),
                }
            }
            "bant" => match map.next_value::<Entries<'de>>()?.0 {
                Some(parts) => {
                    for (part, value) in parts {
                        let slot = match &*part {
                            "budget" => &mut self.bant.budget,
                            "authority" => &mut self.bant.authority,
                            "need" => &mut self.bant.need,
                            "timeline" => &mut self.bant.timeline,
                            _ => continue,
                        };
                        match value {
                            Scalar::Bool(b) => *slot = Some(b),
                            Scalar::Null => *slot = None,
                            _ => self.error(key, format!("`bant.{part}` must be true, false or null")),
                        }
                    }
                }
                None => self.error(key, "`bant` must be a map of budget, authority, need, timeline".to_owned()),
            },
            name => match FieldTarget::parse(name) {
                Some(target) => match map.next_value::<Scalar<'de>>()? {
                    Scalar::Null => {}
                    ref value => match value.text() {
                        Some(text) => {
                            if let Err(e) = self.profile.set(&target, &text) {
                                self.error(key, format!("`{name}`: {e}"));
                            }
                        }
                        None => self.error(key, format!("`{name}` must be a single value")),
                    },
                },
                None => {
                    map.next_value::<IgnoredAny>()?;
                    self.error(key, unknown_field(name));
                }
            },
        }
        Ok(())
    }

    /// The lead these fields make, with `errors` (the shape's, the events'
    /// and `idle_days`') and their own.
    fn finish(mut self, mut errors: Vec<Filed>, events: EventCounts, idle_days: u32) -> Read {
        match self.email {
            Some(Ok(email)) => self.profile.email = email,
            Some(Err(e)) => errors.push(((1, String::new()), e)),
            None => errors.push(((1, String::new()), "the lead needs an `email`".to_owned())),
        }
        errors.append(&mut self.errors);
        if errors.is_empty() {
            return Read {
                id: None,
                input: Ok(LeadInput { profile: self.profile, events, idle_days, status: self.status, bant: self.bant }),
            };
        }
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        Read { id: None, input: Err(InputError(errors.into_iter().map(|(_, m)| m).collect())) }
    }
}

fn unknown_field(name: &str) -> String {
    let mut known: Vec<&str> = ProfileField::ALL.iter().map(|f| f.name()).collect();
    known.extend(["status", "bant"]);
    let hint = suggest(name, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
    format!("unknown lead field `{name}`{hint}; use `custom.{name}` for a field of your own")
}

/// A JSON value where a lead field is expected: scalars as they are, maps and
/// lists skipped over and only named.
enum Scalar<'de> {
    Str(Cow<'de, str>),
    /// A whole number of zero or more.
    Uint(u64),
    /// Any other number, as JSON writes it.
    Text(String),
    Bool(bool),
    Null,
    Compound(&'static str),
}

impl Scalar<'_> {
    /// The text of a scalar (what a lead field or a form value holds).
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Scalar::Str(s) => Some(Cow::Borrowed(s)),
            Scalar::Uint(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Text(t) => Some(Cow::Borrowed(t)),
            Scalar::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Scalar::Null | Scalar::Compound(_) => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a message shows it.
    fn describe(&self) -> String {
        match self {
            Scalar::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            Scalar::Uint(n) => n.to_string(),
            Scalar::Text(t) => t.clone(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".to_owned(),
            Scalar::Compound(what) => (*what).to_owned(),
        }
    }

    /// A whole number of zero or more that fits 32 bits.
    fn count(&self) -> Option<u32> {
        match self {
            Scalar::Uint(n) => u32::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Uint(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // As JSON writes it (`3.0`, `1e100`), like a parsed document's number.
        Ok(Scalar::Text(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound("a map"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound("a list"))
    }
}

/// Reads a lead in either shape.
struct LeadSeed<'r> {
    vocabulary: &'r EventVocabulary,
    types: EventTypes,
}

impl<'de> DeserializeSeed<'de> for LeadSeed<'_> {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LeadSeed<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a lead: a map of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        // Until a `lead` key shows the nested shape, other keys are read as
        // the flat shape's fields. Both are read in place.
        let mut flat = Fields::new();
        // Made when a `lead` key comes: a flat lead never needs one.
        let mut nested: Option<Fields> = None;
        let mut shape = Shape::Flat;
        // The flat shape's fields, named in an error if the shape is nested;
        // and which of `NESTED_EXTRAS` came, errors if it is flat.
        let mut flat_keys: Vec<Cow<'de, str>> = Vec::new();
        let mut extras = [false; NESTED_EXTRAS.len()];
        let mut errors: Vec<Filed> = Vec::new();
        let mut events = EventCounts::new(self.vocabulary);
        let mut idle_days = 0;
        let mut id = None;
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            match &*key {
                "lead" => {
                    // A repeated key: the last one counts.
                    let nested = nested.insert(Fields::new());
                    let is_map = map.next_value_seed(NestedSeed(nested))?.is_some();
                    shape = if is_map { Shape::Nested } else { Shape::NotAMap };
                }
                "events" => map.next_value_seed(EventsSeed(EventEntries {
                    lead: &self,
                    events: &mut events,
                    errors: &mut errors,
                }))?,
                "idle_days" => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    idle_days = match value {
                        Scalar::Null => 0,
                        v => v.count().unwrap_or_else(|| {
                            errors.push((
                                (4, String::new()),
                                "`idle_days` must be a whole number of zero or more".to_owned(),
                            ));
                            0
                        }),
                    }
                }
                extra if let Some(i) = NESTED_EXTRAS.iter().position(|e| *e == extra) => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    if extra == "id"
                        && let Scalar::Str(s) = value
                    {
                        id = Some(s.into_owned());
                    }
                    extras[i] = true;
                }
                name => {
                    flat.read(name, &mut map)?;
                    flat_keys.push(key);
                }
            }
        }
        let input = match shape {
            Shape::NotAMap => Err(InputError(vec!["`lead` must be a map of fields".to_owned()])),
            Shape::Nested => {
                for key in flat_keys {
                    let message = format!("unknown key `{key}`; expected lead, events, idle_days");
                    errors.push(((0, key.into_owned()), message));
                }
                nested.unwrap_or_else(Fields::new).finish(errors, events, idle_days).input
            }
            Shape::Flat => {
                for (key, _) in NESTED_EXTRAS.iter().zip(extras).filter(|(_, came)| *came) {
                    flat.error(key, unknown_field(key));
                }
                flat.finish(errors, events, idle_days).input
            }
        };
        Ok(Read { id, input })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_a_map())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Read, E> {
        Ok(not_a_map())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Read, E> {
        Ok(not_a_map())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Read, E> {
        Ok(not_a_map())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Read, E> {
        Ok(not_a_map())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Read, E> {
        Ok(not_a_map())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Read, E> {
        Ok(not_a_map())
    }
}

fn not_a_map() -> Read {
    Read { id: None, input: Err(InputError(vec!["a lead is a map of fields".to_owned()])) }
}

/// Which shape a lead has, as far as its keys have shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Flat,
    Nested,
    /// A `lead` key whose value is not a map.
    NotAMap,
}

/// Reads `events` (a map of event type to count, or null) into the lead's
/// counts as its entries come, filing what is wrong with them.
struct EventsSeed<'s, 'r>(EventEntries<'s, 'r>);

impl<'de> DeserializeSeed<'de> for EventsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of event type to count")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let EventEntries { lead, events, errors } = self.0;
        if d.deserialize_any(Lenient(EventEntries { lead, events, errors: &mut *errors }))?.is_none() {
            errors.push(((3, String::new()), "`events` must be a map of event type to count".to_owned()));
        }
        Ok(())
    }
}

/// The entries of `events`, counted as they come.
struct EventEntries<'s, 'r> {
    lead: &'s LeadSeed<'r>,
    events: &'s mut EventCounts,
    errors: &'s mut Vec<Filed>,
}

impl<'de> Visitor<'de> for EventEntries<'_, '_> {
    type Value = Option<()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of event type to count")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let Some(n) = map.next_value::<Scalar<'de>>()?.count() else {
                let message = format!("`events.{name}` must be a whole number of zero or more");
                self.errors.push(((3, name.into_owned()), message));
                continue;
            };
            let vocabulary = self.lead.vocabulary;
            if self.lead.types == EventTypes::Known && vocabulary.slot(&name).is_none() {
                let hint = suggest(&name, vocabulary.names().iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.errors.push(((3, name.to_string()), format!("unknown event type `{name}`{hint}")));
                continue;
            }
            self.events.set(&name, n);
        }
        Ok(Some(()))
    }
}

/// Reads the value of `lead` into the fields given: `None` when it is not a map.
struct NestedSeed<'f>(&'f mut Fields);

impl<'de> DeserializeSeed<'de> for NestedSeed<'_> {
    type Value = Option<()>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<()>, D::Error> {
        d.deserialize_any(Lenient(self))
    }
}

impl<'de> Visitor<'de> for NestedSeed<'_> {
    type Value = Option<()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            self.0.read(&key, &mut map)?;
        }
        Ok(Some(()))
    }
}

/// The value of `bant`: its entries in order, `None` when it is
/// not a map; the caller checks them.
struct Entries<'de>(Option<Vec<(Cow<'de, str>, Scalar<'de>)>>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Lenient(EntriesVisitor)).map(Entries)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Option<Vec<(Cow<'de, str>, Scalar<'de>)>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((Name(name), value)) = map.next_entry::<Name<'de>, Scalar<'de>>()? {
            entries.push((name, value));
        }
        Ok(Some(entries))
    }
}

/// A map key, borrowed from the line unless it holds escapes (serde's own
/// `Cow` always copies).
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A visitor of maps that takes any other value too, skipping it, as `None`.
struct Lenient<V>(V);

impl<'de, T, V: Visitor<'de, Value = Option<T>>> Visitor<'de> for Lenient<V> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A stored lead as `leadflow leads export` writes it, one JSON line: the
/// inputs a decision needs in the shape [`RuleSet::lead_input`] reads (`lead`
/// with its profile, status and BANT; `events`; `idle_days` at `now`), its id,
/// and what was stored (`stored`: owner, pool, score, tier, version and times)
/// for a diff to compare with.
pub fn exported(lead: &crate::record::Lead, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut fields = serde_json::Map::new();
    for target in lead.profile.present_fields() {
        if let Some(text) = lead.profile.value_text(&target) {
            fields.insert(target.to_string(), Value::String(text));
        }
    }
    fields.insert("status".to_owned(), Value::String(lead.status.as_str().to_owned()));
    if lead.bant != Bant::default() {
        fields.insert("bant".to_owned(), serde_json::to_value(lead.bant).unwrap_or(Value::Null));
    }
    serde_json::json!({
        "id": lead.id.as_str(),
        "lead": fields,
        "events": lead.events,
        "idle_days": super::scoring::idle_days(lead.last_activity_at, now),
        "stored": {
            "owner": lead.owner,
            "pool": lead.pool,
            "score": lead.score,
            "tier": lead.tier,
            "version": lead.version,
            "created_at": lead.created_at,
            "updated_at": lead.updated_at,
            "last_activity_at": lead.last_activity_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn starter() -> RuleSet {
        RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")).expect("starter rules")
    }

    /// Reads `text` both ways: straight from the text, and from the parsed tree.
    fn both(rules: &RuleSet, text: &str, types: EventTypes) -> Result<LeadInput, InputError> {
        let direct = read_lead(text, &rules.events, types).input;
        let value: Value = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(direct, rules.lead_input(&value, types), "the two readers differ on {text}");
        direct
    }

    fn errors(rules: &RuleSet, text: &str) -> Vec<String> {
        both(rules, text, EventTypes::Known).expect_err(text).0
    }

    #[test]
    fn both_shapes_read_to_the_same_lead() {
        let rules = starter();
        let nested = both(
            &rules,
            r#"{"id":"L1","events":{"demo_request":2},"idle_days":3,"lead":{"email":"Jo@Acme.com","employees":250,
                "country":"de","job_title":"VP \"Sales\"","status":"working","bant":{"budget":true},"custom.seats":40}}"#,
            EventTypes::Known,
        )
        .expect("valid");
        let flat = both(
            &rules,
            r#"{"custom.seats":"40","bant":{"budget":true},"status":"working","job_title":"VP \"Sales\"",
                "country":"DE","employees":"250","email":"jo@acme.com","idle_days":3,"events":{"demo_request":2}}"#,
            EventTypes::Known,
        )
        .expect("valid");
        assert_eq!(nested, flat);
        assert_eq!(nested.profile.email.as_str(), "jo@acme.com");
        assert_eq!(nested.profile.job_title.as_deref(), Some("VP \"Sales\""));
        assert_eq!(nested.profile.employees, Some(250));
        assert_eq!(nested.status, Status::Working);
        assert_eq!(nested.bant.budget, Some(true));
        assert_eq!(nested.events.count("demo_request"), 2);
        assert_eq!(nested.idle_days, 3);
    }

    #[test]
    fn every_problem_is_reported_in_one_order_whatever_the_key_order() {
        let rules = starter();
        let a = errors(
            &rules,
            r#"{"zeta":1,"lead":{"status":"sleeping","email":"nope","employees":{"a":1},"countree":"US"},
                "events":{"demo_requset":1,"email_open":-1},"idle_days":1.5,"alpha":[1]}"#,
        );
        let b = errors(
            &rules,
            r#"{"idle_days":1.5,"alpha":[1],"events":{"email_open":-1,"demo_requset":1},
                "lead":{"countree":"US","employees":{"a":1},"email":"nope","status":"sleeping"},"zeta":1}"#,
        );
        assert_eq!(a, b);
        let expected = [
            "unknown key `alpha`; expected lead, events, idle_days",
            "unknown key `zeta`; expected lead, events, idle_days",
            "not a valid email",
            "unknown lead field `countree` (did you mean `country`?)",
            "`employees` must be a single value",
            "`status`: \"sleeping\" is not a status",
            "unknown event type `demo_requset` (did you mean `demo_request`?)",
            "`events.email_open` must be a whole number of zero or more",
            "`idle_days` must be a whole number of zero or more",
        ];
        assert_eq!(a.len(), expected.len(), "{a:#?}");
        for (got, want) in a.iter().zip(expected) {
            assert!(got.contains(want), "{got:?} should say {want:?}");
        }
    }

    #[test]
    fn malformed_leads_are_errors() {
        let rules = starter();
        for (text, want) in [
            ("[1, 2]", "a lead is a map of fields"),
            ("\"jo@acme.com\"", "a lead is a map of fields"),
            ("null", "a lead is a map of fields"),
            (r#"{"lead": "jo@acme.com"}"#, "`lead` must be a map of fields"),
            (r#"{"lead": null}"#, "`lead` must be a map of fields"),
            (r#"{"country": "US"}"#, "the lead needs an `email`"),
            (r#"{"email": null}"#, "the lead needs an `email`"),
            (r#"{"email": "jo@acme.com", "events": [1]}"#, "`events` must be a map of event type to count"),
            (r#"{"email": "jo@acme.com", "events": {"email_open": 4294967296}}"#, "`events.email_open` must be"),
            (r#"{"email": "jo@acme.com", "events": {"email_open": "3"}}"#, "`events.email_open` must be"),
            (r#"{"email": "jo@acme.com", "bant": {"budget": "yes"}}"#, "`bant.budget` must be true, false or null"),
            (r#"{"email": "jo@acme.com", "bant": [true]}"#, "`bant` must be a map"),
            (r#"{"email": "jo@acme.com", "id": "L1"}"#, "unknown lead field `id`"),
        ] {
            let got = both(&rules, text, EventTypes::Any).expect_err(text).to_string();
            assert!(got.contains(want), "{text}: {got:?} should say {want:?}");
        }
        for text in ["", "{", r#"{"email": "jo@acme.com"} trailing"#, r#"{"email": "jo@acme.com""#, "\u{0}"] {
            let line = read_lead(text, &EventVocabulary::default(), EventTypes::Any);
            assert!(line.input.is_err(), "{text:?} read as a lead");
        }
    }

    /// Values the reader skips over (maps and lists where a field is
    /// expected, what an export adds) are skipped without recursion, however
    /// deep: a hostile line cannot overflow the stack, and a deep value where a
    /// field is expected is that field's error.
    #[test]
    fn deeply_nested_values_are_skipped_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for (text, want) in [
            (format!(r#"{{"email": "jo@acme.com", "company": {deep}}}"#), "`company` must be a single value"),
            (
                format!(r#"{{"email": "jo@acme.com", "events": {{"email_open": {deep}}}}}"#),
                "`events.email_open` must be",
            ),
            (format!(r#"{{"email": "jo@acme.com", "bant": {{"need": {deep}}}}}"#), "`bant.need` must be"),
        ] {
            let got = read_lead(&text, &EventVocabulary::default(), EventTypes::Any)
                .input
                .expect_err("a nested value is not a field")
                .to_string();
            assert!(got.contains(want), "{got:?} should say {want:?}");
        }
        let stored = format!(r#"{{"stored": {deep}, "lead": {{"email": "jo@acme.com"}}}}"#);
        assert!(
            read_lead(&stored, &EventVocabulary::default(), EventTypes::Any).input.is_ok(),
            "what an export adds decides nothing"
        );
        let unclosed = format!(r#"{{"stored": {}, "lead": {{"email": "jo@acme.com"}}}}"#, "[".repeat(100_000));
        assert!(read_lead(&unclosed, &EventVocabulary::default(), EventTypes::Any).input.is_err());
    }

    #[test]
    fn history_keeps_unknown_event_types_and_the_id() {
        let rules = starter();
        let text = r#"{"id":"L7","stored":{"score":3},"history":[{"at":1}],"lead":{"email":"jo@acme.com","source":null},
                      "events":{"chat_started":2,"demo_request":null}}"#;
        let line = read_lead(text, &EventVocabulary::default(), EventTypes::Any);
        assert_eq!(line.id.as_deref(), Some("L7"));
        let errors = line.input.expect_err("a null count is not a count").0;
        assert_eq!(errors, ["`events.demo_request` must be a whole number of zero or more"]);
        let text = text.replace(",\"demo_request\":null", "");
        let input = both(&rules, &text, EventTypes::Any).expect("valid");
        assert_eq!(input.events.count("chat_started"), 2);
        assert!(both(&rules, &text, EventTypes::Known).is_err());
    }
}
