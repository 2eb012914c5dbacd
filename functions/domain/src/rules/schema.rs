//! The shape of each rule file: its sections, their keys and the kinds of
//! their values. The loader takes every section's keys from here (an unknown
//! key is refused with a suggestion from these), and `leadflow rules schema`
//! writes the same definitions as a JSON Schema for editors
//! (`# yaml-language-server: $schema=...` at the top of each starter file).
//! The loader checks more than a schema can say (that a rep named in a pool
//! exists, that a regex compiles, that tiers are in order); the schema is what
//! an editor can check as one types.

use serde_json::{Map, Value, json};

use super::condition::OPERATORS;
use crate::formats::Format;

/// The kind of a value.
#[derive(Debug)]
pub enum Ty {
    Text,
    /// A whole number, at least this.
    Int(i64),
    Number,
    Bool,
    /// `30s`, `15m`, `4h`, `2d`.
    Duration,
    /// `2026-12-24`.
    Date,
    /// One of these words.
    Word(&'static [&'static str]),
    /// One of these words, or a list of them.
    Words(&'static [&'static str]),
    List(&'static Ty),
    /// One value or a list of them.
    OneOrList(&'static Ty),
    /// Any names, each with a value of this kind.
    Map(&'static Ty),
    Section(&'static Section),
    /// A condition (`when:`).
    Condition,
    /// Either kind.
    Either(&'static Ty, &'static Ty),
}

/// A map with these keys.
#[derive(Debug)]
pub struct Section {
    pub keys: &'static [(&'static str, Ty)],
    pub required: &'static [&'static str],
}

impl Section {
    /// The keys the section takes.
    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|(k, _)| *k).collect()
    }
}

const STATUSES: &[&str] =
    &["nurturing", "unassigned", "assigned", "working", "qualified", "converted", "disqualified", "dormant"];

// capture.yaml
pub static CAPTURE: Section = Section {
    keys: &[
        ("required", Ty::List(&Ty::Text)),
        ("honeypot", Ty::OneOrList(&Ty::Text)),
        ("free_email_domains", Ty::List(&Ty::Text)),
        ("sources", Ty::Map(&Ty::Section(&SOURCE))),
        ("employee_bands", Ty::Word(&["lower", "upper", "midpoint"])),
        ("limits", Ty::Section(&CAPTURE_LIMITS)),
        ("merge", Ty::Section(&MERGE)),
    ],
    required: &[],
};
pub static SOURCE: Section = Section {
    keys: &[
        ("format", Ty::Word(&FORMATS)),
        ("fields", Ty::Map(&Ty::Text)),
        ("custom_fields", Ty::Bool),
        ("auth", Ty::Section(&AUTH)),
        ("events", Ty::Section(&SOURCE_EVENTS)),
    ],
    required: &[],
};
const FORMATS: [&str; 12] = {
    let mut names = [""; 12];
    let mut i = 0;
    while i < 12 {
        names[i] = Format::ALL[i].0;
        i += 1;
    }
    names
};
pub static AUTH: Section = Section {
    keys: &[
        ("header", Ty::Text),
        ("basic", Ty::Bool),
        ("query", Ty::Text),
        ("signature", Ty::Word(&super::capture::SIGNATURES)),
        ("secret", Ty::Text),
    ],
    required: &["secret"],
};
pub static SOURCE_EVENTS: Section = Section {
    keys: &[
        ("email", Ty::Text),
        ("type", Ty::Text),
        ("type_is", Ty::Text),
        ("types", Ty::Map(&Ty::Text)),
        ("id", Ty::Text),
        ("at", Ty::Text),
    ],
    required: &["email"],
};
pub static CAPTURE_LIMITS: Section = Section {
    keys: &[("fields_per_post", Ty::Int(1)), ("custom_fields", Ty::Int(0)), ("value_chars", Ty::Int(1))],
    required: &[],
};
pub static MERGE: Section = Section {
    keys: &[("keep_first", Ty::List(&Ty::Text)), ("default", Ty::Word(&["overwrite_if_present", "keep_first"]))],
    required: &[],
};

