//! A row of a file being imported (`leadflow leads import`), read into what
//! the state machine takes: the profile, as a form post from the same source
//! would give it, with the lead's own history kept: when it was created, its
//! last activity, and its event counts.
//!
//! A row is a CSV record (its header names the columns) or a JSON line: a lead
//! as `leadflow leads export` writes it (`lead`, `events`, `stored`), or a flat
//! or nested object read as a JSON form body. Besides the fields the source's
//! mapping reads, these columns are the import's own:
//!
//! - `created_at`, `last_activity_at`: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or
//!   `YYYY-MM-DD` (UTC when no offset is given);
//! - `events`: a JSON object of counts by event type, and `events.TYPE`: one count;
//! - `custom`: a JSON object of custom fields (as `leads export` writes them);
//! - `id`, `status`, `owner`, `score`, `tier`, `updated_at`, `idle_days`: what
//!   an export says was decided; they are decided again, so they are skipped.
//!
//! Only the email refuses a row, as it refuses a post; a time or count that
//! cannot be read refuses it too, since it would change what is decided.
//! Honeypot fields are not read: a file is not a bot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::form::{self, Warning};
use crate::lead::Profile;
use crate::rules::RuleSet;
use crate::rules::capture::Capture;
use crate::rules::input::scalar_text;

/// One row, read.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportRow {
    pub profile: Profile,
    pub warnings: Vec<Warning>,
    pub created_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Counts by event type, as the row gives them (totals, not new events).
    pub events: BTreeMap<String, u32>,
}

/// Why a row is refused: the column, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub field: String,
    pub reason: String,
}

/// The columns an export writes that are decided again on import.
pub const DECIDED_COLUMNS: [&str; 7] = ["id", "status", "owner", "score", "tier", "updated_at", "idle_days"];

/// A count in a row is at most this (a typo, not a lead's history, beyond it).
pub const MAX_COUNT: u32 = 1_000_000;

/// A row names at most this many event types: the warnings of a row are kept
/// in the lead's history, which must stay far below a store item's size.
pub const MAX_EVENT_TYPES: usize = 64;

/// Reads rows for one source of `capture.yaml` (or none: fields by their own names).
#[derive(Clone, Debug)]
pub struct Importer {
    capture: Capture,
    source: Option<String>,
    /// The event types the rules know.
    events: std::collections::BTreeSet<String>,
}

impl Importer {
    /// `Err` names the source when `capture.yaml` has no such source.
    pub fn new(rules: &RuleSet, source: Option<&str>) -> Result<Importer, String> {
        if let Some(s) = source
            && !rules.capture.sources.contains_key(s)
        {
            let known: Vec<&str> = rules.capture.sources.keys().map(String::as_str).collect();
            return Err(format!("capture.yaml has no source `{s}` (it has: {})", known.join(", ")));
        }
        let mut capture = rules.capture.clone();
        capture.honeypots.clear();
        let events = rules.events.names().iter().cloned().collect();
        Ok(Importer { capture, source: source.map(str::to_owned), events })
    }

