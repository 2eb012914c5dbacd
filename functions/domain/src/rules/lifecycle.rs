//! `lifecycle.yaml`: qualification, disqualification reasons, dormancy,
//! re-activation and retention; and the transitions between statuses.

use chrono::{DateTime, Utc};
use marked_yaml::Node;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::diag::suggest;
use super::field::{EventVocabulary, valid_event_name};
use super::yaml::{Doc, child, item, optional};
use crate::lead::{Bant, Status};

/// The event types with a meaning of their own in a lead's life.
pub const LIFECYCLE_EVENTS: [&str; 8] =
    ["form_submission", "contacted", "contact_attempt", "qualified", "converted", "outcome", "disqualified", "nurture"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactivationAction {
    /// Tell the last owner; the lead goes back to them.
    NotifyOwner,
    /// Route the lead again, as if new (sticky still applies).
    Reroute,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dormancy {
    pub after_days_idle: Option<u32>,
    pub after_unanswered: Option<u32>,
    pub statuses: Vec<Status>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    /// How many of the four BANT criteria make a lead qualified.
    pub qualification_required: u8,
    pub disqualify_reasons: Vec<String>,
    pub dormancy: Dormancy,
    /// Event slots that wake a dormant lead.
    pub reactivation_events: Vec<u16>,
    pub reactivation_action: ReactivationAction,
    pub retention_disqualified_days: Option<u32>,
}

/// A sales event, as the CRM reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SalesEvent {
    Contacted,
    ContactAttempt,
    Qualified(Bant),
    Converted,
    /// How a converted lead's deal ended: won or lost, with its amount in
    /// minor units (cents) and ISO 4217 currency when known.
    Outcome(DealOutcome),
    Disqualified {
        reason: String,
    },
    Nurture,
}

/// A deal's end, as the CRM reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealOutcome {
    pub won: bool,
    /// In minor units (cents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    /// ISO 4217, upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The largest amount a deal may have, in minor units (a thousand billion).
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000_000;

impl DealOutcome {
    /// Reads `won`/`lost`, an optional amount (a number or decimal text, at
    /// least 0) and an optional currency (an ISO 4217 code, any case).
    pub fn parse(result: &str, amount: Option<&str>, currency: Option<&str>) -> Result<DealOutcome, String> {
        let won = match result.trim() {
            "won" => true,
            "lost" => false,
            _ => return Err("an `outcome` is `won` or `lost`".to_owned()),
        };
        let amount_cents = match amount.map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => {
                let value: f64 = a.parse().map_err(|_| "`amount` must be a number".to_owned())?;
                let cents = (value * 100.0).round();
                if !cents.is_finite() || cents < 0.0 || cents > MAX_AMOUNT_CENTS as f64 {
                    return Err("`amount` must be a number from 0 to 1,000,000,000,000".to_owned());
                }
                Some(cents as i64)
            }
        };
        let currency = match currency.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match iso_currency::Currency::from_code(&c.to_ascii_uppercase()) {
                Some(currency) => Some(currency.code().to_owned()),
                None => return Err("`currency` must be an ISO 4217 code such as EUR".to_owned()),
            },
        };
        Ok(DealOutcome { won, amount_cents, currency })
    }

    pub fn result(&self) -> &'static str {
        if self.won { "won" } else { "lost" }
    }
}

impl SalesEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            SalesEvent::Contacted => "contacted",
            SalesEvent::ContactAttempt => "contact_attempt",
            SalesEvent::Qualified(_) => "qualified",
            SalesEvent::Converted => "converted",
            SalesEvent::Outcome(_) => "outcome",
            SalesEvent::Disqualified { .. } => "disqualified",
            SalesEvent::Nurture => "nurture",
        }
    }
}

