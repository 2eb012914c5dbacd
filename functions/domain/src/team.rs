//! The team at runtime: availability, away dates and capacity that managers
//! change without a deploy, layered over `routing.yaml` (which still says who
//! exists and the pools). Each rep's settings are stored with the rep's
//! open-lead count and read with it by every routing decision.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::rules::routing::Rep;

/// What a manager changed about a rep, each field overriding `routing.yaml`'s
/// when present, and who changed it last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Replaces `routing.yaml`'s away ranges (inclusive dates, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<Vec<(NaiveDate, NaiveDate)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// A rep as routing sees them today: `routing.yaml` with the runtime settings over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub active: bool,
    pub away: Vec<(NaiveDate, NaiveDate)>,
    pub capacity: Option<u32>,
}

impl Effective {
    pub fn of(rep: &Rep, settings: Option<&RepSettings>) -> Effective {
        Effective {
            active: settings.and_then(|s| s.active).unwrap_or(rep.active),
            away: settings.and_then(|s| s.away.clone()).unwrap_or_else(|| rep.away.clone()),
            capacity: settings.and_then(|s| s.capacity).or(rep.capacity),
        }
    }

    pub fn is_away(&self, today: NaiveDate) -> bool {
        self.away.iter().any(|(from, to)| *from <= today && today <= *to)
    }
}

/// A change to a rep, as a manager or `leadflow team` asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamChange {
    /// Away from `from` to `to` inclusive, added to the rep's ranges.
    Away {
        from: NaiveDate,
        to: NaiveDate,
    },
    /// Back today: every range that covers today (or later days of it) ends yesterday.
    Back,
    Capacity(u32),
    Active(bool),
    /// Every runtime setting dropped: `routing.yaml` again.
    Reset,
}

/// Why a change cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TeamChangeError {
    #[error("an away range must not end before it starts ({from} to {to})")]
    Backwards { from: NaiveDate, to: NaiveDate },
    #[error("an away range must not end in the past ({to} is before {today})")]
    Past { to: NaiveDate, today: NaiveDate },
    #[error("capacity must be between 1 and 10000 (not {0})")]
    Capacity(u32),
}

/// The settings after `change`, made by `by` at `now`; `None`: none left (as `routing.yaml`).
pub fn apply(
    rep: &Rep,
    current: Option<&RepSettings>,
    change: &TeamChange,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<RepSettings>, TeamChangeError> {
    let today = now.date_naive();
    let effective = Effective::of(rep, current);
    let mut next = current.cloned().unwrap_or(RepSettings {
        active: None,
        away: None,
        capacity: None,
        changed_by: String::new(),
        changed_at: now,
    });
    match change {
        TeamChange::Away { from, to } => {
            if to < from {
                return Err(TeamChangeError::Backwards { from: *from, to: *to });
            }
            if *to < today {
                return Err(TeamChangeError::Past { to: *to, today });
            }
            let mut away = effective.away;
            away.push((*from, *to));
            away.sort();
            next.away = Some(away);
        }
        TeamChange::Back => {
            let yesterday = today.pred_opt().unwrap_or(today);
            let away: Vec<(NaiveDate, NaiveDate)> = effective
                .away
                .into_iter()
                .filter_map(|(from, to)| {
                    if from > today || to < today {
                        Some((from, to))
                    } else if from < today {
                        Some((from, yesterday))
                    } else {
                        None
                    }
                })
                .collect();
            next.away = Some(away);
        }
        TeamChange::Capacity(c) => {
            if !(1..=10_000).contains(c) {
                return Err(TeamChangeError::Capacity(*c));
            }
            next.capacity = Some(*c);
        }
        TeamChange::Active(a) => next.active = Some(*a),
        TeamChange::Reset => return Ok(None),
    }
    // Ranges over and done are dropped, so the settings do not grow without end.
    if let Some(away) = next.away.as_mut() {
        away.retain(|(_, to)| *to >= today.pred_opt().unwrap_or(today));
    }
    next.changed_by = by.to_owned();
    next.changed_at = now;
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Email;

    fn rep() -> Rep {
        Rep {
            id: "dan".into(),
            name: "Dan".into(),
            email: Email::parse("dan@example.com").unwrap(),
            phone: None,
            capacity: Some(25),
            manager: None,
            active: true,
            away: vec![(day("2026-12-21"), day("2027-01-01"))],
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn settings_override_routing_yaml_field_by_field() {
        let now = at("2026-12-01T10:00:00Z");
        let s = apply(&rep(), None, &TeamChange::Capacity(5), "max", now).unwrap().unwrap();
        assert_eq!((s.capacity, s.active, s.away.as_ref()), (Some(5), None, None));
        assert_eq!((s.changed_by.as_str(), s.changed_at), ("max", now));
        let e = Effective::of(&rep(), Some(&s));
        assert_eq!((e.capacity, e.active, e.away.len()), (Some(5), true, 1), "away still from routing.yaml");
        let s = apply(&rep(), Some(&s), &TeamChange::Active(false), "mia", now).unwrap().unwrap();
        assert_eq!((s.capacity, s.active, s.changed_by.as_str()), (Some(5), Some(false), "mia"));
        assert_eq!(apply(&rep(), Some(&s), &TeamChange::Reset, "mia", now).unwrap(), None);
    }

    #[test]
    fn away_adds_a_range_and_back_ends_the_one_under_way_today() {
        let now = at("2026-12-23T10:00:00Z");
        assert!(Effective::of(&rep(), None).is_away(now.date_naive()));
        let back = apply(&rep(), None, &TeamChange::Back, "max", now).unwrap().unwrap();
        assert_eq!(back.away, Some(vec![(day("2026-12-21"), day("2026-12-22"))]), "ends yesterday");
        assert!(!Effective::of(&rep(), Some(&back)).is_away(now.date_naive()));
        let later = TeamChange::Away { from: day("2027-02-01"), to: day("2027-02-05") };
        let s = apply(&rep(), Some(&back), &later, "max", now).unwrap().unwrap();
        assert_eq!(s.away.as_ref().map(Vec::len), Some(2));
        // Back on a range that starts today drops it; ranges to come stay.
        let today = TeamChange::Away { from: day("2026-12-23"), to: day("2026-12-24") };
        let s = apply(&rep(), Some(&s), &today, "max", now).unwrap().unwrap();
        let s = apply(&rep(), Some(&s), &TeamChange::Back, "max", now).unwrap().unwrap();
        assert_eq!(s.away, Some(vec![(day("2026-12-21"), day("2026-12-22")), (day("2027-02-01"), day("2027-02-05"))]));
    }

    #[test]
    fn a_change_that_makes_no_sense_is_refused() {
        let now = at("2026-12-01T10:00:00Z");
        let backwards = TeamChange::Away { from: day("2026-12-10"), to: day("2026-12-09") };
        assert!(matches!(apply(&rep(), None, &backwards, "max", now), Err(TeamChangeError::Backwards { .. })));
        let past = TeamChange::Away { from: day("2026-11-01"), to: day("2026-11-02") };
        assert!(matches!(apply(&rep(), None, &past, "max", now), Err(TeamChangeError::Past { .. })));
        for c in [0, 10_001] {
            assert_eq!(apply(&rep(), None, &TeamChange::Capacity(c), "max", now), Err(TeamChangeError::Capacity(c)));
        }
    }
}