    /// A row of named fields (a CSV record with its header), in column order.
    pub fn read_fields(&self, fields: Vec<(String, String)>) -> Result<ImportRow, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut created_at = None;
        let mut last_activity_at = None;
        let mut events = BTreeMap::new();
        let mut posted = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let text = value.trim();
            if self.capture.mapped(self.source.as_deref(), &name).is_some() {
                // The source's mapping, or a lead field by its own name.
                posted.push((name, value));
                continue;
            }
            match name.as_str() {
                "created_at" | "last_activity_at" if !text.is_empty() => match parse_time(text) {
                    Some(t) if name == "created_at" => created_at = Some(t),
                    Some(t) => last_activity_at = Some(t),
                    None => errors
                        .push(error(&name, "is not a time (RFC 3339, YYYY-MM-DD HH:MM:SS or YYYY-MM-DD)".to_owned())),
                },
                "events" if !text.is_empty() => match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(counts)) => {
                        for (kind, n) in counts {
                            read_count(&format!("events.{kind}"), &n, &mut events, &mut errors);
                        }
                    }
                    _ => errors.push(error("events", "is not a JSON object of counts by event type".to_owned())),
                },
                "custom" if !text.is_empty() => match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(custom)) => {
                        for (key, v) in custom {
                            if let Some(text) = scalar_text(&v) {
                                posted.push((format!("custom.{key}"), text));
                            }
                        }
                    }
                    _ => errors.push(error("custom", "is not a JSON object of custom fields".to_owned())),
                },
                n if DECIDED_COLUMNS.contains(&n) => {}
                n if n.starts_with("events.") => {
                    if !text.is_empty() {
                        read_count(n, &Value::String(text.to_owned()), &mut events, &mut errors);
                    }
                }
                "created_at" | "last_activity_at" | "events" | "custom" => {}
                _ => posted.push((name, value)),
            }
        }
        if events.len() > MAX_EVENT_TYPES {
            errors.push(error(
                "events",
                format!("names {} event types; a row may name at most {MAX_EVENT_TYPES}", events.len()),
            ));
        }
        let form = match form::read(&self.capture, self.source.as_deref(), posted) {
            Ok(mut form) => {
                // Counts of event types the rules do not know are not counted.
                for kind in events.keys().filter(|k| !self.events.contains(k.as_str())) {
                    form.warnings.push(Warning {
                        field: format!("events.{kind}"),
                        problem: "is not an event type of the rules; not counted".to_owned(),
                    });
                }
                Some(form)
            }
            Err(refused) => {
                // Which rule the email broke, never the value itself.
                errors.extend(refused.errors.into_iter().map(|(field, reason)| RowError {
                    reason: if reason == "is required" { reason } else { "is not a valid email address".to_owned() },
                    field,
                }));
                None
            }
        };
        if let (Some(created), Some(last)) = (created_at, last_activity_at)
            && last < created
        {
            errors.push(error("last_activity_at", "is before created_at".to_owned()));
        }
        match form {
            Some(form) if errors.is_empty() => {
                Ok(ImportRow { profile: form.profile, warnings: form.warnings, created_at, last_activity_at, events })
            }
            _ => Err(errors),
        }
    }

    /// A JSON line: a lead as `leads export` writes it, or an object read as a
    /// JSON form body (nested values by path).
    pub fn read_json(&self, value: &Value) -> Result<ImportRow, Vec<RowError>> {
        let Some(top) = value.as_object() else {
            return Err(vec![error("*", "a line is a JSON object".to_owned())]);
        };
        let mut fields = Vec::new();
        let mut extra = |name: &str, v: Option<&Value>| match v {
            Some(Value::Object(_)) => fields.push((name.to_owned(), v.map(Value::to_string).unwrap_or_default())),
            Some(v) => {
                if let Some(text) = scalar_text(v) {
                    fields.push((name.to_owned(), text));
                }
            }
            None => {}
        };
        match top.get("lead") {
            Some(Value::Object(lead)) => {
                // An exported lead: its profile, counts and times.
                extra("events", top.get("events"));
                let stored = top.get("stored");
                extra("created_at", stored.and_then(|s| s.get("created_at")));
                extra("last_activity_at", stored.and_then(|s| s.get("last_activity_at")));
                for (key, v) in lead {
                    if key == "bant" {
                        continue;
                    }
                    if let Some(text) = scalar_text(v) {
                        fields.push((key.clone(), text));
                    }
                }
            }
            Some(_) => return Err(vec![error("lead", "is not an object of lead fields".to_owned())]),
            None => {
                let mut rest = top.clone();
                if let Some(counts) = rest.remove("events") {
                    extra("events", Some(&counts));
                }
                if let Some(custom) = rest.remove("custom").filter(Value::is_object) {
                    extra("custom", Some(&custom));
                }
                fields.extend(form::flatten(&Value::Object(rest)));
            }
        }
        self.read_fields(fields)
    }
}

