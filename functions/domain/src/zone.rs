//! A time zone for business hours, from the copy of the IANA time zone
//! database built into the binary (jiff's bundled one, about 200 KB of zone
//! files): the same answers on every machine, whatever the operating system
//! has installed.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};

/// The bundled database only, even if some other crate in a build asks jiff
/// to read the system's.
static ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// An IANA time zone such as `Europe/Berlin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone(TimeZone);

impl Zone {
    /// The zone an IANA name (or one of its older aliases) names, spelt as
    /// the database spells it. `Etc/Unknown`, the database's name for a zone
    /// nobody knows, is not one.
    pub fn parse(name: &str) -> Option<Zone> {
        let zone = ZONES.get(name).ok()?;
        (zone.iana_name() == Some(name) && name != "Etc/Unknown").then_some(Zone(zone))
    }

    pub fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// What the wall clock shows at `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.naive_utc() + chrono::Duration::seconds(self.offset_secs(t))
    }

    /// The zone's abbreviation at `t` (`CET`, `EDT`; `+03` where the zone has none).
    pub fn abbreviation(&self, t: DateTime<Utc>) -> String {
        match jiff::Timestamp::from_second(t.timestamp()) {
            Ok(at) => self.0.to_offset_info(at).abbreviation().to_owned(),
            Err(_) => "UTC".to_owned(),
        }
    }

    /// The earliest instant at which the wall clock shows `at`, or `None` when
    /// the clocks skip it (a daylight-saving gap). Times beyond the years the
    /// database covers (-9999 to 9999) are read as UTC.
    pub fn earliest(&self, at: NaiveDateTime) -> Option<DateTime<Utc>> {
        let civil = (|| {
            let date = at.date();
            let time = at.time();
            jiff::civil::DateTime::new(
                i16::try_from(date.year()).ok()?,
                i8::try_from(date.month()).ok()?,
                i8::try_from(date.day()).ok()?,
                i8::try_from(time.hour()).ok()?,
                i8::try_from(time.minute()).ok()?,
                i8::try_from(time.second()).ok()?,
                0,
            )
            .ok()
        })();
        let Some(civil) = civil else { return Some(at.and_utc()) };
        let offset = match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            // Clocks set back: the first time round, under the larger offset.
            AmbiguousOffset::Fold { before, after } => before.max(after),
            AmbiguousOffset::Gap { .. } => return None,
        };
        Some(at.and_utc() - chrono::Duration::seconds(i64::from(offset.seconds())))
    }

    fn offset_secs(&self, t: DateTime<Utc>) -> i64 {
        jiff::Timestamp::from_second(t.timestamp()).map_or(0, |at| i64::from(self.0.to_offset(at).seconds()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn wall(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    #[test]
    fn wall_clock_and_abbreviation_follow_daylight_saving() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.local(utc("2026-01-15T08:00:00Z")), wall("2026-01-15T09:00:00"));
        assert_eq!(berlin.abbreviation(utc("2026-01-15T08:00:00Z")), "CET");
        assert_eq!(berlin.local(utc("2026-07-15T08:00:00Z")), wall("2026-07-15T10:00:00"));
        assert_eq!(berlin.abbreviation(utc("2026-07-15T08:00:00Z")), "CEST");
        let new_york = Zone::parse("America/New_York").unwrap();
        assert_eq!(new_york.local(utc("2026-12-01T14:30:00Z")), wall("2026-12-01T09:30:00"));
        assert_eq!(new_york.abbreviation(utc("2026-12-01T14:30:00Z")), "EST");
    }

    #[test]
    fn a_skipped_wall_time_has_no_instant_and_a_repeated_one_its_first() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 29 March 2026: 02:00 becomes 03:00.
        assert_eq!(berlin.earliest(wall("2026-03-29T02:30:00")), None);
        assert_eq!(berlin.earliest(wall("2026-03-29T03:30:00")), Some(utc("2026-03-29T01:30:00Z")));
        // 25 October 2026: 03:00 becomes 02:00 again.
        assert_eq!(berlin.earliest(wall("2026-10-25T02:30:00")), Some(utc("2026-10-25T00:30:00Z")));
        assert_eq!(berlin.earliest(wall("2026-10-25T09:00:00")), Some(utc("2026-10-25T08:00:00Z")));
    }

    #[test]
    fn names_outside_the_database_are_refused_and_aliases_accepted() {
        for name in ["America/Gotham", "", "Europe/", "../etc/passwd", "CET\n", "europe/berlin", "Etc/Unknown"] {
            assert_eq!(Zone::parse(name), None, "{name:?}");
        }
        assert_eq!(Zone::parse("US/Eastern").unwrap().local(utc("2026-12-01T14:30:00Z")), wall("2026-12-01T09:30:00"));
        assert_eq!(Zone::parse("UTC"), Some(Zone::utc()));
    }

    #[test]
    fn times_beyond_the_database_years_are_read_as_utc() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let far = wall("+20000-01-01T09:00:00");
        assert_eq!(berlin.earliest(far), Some(far.and_utc()));
        let far = far.and_utc();
        assert_eq!(berlin.local(far), far.naive_utc());
    }
}
