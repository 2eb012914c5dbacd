//! What a lead's life adds up to: the facts the metrics need, kept on the
//! lead, and the daily roll-up counts each decision adds.
//!
//! [`account`] runs at the end of every decision, on the lead as it was and
//! as it will be, with the decision's records. It moves the lead's [`Facts`]
//! (first hand-off, first contact, SLA met or breached per hand-off, ...) and
//! returns the [`Tally`] the store adds to its daily roll-ups in the same
//! write as the lead, so a figure is counted exactly once per decision that
//! makes it, and a decision that is not saved counts nothing.
//!
//! Every count of a decision is filed under the day the decision was made
//! (UTC; a lead's capture under the day it was created) and under the lead's
//! rep, pool, tier and first-touch source as they are after the decision, as
//! well as under `all`. Durations are counted in fixed buckets ([`BUCKETS`])
//! with their sum, so that percentiles and means need no raw scan.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::lead::{Profile, Status};
use crate::record::{Lead, Record};
use crate::rules::RuleSet;
use crate::rules::lifecycle::DealOutcome;

/// The upper bounds of the duration buckets, in seconds, and their names.
/// The last bucket holds everything longer.
pub const BUCKETS: [(i64, &str); 14] = [
    (60, "1m"),
    (120, "2m"),
    (300, "5m"),
    (600, "10m"),
    (900, "15m"),
    (1800, "30m"),
    (3600, "1h"),
    (7200, "2h"),
    (14_400, "4h"),
    (28_800, "8h"),
    (86_400, "1d"),
    (172_800, "2d"),
    (604_800, "7d"),
    (i64::MAX, "more"),
];

/// The name of the bucket a duration of `secs` falls in (at most its bound).
pub fn bucket(secs: i64) -> &'static str {
    BUCKETS.iter().find(|(bound, _)| secs <= *bound).map_or("more", |(_, name)| name)
}

/// Score bands for calibration are this many points wide.
pub const BAND_WIDTH: i64 = 10;

/// The band a score falls in, named by its lowest score (`-10`, `0`, `10`, ...).
pub fn band(score: i64) -> i64 {
    score.div_euclid(BAND_WIDTH) * BAND_WIDTH
}

/// Sales events that are a rep reaching the lead (and stop its first-response clock).
pub const CONTACTS: [&str; 4] = ["contacted", "qualified", "converted", "disqualified"];

/// The longest source name a roll-up files leads under; longer ones are cut.
pub const MAX_SOURCE_LEN: usize = 40;

/// What the metrics need to know of one lead, kept on it and moved by every
/// decision (see [`account`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// The source of the lead's first capture, as filed (see [`source_name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_touch: Option<String>,
    /// The source of its latest form post or import row that named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_touch: Option<String>,
    /// Since when the lead has had its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    /// When its tier first reached the hand-off tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached_handoff_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_handoff_at: Option<DateTime<Utc>>,
    /// The first hand-off's first-response deadline (none for a tier without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_deadline: Option<DateTime<Utc>>,
    /// The score at the first hand-off (for calibration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_score: Option<i64>,
    /// The first contact after the first hand-off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact_at: Option<DateTime<Utc>>,
    /// Speed to lead: first hand-off to first contact, wall time, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_secs: Option<i64>,
    /// The same in business time (wall time without business hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_business_secs: Option<i64>,
    pub handoffs: u32,
    /// Hand-offs whose first contact came by their deadline.
    pub sla_met: u32,
    /// Hand-offs whose deadline passed before a contact.
    pub sla_breached: u32,
    /// The hand-off (by its time) whose breach is counted already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_counted: Option<DateTime<Utc>>,
    pub escalations: u32,
    pub reassignments: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualified_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disqualified_at: Option<DateTime<Utc>>,
    pub disqualifications: u32,
    pub dormancies: u32,
    pub reactivations: u32,
    /// How the deal ended, once the CRM tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A converted lead's deal, won or lost, and when leadflow learned of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub deal: DealOutcome,
    pub at: DateTime<Utc>,
}

/// A dimension a roll-up is kept by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    All,
    Rep(String),
    Pool(String),
    Tier(String),
    Source(String),
}