impl ImportRow {
    /// The row's idempotency key: the same row imported again is the same
    /// import, and changes nothing.
    pub fn import_id(&self) -> String {
        let mut text = String::new();
        for field in self.profile.present_fields() {
            let _ = write!(text, "{field}\u{1f}{}\u{1e}", self.profile.value_text(&field).unwrap_or_default());
        }
        for (name, value) in &self.profile.raw {
            let _ = write!(text, "raw.{name}\u{1f}{value}\u{1e}");
        }
        for (kind, n) in &self.events {
            let _ = write!(text, "events.{kind}\u{1f}{n}\u{1e}");
        }
        let _ = write!(text, "{:?}\u{1e}{:?}", self.created_at, self.last_activity_at);
        use base64::Engine as _;
        let digest = Sha256::digest(text.as_bytes());
        format!("{IMPORT_ID_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18]))
    }
}

/// The id prefix of imported rows (form posts start `form:`, events `id:` or `sig:`).
pub const IMPORT_ID_PREFIX: &str = "import:";

fn error(field: &str, reason: String) -> RowError {
    RowError { field: field.to_owned(), reason }
}

fn read_count(field: &str, v: &Value, events: &mut BTreeMap<String, u32>, errors: &mut Vec<RowError>) {
    let kind = field.trim_start_matches("events.");
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n <= MAX_COUNT) {
        Some(n) if !kind.is_empty() && kind.len() <= 64 => {
            events.insert(kind.to_owned(), n);
        }
        _ => errors.push(error(field, format!("is not a count from 0 to {MAX_COUNT}"))),
    }
}

