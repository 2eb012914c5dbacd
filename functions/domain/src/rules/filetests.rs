//! Rule tests for the files besides scoring and routing: `capture` (a post to
//! the profile it gives), `sla` (a hand-off to its deadline and the time each
//! escalation step fires) and `lifecycle` (a sequence of sales events to the
//! statuses they lead to). They live in `rules/tests/*.yaml` beside the lead
//! cases; a case's kind is the key it has.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::RuleSet;
use super::diag::suggest;
use super::lifecycle::{DealOutcome, SalesEvent};
use super::testcases::{CaseOutcome, Mismatch};
use crate::form;
use crate::formats::{self, Body};
use crate::lead::{Bant, FieldTarget, Status};

/// A capture case: what a source's post becomes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureCase {
    pub name: String,
    pub capture: CaptureInput,
    #[serde(default)]
    pub expect: CaptureExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    /// A source of `capture.yaml`; none: fields by their own names.
    #[serde(default)]
    pub source: Option<String>,
    /// A form post's fields, in order, each value as written.
    #[serde(default)]
    pub fields: Option<Fields>,
    /// A JSON body, read by the source's format.
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureExpect {
    /// Lead fields and their values; every field named must hold exactly this.
    #[serde(default)]
    pub profile: BTreeMap<String, Option<String>>,
    /// Values kept as submitted, by field.
    #[serde(default)]
    pub raw: BTreeMap<String, String>,
    /// Exactly the fields warned about, in any order.
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// The post is refused (only ever for its email).
    #[serde(default)]
    pub refused: bool,
    /// A honeypot was filled: a bot's post, nothing stored.
    #[serde(default)]
    pub bot: bool,
}