impl Dim {
    /// The dimension's kind: `all`, `rep`, `pool`, `tier` or `source`.
    pub fn kind(&self) -> &'static str {
        match self {
            Dim::All => "all",
            Dim::Rep(_) => "rep",
            Dim::Pool(_) => "pool",
            Dim::Tier(_) => "tier",
            Dim::Source(_) => "source",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Dim::All => "all",
            Dim::Rep(v) | Dim::Pool(v) | Dim::Tier(v) | Dim::Source(v) => v,
        }
    }

    /// `all`, or `KIND#VALUE` as the stores key it.
    pub fn key(&self) -> String {
        match self {
            Dim::All => "all".to_owned(),
            other => format!("{}#{}", other.kind(), other.value()),
        }
    }

    pub fn parse(key: &str) -> Option<Dim> {
        if key == "all" {
            return Some(Dim::All);
        }
        let (kind, value) = key.split_once('#')?;
        let value = value.to_owned();
        Some(match kind {
            "rep" => Dim::Rep(value),
            "pool" => Dim::Pool(value),
            "tier" => Dim::Tier(value),
            "source" => Dim::Source(value),
            _ => return None,
        })
    }
}

/// The kinds of dimension, as [`Dim::kind`] names them.
pub const DIM_KINDS: [&str; 5] = ["all", "rep", "pool", "tier", "source"];

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// One roll-up: a day and a dimension value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    pub day: NaiveDate,
    pub dim: Dim,
}

/// Counts to add to roll-ups: per roll-up, counter name to amount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: BTreeMap<RollupKey, BTreeMap<String, i64>>,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Adds `delta` to `counter` of `day` under every one of `dims`.
    pub fn add(&mut self, day: NaiveDate, dims: &[Dim], counter: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        for dim in dims {
            let key = RollupKey { day, dim: dim.clone() };
            *self.counts.entry(key).or_default().entry(counter.to_owned()).or_default() += delta;
        }
    }

    /// Another tally's counts added to this one's (a batch written at once).
    pub fn merge(&mut self, other: &Tally) {
        for (key, counters) in &other.counts {
            let mine = self.counts.entry(key.clone()).or_default();
            for (name, delta) in counters {
                *mine.entry(name.clone()).or_default() += delta;
            }
        }
        for counters in self.counts.values_mut() {
            counters.retain(|_, v| *v != 0);
        }
        self.counts.retain(|_, c| !c.is_empty());
    }

    /// A duration counted into histogram `name`: its bucket and its sum.
    fn duration(&mut self, day: NaiveDate, dims: &[Dim], name: &str, secs: i64) {
        let secs = secs.max(0);
        self.add(day, dims, &format!("{name}.b.{}", bucket(secs)), 1);
        self.add(day, dims, &format!("{name}.sum"), secs);
    }
}

/// A source as roll-ups file it: trimmed, lower case, at most
/// [`MAX_SOURCE_LEN`] characters, anything but letters, digits, `_`, `-` and
/// `.` as `_`; `(none)` when the lead names none, `(other)` for anything
/// with an `@` (an email address is never filed).
pub fn source_name(profile: &Profile) -> String {
    source_key(profile.source.as_deref().or(profile.utm_source.as_deref()).unwrap_or(""))
}

/// A source name as roll-ups file it (see [`source_name`]).
pub fn source_key(raw: &str) -> String {
    // An address typed as a source would outlive its lead in the roll-ups.
    if raw.contains('@') {
        return "(other)".to_owned();
    }
    let name: String = raw
        .trim()
        .chars()
        .take(MAX_SOURCE_LEN)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }
        })
        .collect();
    if name.is_empty() { "(none)".to_owned() } else { name }
}

