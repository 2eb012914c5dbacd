//! A lead as it is stored, its history and the notifications it causes.
//!
//! Everything here is data: the stores persist it, the service changes it, and
//! nothing here reads a clock.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::lead::{Bant, Email, Profile, Status};
use crate::rules::Explanation;
use crate::rules::lifecycle::DormancyCause;
use crate::rules::routing::Assignment;

/// A lead's id: derived from its normalised email, so that a capture finds an
/// existing lead with no lookup and two concurrent captures of one email can
/// only ever name the same lead. 24 hex digits (96 bits of SHA-256); it does not
/// contain the address, so it can be logged.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LeadId(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not a lead id (24 lower-case hex digits)")]
pub struct InvalidLeadId(String);

impl LeadId {
    pub const LEN: usize = 24;

    pub fn for_email(email: &Email) -> LeadId {
        let digest = Sha256::digest(email.as_str().as_bytes());
        LeadId(digest.iter().take(Self::LEN / 2).map(|b| format!("{b:02x}")).collect())
    }

    pub fn parse(input: &str) -> Result<LeadId, InvalidLeadId> {
        let ok = input.len() == Self::LEN && input.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok { Ok(LeadId(input.to_owned())) } else { Err(InvalidLeadId(input.chars().take(40).collect())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LeadId {
    type Error = InvalidLeadId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LeadId::parse(&s)
    }
}

impl From<LeadId> for String {
    fn from(id: LeadId) -> String {
        id.0
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first-response clock of a handed-off lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    pub handed_off_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// One bit per escalation step that has fired.
    #[serde(default)]
    pub fired: u64,
}

/// A lead as stored.
///
/// `version` goes up by one with every change. Captures and engagement events
/// change the profile and counts atomically in the store; everything derived from
/// them (score, tier, status, owner, clocks) is written back only if the version
/// is still the one it was derived from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    pub version: u64,
    pub profile: Profile,
    pub status: Status,
    pub owner: Option<String>,
    /// The last owner, kept when a lead goes dormant (for `sticky` and re-activation).
    #[serde(default)]
    pub previous_owner: Option<String>,
    /// The pool the owner was chosen from; reassignment draws from it again.
    #[serde(default)]
    pub pool: Option<String>,
    pub score: i64,
    pub tier: String,
    #[serde(default)]
    pub bant: Bant,
    /// Event counts by type.
    #[serde(default)]
    pub events: BTreeMap<String, u32>,
    /// `contact_attempt` events since the lead's last inbound activity.
    #[serde(default)]
    pub unanswered: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last inbound activity: a form submission or an engagement event.
    pub last_activity_at: DateTime<Utc>,
    #[serde(default)]
    pub sla: Option<SlaClock>,
    /// When the SLA check must next look at this lead (the next escalation
    /// step); indexed, absent when nothing is due.
    #[serde(default)]
    pub sla_due: Option<DateTime<Utc>>,
    /// When idleness next changes this open lead (a decay step or dormancy);
    /// indexed for the nightly clean-up, absent for closed leads.
    #[serde(default)]
    pub hygiene_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub disqualify_reason: Option<String>,
    /// When the lead is deleted (retention).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Imported at the hand-off tier with hand-offs held (`leads import`
    /// without `--then handoff`): it waits in nurture, and its next inbound
    /// activity hands it off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// What the metrics need of the lead's life so far.
    #[serde(default)]
    pub facts: crate::facts::Facts,
}

impl Lead {
    /// A lead just captured, before the rules have scored it.
    pub fn new(profile: Profile, at: DateTime<Utc>) -> Lead {
        Lead {
            id: LeadId::for_email(&profile.email),
            version: 0,
            profile,
            status: Status::Nurturing,
            owner: None,
            previous_owner: None,
            pool: None,
            score: 0,
            tier: String::new(),
            bant: Bant::default(),
            events: BTreeMap::new(),
            unanswered: 0,
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            sla: None,
            sla_due: None,
            hygiene_at: None,
            disqualify_reason: None,
            expires_at: None,
            held: false,
            facts: crate::facts::Facts::default(),
        }
    }

    /// Merges a repeat capture into the stored profile, field by field: a field
    /// `keep_first` names keeps a stored value; every other value the capture
    /// holds replaces the stored one. Empty values were never captured.
    /// A form post merged into the profile; custom fields new to the lead are
    /// dropped once it holds `max_custom`. Returns how many were dropped.
    pub fn merge_capture(
        &mut self,
        incoming: &Profile,
        keep_first: &dyn Fn(&crate::lead::FieldTarget) -> bool,
        max_custom: usize,
    ) -> usize {
        let mut dropped = 0;
        for field in incoming.present_fields() {
            if let crate::lead::FieldTarget::Custom(name) = &field
                && !self.profile.custom.contains_key(name)
                && self.profile.custom.len() >= max_custom
            {
                dropped += 1;
                continue;
            }
            if !(self.profile.has(&field) && keep_first(&field)) {
                self.profile.take_field(incoming, &field);
            }
        }
        // Values that fit no field are kept as sent where nothing valid is known.
        for (name, value) in &incoming.raw {
            let known = crate::lead::FieldTarget::parse(name).is_some_and(|f| self.profile.has(&f));
            if !known {
                self.profile.raw.insert(name.clone(), value.clone());
            }
        }
        dropped
    }

    /// Where the lead waits for a person, if anywhere: with its owner while
    /// they work it (assigned, working or qualified), or in the managers'
    /// unassigned queue. Both stores index leads by this, so that a rep's
    /// page reads only their own leads.
    pub fn queue(&self) -> Option<Queue<'_>> {
        match (self.status, self.owner.as_deref()) {
            (Status::Unassigned, _) => Some(Queue::Unassigned),
            (Status::Assigned | Status::Working | Status::Qualified, Some(owner)) => Some(Queue::Owner(owner)),
            _ => None,
        }
    }

    /// Adds event counts; `inbound` events are activity (they reset idleness and
    /// the unanswered-attempt count).
    pub fn count_events(&mut self, counts: &[(String, u32)], at: DateTime<Utc>) {
        for (kind, n) in counts {
            *self.events.entry(kind.clone()).or_default() += n;
            if kind == "contact_attempt" {
                self.unanswered += n;
            } else if is_inbound(kind) {
                self.unanswered = 0;
                if at > self.last_activity_at {
                    self.last_activity_at = at;
                }
            }
        }
        if at > self.updated_at {
            self.updated_at = at;
        }
    }
}

/// Whether an event type is the lead's own activity (as opposed to something
/// sales did or recorded).
pub fn is_inbound(kind: &str) -> bool {
    !matches!(
        kind,
        "contacted" | "contact_attempt" | "qualified" | "converted" | "outcome" | "disqualified" | "nurture"
    )
}

/// One entry of a lead's history: an event it had or something decided about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredEntry")]
pub struct HistoryEntry {
    /// When leadflow learned of it or decided it.
    pub at: DateTime<Utc>,
    /// Orders entries of one instant and keeps keys unique: the lead version the
    /// entry belongs to and its place among that version's entries.
    pub seq: String,
    /// The version of the rules the decision was made under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    #[serde(flatten)]
    pub record: Record,
}

/// An entry as stored: typed, or written before history was typed (`kind` and
/// a free-form `body`), which reads as [`Record::Legacy`].
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredEntry {
    Typed {
        at: DateTime<Utc>,
        seq: String,
        #[serde(default)]
        rules: Option<String>,
        #[serde(flatten)]
        record: Record,
    },
    Legacy {
        at: DateTime<Utc>,
        seq: String,
        kind: String,
        body: serde_json::Value,
    },
}

impl From<StoredEntry> for HistoryEntry {
    fn from(e: StoredEntry) -> HistoryEntry {
        match e {
            StoredEntry::Typed { at, seq, rules, record } => HistoryEntry { at, seq, rules, record },
            StoredEntry::Legacy { at, seq, kind, body } => {
                HistoryEntry { at, seq, rules: None, record: Record::Legacy { kind, body } }
            }
        }
    }
}

impl HistoryEntry {
    /// The `index`-th entry of the change that made `version`.
    pub fn new(at: DateTime<Utc>, version: u64, index: usize, record: Record) -> HistoryEntry {
        HistoryEntry { at, seq: format!("{version:010}#{index:02}"), rules: None, record }
    }

    /// The entry, as decided under the rules of `version`.
    pub fn under(mut self, version: &str) -> HistoryEntry {
        self.rules = Some(version.to_owned());
        self
    }

    /// The sort key of an entry: time first, so the history reads in order.
    pub fn key(&self) -> String {
        format!("{}#{}", self.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"), self.seq)
    }

    /// The lead version this entry was written with, when its `seq` names one.
    pub fn version(&self) -> Option<u64> {
        self.seq.split('#').next()?.parse().ok()
    }
}

/// A queue of leads waiting for a person (see [`Lead::queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue<'a> {
    Owner(&'a str),
    Unassigned,
}

/// A queue in the order a person works it: running first-response clocks
/// by deadline, then the rest by last change, newest first.
pub fn queue_order(leads: &mut [Lead]) {
    leads.sort_by(|a, b| {
        let deadline = |l: &Lead| l.sla.filter(|_| l.status == Status::Assigned).map(|c| c.deadline);
        match (deadline(a), deadline(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => b.updated_at.cmp(&a.updated_at),
        }
        .then_with(|| a.id.cmp(&b.id))
    });
}

/// Everything a lead's history can hold, one variant per kind of record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// Events the lead had: a form submission, engagement, a sales event.
    Event {
        #[serde(rename = "type")]
        kind: String,
        count: u32,
        /// When it happened, as the sender said (activity and decay run from it).
        happened_at: DateTime<Utc>,
        /// The sender's id for it (idempotency), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// The rep who recorded it in the web app, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// What a form post sent that did not fit its field (kept in the
    /// profile's `raw`, cut, or dropped), and the values it replaced on a lead
    /// a rep already owns (field name to the old value), so that nothing is
    /// lost to a post made in someone else's name.
    Capture {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<crate::form::Warning>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        replaced: BTreeMap<String, String>,
    },
    /// A row of an imported file: when the lead was created by the file's
    /// account, and whether its hand-off is held.
    Imported {
        created_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held: bool,
    },
    /// The score and route the rules gave, with the explanation.
    Scored { rules_version: String, explanation: Box<Explanation> },
    /// The lead's status changed.
    Transition {
        from: Status,
        to: Status,
        /// What made it change (the event type, `handoff`, `dormancy`, ...).
        cause: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dormancy: Option<DormancyCause>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Who got the lead and why (or that nobody was available).
    Assignment { rules_version: String, assignment: Box<Assignment> },
    /// The lead moved from one rep to another.
    Reassignment { from: Option<String>, to: String, why: String },
    /// First-response escalation steps that fired (1-based).
    Escalation { rules_version: String, steps: Vec<usize>, owner: Option<String> },
    /// A notification was written to the outbox.
    Notification { id: String, kind: NotificationKind, to: Vec<String> },
    /// The nightly clean-up rescored the lead.
    Rescored { rules_version: String, idle_days: u32, from: i64, to: i64 },
    /// `leadflow doctor --repair` fixed a broken invariant (or the SLA check
    /// took a stopped clock off its index).
    Repair { problem: String },
    /// An entry written before history was typed: its kind (`event` or
    /// `decision`) and body as they were.
    Legacy { kind: String, body: serde_json::Value },
}

impl Record {
    /// The event type, for event records.
    pub fn event_type(&self) -> Option<&str> {
        match self {
            Record::Event { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Handoff,
    Escalation,
    Reassigned,
    Reactivation,
    Unassigned,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Handoff => "handoff",
            NotificationKind::Escalation => "escalation",
            NotificationKind::Reassigned => "reassigned",
            NotificationKind::Reactivation => "reactivation",
            NotificationKind::Unassigned => "unassigned",
        }
    }
}

/// A message to reps, stored in the lead's outbox by the change that causes it
/// and published after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per transition: `{lead id}-{version}-{n}`. Publishing the same id
    /// twice is what the outbox prevents.
    pub id: String,
    pub kind: NotificationKind,
    pub lead_id: LeadId,
    /// The lead's owner, if any.
    pub owner: Option<String>,
    /// The rep ids the message is for.
    pub to: Vec<String>,
    pub tier: String,
    /// One SMS: name, company, score, deadline.
    pub sms: String,
    pub subject: String,
    /// The whole context: who the lead is, the score and its rules, recent
    /// activity, why this rep, the deadline.
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A notification waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub notification: Notification,
    /// Nobody else publishes it before this instant: the writer of the change
    /// publishes right after its write; the SLA check retries after the lease.
    pub lease_until: DateTime<Utc>,
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{FieldTarget, ProfileField};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn lead_id_depends_only_on_the_normalised_email() {
        let a = LeadId::for_email(&Email::parse("Jo@Example.com").unwrap());
        let b = LeadId::for_email(&Email::parse(" jo@example.com ").unwrap());
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), LeadId::LEN);
        assert_eq!(LeadId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, LeadId::for_email(&Email::parse("jo@example.org").unwrap()));
    }

    #[test]
    fn lead_id_parse_rejects_anything_else() {
        for bad in ["", "xyz", "ABCDEFABCDEFABCDEFABCDEF", "0123456789abcdef0123456", "0123456789abcdef012345678"] {
            assert!(LeadId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merge_keeps_first_touch_fields_and_never_empties_a_field() {
        let email = Email::parse("jo@example.com").unwrap();
        let mut first = Profile::new(email.clone());
        first.source = Some("webinar".into());
        first.company = Some("Acme".into());
        let mut lead = Lead::new(first, at("2026-01-01T00:00:00Z"));
        let mut again = Profile::new(email);
        again.source = Some("ads".into());
        again.job_title = Some("CTO".into());
        let keep = |f: &FieldTarget| *f == FieldTarget::Profile(ProfileField::Source);
        lead.merge_capture(&again, &keep, 50);
        assert_eq!(lead.profile.source.as_deref(), Some("webinar"));
        assert_eq!(lead.profile.company.as_deref(), Some("Acme"));
        assert_eq!(lead.profile.job_title.as_deref(), Some("CTO"));
    }

    #[test]
    fn history_written_before_records_were_typed_still_reads() {
        let old = r#"{"at":"2026-01-01T00:00:00Z","seq":"0000000001#00#1a2b3c4d","kind":"event","body":{"type":"form_submission","count":1}}"#;
        let entry: HistoryEntry = serde_json::from_str(old).expect("a legacy entry");
        assert!(matches!(&entry.record, Record::Legacy { kind, body } if kind == "event" && body["count"] == 1));
        assert_eq!(entry.version(), Some(1));
        let typed =
            HistoryEntry::new(at("2026-01-01T00:00:00Z"), 2, 0, Record::Repair { problem: "no derived state".into() });
        let back: HistoryEntry = serde_json::from_str(&serde_json::to_string(&typed).expect("json")).expect("typed");
        assert_eq!(back, typed);
    }

    #[test]
    fn contact_attempts_count_as_unanswered_until_the_lead_acts() {
        let mut lead = Lead::new(Profile::new(Email::parse("jo@example.com").unwrap()), at("2026-01-01T00:00:00Z"));
        lead.count_events(&[("contact_attempt".into(), 2)], at("2026-01-02T00:00:00Z"));
        assert_eq!(lead.unanswered, 2);
        assert_eq!(lead.last_activity_at, at("2026-01-01T00:00:00Z"));
        lead.count_events(&[("email_click".into(), 1)], at("2026-01-03T00:00:00Z"));
        assert_eq!(lead.unanswered, 0);
        assert_eq!(lead.last_activity_at, at("2026-01-03T00:00:00Z"));
        assert_eq!(lead.events["contact_attempt"], 2);
    }
}
