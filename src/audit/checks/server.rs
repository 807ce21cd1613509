//! The server itself: whether its major still gets fixes.

use time::{Date, Month};

use super::Check;
use crate::audit::{CheckInfo, Severity};

/// Community end of life of each supported-by-rlsctl major (and the ones
/// just before): the last minor release, five years after the first. From
/// the PostgreSQL versioning policy; add a row when a major is released.
const END_OF_LIFE: &[(u32, i32, Month, u8)] = &[
    (11, 2023, Month::November, 9),
    (12, 2024, Month::November, 21),
    (13, 2025, Month::November, 13),
    (14, 2026, Month::November, 12),
    (15, 2027, Month::November, 11),
    (16, 2028, Month::November, 9),
    (17, 2029, Month::November, 8),
    (18, 2030, Month::November, 14),
];

/// The end of life of `major`: `None` for a major newer than the table
/// knows; a major older than the table ended before its first row.
pub fn end_of_life(major: u32) -> Option<Date> {
    let (first, year, month, day) = END_OF_LIFE[0];
    let row = if major < first {
        Some((first, year, month, day))
    } else {
        END_OF_LIFE.iter().copied().find(|(m, ..)| *m == major)
    };
    row.and_then(|(_, year, month, day)| Date::from_calendar_date(year, month, day).ok())
}

pub const PAST_END_OF_LIFE: Check = Check {
    info: CheckInfo {
        id: "SERVER_PAST_END_OF_LIFE",
        severity: Severity::Info,
        title: "The server's PostgreSQL major is past its community end of life",
        why: "A major past its end of life gets no more minor releases: security fixes, row-level security ones included, no longer reach this server.",
        fix: "Upgrade to a supported major (pg_upgrade, or a dump and restore); rlsctl supports PostgreSQL 13 to 18.",
    },
    run: |ctx| {
        let major = ctx.snapshot.connecting.server_version_num / 10000;
        match end_of_life(major) {
            Some(ended) if ctx.today > ended => vec![PAST_END_OF_LIFE.info.finding(
                format!("server PostgreSQL {major}"),
                format!(
                    "PostgreSQL {} reached its community end of life on {ended}",
                    ctx.snapshot.server_version
                ),
                "Upgrade to a supported major (pg_upgrade, or a dump and restore).",
            )],
            _ => Vec::new(),
        }
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_past_end_of_life_dates() {
        let date = |y, m, d| Date::from_calendar_date(y, m, d).unwrap();
        assert_eq!(end_of_life(13), Some(date(2025, Month::November, 13)));
        assert_eq!(end_of_life(10), Some(date(2023, Month::November, 9)));
        assert_eq!(end_of_life(99), None);
        for pair in END_OF_LIFE.windows(2) {
            assert_eq!(pair[0].0 + 1, pair[1].0, "one row per major, in order");
        }
    }
}