/// A time as spreadsheets and CRMs write them; UTC when no offset is given.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{FieldTarget, ProfileField};

    fn rules() -> RuleSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        RuleSet::load_dir(&dir).expect("starter rules")
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_crm_row_keeps_its_dates_counts_and_mapped_fields() {
        let rules = rules();
        let importer = Importer::new(&rules, Some("salesforce")).expect("source");
        let row = importer
            .read_fields(fields(&[
                ("email", "Ana@Example.com"),
                ("title", "VP Sales"),
                ("country", "Germany"),
                ("created_at", "2025-03-04"),
                ("last_activity_at", "2025-06-01 12:30"),
                ("events.pricing_page_view", "3"),
                ("status", "converted"),
                ("website_url", "filled by nobody"),
            ]))
            .expect("row");
        assert_eq!(row.profile.email.as_str(), "ana@example.com");
        assert_eq!(row.profile.text(ProfileField::JobTitle), Some("VP Sales"));
        assert_eq!(row.profile.value_text(&FieldTarget::Profile(ProfileField::Country)).as_deref(), Some("DE"));
        assert_eq!(row.created_at, parse_time("2025-03-04T00:00:00Z"));
        assert_eq!(row.last_activity_at, parse_time("2025-06-01T12:30:00Z"));
        assert_eq!(row.events.get("pricing_page_view"), Some(&3));
        // `status` is decided again; the honeypot is an ordinary custom field here.
        assert!(!row.profile.custom.contains_key("status"));
        assert!(row.profile.custom.contains_key("website_url"));
    }

    #[test]
    fn a_bad_row_names_every_column_that_refuses_it() {
        let rules = rules();
        let importer = Importer::new(&rules, None).expect("importer");
        let errors = importer
            .read_fields(fields(&[
                ("email", "not an email"),
                ("created_at", "yesterday"),
                ("events", "[1,2]"),
                ("events.webinar_attended", "-1"),
            ]))
            .expect_err("refused");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["created_at", "events", "events.webinar_attended", "email"]);
        assert!(errors.iter().all(|e| !e.reason.contains("not an email")), "no value is repeated: {errors:?}");
        let missing = importer.read_fields(fields(&[("company", "Acme")])).expect_err("no email");
        assert_eq!(missing[0].field, "email");
    }

    #[test]
    fn unknown_event_types_are_warned_of_and_too_many_refuse_the_row() {
        let importer = Importer::new(&rules(), None).expect("importer");
        let row = importer
            .read_fields(fields(&[("email", "a@b.co"), ("events.made_up", "2"), ("events.pricing_page_view", "1")]))
            .expect("row");
        assert_eq!(row.warnings.len(), 1, "{:?}", row.warnings);
        assert_eq!(row.warnings[0].field, "events.made_up");
        let many: String = (0..=MAX_EVENT_TYPES).map(|i| format!("\"t{i}\": 1")).collect::<Vec<_>>().join(",");
        let errors = importer
            .read_fields(vec![("email".into(), "a@b.co".into()), ("events".into(), format!("{{{many}}}"))])
            .expect_err("too many");
        assert_eq!(errors[0].field, "events");
    }

    #[test]
    fn activity_before_creation_is_refused() {
        let importer = Importer::new(&rules(), None).expect("importer");
        let errors = importer
            .read_fields(fields(&[
                ("email", "a@b.co"),
                ("created_at", "2025-03-04T00:00:00Z"),
                ("last_activity_at", "2025-03-01T00:00:00Z"),
            ]))
            .expect_err("refused");
        assert_eq!(errors[0].field, "last_activity_at");
    }

    #[test]
    fn an_exported_line_reads_back_with_its_times_and_counts() {
        let rules = rules();
        let importer = Importer::new(&rules, None).expect("importer");
        let line = serde_json::json!({
            "id": "abc", "idle_days": 3,
            "lead": {"email": "ana@example.com", "company": "Acme", "status": "working", "bant": {"budget": true},
                     "custom.seats": "40"},
            "events": {"pricing_page_view": 2},
            "stored": {"owner": "ana", "created_at": "2025-01-02T03:04:05Z", "last_activity_at": "2025-02-01T00:00:00Z"}
        });
        let row = importer.read_json(&line).expect("row");
        assert_eq!(row.profile.text(ProfileField::Company), Some("Acme"));
        assert_eq!(row.profile.custom.get("seats").map(String::as_str), Some("40"));
        assert_eq!(row.events.get("pricing_page_view"), Some(&2));
        assert_eq!(row.created_at, parse_time("2025-01-02T03:04:05Z"));
        assert_eq!(row.last_activity_at, parse_time("2025-02-01T00:00:00Z"));
        let flat = importer
            .read_json(&serde_json::json!({"email": "b@example.com", "events": {"demo_request": 1}, "custom": {"plan": "pro"}}))
            .expect("flat");
        assert_eq!(flat.events.get("demo_request"), Some(&1));
        assert_eq!(flat.profile.custom.get("plan").map(String::as_str), Some("pro"));
        assert!(importer.read_json(&serde_json::json!([1])).is_err());
        assert!(importer.read_json(&serde_json::json!({"lead": 3})).is_err());
    }

    #[test]
    fn the_same_row_has_the_same_import_id_and_another_row_another() {
        let importer = Importer::new(&rules(), None).expect("importer");
        let a = importer.read_fields(fields(&[("email", "a@b.co"), ("company", "Acme")])).expect("a");
        let again = importer.read_fields(fields(&[("company", "Acme"), ("email", "A@b.co")])).expect("again");
        let other = importer.read_fields(fields(&[("email", "a@b.co"), ("company", "Acme Inc")])).expect("other");
        assert_eq!(a.import_id(), again.import_id());
        assert_ne!(a.import_id(), other.import_id());
        assert!(a.import_id().starts_with(IMPORT_ID_PREFIX));
    }

    #[test]
    fn an_unknown_source_is_named() {
        let e = Importer::new(&rules(), Some("acme_crm")).expect_err("unknown");
        assert!(e.contains("`acme_crm`"), "{e}");
    }
}
