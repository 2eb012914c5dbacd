//! Metrics in CloudWatch's embedded metric format: one JSON object per line
//! on standard output, which CloudWatch Logs turns into metrics with no
//! API call (and no latency) in the function. The namespace is
//! `METRICS_NAMESPACE` (the template sets `leadflow/STACK`); metrics carry no
//! dimensions, so each is the sum over every function of a stack.
//!
//! | metric | unit | what |
//! | --- | --- | --- |
//! | Captures | Count | leads created |
//! | Handoffs | Count | hand-offs to a rep |
//! | SpeedToLead | Seconds | first hand-off to first contact, one value per first contact |
//! | SlaMet, SlaBreaches | Count | hand-offs contacted by their deadline, and not |
//! | Unassigned | Count | leads that went to the unassigned queue |
//! | NotificationsFailed, DeadLetters | Count | publishes that failed (retried), notifications given up |
//! | Rejects | Count | refused requests, by `Reason` (a dimension of this metric alone) |

use std::io::Write as _;

use chrono::Utc;
use leadflow_app::Metrics;
use leadflow_domain::facts::{Dim, Tally};
use serde_json::{Value, json};

/// Counters of the roll-ups reported as metrics, and their names.
const COUNTS: [(&str, &str); 5] = [
    ("captured", "Captures"),
    ("handoffs", "Handoffs"),
    ("sla_met", "SlaMet"),
    ("sla_breached", "SlaBreaches"),
    ("unassigned", "Unassigned"),
];

/// Writes metrics to standard output in the embedded metric format.
#[derive(Clone, Debug)]
pub struct Emf {
    namespace: String,
}

impl Emf {
    pub fn new(namespace: impl Into<String>) -> Emf {
        Emf { namespace: namespace.into() }
    }

    /// `METRICS_NAMESPACE`, or `leadflow`.
    pub fn from_env() -> Emf {
        Emf::new(std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "leadflow".into()))
    }

    /// The line for `values` (name, unit, value), with `dimensions` (name, value).
    pub fn line(&self, values: &[(&str, &str, f64)], dimensions: &[(&str, &str)]) -> Option<String> {
        if values.is_empty() {
            return None;
        }
        let metrics: Vec<Value> = values.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
        let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
        let mut doc = json!({
            "_aws": {
                "Timestamp": Utc::now().timestamp_millis(),
                "CloudWatchMetrics": [{ "Namespace": self.namespace, "Dimensions": [names], "Metrics": metrics }],
            }
        });
        for (name, _, value) in values {
            doc[*name] = json!(value);
        }
        for (name, value) in dimensions {
            doc[*name] = json!(value);
        }
        Some(doc.to_string())
    }

    fn emit(&self, values: &[(&str, &str, f64)], dimensions: &[(&str, &str)]) {
        if let Some(line) = self.line(values, dimensions) {
            // One write per line, so that lines of concurrent invocations never interleave.
            let _ = std::io::stdout().lock().write_all(format!("{line}\n").as_bytes());
        }
    }

    /// What a decision's roll-up counts report (those filed under `all`).
    pub fn values_of(tally: &Tally) -> Vec<(&'static str, &'static str, f64)> {
        let mut values = Vec::new();
        for (key, counts) in &tally.counts {
            if key.dim != Dim::All {
                continue;
            }
            for (counter, name) in COUNTS {
                if let Some(n) = counts.get(counter) {
                    values.push((name, "Count", *n as f64));
                }
            }
            if counts.get("first_contacts").is_some_and(|n| *n > 0)
                && let Some(secs) = counts.get("speed.sum")
            {
                values.push(("SpeedToLead", "Seconds", *secs as f64));
            }
        }
        values
    }
}

impl Metrics for Emf {
    fn decided(&self, tally: &Tally) {
        self.emit(&Emf::values_of(tally), &[]);
    }

    fn delivery(&self, failed: usize, dead: usize) {
        let mut values = Vec::new();
        if failed > 0 {
            values.push(("NotificationsFailed", "Count", failed as f64));
        }
        if dead > 0 {
            values.push(("DeadLetters", "Count", dead as f64));
        }
        self.emit(&values, &[]);
    }

    fn rejected(&self, code: &str) {
        self.emit(&[("Rejects", "Count", 1.0)], &[("Reason", code)]);
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn a_decision_s_counts_become_one_line_of_metrics_without_dimensions() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let mut tally = Tally::default();
        tally.add(day, &[Dim::All, Dim::Rep("ana".into())], "handoffs", 1);
        tally.add(day, &[Dim::All], "first_contacts", 1);
        tally.add(day, &[Dim::All], "speed.sum", 420);
        tally.add(day, &[Dim::All], "sla_breached", 1);
        let emf = Emf::new("leadflow/prod");
        let line = emf.line(&Emf::values_of(&tally), &[]).expect("a line");
        let doc: Value = serde_json::from_str(&line).expect("JSON");
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "leadflow/prod");
        assert_eq!(spec["Dimensions"], json!([[]]));
        let names: Vec<&str> =
            spec["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Handoffs", "SlaBreaches", "SpeedToLead"], "counted once, under `all`");
        assert_eq!((doc["Handoffs"].as_f64(), doc["SpeedToLead"].as_f64()), (Some(1.0), Some(420.0)));
        assert!(doc["_aws"]["Timestamp"].as_i64().is_some());
        assert!(!line.contains('\n'), "one line");
        assert_eq!(emf.line(&Emf::values_of(&Tally::default()), &[]), None, "nothing to report, no line");
    }

    #[test]
    fn a_reject_is_counted_by_its_reason() {
        let line = Emf::new("leadflow").line(&[("Rejects", "Count", 1.0)], &[("Reason", "invalid")]).unwrap();
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Reason"]]));
        assert_eq!((doc["Reason"].as_str(), doc["Rejects"].as_f64()), (Some("invalid"), Some(1.0)));
    }
}