/// Moves `after`'s facts by what the decision did (from `before`, with
/// `records`, at `now`) and returns what it adds to the roll-ups.
pub fn account(
    rules: &RuleSet,
    before: Option<&Lead>,
    after: &mut Lead,
    records: &[Record],
    now: DateTime<Utc>,
) -> Tally {
    let mut tally = Tally::default();
    // A lead stored before leads kept facts is given what it shows, and
    // counts only what happens from now on.
    if let Some(b) = before
        && b.facts.status_since.is_none()
    {
        after.facts = backfilled(rules, b);
    }
    let mut counts: Vec<(&str, i64)> = Vec::new();
    let mut named: Vec<(String, i64)> = Vec::new();
    let mut durations: Vec<(String, i64)> = Vec::new();
    let day = now.date_naive();
    let f = &mut after.facts;

    let contact = records.iter().find_map(|r| match r {
        Record::Event { kind, happened_at, .. } if CONTACTS.contains(&kind.as_str()) => Some(*happened_at),
        _ => None,
    });
    for record in records {
        match record {
            Record::Event { kind, source: Some(_), .. } if kind == "form_submission" => {
                f.last_touch = Some(source_name(&after.profile));
            }
            Record::Imported { .. } if after.profile.source.is_some() || after.profile.utm_source.is_some() => {
                f.last_touch = Some(source_name(&after.profile));
            }
            Record::Escalation { steps, .. } => {
                f.escalations += steps.len() as u32;
                counts.push(("escalations", steps.len() as i64));
            }
            Record::Reassignment { .. } => {
                f.reassignments += 1;
                counts.push(("reassignments", 1));
            }
            _ => {}
        }
    }

    let before_status = before.map(|b| b.status);
    if before.is_none() {
        let source = source_name(&after.profile);
        f.first_touch = Some(source.clone());
        f.last_touch.get_or_insert(source);
        f.status_since = Some(after.created_at);
    }

    // The hand-off tier, reached for the first time.
    let tier = rules.scoring.tier_index(&after.tier);
    if f.reached_handoff_at.is_none() && tier.is_some_and(|t| rules.scoring.is_handoff(t)) {
        f.reached_handoff_at = Some(now);
        counts.push(("reached_handoff", 1));
    }

    // The first-response clock that ran until this decision, if it ended or
    // ran past its deadline.
    let old_clock = before.and_then(|b| b.sla);
    let same_clock = |a: Option<crate::record::SlaClock>| a.map(|c| c.handed_off_at);
    if let Some(clock) = old_clock {
        // Clocks of other hosts may run ahead of this one's `now`.
        let contact_at = contact.map(|at| at.clamp(clock.handed_off_at.min(now), now));
        let ended = same_clock(after.sla) != Some(clock.handed_off_at);
        let counted = f.breach_counted == Some(clock.handed_off_at);
        if ended && let Some(at) = contact_at {
            // A breach counted stands, even if the contact is later said to
            // have happened before the deadline.
            if !counted && at <= clock.deadline {
                f.sla_met += 1;
                counts.push(("sla_met", 1));
            } else if !counted {
                f.sla_breached += 1;
                f.breach_counted = Some(clock.handed_off_at);
                counts.push(("sla_breached", 1));
            }
        } else if now > clock.deadline && !counted {
            f.sla_breached += 1;
            f.breach_counted = Some(clock.handed_off_at);
            counts.push(("sla_breached", 1));
        }
    }

    // A hand-off: assigned to someone new, or with a new clock.
    let handed_off = after.status == Status::Assigned
        && after.owner.is_some()
        && before.is_none_or(|b| {
            b.status != Status::Assigned || b.owner != after.owner || same_clock(b.sla) != same_clock(after.sla)
        });
    if handed_off {
        f.handoffs += 1;
        counts.push(("handoffs", 1));
        if f.first_handoff_at.is_none() {
            f.first_handoff_at = Some(now);
            f.first_deadline = after.sla.map(|c| c.deadline);
            f.handoff_score = Some(after.score);
            counts.push(("first_handoffs", 1));
            named.push((format!("band.{}.handoffs", band(after.score)), 1));
        }
    }

    // The first contact after the first hand-off: speed to lead.
    if f.first_contact_at.is_none()
        && let (Some(handoff), Some(at)) = (f.first_handoff_at, contact)
    {
        let at = at.clamp(handoff.min(now), now);
        f.first_contact_at = Some(at);
        let wall = (at - handoff).num_seconds().max(0);
        let business = rules.sla.elapsed_secs(handoff, at);
        f.speed_secs = Some(wall);
        f.speed_business_secs = Some(business);
        counts.push(("first_contacts", 1));
        durations.push(("speed".to_owned(), wall));
        durations.push(("speed_business".to_owned(), business));
        if let Some(deadline) = f.first_deadline {
            counts.push(("targeted", 1));
            if at <= deadline {
                counts.push(("within_target", 1));
            }
        }
    }

    // Status changes: time spent in the old one, and the funnel.
    if before_status != Some(after.status) {
        if let (Some(from), Some(since)) = (before_status, f.status_since) {
            durations.push((format!("time_in.{}", from.as_str()), (now - since).num_seconds()));
        }
        f.status_since = Some(now);
        match after.status {
            Status::Qualified if f.qualified_at.is_none() => {
                f.qualified_at = Some(now);
                counts.push(("qualified", 1));
            }
            Status::Converted if f.converted_at.is_none() => {
                f.converted_at = Some(now);
                counts.push(("converted", 1));
                if let Some(score) = f.handoff_score {
                    named.push((format!("band.{}.converted", band(score)), 1));
                }
            }
            Status::Disqualified => {
                f.disqualified_at = Some(now);
                f.disqualifications += 1;
                counts.push(("disqualified", 1));
                let reason = after.disqualify_reason.as_deref().unwrap_or("(none)");
                named.push((format!("disqualified.{reason}"), 1));
            }
            Status::Dormant => {
                f.dormancies += 1;
                counts.push(("dormant", 1));
            }
            Status::Unassigned => counts.push(("unassigned", 1)),
            _ => {}
        }
        if before_status == Some(Status::Dormant) {
            f.reactivations += 1;
            counts.push(("reactivated", 1));
        }
    }

    // The deal's end, told once.
    if before.is_none_or(|b| b.facts.outcome.is_none())
        && let Some(outcome) = &f.outcome
    {
        let result = outcome.deal.result();
        counts.push((result, 1));
        if let Some(score) = f.handoff_score {
            named.push((format!("band.{}.{result}", band(score)), 1));
        }
        if outcome.deal.won
            && let Some(cents) = outcome.deal.amount_cents
        {
            let currency = outcome.deal.currency.as_deref().unwrap_or("XXX");
            named.push((format!("won_amount.{currency}"), cents));
        }
    }

    let dims = dims(before, after);
    if before.is_none() {
        tally.add(after.created_at.date_naive(), &dims, "captured", 1);
    }
    for (name, delta) in counts {
        tally.add(day, &dims, name, delta);
    }
    for (name, delta) in named {
        tally.add(day, &dims, &name, delta);
    }
    for (name, secs) in durations {
        tally.duration(day, &dims, &name, secs);
    }
    tally
}

