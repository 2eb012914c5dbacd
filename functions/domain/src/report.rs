//! The figures of `leadflow report` and the dashboard, each a formula over
//! the daily roll-ups (see [`crate::facts`]): no lead is read.
//!
//! Every count is of things that happened in the period (a lead captured, a
//! first contact made, a deal won), each on the day it happened; rates divide
//! counts of the same period. Percentiles of durations come from fixed buckets
//! and are reported as the bucket's upper bound ("at most 15 minutes"); means
//! are exact.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::facts::{BUCKETS, Dim, RollupKey};
use crate::lead::Status;

/// What a report's rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Rep,
    Pool,
    Tier,
    Source,
    /// ISO weeks, named by their Monday.
    Week,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Rep => "rep",
            By::Pool => "pool",
            By::Tier => "tier",
            By::Source => "source",
            By::Week => "week",
        }
    }
}

impl FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        Ok(match s {
            "rep" => By::Rep,
            "pool" => By::Pool,
            "tier" => By::Tier,
            "source" => By::Source,
            "week" => By::Week,
            other => {
                return Err(format!("`{other}` is not a dimension; reports are by rep, pool, tier, source or week"));
            }
        })
    }
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A distribution of durations: how many, the 50th and 90th percentiles (as
/// the upper bound of their bucket; `None` past the last bound, or with no
/// durations) and the exact mean, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Durations {
    pub count: i64,
    pub p50_at_most_secs: Option<i64>,
    pub p90_at_most_secs: Option<i64>,
    pub mean_secs: Option<i64>,
}

impl Durations {
    fn of(counts: &BTreeMap<String, i64>, name: &str) -> Durations {
        let per_bucket: Vec<(i64, i64)> = BUCKETS
            .iter()
            .map(|(bound, label)| (*bound, counts.get(&format!("{name}.b.{label}")).copied().unwrap_or(0)))
            .collect();
        let count: i64 = per_bucket.iter().map(|(_, n)| n).sum();
        let sum = counts.get(&format!("{name}.sum")).copied().unwrap_or(0);
        let percentile = |p: i64| -> Option<i64> {
            if count == 0 {
                return None;
            }
            // The smallest bucket holding at least p% of the durations.
            let rank = ((count * p + 99) / 100).max(1);
            let mut seen = 0;
            for (bound, n) in &per_bucket {
                seen += n;
                if seen >= rank {
                    return (*bound != i64::MAX).then_some(*bound);
                }
            }
            None
        };
        Durations {
            count,
            p50_at_most_secs: percentile(50),
            p90_at_most_secs: percentile(90),
            mean_secs: (count > 0).then(|| sum / count),
        }
    }
}

/// One step of the funnel, and its count over the step before.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub count: i64,
    pub rate_from_previous: Option<f64>,
}

/// Hand-offs in one score band (by the score at the lead's first hand-off),
/// and what became of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    /// The band's lowest score; it is [`crate::facts::BAND_WIDTH`] wide.
    pub band: i64,
    pub handoffs: i64,
    pub converted: i64,
    pub won: i64,
    pub lost: i64,
    /// Converted over handed off.
    pub conversion_rate: Option<f64>,
    /// Won over won and lost.
    pub win_rate: Option<f64>,
}

