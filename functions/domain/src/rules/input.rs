//! A lead as rule tests, `rules explain` and `rules replay` give it: lead fields,
//! plus optional event counts and idle days.
//!
//! Two shapes are accepted: `{lead: {...}, events: {...}, idle_days: N}` (as in
//! a rule test) and the flat `{email: ..., country: ..., events: {...}, idle_days: N}`.
//! Besides the lead fields, the lead may give `status` and `bant`.

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use super::RuleSet;
use super::diag::suggest;
use crate::lead::{Bant, Email, FieldTarget, Profile, ProfileField, Status};

/// One lead to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadInput {
    pub profile: Profile,
    pub events: BTreeMap<String, u32>,
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
    /// Parses one lead input against these rules.
    pub fn lead_input(&self, value: &Value, event_types: EventTypes) -> Result<LeadInput, InputError> {
        let mut errors = Vec::new();
        let Some(top) = value.as_object() else {
            return Err(InputError(vec!["a lead is a map of fields".to_owned()]));
        };
        let (lead, nested) = match top.get("lead") {
            Some(Value::Object(lead)) => (lead, true),
            Some(_) => return Err(InputError(vec!["`lead` must be a map of fields".to_owned()])),
            None => (top, false),
        };
        if nested {
            for key in top.keys() {
                // `id`, `stored` and `history` are what `leadflow leads export` adds; they decide nothing.
                if !matches!(
                    key.as_str(),
                    "lead" | "events" | "idle_days" | "name" | "expect" | "id" | "stored" | "history"
                ) {
                    errors.push(format!("unknown key `{key}`; expected lead, events, idle_days"));
                }
            }
        }

        let email = match lead.get("email").and_then(scalar_text) {
            Some(e) => Email::parse(&e).map_err(|e| errors.push(e.to_string())).ok(),
            None => {
                errors.push("the lead needs an `email`".to_owned());
                None
            }
        };
        // Without a valid email the other fields are still checked, on a stand-in.
        let mut profile = Profile::new(email.unwrap_or_else(Email::stand_in));
        let mut status = Status::Nurturing;
        let mut bant = Bant::default();
        for (key, v) in lead {
            match key.as_str() {
                "email" => {}
                "events" | "idle_days" if !nested => {}
                "status" => match v.as_str().map(str::parse::<Status>) {
                    Some(Ok(s)) => status = s,
                    _ => errors.push(format!("`status`: {} is not a status", v)),
                },
                "bant" => match serde_json::from_value::<Bant>(v.clone()) {
                    Ok(b) => bant = b,
                    Err(e) => errors.push(format!("`bant`: {e}")),
                },
                name => match FieldTarget::parse(name) {
                    Some(target) => {
                        if v.is_null() {
                            continue;
                        }
                        match scalar_text(v) {
                            Some(text) => {
                                if let Err(e) = profile.set(&target, &text) {
                                    errors.push(format!("`{name}`: {e}"));
                                }
                            }
                            None => errors.push(format!("`{name}` must be a single value")),
                        }
                    }
                    None => {
                        let mut known: Vec<&str> = ProfileField::ALL.iter().map(|f| f.name()).collect();
                        known.extend(["status", "bant"]);
                        let hint = suggest(name, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                        errors.push(format!(
                            "unknown lead field `{name}`{hint}; use `custom.{name}` for a field of your own"
                        ));
                    }
                },
            }
        }

        let mut events = BTreeMap::new();
        match top.get("events") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (name, count) in m {
                    let Some(n) = count.as_u64().and_then(|n| u32::try_from(n).ok()) else {
                        errors.push(format!("`events.{name}` must be a whole number of zero or more"));
                        continue;
                    };
                    if self.events.slot(name).is_none() && event_types == EventTypes::Known {
                        let hint = suggest(name, self.events.names().iter().map(String::as_str))
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        errors.push(format!("unknown event type `{name}`{hint}"));
                        continue;
                    }
                    events.insert(name.clone(), n);
                }
            }
            Some(_) => errors.push("`events` must be a map of event type to count".to_owned()),
        }
        let idle_days = match top.get("idle_days") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => n,
                None => {
                    errors.push("`idle_days` must be a whole number of zero or more".to_owned());
                    0
                }
            },
        };
        if errors.is_empty() {
            Ok(LeadInput { profile, events, idle_days, status, bant })
        } else {
            Err(InputError(errors))
        }
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