/// The facts a lead stored before leads kept them shows: it was captured
/// from its source, has had its status since its last change, and reached
/// the hand-off tier, was handed off, contacted, qualified or converted if
/// its status or owner says so (when is unknown: its last change).
fn backfilled(rules: &RuleSet, lead: &Lead) -> Facts {
    use Status as S;
    let source = source_name(&lead.profile);
    let known = |happened: bool| happened.then_some(lead.updated_at);
    let handed = lead.owner.is_some() || lead.previous_owner.is_some() || lead.sla.is_some();
    let tier = rules.scoring.tier_index(&lead.tier);
    let contacted = matches!(lead.status, S::Working | S::Qualified | S::Converted);
    Facts {
        first_touch: Some(source.clone()),
        last_touch: Some(source),
        status_since: Some(lead.updated_at),
        reached_handoff_at: known(handed || tier.is_some_and(|t| rules.scoring.is_handoff(t))),
        first_handoff_at: lead.sla.map(|c| c.handed_off_at).or(known(handed)),
        first_deadline: lead.sla.map(|c| c.deadline),
        handoff_score: handed.then_some(lead.score),
        first_contact_at: known(contacted),
        qualified_at: known(matches!(lead.status, S::Qualified | S::Converted)),
        converted_at: known(lead.status == S::Converted),
        disqualified_at: known(lead.status == S::Disqualified),
        ..Facts::default()
    }
}