/// An SLA case: a hand-off, its deadline and escalation times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaCase {
    pub name: String,
    pub sla: SlaInput,
    #[serde(default)]
    pub expect: SlaExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaInput {
    pub tier: String,
    /// When the lead was handed off (RFC 3339, any offset).
    pub handed_off_at: DateTime<FixedOffset>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaExpect {
    /// The first-response deadline; `null`: the tier has no SLA.
    #[serde(default, deserialize_with = "some")]
    pub deadline: Option<Option<DateTime<FixedOffset>>>,
    /// When each escalation step fires, in order.
    #[serde(default)]
    pub steps: Option<Vec<DateTime<FixedOffset>>>,
}

/// Form fields in the order written, every value as its text (`+4930123456`
/// stays that, not a number).
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of field names to single values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A lifecycle case: sales events applied in order from a status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleCase {
    pub name: String,
    pub lifecycle: LifecycleInput,
    #[serde(default)]
    pub expect: LifecycleExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleInput {
    /// The status before the first event (default `assigned`).
    #[serde(default)]
    pub from: Option<String>,
    /// Events: `contacted`, `{qualified: {budget: true, ...}}`, `{disqualified: reason}`.
    pub events: Vec<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleExpect {
    /// The status after each event; `refused` where the event is not allowed
    /// (the status then stays).
    #[serde(default)]
    pub statuses: Option<Vec<String>>,
}

fn outcome(file: &str, name: &str) -> CaseOutcome {
    CaseOutcome {
        file: file.to_owned(),
        name: name.to_owned(),
        errors: Vec::new(),
        mismatches: Vec::new(),
        explanation: None,
    }
}

fn mismatch(out: &mut CaseOutcome, what: &'static str, expected: String, actual: String) {
    if expected != actual {
        out.mismatches.push(Mismatch { what, expected, actual });
    }
}

/// A value as a failure shows it.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
}

fn yaml_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn run_capture(rules: &RuleSet, file: &str, case: CaptureCase) -> CaseOutcome {
    let mut out = outcome(file, &case.name);
    let capture = &rules.capture;
    let source = case.capture.source.as_deref();
    if let Some(s) = source
        && !capture.sources.contains_key(s)
    {
        let hint = suggest(s, capture.sources.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        out.errors.push(format!("capture.source: `{s}` is not a source of capture.yaml{hint}"));
        return out;
    }
    for field in case.expect.profile.keys() {
        if FieldTarget::parse(field).is_none() {
            out.errors.push(format!("expect.profile: `{field}` is not a lead field"));
        }
    }
    let body = match (&case.capture.fields, &case.capture.body) {
        (Some(fields), None) => Body::Pairs(fields.0.clone()),
        (None, Some(body)) => Body::Json(body.clone()),
        _ => {
            out.errors.push("capture: give `fields` (a form post) or `body` (a JSON body), one of them".to_owned());
            return out;
        }
    };
    if !out.errors.is_empty() {
        return out;
    }
    let format = source.and_then(|s| capture.sources.get(s)).map_or(formats::Format::Fields, |s| s.format);
    let posted = match formats::fields(format, body) {
        Ok(posted) => posted,
        Err(e) => {
            mismatch(&mut out, "read", "a body the source's format reads".to_owned(), e);
            return out;
        }
    };
    let e = &case.expect;
    let form = match form::read(capture, source, posted) {
        Ok(form) => form,
        Err(refused) => {
            let why = refused.errors.values().cloned().collect::<Vec<_>>().join("; ");
            mismatch(&mut out, "refused", e.refused.to_string(), format!("true ({why})"));
            if e.refused {
                out.mismatches.clear();
            }
            return out;
        }
    };
    mismatch(&mut out, "refused", e.refused.to_string(), "false".to_owned());
    mismatch(&mut out, "bot", e.bot.to_string(), form.honeypot.to_string());
    for (field, want) in &e.profile {
        let Some(target) = FieldTarget::parse(field) else { continue };
        let got = form.profile.value_text(&target);
        mismatch(
            &mut out,
            "profile",
            format!("{field}: {}", shown(want.as_deref())),
            format!("{field}: {}", shown(got.as_deref())),
        );
    }
    for (field, want) in &e.raw {
        let got = form.profile.raw.get(field);
        mismatch(
            &mut out,
            "raw",
            format!("{field}: {}", shown(Some(want))),
            format!("{field}: {}", shown(got.map(String::as_str))),
        );
    }
    if let Some(want) = &e.warnings {
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        let mut got: Vec<&str> = form.warnings.iter().map(|w| w.field.as_str()).collect();
        want.sort_unstable();
        got.sort_unstable();
        mismatch(&mut out, "warnings", format!("{want:?}"), format!("{got:?}"));
    }
    out
}

pub fn run_sla(rules: &RuleSet, file: &str, case: SlaCase) -> CaseOutcome {
    let mut out = outcome(file, &case.name);
    let Some(tier) = rules.scoring.tier_index(&case.sla.tier) else {
        let names = rules.scoring.tiers.iter().map(|t| t.name.as_str());
        let hint = suggest(&case.sla.tier, names).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        out.errors.push(format!("sla.tier: `{}` is not a tier of scoring.yaml{hint}", case.sla.tier));
        return out;
    };
    let at = case.sla.handed_off_at.with_timezone(&Utc);
    if !(2000..=2200).contains(&chrono::Datelike::year(&at)) {
        out.errors.push("sla.handed_off_at: a time from the year 2000 to 2200".to_owned());
        return out;
    }
    let deadline = rules.sla.deadline(tier, at);
    let show = |t: Option<DateTime<Utc>>| t.map_or("none".to_owned(), |t| t.to_rfc3339());
    if let Some(want) = case.expect.deadline {
        mismatch(&mut out, "deadline", show(want.map(|t| t.with_timezone(&Utc))), show(deadline));
    }
    if let Some(want) = &case.expect.steps {
        let got: Vec<String> = match deadline {
            Some(d) => (0..rules.sla.escalation.len()).map(|i| show(rules.sla.step_due(i, d))).collect(),
            None => Vec::new(),
        };
        let want: Vec<String> = want.iter().map(|t| show(Some(t.with_timezone(&Utc)))).collect();
        mismatch(&mut out, "steps", format!("{want:?}"), format!("{got:?}"));
    }
    out
}

fn sales_event(v: &serde_yaml::Value) -> Result<SalesEvent, String> {
    let (kind, arg) = match v {
        serde_yaml::Value::String(s) => (s.as_str(), None),
        serde_yaml::Value::Mapping(m) if m.len() == 1 => {
            let (k, a) = m.iter().next().ok_or("an empty event")?;
            (k.as_str().ok_or("an event is named by text")?, Some(a))
        }
        _ => return Err("an event is a name, or `{name: argument}`".to_owned()),
    };
    Ok(match (kind, arg) {
        ("contacted", None) => SalesEvent::Contacted,
        ("contact_attempt", None) => SalesEvent::ContactAttempt,
        ("converted", None) => SalesEvent::Converted,
        ("nurture", None) => SalesEvent::Nurture,
        ("qualified", None) => SalesEvent::Qualified(Bant::default()),
        ("qualified", Some(b)) => {
            SalesEvent::Qualified(serde_yaml::from_value::<Bant>(b.clone()).map_err(|e| format!("qualified: {e}"))?)
        }
        ("disqualified", Some(r)) => {
            SalesEvent::Disqualified { reason: yaml_text(r).ok_or("disqualified: the reason is text")? }
        }
        ("disqualified", None) => return Err("`disqualified` needs a reason: `{disqualified: REASON}`".to_owned()),
        ("outcome", Some(r)) => {
            let result = yaml_text(r).ok_or("outcome: won or lost")?;
            SalesEvent::Outcome(DealOutcome::parse(&result, None, None).map_err(|e| format!("outcome: {e}"))?)
        }
        ("outcome", None) => return Err("`outcome` needs a result: `{outcome: won}` or `{outcome: lost}`".to_owned()),
        (other, _) => {
            let known =
                ["contacted", "contact_attempt", "qualified", "converted", "outcome", "disqualified", "nurture"];
            let hint = suggest(other, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            return Err(format!("`{other}` is not a sales event{hint}"));
        }
    })
}

pub fn run_lifecycle(rules: &RuleSet, file: &str, case: LifecycleCase) -> CaseOutcome {
    let mut out = outcome(file, &case.name);
    let mut status = match case.lifecycle.from.as_deref().map(str::parse::<Status>) {
        None => Status::Assigned,
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            out.errors.push(format!("lifecycle.from: `{}` is not a status", case.lifecycle.from.unwrap_or_default()));
            return out;
        }
    };
    let mut events = Vec::new();
    for (i, v) in case.lifecycle.events.iter().enumerate() {
        match sales_event(v) {
            Ok(e) => events.push(e),
            Err(e) => out.errors.push(format!("lifecycle.events[{i}]: {e}")),
        }
    }
    if !out.errors.is_empty() {
        return out;
    }
    let mut bant = Bant::default();
    let mut got = Vec::new();
    for event in &events {
        match rules.lifecycle.apply(status, bant, event) {
            Ok(t) => {
                status = t.to;
                bant = t.bant;
                got.push(status.as_str().to_owned());
            }
            Err(_) => got.push("refused".to_owned()),
        }
    }
    if let Some(want) = &case.expect.statuses {
        mismatch(&mut out, "statuses", format!("{want:?}"), format!("{got:?}"));
    }
    out
}