/// Every figure of one row of a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub captured: i64,
    pub reached_handoff: i64,
    pub handoffs: i64,
    pub first_handoffs: i64,
    pub first_contacts: i64,
    /// First hand-off to first contact, wall time.
    pub speed_to_lead: Durations,
    /// The same in business time.
    pub speed_to_lead_business: Durations,
    /// First contacts by the first hand-off's deadline, over first contacts
    /// of leads whose tier has a deadline.
    pub within_target: Option<f64>,
    pub sla_met: i64,
    pub sla_breached: i64,
    /// Breached over met and breached hand-offs.
    pub sla_breach_rate: Option<f64>,
    pub escalations: i64,
    pub reassignments: i64,
    /// Leads that went to the unassigned queue, and how long they waited there.
    pub unassigned: i64,
    pub unassigned_time: Durations,
    pub qualified: i64,
    pub converted: i64,
    pub won: i64,
    pub lost: i64,
    pub funnel: Vec<Step>,
    /// Time spent in each status, counted when the lead left it.
    pub time_in_status: BTreeMap<&'static str, Durations>,
    pub disqualified: i64,
    pub disqualified_by_reason: BTreeMap<String, i64>,
    pub dormant: i64,
    pub reactivated: i64,
    pub calibration: Vec<Band>,
    /// Won deals' amounts by currency, in major units.
    pub won_amount: BTreeMap<String, f64>,
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Figures {
    /// The figures of summed roll-up counts.
    pub fn of(c: &BTreeMap<String, i64>) -> Figures {
        let n = |name: &str| c.get(name).copied().unwrap_or(0);
        let funnel_counts = [
            ("captured", n("captured")),
            ("reached_handoff", n("reached_handoff")),
            ("qualified", n("qualified")),
            ("converted", n("converted")),
            ("won", n("won")),
        ];
        let funnel = funnel_counts
            .iter()
            .enumerate()
            .map(|(i, (step, count))| Step {
                step,
                count: *count,
                rate_from_previous: i.checked_sub(1).and_then(|p| ratio(*count, funnel_counts[p].1)),
            })
            .collect();
        let time_in_status = Status::ALL
            .iter()
            .map(|s| (s.as_str(), Durations::of(c, &format!("time_in.{}", s.as_str()))))
            .filter(|(_, d)| d.count > 0)
            .collect();
        let mut bands: BTreeMap<i64, [i64; 4]> = BTreeMap::new();
        let mut disqualified_by_reason = BTreeMap::new();
        let mut won_amount = BTreeMap::new();
        for (name, value) in c {
            if let Some(rest) = name.strip_prefix("band.")
                && let Some((band, what)) = rest.rsplit_once('.')
                && let Ok(band) = band.parse::<i64>()
            {
                let slot = match what {
                    "handoffs" => 0,
                    "converted" => 1,
                    "won" => 2,
                    "lost" => 3,
                    _ => continue,
                };
                bands.entry(band).or_default()[slot] += value;
            } else if let Some(reason) = name.strip_prefix("disqualified.") {
                disqualified_by_reason.insert(reason.to_owned(), *value);
            } else if let Some(currency) = name.strip_prefix("won_amount.") {
                won_amount.insert(currency.to_owned(), *value as f64 / 100.0);
            }
        }
        let calibration = bands
            .into_iter()
            .map(|(band, [handoffs, converted, won, lost])| Band {
                band,
                handoffs,
                converted,
                won,
                lost,
                conversion_rate: ratio(converted, handoffs),
                win_rate: ratio(won, won + lost),
            })
            .collect();
        Figures {
            captured: n("captured"),
            reached_handoff: n("reached_handoff"),
            handoffs: n("handoffs"),
            first_handoffs: n("first_handoffs"),
            first_contacts: n("first_contacts"),
            speed_to_lead: Durations::of(c, "speed"),
            speed_to_lead_business: Durations::of(c, "speed_business"),
            within_target: ratio(n("within_target"), n("targeted")),
            sla_met: n("sla_met"),
            sla_breached: n("sla_breached"),
            sla_breach_rate: ratio(n("sla_breached"), n("sla_met") + n("sla_breached")),
            escalations: n("escalations"),
            reassignments: n("reassignments"),
            unassigned: n("unassigned"),
            unassigned_time: Durations::of(c, "time_in.unassigned"),
            qualified: n("qualified"),
            converted: n("converted"),
            won: n("won"),
            lost: n("lost"),
            funnel,
            time_in_status,
            disqualified: n("disqualified"),
            disqualified_by_reason,
            dormant: n("dormant"),
            reactivated: n("reactivated"),
            calibration,
            won_amount,
        }
    }
}