/// What the `all` roll-ups of every day should hold, counted again from the
/// leads' own facts: the check that the roll-ups, kept a decision at a time,
/// agree with the leads (every count of [`account`] that a lead's facts keep).
pub fn recount<'a>(leads: impl IntoIterator<Item = &'a Lead>) -> BTreeMap<String, i64> {
    let mut c: BTreeMap<String, i64> = BTreeMap::new();
    let mut add = |name: String, n: i64| {
        if n != 0 {
            *c.entry(name).or_default() += n;
        }
    };
    for lead in leads {
        let f = &lead.facts;
        let once = |t: Option<DateTime<Utc>>| i64::from(t.is_some());
        add("captured".into(), 1);
        add("reached_handoff".into(), once(f.reached_handoff_at));
        add("handoffs".into(), f.handoffs.into());
        add("first_handoffs".into(), once(f.first_handoff_at));
        add("sla_met".into(), f.sla_met.into());
        add("sla_breached".into(), f.sla_breached.into());
        add("escalations".into(), f.escalations.into());
        add("reassignments".into(), f.reassignments.into());
        add("first_contacts".into(), once(f.first_contact_at));
        add("qualified".into(), once(f.qualified_at));
        add("converted".into(), once(f.converted_at));
        add("disqualified".into(), f.disqualifications.into());
        add("dormant".into(), f.dormancies.into());
        add("reactivated".into(), f.reactivations.into());
        if let Some(o) = &f.outcome {
            add(o.deal.result().into(), 1);
        }
        if let (Some(wall), Some(business)) = (f.speed_secs, f.speed_business_secs) {
            add("speed.sum".into(), wall.max(0));
            add(format!("speed.b.{}", bucket(wall.max(0))), 1);
            add("speed_business.sum".into(), business.max(0));
            add(format!("speed_business.b.{}", bucket(business.max(0))), 1);
        }
        if let Some(score) = f.handoff_score {
            add(format!("band.{}.handoffs", band(score)), 1);
        }
    }
    c
}

/// The counters of `recount` summed over roll-ups of the `all` dimension.
pub fn totals<'a>(
    rollups: impl IntoIterator<Item = (&'a RollupKey, &'a BTreeMap<String, i64>)>,
) -> BTreeMap<String, i64> {
    let kept = recount_names();
    let mut c: BTreeMap<String, i64> = BTreeMap::new();
    for (key, counts) in rollups {
        if key.dim != Dim::All {
            continue;
        }
        for (name, n) in counts {
            if kept(name) {
                *c.entry(name.clone()).or_default() += n;
            }
        }
    }
    c.retain(|_, n| *n != 0);
    c
}

/// Whether `recount` counts a counter of this name.
fn recount_names() -> impl Fn(&str) -> bool {
    const NAMES: [&str; 17] = [
        "captured",
        "reached_handoff",
        "handoffs",
        "first_handoffs",
        "sla_met",
        "sla_breached",
        "escalations",
        "reassignments",
        "first_contacts",
        "qualified",
        "converted",
        "disqualified",
        "dormant",
        "reactivated",
        "won",
        "lost",
        "speed.sum",
    ];
    |name: &str| {
        NAMES.contains(&name)
            || name.starts_with("speed.b.")
            || name.starts_with("speed_business.")
            || (name.starts_with("band.") && name.ends_with(".handoffs"))
    }
}

