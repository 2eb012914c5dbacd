//! Durations as RevOps writes them: `30s`, `5m`, `1h`, `2d`.

use std::fmt;

use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

/// A whole number of seconds, minutes, hours or days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    pub value: u32,
    pub unit: Unit,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not a duration like 30s, 5m, 1h or 2d")]
pub struct InvalidDuration(pub String);

/// The longest duration accepted: a year.
const MAX_SECONDS: u64 = 366 * 86_400;

impl Duration {
    pub fn parse(input: &str) -> Result<Self, InvalidDuration> {
        let s = input.trim();
        let err = || InvalidDuration(input.chars().take(40).collect());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        let value: u32 = digits.parse().map_err(|_| err())?;
        let unit = match unit {
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "h" => Unit::Hours,
            "d" => Unit::Days,
            _ => return Err(err()),
        };
        let d = Duration { value, unit };
        if d.as_secs() > MAX_SECONDS {
            return Err(err());
        }
        Ok(d)
    }

    /// Clock seconds; a day is 24 hours.
    pub fn as_secs(self) -> u64 {
        let per = match self.unit {
            Unit::Seconds => 1,
            Unit::Minutes => 60,
            Unit::Hours => 3600,
            Unit::Days => 86_400,
        };
        u64::from(self.value) * per
    }

    /// Seconds when a day is `day_secs` long (a business day, under business hours).
    pub fn secs_with_day(self, day_secs: u64) -> u64 {
        match self.unit {
            Unit::Days => u64::from(self.value) * day_secs,
            _ => self.as_secs(),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Seconds => "s",
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
        };
        write!(f, "{}{unit}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(Duration::parse("30s").unwrap().as_secs(), 30);
        assert_eq!(Duration::parse("5m").unwrap().as_secs(), 300);
        assert_eq!(Duration::parse("1h").unwrap().as_secs(), 3600);
        assert_eq!(Duration::parse("2d").unwrap().as_secs(), 172_800);
        assert_eq!(Duration::parse("0m").unwrap().as_secs(), 0);
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["", "5", "m", "5 m", "1.5h", "-1h", "5w", "99999999999s", "400d"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?}");
        }
    }
}