/// One row: its name (a rep, pool, tier, source or week; `all` for the total).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub figures: Figures,
}

/// A report over the days `from` to `to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Option<By>,
    /// One row per value of `by`, in order (none without `by`).
    pub rows: Vec<Row>,
    pub total: Row,
}

/// The ISO week a day is in, named by its Monday.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// The report of `rollups` (any order; those outside `from`..=`to` are left out).
pub fn report<'a>(
    rollups: impl IntoIterator<Item = (&'a RollupKey, &'a BTreeMap<String, i64>)>,
    from: NaiveDate,
    to: NaiveDate,
    by: Option<By>,
) -> Report {
    report_within(rollups, from, to, by, &Dim::All)
}

/// The report of the leads under one dimension value (`within`: a rep, pool,
/// tier or source; [`Dim::All`] for every lead). Rows by week are its weeks;
/// rows by another dimension are that dimension's, for every lead.
pub fn report_within<'a>(
    rollups: impl IntoIterator<Item = (&'a RollupKey, &'a BTreeMap<String, i64>)>,
    from: NaiveDate,
    to: NaiveDate,
    by: Option<By>,
    within: &Dim,
) -> Report {
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    let mut groups: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let add = |into: &mut BTreeMap<String, i64>, counts: &BTreeMap<String, i64>| {
        for (name, n) in counts {
            *into.entry(name.clone()).or_default() += n;
        }
    };
    for (key, counts) in rollups {
        if key.day < from || key.day > to {
            continue;
        }
        if key.dim == *within {
            add(&mut total, counts);
        }
        let group = match (by, &key.dim) {
            (Some(By::Week), dim) if dim == within => Some(week_of(key.day).to_string()),
            (Some(By::Rep), Dim::Rep(v))
            | (Some(By::Pool), Dim::Pool(v))
            | (Some(By::Tier), Dim::Tier(v))
            | (Some(By::Source), Dim::Source(v)) => Some(v.clone()),
            _ => None,
        };
        if let Some(group) = group {
            add(groups.entry(group).or_default(), counts);
        }
    }
    Report {
        from,
        to,
        by,
        rows: groups.into_iter().map(|(name, c)| Row { name, figures: Figures::of(&c) }).collect(),
        total: Row { name: within.value().to_owned(), figures: Figures::of(&total) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("day")
    }

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// A hand-computed table: ten first contacts, 4 within a minute, 3 at
    /// most 5 minutes, 2 at most an hour and 1 after more than a week.
    #[test]
    fn percentiles_are_the_bound_of_the_bucket_that_holds_them_and_means_are_exact() {
        let c = counts(&[
            ("speed.b.1m", 4),
            ("speed.b.5m", 3),
            ("speed.b.1h", 2),
            ("speed.b.more", 1),
            ("speed.sum", 4 * 30 + 3 * 200 + 2 * 1800 + 700_000),
        ]);
        let d = Durations::of(&c, "speed");
        assert_eq!(d.count, 10);
        // The 5th of 10 is in the second bucket; the 9th in the third.
        assert_eq!((d.p50_at_most_secs, d.p90_at_most_secs), (Some(300), Some(3600)));
        assert_eq!(d.mean_secs, Some((120 + 600 + 3600 + 700_000) / 10));
        let slow = Durations::of(&counts(&[("speed.b.more", 1), ("speed.sum", 1_000_000)]), "speed");
        assert_eq!((slow.p50_at_most_secs, slow.mean_secs), (None, Some(1_000_000)), "past the last bound");
        assert_eq!(Durations::of(&BTreeMap::new(), "speed"), Durations::default());
    }

    #[test]
    fn rates_divide_counts_of_the_period_and_are_absent_without_a_denominator() {
        let c = counts(&[
            ("captured", 200),
            ("reached_handoff", 50),
            ("qualified", 20),
            ("converted", 10),
            ("won", 4),
            ("lost", 4),
            ("sla_met", 45),
            ("sla_breached", 5),
            ("targeted", 40),
            ("within_target", 30),
            ("band.60.handoffs", 30),
            ("band.60.converted", 6),
            ("band.60.won", 3),
            ("band.60.lost", 1),
            ("band.-10.handoffs", 2),
            ("disqualified.no_budget", 3),
            ("won_amount.EUR", 120_050),
        ]);
        let f = Figures::of(&c);
        let rates: Vec<Option<f64>> = f.funnel.iter().map(|s| s.rate_from_previous).collect();
        assert_eq!(rates, [None, Some(0.25), Some(0.4), Some(0.5), Some(0.4)]);
        assert_eq!((f.sla_breach_rate, f.within_target), (Some(0.1), Some(0.75)));
        assert_eq!(f.calibration.len(), 2);
        assert_eq!(
            (f.calibration[0].band, f.calibration[0].conversion_rate, f.calibration[0].win_rate),
            (-10, Some(0.0), None)
        );
        assert_eq!((f.calibration[1].conversion_rate, f.calibration[1].win_rate), (Some(0.2), Some(0.75)));
        assert_eq!(f.disqualified_by_reason["no_budget"], 3);
        assert_eq!(f.won_amount["EUR"], 1200.5);
        assert_eq!(Figures::of(&BTreeMap::new()).sla_breach_rate, None);
    }

    #[test]
    fn rows_group_their_dimension_and_weeks_group_days_by_monday() {
        let k = |d: u32, dim: Dim| RollupKey { day: day(d), dim };
        let rows = [
            (k(2, Dim::All), counts(&[("captured", 1)])),
            (k(2, Dim::Rep("ana".into())), counts(&[("captured", 1)])),
            (k(8, Dim::All), counts(&[("captured", 2)])),
            (k(9, Dim::All), counts(&[("captured", 4)])),
            (k(9, Dim::Rep("ana".into())), counts(&[("captured", 3)])),
            (k(9, Dim::Rep("bo".into())), counts(&[("captured", 1)])),
            (k(20, Dim::All), counts(&[("captured", 100)])),
        ];
        let by_rep = report(rows.iter().map(|(k, c)| (k, c)), day(1), day(10), Some(By::Rep));
        let names: Vec<(&str, i64)> = by_rep.rows.iter().map(|r| (r.name.as_str(), r.figures.captured)).collect();
        assert_eq!(names, [("ana", 4), ("bo", 1)]);
        assert_eq!(by_rep.total.figures.captured, 7, "the 20th is outside the period");
        let by_week = report(rows.iter().map(|(k, c)| (k, c)), day(1), day(31), Some(By::Week));
        let weeks: Vec<(&str, i64)> = by_week.rows.iter().map(|r| (r.name.as_str(), r.figures.captured)).collect();
        // 2 March 2026 is a Monday; the 8th a Sunday.
        assert_eq!(weeks, [("2026-03-02", 3), ("2026-03-09", 4), ("2026-03-16", 100)]);
        assert!(report(rows.iter().map(|(k, c)| (k, c)), day(1), day(31), None).rows.is_empty());
        let ana =
            report_within(rows.iter().map(|(k, c)| (k, c)), day(1), day(31), Some(By::Week), &Dim::Rep("ana".into()));
        let weeks: Vec<(&str, i64)> = ana.rows.iter().map(|r| (r.name.as_str(), r.figures.captured)).collect();
        assert_eq!(weeks, [("2026-03-02", 1), ("2026-03-09", 3)]);
        assert_eq!((ana.total.name.as_str(), ana.total.figures.captured), ("ana", 4));
        assert_eq!(
            "team".parse::<By>().unwrap_err(),
            "`team` is not a dimension; reports are by rep, pool, tier, source or week"
        );
    }
}