/// The roll-ups a decision's counts go to: `all`, and the lead's rep (its
/// owner, or the one it just left), pool, tier and first-touch source.
fn dims(before: Option<&Lead>, after: &Lead) -> Vec<Dim> {
    let mut dims = vec![Dim::All];
    let owner = after.owner.as_ref().or_else(|| before.and_then(|b| b.owner.as_ref()));
    if let Some(rep) = owner {
        dims.push(Dim::Rep(rep.clone()));
    }
    if let Some(pool) = after.pool.as_ref().or_else(|| before.and_then(|b| b.pool.as_ref())) {
        dims.push(Dim::Pool(pool.clone()));
    }
    if !after.tier.is_empty() {
        dims.push(Dim::Tier(after.tier.clone()));
    }
    dims.push(Dim::Source(after.facts.first_touch.clone().unwrap_or_else(|| "(none)".to_owned())));
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_bound_and_everything_longer_is_more() {
        assert_eq!(bucket(0), "1m");
        assert_eq!(bucket(60), "1m");
        assert_eq!(bucket(61), "2m");
        assert_eq!(bucket(299), "5m");
        assert_eq!(bucket(604_800), "7d");
        assert_eq!(bucket(604_801), "more");
    }

    #[test]
    fn bands_round_down_also_below_zero() {
        assert_eq!(band(0), 0);
        assert_eq!(band(9), 0);
        assert_eq!(band(10), 10);
        assert_eq!(band(-1), -10);
        assert_eq!(band(-10), -10);
    }

    #[test]
    fn a_hostile_source_is_filed_under_a_bounded_plain_name() {
        let mut p = Profile::new(crate::lead::Email::parse("jo@example.com").unwrap());
        assert_eq!(source_name(&p), "(none)");
        p.utm_source = Some("Google Ads".into());
        assert_eq!(source_name(&p), "google_ads");
        p.source = Some(format!("<script>{}", "x".repeat(100)));
        let name = source_name(&p);
        assert_eq!(name.chars().count(), MAX_SOURCE_LEN);
        assert!(name.starts_with("_script_"));
        p.source = Some("Webinar#all".into());
        assert_eq!(source_name(&p), "webinar_all", "a source cannot name another dimension's key");
        p.source = Some("jo@example.com".into());
        assert_eq!(source_name(&p), "(other)", "never an address");
    }

    #[test]
    fn a_deal_s_outcome_reads_only_a_result_an_amount_and_a_real_currency() {
        let won = DealOutcome::parse(" won ", Some("1200.505"), Some("eur")).unwrap();
        assert_eq!((won.won, won.amount_cents, won.currency.as_deref()), (true, Some(120_051), Some("EUR")));
        let lost = DealOutcome::parse("lost", None, Some("")).unwrap();
        assert_eq!((lost.won, lost.amount_cents, lost.currency), (false, None, None));
        for (result, amount, currency) in [
            ("maybe", None, None),
            ("WON", None, None),
            ("won", Some("-1"), None),
            ("won", Some("NaN"), None),
            ("won", Some("inf"), None),
            ("won", Some("1e20"), None),
            ("won", Some("12,000"), None),
            ("won", None, Some("XYZ")),
            ("won", None, Some("EURO")),
            ("won", None, Some("€")),
        ] {
            assert!(DealOutcome::parse(result, amount, currency).is_err(), "{result} {amount:?} {currency:?}");
        }
    }

    #[test]
    fn dimension_keys_read_back() {
        for d in
            [Dim::All, Dim::Rep("ana".into()), Dim::Pool("p".into()), Dim::Tier("hot".into()), Dim::Source("x".into())]
        {
            assert_eq!(Dim::parse(&d.key()), Some(d));
        }
        assert_eq!(Dim::parse("week#1"), None);
        assert_eq!(Dim::parse("rep"), None);
    }

    #[test]
    fn merging_tallies_adds_and_drops_what_cancels() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let mut a = Tally::default();
        a.add(day, &[Dim::All], "handoffs", 1);
        let mut b = Tally::default();
        b.add(day, &[Dim::All, Dim::Rep("ana".into())], "handoffs", 2);
        b.add(day, &[Dim::All], "x", 0);
        a.merge(&b);
        let all = &a.counts[&RollupKey { day, dim: Dim::All }];
        assert_eq!(all["handoffs"], 3);
        assert!(!all.contains_key("x"));
        let mut c = Tally::default();
        c.add(day, &[Dim::All, Dim::Rep("ana".into())], "handoffs", -3);
        c.add(day, &[Dim::Rep("ana".into())], "handoffs", 1);
        a.merge(&c);
        assert!(a.counts.is_empty(), "{a:?}");
    }
}

#[cfg(test)]
mod life_tests {
    use std::path::Path;

    use chrono::Duration;

    use super::*;
    use crate::lead::{Bant, Email};
    use crate::machine::{Input, Need, Outcome as Answer, Refusal, TeamState, decide};
    use crate::rules::lifecycle::{LifecycleError, SalesEvent};