// scoring.yaml
pub static SCORING: Section = Section {
    keys: &[
        ("fit", Ty::List(&Ty::Section(&FIT_RULE))),
        ("engagement", Ty::Map(&Ty::Either(&Ty::Int(i64::MIN), &Ty::Section(&ENGAGEMENT)))),
        ("limits", Ty::Section(&SCORE_LIMITS)),
        ("decay", Ty::Section(&DECAY)),
        ("tiers", Ty::Map(&Ty::Int(i64::MIN))),
        ("handoff", Ty::Text),
    ],
    required: &["tiers", "handoff"],
};
pub static FIT_RULE: Section = Section {
    keys: &[("name", Ty::Text), ("when", Ty::Condition), ("points", Ty::Int(i64::MIN))],
    required: &["name", "points"],
};
pub static ENGAGEMENT: Section =
    Section { keys: &[("points", Ty::Int(i64::MIN)), ("max_points", Ty::Int(0))], required: &["points"] };
pub static SCORE_LIMITS: Section = Section {
    keys: &[("fit", Ty::Section(&BOUNDS)), ("engagement", Ty::Section(&BOUNDS)), ("total", Ty::Section(&BOUNDS))],
    required: &[],
};
pub static BOUNDS: Section = Section { keys: &[("min", Ty::Int(i64::MIN)), ("max", Ty::Int(i64::MIN))], required: &[] };
pub static DECAY: Section =
    Section { keys: &[("after_days", Ty::Int(0)), ("percent_per_week", Ty::Number)], required: &[] };

// lifecycle.yaml
pub static LIFECYCLE: Section = Section {
    keys: &[
        ("qualification", Ty::Section(&QUALIFICATION)),
        ("disqualify_reasons", Ty::List(&Ty::Text)),
        ("dormancy", Ty::Section(&DORMANCY)),
        ("reactivation", Ty::Section(&REACTIVATION)),
        ("retention", Ty::Section(&RETENTION)),
    ],
    required: &[],
};
pub static QUALIFICATION: Section =
    Section { keys: &[("framework", Ty::Word(&["bant"])), ("required", Ty::Int(1))], required: &[] };
pub static DORMANCY: Section = Section {
    keys: &[
        ("after_days_idle", Ty::Int(1)),
        ("after_unanswered", Ty::Int(1)),
        ("statuses", Ty::List(&Ty::Word(STATUSES))),
    ],
    required: &[],
};
pub static REACTIVATION: Section = Section {
    keys: &[("events", Ty::List(&Ty::Text)), ("action", Ty::Word(&["notify_owner", "reroute"]))],
    required: &[],
};
pub static RETENTION: Section = Section { keys: &[("disqualified_days", Ty::Int(1))], required: &[] };

// routing.yaml
pub static ROUTING: Section = Section {
    keys: &[
        ("reps", Ty::List(&Ty::Section(&REP))),
        ("pools", Ty::Map(&Ty::Section(&POOL))),
        ("rules", Ty::List(&Ty::Section(&ROUTE_RULE))),
        ("default", Ty::Section(&TARGET)),
        ("sticky", Ty::Bool),
        ("account_match", Ty::Bool),
    ],
    required: &["reps", "default"],
};
pub static REP: Section = Section {
    keys: &[
        ("id", Ty::Text),
        ("name", Ty::Text),
        ("email", Ty::Text),
        ("phone", Ty::Text),
        ("capacity", Ty::Int(0)),
        ("manager", Ty::Text),
        ("active", Ty::Bool),
        ("away", Ty::List(&Ty::Section(&AWAY))),
    ],
    required: &["id", "name", "email"],
};
pub static AWAY: Section = Section { keys: &[("from", Ty::Date), ("to", Ty::Date)], required: &["from", "to"] };
pub static POOL: Section = Section {
    keys: &[
        ("members", Ty::Either(&Ty::List(&Ty::Text), &Ty::Map(&Ty::Int(1)))),
        ("strategy", Ty::Word(&["round_robin", "weighted", "least_loaded"])),
        ("overflow", Ty::Text),
    ],
    required: &["members"],
};
pub static ROUTE_RULE: Section = Section {
    keys: &[("name", Ty::Text), ("when", Ty::Condition), ("to", Ty::Section(&TARGET))],
    required: &["name", "to"],
};
pub static TARGET: Section =
    Section { keys: &[("pool", Ty::Text), ("rep", Ty::Text), ("fallback", Ty::Text)], required: &[] };