/// What a sales event does to a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    /// The first-response clock stops (first contact).
    pub stops_clock: bool,
    /// The BANT criteria after the event.
    pub bant: Bant,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LifecycleError {
    #[error("`{reason}` is not a disqualification reason; reasons are {allowed}")]
    UnknownReason { reason: String, allowed: String },
    #[error("a {status} lead takes no `{event}` event")]
    NotAllowed { status: Status, event: &'static str },
    #[error("this lead's outcome is recorded already ({0}); an outcome is told once")]
    OutcomeKnown(&'static str),
}

/// Why a lead went dormant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum DormancyCause {
    Idle { days: u32 },
    Unanswered { attempts: u32 },
}

impl Lifecycle {
    /// Applies a sales event to a lead in `status` with BANT `bant`.
    ///
    /// `converted` is final. `disqualified` is final but for `nurture`, which
    /// hands the lead back to marketing.
    pub fn apply(&self, status: Status, bant: Bant, event: &SalesEvent) -> Result<Transition, LifecycleError> {
        use Status as S;
        let not_allowed = || LifecycleError::NotAllowed { status, event: event.kind() };
        let first_contact = matches!(status, S::Assigned | S::Unassigned);
        let mut bant_after = bant;
        let to = match (status, event) {
            // A deal's end is told of a converted lead, which stays converted.
            (S::Converted, SalesEvent::Outcome(_)) => S::Converted,
            (_, SalesEvent::Outcome(_)) => return Err(not_allowed()),
            (S::Converted, _) => return Err(not_allowed()),
            (S::Disqualified, SalesEvent::Nurture) => S::Nurturing,
            (S::Disqualified, _) => return Err(not_allowed()),
            (_, SalesEvent::Contacted) => match status {
                S::Qualified => S::Qualified,
                _ => S::Working,
            },
            (_, SalesEvent::ContactAttempt) => status,
            (_, SalesEvent::Qualified(given)) => {
                bant_after = bant.updated_with(*given);
                if bant_after.met() >= self.qualification_required { S::Qualified } else { S::Working }
            }
            (_, SalesEvent::Converted) => S::Converted,
            (_, SalesEvent::Disqualified { reason }) => {
                if !self.disqualify_reasons.iter().any(|r| r == reason) {
                    return Err(LifecycleError::UnknownReason {
                        reason: reason.chars().take(80).collect(),
                        allowed: self.disqualify_reasons.join(", "),
                    });
                }
                S::Disqualified
            }
            (_, SalesEvent::Nurture) => S::Nurturing,
        };
        let stops_clock = first_contact && !matches!(event, SalesEvent::ContactAttempt);
        Ok(Transition { from: status, to, stops_clock, bant: bant_after })
    }

    /// Whether a lead should go dormant, and why.
    pub fn dormancy(&self, status: Status, idle_days: u32, unanswered: u32) -> Option<DormancyCause> {
        if !self.dormancy.statuses.contains(&status) {
            return None;
        }
        if let Some(limit) = self.dormancy.after_days_idle
            && idle_days >= limit
        {
            return Some(DormancyCause::Idle { days: idle_days });
        }
        if let Some(limit) = self.dormancy.after_unanswered
            && unanswered >= limit
        {
            return Some(DormancyCause::Unanswered { attempts: unanswered });
        }
        None
    }

    /// What an engagement event of this slot does to a lead in `status`.
    pub fn reactivation(&self, status: Status, event_slot: u16) -> Option<ReactivationAction> {
        (status == Status::Dormant && self.reactivation_events.contains(&event_slot))
            .then_some(self.reactivation_action)
    }

    /// When a lead that became `status` at `at` expires, if ever.
    pub fn expires_at(&self, status: Status, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (status, self.retention_disqualified_days) {
            (Status::Disqualified, Some(days)) => Some(at + chrono::Duration::days(i64::from(days))),
            _ => None,
        }
    }
}

/// The lifecycle and re-activation event types, declared before anything is
/// compiled so that every file's conditions can name them.
pub fn declared_events(root: &Node, events: &mut EventVocabulary) {
    for e in LIFECYCLE_EVENTS {
        events.declare(e);
    }
    let listed = root.as_mapping().and_then(|m| m.get_mapping("reactivation")).and_then(|m| m.get_sequence("events"));
    for e in listed.into_iter().flat_map(|s| s.iter()) {
        if let Some(s) = e.as_scalar()
            && valid_event_name(s.as_str())
        {
            events.declare(s.as_str());
        }
    }
}

pub fn compile(doc: &mut Doc<'_>, root: &Node, events: &EventVocabulary) -> Option<Lifecycle> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &super::schema::LIFECYCLE.names());
    let errors_before = doc.diags.len();

    let mut required = 3u8;
    if let Some(node) = optional(map, "qualification")
        && let Some(m) = doc.map(node, "qualification")
    {
        doc.only_keys(m, "qualification", &super::schema::QUALIFICATION.names());
        if let Some(f) = optional(m, "framework")
            && let Some(name) = doc.text(f, "qualification.framework")
            && name != "bant"
        {
            doc.error(f.span(), "qualification.framework", format!("`{name}` is not supported; the framework is bant"));
        }
        if let Some(r) = optional(m, "required")
            && let Some(n) = doc.count(r, "qualification.required")
        {
            if (1..=4).contains(&n) {
                required = n as u8;
            } else {
                doc.error(r.span(), "qualification.required", "BANT has four criteria: required is 1 to 4");
            }
        }
    }

    let mut reasons: Vec<String> = Vec::new();
    if let Some(node) = doc.required(map, "disqualify_reasons", "")
        && let Some(seq) = doc.seq(node, "disqualify_reasons")
    {
        for (i, r) in seq.iter().enumerate() {
            let p = item("disqualify_reasons", i);
            if let Some(reason) = doc.text(r, &p) {
                if reasons.contains(&reason) {
                    doc.error(r.span(), &p, format!("`{reason}` is listed twice"));
                }
                reasons.push(reason);
            }
        }
        if seq.is_empty() {
            doc.error(seq.span(), "disqualify_reasons", "at least one reason is required");
        }
    }

    let mut dormancy = Dormancy {
        after_days_idle: None,
        after_unanswered: None,
        statuses: vec![Status::Assigned, Status::Working, Status::Nurturing],
    };
    if let Some(node) = optional(map, "dormancy")
        && let Some(m) = doc.map(node, "dormancy")
    {
        doc.only_keys(m, "dormancy", &super::schema::DORMANCY.names());
        dormancy.after_days_idle =
            optional(m, "after_days_idle").and_then(|n| doc.count(n, "dormancy.after_days_idle"));
        dormancy.after_unanswered =
            optional(m, "after_unanswered").and_then(|n| doc.count(n, "dormancy.after_unanswered"));
        for (key, v) in [("after_days_idle", dormancy.after_days_idle), ("after_unanswered", dormancy.after_unanswered)]
        {
            if v == Some(0) {
                doc.error(m.span(), &child("dormancy", key), "must be at least 1");
            }
        }
        if let Some(n) = optional(m, "statuses")
            && let Some(seq) = doc.seq(n, "dormancy.statuses")
        {
            dormancy.statuses.clear();
            for (i, s) in seq.iter().enumerate() {
                let p = item("dormancy.statuses", i);
                let Some(text) = doc.text(s, &p) else { continue };
                match text.parse::<Status>() {
                    Ok(st) if matches!(st, Status::Dormant | Status::Converted | Status::Disqualified) => {
                        doc.error(s.span(), &p, format!("a {st} lead cannot go dormant"));
                    }
                    Ok(st) => dormancy.statuses.push(st),
                    Err(_) => doc.error_hint(
                        s.span(),
                        &p,
                        format!("unknown status `{text}`"),
                        suggest(&text, Status::ALL.iter().map(|s| s.as_str())),
                    ),
                }
            }
        }
    }

    let mut reactivation_events = Vec::new();
    let mut reactivation_action = ReactivationAction::NotifyOwner;
    if let Some(node) = optional(map, "reactivation")
        && let Some(m) = doc.map(node, "reactivation")
    {
        doc.only_keys(m, "reactivation", &super::schema::REACTIVATION.names());
        if let Some(n) = doc.required(m, "events", "reactivation")
            && let Some(seq) = doc.seq(n, "reactivation.events")
        {
            for (i, e) in seq.iter().enumerate() {
                let p = item("reactivation.events", i);
                let Some(name) = doc.text(e, &p) else { continue };
                match events.slot(&name).filter(|_| valid_event_name(&name)) {
                    Some(slot) => reactivation_events.push(slot),
                    None => doc.error(e.span(), &p, "event types use lower-case letters, digits and `_`"),
                }
            }
        }
        if let Some(a) = optional(m, "action")
            && let Some(text) = doc.text(a, "reactivation.action")
        {
            match text.as_str() {
                "notify_owner" => reactivation_action = ReactivationAction::NotifyOwner,
                "reroute" => reactivation_action = ReactivationAction::Reroute,
                other => doc.error_hint(
                    a.span(),
                    "reactivation.action",
                    format!("`{other}` is not notify_owner or reroute"),
                    suggest(other, ["notify_owner", "reroute"]),
                ),
            }
        }
    }

    let mut retention_disqualified_days = None;
    if let Some(node) = optional(map, "retention")
        && let Some(m) = doc.map(node, "retention")
    {
        doc.only_keys(m, "retention", &super::schema::RETENTION.names());
        retention_disqualified_days = optional(m, "disqualified_days").and_then(|n| {
            let d = doc.count(n, "retention.disqualified_days")?;
            if d == 0 {
                doc.error(n.span(), "retention.disqualified_days", "must be at least 1");
            }
            Some(d)
        });
    }

    if doc.diags.len() > errors_before {
        return None;
    }
    Some(Lifecycle {
        qualification_required: required,
        disqualify_reasons: reasons,
        dormancy,
        reactivation_events,
        reactivation_action,
        retention_disqualified_days,
    })
}