    fn rules() -> RuleSet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/conformance-rules");
        RuleSet::load_dir(&dir).expect("conformance rules")
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-03-02T14:00:00Z".parse::<DateTime<Utc>>().expect("time") + Duration::minutes(minutes)
    }

    /// Decides `input` with an empty team and the pool's first turn.
    fn step(rules: &RuleSet, lead: Option<&Lead>, input: &Input<'_>, now: DateTime<Utc>) -> Result<Lead, Refusal> {
        let mut team = TeamState::default();
        loop {
            match decide(rules, lead, input, Some(&team), now)? {
                Answer::Decided(d) => {
                    let mut total = TALLY.with(|t| t.take());
                    total.merge(&d.rollup);
                    TALLY.with(|t| t.replace(total));
                    return Ok(d.lead);
                }
                Answer::Needs(Need::Turn { pool }) => team.turn = Some((pool, 0)),
                Answer::Needs(need) => panic!("asked again for {need:?}"),
                Answer::Unchanged => panic!("nothing changed"),
            }
        }
    }

    thread_local! {
        static TALLY: std::cell::RefCell<Tally> = std::cell::RefCell::new(Tally::default());
    }

    fn sales(rules: &RuleSet, lead: &Lead, event: SalesEvent, happened: i64, now: i64) -> Result<Lead, Refusal> {
        step(rules, Some(lead), &Input::Sales { event: &event, happened_at: at(happened), event_id: None }, at(now))
    }

    fn vp(email: &str) -> Profile {
        let mut p = Profile::new(Email::parse(email).expect("email"));
        p.job_title = Some("VP Sales".into());
        p.source = Some("Webinar".into());
        p
    }

    fn count(dim: Dim, name: &str) -> i64 {
        let day = at(0).date_naive();
        TALLY.with(|t| t.borrow().counts.get(&RollupKey { day, dim }).and_then(|c| c.get(name)).copied().unwrap_or(0))
    }

    #[test]
    fn a_lead_s_life_moves_its_facts_and_counts_each_figure_once() {
        TALLY.with(|t| t.replace(Tally::default()));
        let rules = rules();
        let profile = vp("jo@example.com");
        let lead = step(&rules, None, &Input::FormPost { profile: &profile, warnings: &[] }, at(0)).unwrap();
        assert_eq!(lead.owner.as_deref(), Some("rio"));
        let f = &lead.facts;
        assert_eq!((f.first_touch.as_deref(), f.first_handoff_at, f.handoffs), (Some("webinar"), Some(at(0)), 1));
        assert_eq!(f.first_deadline, Some(at(60)));
        assert_eq!(f.handoff_score, Some(lead.score));

        // The SLA check, past the deadline: the breach is counted once.
        let lead = step(&rules, Some(&lead), &Input::SlaTick, at(90)).unwrap();
        assert_eq!((lead.facts.sla_breached, lead.facts.escalations), (1, 2));
        // Contacted (as it happened at +95, told at +100): speed to lead from
        // the hand-off to the contact, and no second breach.
        let lead = sales(&rules, &lead, SalesEvent::Contacted, 95, 100).unwrap();
        let f = &lead.facts;
        assert_eq!((f.first_contact_at, f.speed_secs, f.sla_breached, f.sla_met), (Some(at(95)), Some(5700), 1, 0));
        assert_eq!(f.speed_business_secs, Some(5700), "no business hours: business time is wall time");
        let bant = Bant { budget: Some(true), authority: Some(true), need: Some(true), timeline: Some(true) };
        let lead = sales(&rules, &lead, SalesEvent::Qualified(bant), 110, 110).unwrap();
        let lead = sales(&rules, &lead, SalesEvent::Converted, 120, 120).unwrap();
        let deal = DealOutcome::parse("won", Some("1200.50"), Some("eur")).unwrap();
        let lead = sales(&rules, &lead, SalesEvent::Outcome(deal.clone()), 130, 130).unwrap();
        assert_eq!(lead.facts.outcome.as_ref().map(|o| &o.deal), Some(&deal));
        assert_eq!((lead.facts.qualified_at, lead.facts.converted_at), (Some(at(110)), Some(at(120))));
        let again = sales(&rules, &lead, SalesEvent::Outcome(deal), 140, 140);
        assert_eq!(again.unwrap_err(), Refusal::Rejected(LifecycleError::OutcomeKnown("won")));

        // A second lead, contacted in time.
        let other = step(&rules, None, &Input::FormPost { profile: &vp("al@example.com"), warnings: &[] }, at(0));
        let other = sales(&rules, &other.unwrap(), SalesEvent::Contacted, 10, 10).unwrap();
        assert_eq!((other.facts.sla_met, other.facts.sla_breached, other.facts.speed_secs), (1, 0, Some(600)));

        let band = format!("band.{}", band(lead.facts.handoff_score.unwrap()));
        for dim in [Dim::All, Dim::Rep("rio".into()), Dim::Tier(lead.tier.clone()), Dim::Source("webinar".into())] {
            assert_eq!(count(dim.clone(), "captured"), 2, "{dim}");
            assert_eq!(count(dim.clone(), "won"), 1, "{dim}");
        }
        let all = |name: &str| count(Dim::All, name);
        assert_eq!((all("handoffs"), all("first_handoffs"), all("reached_handoff")), (2, 2, 2));
        assert_eq!((all("sla_met"), all("sla_breached"), all("escalations")), (1, 1, 2));
        assert_eq!((all("first_contacts"), all("targeted"), all("within_target")), (2, 2, 1));
        assert_eq!((all("speed.sum"), all("speed.b.2h"), all("speed.b.10m")), (6300, 1, 1));
        assert_eq!((all("qualified"), all("converted"), all("won"), all("lost")), (1, 1, 1, 0));
        assert_eq!(all("won_amount.EUR"), 120_050);
        assert_eq!((all(&format!("{band}.handoffs")), all(&format!("{band}.converted"))), (2, 1));
        assert_eq!(all(&format!("{band}.won")), 1);
        let leads = [lead.clone(), other.clone()];
        TALLY.with(|t| assert_eq!(totals(t.borrow().counts.iter()), recount(&leads)));
        // Assigned 100 minutes, working 10, qualified 10.
        assert_eq!((all("time_in.assigned.sum"), all("time_in.working.sum")), (6000 + 600, 600));
        assert_eq!(all("time_in.qualified.b.10m"), 1);
    }

    #[test]
    fn a_breach_stands_when_the_contact_is_later_dated_before_the_deadline() {
        let rules = rules();
        let profile = vp("late@example.com");
        let lead = step(&rules, None, &Input::FormPost { profile: &profile, warnings: &[] }, at(0)).unwrap();
        let lead = step(&rules, Some(&lead), &Input::SlaTick, at(90)).unwrap();
        // The CRM says the call was at +50, before the +60 deadline.
        let lead = sales(&rules, &lead, SalesEvent::Contacted, 50, 95).unwrap();
        assert_eq!((lead.facts.sla_breached, lead.facts.sla_met), (1, 0), "one hand-off, counted once");
        assert_eq!(lead.facts.speed_secs, Some(50 * 60), "speed to lead is when the call happened");
    }

    #[test]
    fn a_clock_started_by_a_host_whose_clock_ran_ahead_does_not_stop_the_decision() {
        let rules = rules();
        let profile = vp("skew@example.com");
        // Handed off at +10 by a host ahead of this one, contacted at +5 here.
        let lead = step(&rules, None, &Input::FormPost { profile: &profile, warnings: &[] }, at(10)).unwrap();
        let lead = sales(&rules, &lead, SalesEvent::Contacted, 5, 5).unwrap();
        assert_eq!((lead.facts.sla_met, lead.facts.speed_secs), (1, Some(0)));
    }

    #[test]
    fn a_lead_stored_before_facts_counts_only_what_happens_next() {
        let rules = rules();
        let profile = vp("old@example.com");
        let mut lead = step(&rules, None, &Input::FormPost { profile: &profile, warnings: &[] }, at(0)).unwrap();
        lead.facts = Facts::default();
        TALLY.with(|t| t.replace(Tally::default()));
        let lead = sales(&rules, &lead, SalesEvent::Contacted, 10, 10).unwrap();
        assert_eq!(count(Dim::All, "reached_handoff"), 0, "reached before; not counted again");
        assert_eq!(count(Dim::All, "first_contacts"), 1);
        assert_eq!(lead.facts.first_touch.as_deref(), Some("webinar"));
        assert_eq!(lead.facts.status_since, Some(at(10)));
    }

    #[test]
    fn business_time_counts_only_open_hours() {
        let bh = crate::rules::sla::BusinessHours {
            timezone: crate::zone::Zone::utc(),
            days: [true, true, true, true, true, false, false],
            open: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            close: chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Friday 16:00 to Monday 10:00: one hour on Friday, one on Monday.
        assert_eq!(bh.between(t("2026-03-06T16:00:00Z"), t("2026-03-09T10:00:00Z")), 7200);
        assert_eq!(bh.between(t("2026-03-07T10:00:00Z"), t("2026-03-08T10:00:00Z")), 0, "a weekend");
        assert_eq!(bh.between(t("2026-03-09T10:00:00Z"), t("2026-03-09T09:00:00Z")), 0, "backwards");
        assert_eq!(bh.between(t("2026-03-09T08:00:00Z"), t("2026-03-10T18:00:00Z")), 16 * 3600);
    }
}