// sla.yaml
pub static SLA: Section = Section {
    keys: &[
        ("first_response", Ty::Map(&Ty::Duration)),
        ("business_hours", Ty::Section(&BUSINESS_HOURS)),
        ("escalation", Ty::List(&Ty::Section(&ESCALATION_STEP))),
        ("unassigned", Ty::Section(&UNASSIGNED)),
    ],
    required: &[],
};
pub static BUSINESS_HOURS: Section = Section {
    keys: &[
        ("timezone", Ty::Text),
        ("days", Ty::List(&Ty::Word(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))),
        ("hours", Ty::Text),
    ],
    required: &["timezone"],
};
pub static ESCALATION_STEP: Section = Section {
    keys: &[("after", Ty::Duration), ("notify", Ty::Words(&["owner", "manager"])), ("reassign", Ty::Bool)],
    required: &["after"],
};
pub static UNASSIGNED: Section = Section { keys: &[("remind_every", Ty::Duration)], required: &[] };

/// The files and their top sections.
pub const FILES: [(&str, &Section); 5] = [
    ("capture.yaml", &CAPTURE),
    ("scoring.yaml", &SCORING),
    ("lifecycle.yaml", &LIFECYCLE),
    ("routing.yaml", &ROUTING),
    ("sla.yaml", &SLA),
];

/// The JSON Schema (draft 2020-12) of one rule file.
pub fn json_schema(file: &str) -> Option<Value> {
    let (_, section) = FILES.iter().find(|(f, _)| *f == file)?;
    let mut schema = section_schema(section);
    let object = schema.as_object_mut()?;
    object.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    object.insert("title".into(), json!(format!("leadflow {file}")));
    object.insert("$defs".into(), json!({ "condition": condition_schema() }));
    Some(schema)
}

fn section_schema(section: &Section) -> Value {
    let mut properties = Map::new();
    for (key, ty) in section.keys {
        properties.insert((*key).to_owned(), ty_schema(ty));
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": section.required,
        "additionalProperties": false,
    })
}

fn ty_schema(ty: &Ty) -> Value {
    match ty {
        Ty::Text => json!({ "type": "string" }),
        Ty::Int(min) if *min == i64::MIN => json!({ "type": "integer" }),
        Ty::Int(min) => json!({ "type": "integer", "minimum": min }),
        Ty::Number => json!({ "type": "number" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Duration => json!({ "type": "string", "pattern": "^\\s*[0-9]+(s|m|h|d)\\s*$" }),
        Ty::Date => json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" }),
        Ty::Word(words) => json!({ "enum": words }),
        Ty::Words(words) => json!({ "anyOf": [{ "enum": words }, { "type": "array", "items": { "enum": words } }] }),
        Ty::List(item) => json!({ "type": "array", "items": ty_schema(item) }),
        Ty::OneOrList(item) => json!({ "anyOf": [ty_schema(item), { "type": "array", "items": ty_schema(item) }] }),
        Ty::Map(value) => json!({ "type": "object", "additionalProperties": ty_schema(value) }),
        Ty::Section(section) => section_schema(section),
        Ty::Condition => json!({ "$ref": "#/$defs/condition" }),
        Ty::Either(a, b) => json!({ "anyOf": [ty_schema(a), ty_schema(b)] }),
    }
}

/// A condition: `all`/`any` lists, `not`, and fields with a value, a list, or
/// a map of operators.
fn condition_schema() -> Value {
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let operand = json!({ "anyOf": [scalar, { "type": "array", "items": scalar }] });
    let mut operators = Map::new();
    for op in OPERATORS {
        operators.insert((*op).to_owned(), operand.clone());
    }
    json!({
        "anyOf": [
            { "type": "null" },
            {
                "type": "object",
                "properties": {
                    "all": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/condition" } },
                    "any": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/condition" } },
                    "not": { "$ref": "#/$defs/condition" },
                },
                "additionalProperties": {
                    "anyOf": [
                        scalar,
                        { "type": "array", "minItems": 1, "items": scalar },
                        { "type": "object", "minProperties": 1, "properties": operators, "additionalProperties": false },
                    ]
                },
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Status;

    #[test]
    fn every_file_has_a_schema_of_objects_that_refuse_unknown_keys() {
        for (file, _) in FILES {
            let schema = json_schema(file).expect("a schema");
            assert_eq!(schema["additionalProperties"], json!(false), "{file}");
            assert!(schema["$defs"]["condition"].is_object());
        }
        assert!(json_schema("other.yaml").is_none());
        // Every status word is a status.
        for s in STATUSES {
            assert!(s.parse::<Status>().is_ok(), "{s}");
        }
    }
}
