//! The review period a report covers: whole UTC days, both ends included.

use std::fmt;

use serde::Serialize;
use time::Date;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Period {
    /// First day (YYYY-MM-DD), or everything before `until`.
    pub since: Option<String>,
    /// Last day (YYYY-MM-DD), or everything after `since`.
    pub until: Option<String>,
}

impl Period {
    /// Both ends as YYYY-MM-DD; `since` may not come after `until`.
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Period, String> {
        let day = |flag: &str, text: Option<&str>| -> Result<Option<String>, String> {
            text.map(|t| {
                calendar_day(t)
                    .map(|_| t.to_string())
                    .ok_or_else(|| format!("{flag} {t:?}: expected a day as YYYY-MM-DD"))
            })
            .transpose()
        };
        let period = Period {
            since: day("--since", since)?,
            until: day("--until", until)?,
        };
        if let (Some(s), Some(u)) = (&period.since, &period.until)
            && s > u
        {
            return Err(format!("--since {s} comes after --until {u}"));
        }
        Ok(period)
    }

    /// Whether a timestamp as history stores it (`YYYY-MM-DDT…Z`) falls inside.
    pub fn contains(&self, timestamp: &str) -> bool {
        let day = timestamp.get(..10).unwrap_or(timestamp);
        self.since.as_deref().is_none_or(|s| day >= s)
            && self.until.as_deref().is_none_or(|u| day <= u)
    }
}

/// `YYYY-MM-DD` as a real calendar day (no 2026-02-30).
fn calendar_day(text: &str) -> Option<Date> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.since, &self.until) {
            (None, None) => write!(f, "everything recorded"),
            (Some(s), None) => write!(f, "{s} to now"),
            (None, Some(u)) => write!(f, "everything up to {u}"),
            (Some(s), Some(u)) => write!(f, "{s} to {u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_days_are_included() {
        let p = Period::parse(Some("2026-10-01"), Some("2026-12-31")).unwrap();
        assert!(p.contains("2026-10-01T00:00:00.000000Z"));
        assert!(p.contains("2026-12-31T23:59:59.999999Z"));
        assert!(!p.contains("2026-09-30T23:59:59.999999Z"));
        assert!(!p.contains("2027-01-01T00:00:00.000000Z"));
    }

    #[test]
    fn a_malformed_or_reversed_period_is_refused_with_the_flag() {
        let err = Period::parse(Some("2026-13-01"), None).unwrap_err();
        assert!(err.contains("--since"), "{err}");
        let err = Period::parse(Some("2026-12-02"), Some("2026-12-01")).unwrap_err();
        assert!(err.contains("comes after"), "{err}");
    }
}
