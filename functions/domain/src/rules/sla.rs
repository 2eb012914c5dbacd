//! `sla.yaml`: first-response deadlines per tier, business hours, escalation.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use marked_yaml::Node;
use serde::Serialize;

use super::diag::suggest;
use super::yaml::{Doc, child, item, optional};
use crate::duration::Duration;
use crate::zone::Zone;

/// When first-response clocks run.
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessHours {
    pub timezone: Zone,
    /// Monday first.
    pub days: [bool; 7],
    pub open: NaiveTime,
    pub close: NaiveTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Owner,
    Manager,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EscalationStep {
    /// Measured from the deadline.
    pub after: Duration,
    pub notify: Vec<Audience>,
    /// Move the lead to the next available member of its pool (never the same rep).
    pub reassign: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sla {
    /// By tier index; `None`: no SLA for that tier.
    pub first_response: Vec<Option<Duration>>,
    pub business_hours: Option<BusinessHours>,
    pub escalation: Vec<EscalationStep>,
    /// How often the managers are reminded of a lead still waiting unassigned
    /// (wall-clock time); `None`: only the first alert.
    pub unassigned_remind_every: Option<Duration>,
}

impl Sla {
    /// When the managers are next reminded of a lead unassigned at `now`.
    pub fn next_reminder(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let every = self.unassigned_remind_every?;
        Some(now + chrono::Duration::seconds(i64::try_from(every.as_secs()).unwrap_or(i64::MAX / 2)))
    }
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// How many days a clock may look ahead for business hours (at least one
/// business day per week is guaranteed at load).
const MAX_SCAN_DAYS: u32 = 3 * 366;

fn local_to_utc(tz: &Zone, at: NaiveDateTime) -> DateTime<Utc> {
    // In a daylight-saving gap the local time does not exist: the window
    // opens when the clocks have moved on, an hour later.
    tz.earliest(at).or_else(|| tz.earliest(at + chrono::Duration::hours(1))).unwrap_or_else(|| at.and_utc())
}

impl BusinessHours {
    fn day_secs(&self) -> u64 {
        (self.close - self.open).num_seconds().max(0) as u64
    }

    fn window(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.days[day.weekday().num_days_from_monday() as usize] {
            return None;
        }
        Some((
            local_to_utc(&self.timezone, day.and_time(self.open)),
            local_to_utc(&self.timezone, day.and_time(self.close)),
        ))
    }

    /// `start` plus `secs` of business time.
    pub fn add(&self, start: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
        let mut remaining = secs as i64;
        let mut day = self.timezone.local(start).date();
        for _ in 0..MAX_SCAN_DAYS {
            if let Some((open, close)) = self.window(day) {
                let from = open.max(start);
                if from <= close {
                    let available = (close - from).num_seconds();
                    if remaining <= available {
                        return from + chrono::Duration::seconds(remaining);
                    }
                    remaining -= available;
                }
            }
            day = match day.checked_add_days(Days::new(1)) {
                Some(d) => d,
                None => break,
            };
        }
        start + chrono::Duration::seconds(secs as i64)
    }
}

impl BusinessHours {
    /// The business time between `from` and `to`, in seconds (0 when `to` is
    /// not after `from`); spans longer than the scan limit count the rest as
    /// wall time.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = 0;
        let mut day = self.timezone.local(from).date();
        let last = self.timezone.local(to).date();
        for _ in 0..MAX_SCAN_DAYS {
            if let Some((open, close)) = self.window(day) {
                let (a, b) = (open.max(from), close.min(to));
                if b > a {
                    total += (b - a).num_seconds();
                }
            }
            if day >= last {
                return total;
            }
            day = match day.checked_add_days(Days::new(1)) {
                Some(d) => d,
                None => return total,
            };
        }
        let scanned_to = local_to_utc(&self.timezone, day.and_time(NaiveTime::MIN));
        total + (to - scanned_to.max(from)).num_seconds().max(0)
    }
}

impl Sla {
    /// The time between `from` and `to` as the first-response clock counts
    /// it: business time when business hours are set, else wall time; in
    /// seconds, 0 when `to` is not after `from`.
    pub fn elapsed_secs(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        match &self.business_hours {
            Some(bh) => bh.between(from, to),
            None => (to - from).num_seconds().max(0),
        }
    }

    /// `from` plus `d`, counting only business time when business hours are set
    /// (where a day, `1d`, is one business day of hours).
    pub fn elapse(&self, from: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        match &self.business_hours {
            Some(bh) => bh.add(from, d.secs_with_day(bh.day_secs())),
            None => from + chrono::Duration::seconds(d.as_secs() as i64),
        }
    }

    /// The first-response deadline of a lead of `tier` handed off at `handed_off_at`.
    pub fn deadline(&self, tier: usize, handed_off_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let d = (*self.first_response.get(tier)?)?;
        Some(self.elapse(handed_off_at, d))
    }

    /// When escalation step `step` is due, for a lead with this deadline.
    pub fn step_due(&self, step: usize, deadline: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.escalation.get(step).map(|s| self.elapse(deadline, s.after))
    }

    /// The steps due at `now` that have not fired yet (`fired` has a bit per step).
    pub fn due_steps(&self, deadline: DateTime<Utc>, now: DateTime<Utc>, fired: u64) -> Vec<usize> {
        (0..self.escalation.len().min(64))
            .filter(|i| fired & (1 << i) == 0)
            .filter(|i| self.step_due(*i, deadline).is_some_and(|due| due <= now))
            .collect()
    }

    /// When the next step not yet fired is due, if any (to index a lead by it).
    pub fn next_due(&self, deadline: DateTime<Utc>, fired: u64) -> Option<DateTime<Utc>> {
        (0..self.escalation.len().min(64))
            .filter(|i| fired & (1 << i) == 0)
            .filter_map(|i| self.step_due(i, deadline))
            .min()
    }
}

fn duration(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<Duration> {
    let text = doc.text(node, path)?;
    Duration::parse(&text).map_err(|e| doc.error(node.span(), path, e.to_string())).ok()
}

pub fn compile(doc: &mut Doc<'_>, root: &Node, tiers: Option<&[String]>) -> Option<Sla> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &super::schema::SLA.names());
    let errors_before = doc.diags.len();

    let mut first_response = vec![None; tiers.map_or(0, <[String]>::len)];
    if let Some(node) = doc.required(map, "first_response", "")
        && let Some(m) = doc.map(node, "first_response")
    {
        for (tier, value) in m.iter() {
            let path = child("first_response", tier.as_str());
            let d = duration(doc, value, &path);
            let Some(tiers) = tiers else { continue };
            match tiers.iter().position(|t| t == tier.as_str()) {
                Some(ix) => first_response[ix] = d,
                None => doc.error_hint(
                    tier.span(),
                    &path,
                    format!("`{}` is not a tier of scoring.yaml; tiers are {}", tier.as_str(), tiers.join(", ")),
                    suggest(tier.as_str(), tiers.iter().map(String::as_str)),
                ),
            }
        }
    }

    let business_hours = optional(map, "business_hours").and_then(|node| {
        let m = doc.map(node, "business_hours")?;
        doc.only_keys(m, "business_hours", &super::schema::BUSINESS_HOURS.names());
        let timezone = doc.required(m, "timezone", "business_hours").and_then(|n| {
            let name = doc.text(n, "business_hours.timezone")?;
            match Zone::parse(&name) {
                Some(tz) => Some(tz),
                None => {
                    doc.error(
                        n.span(),
                        "business_hours.timezone",
                        format!("unknown time zone `{name}` (use an IANA name like Europe/Berlin)"),
                    );
                    None
                }
            }
        });
        let mut days = [false; 7];
        let days_ok =
            doc.required(m, "days", "business_hours").and_then(|n| doc.seq(n, "business_hours.days")).map(|seq| {
                let mut ok = true;
                for (i, d) in seq.iter().enumerate() {
                    let p = item("business_hours.days", i);
                    let Some(name) = doc.text(d, &p) else {
                        ok = false;
                        continue;
                    };
                    match WEEKDAYS.iter().position(|w| w.eq_ignore_ascii_case(&name)) {
                        Some(ix) => days[ix] = true,
                        None => {
                            doc.error_hint(
                                d.span(),
                                &p,
                                format!("`{name}` is not a day; use mon, tue, wed, thu, fri, sat, sun"),
                                suggest(&name, WEEKDAYS),
                            );
                            ok = false;
                        }
                    }
                }
                if ok && !days.contains(&true) {
                    doc.error(seq.span(), "business_hours.days", "at least one day is required");
                    ok = false;
                }
                ok
            });
        let hours = doc.required(m, "hours", "business_hours").and_then(|n| {
            let text = doc.text(n, "business_hours.hours")?;
            let parsed = text.split_once('-').and_then(|(a, b)| {
                let open = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
                let close = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
                (open < close).then_some((open, close))
            });
            if parsed.is_none() {
                doc.error(
                    n.span(),
                    "business_hours.hours",
                    format!("`{text}` is not a range like \"09:00-17:00\" within one day"),
                );
            }
            parsed
        });
        match (timezone, days_ok, hours) {
            (Some(timezone), Some(true), Some((open, close))) => Some(BusinessHours { timezone, days, open, close }),
            _ => None,
        }
    });

    let mut escalation = Vec::new();
    if let Some(node) = optional(map, "escalation")
        && let Some(seq) = doc.seq(node, "escalation")
    {
        if seq.len() > 64 {
            doc.error(seq.span(), "escalation", "at most 64 escalation steps");
        }
        for (i, step) in seq.iter().enumerate() {
            let path = item("escalation", i);
            let Some(m) = doc.map(step, &path) else { continue };
            doc.only_keys(m, &path, &super::schema::ESCALATION_STEP.names());
            let after = doc.required(m, "after", &path).and_then(|n| duration(doc, n, &child(&path, "after")));
            let mut notify = Vec::new();
            if let Some(n) = optional(m, "notify")
                && let Some(list) = doc.seq(n, &child(&path, "notify"))
            {
                for (j, who) in list.iter().enumerate() {
                    let p = item(&child(&path, "notify"), j);
                    match doc.text(who, &p).as_deref() {
                        Some("owner") => notify.push(Audience::Owner),
                        Some("manager") => notify.push(Audience::Manager),
                        Some(other) => doc.error_hint(
                            who.span(),
                            &p,
                            format!("`{other}` is not owner or manager"),
                            suggest(other, ["owner", "manager"]),
                        ),
                        None => {}
                    }
                }
            }
            let reassign = optional(m, "reassign").map_or(Some(false), |n| doc.boolean(n, &child(&path, "reassign")));
            if notify.is_empty() && reassign == Some(false) {
                doc.error(m.span(), &path, "a step needs `notify` or `reassign: true`");
            }
            if let (Some(after), Some(reassign)) = (after, reassign) {
                escalation.push(EscalationStep { after, notify, reassign });
            }
        }
    }

    let mut unassigned_remind_every = None;
    if let Some(node) = optional(map, "unassigned")
        && let Some(m) = doc.map(node, "unassigned")
    {
        doc.only_keys(m, "unassigned", &super::schema::UNASSIGNED.names());
        if let Some(n) = doc.required(m, "remind_every", "unassigned") {
            unassigned_remind_every = duration(doc, n, "unassigned.remind_every");
            if unassigned_remind_every.is_some_and(|d| d.as_secs() < 60) {
                doc.error(n.span(), "unassigned.remind_every", "remind at most once a minute (`1m` or more)");
            }
        }
    }

    if doc.diags.len() > errors_before {
        return None;
    }
    Some(Sla { first_response, business_hours, escalation, unassigned_remind_every })
}
