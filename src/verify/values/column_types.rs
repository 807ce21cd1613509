//! A value a column's type accepts and that passes the tests the constraints
//! put on the column: integer and numeric ranges (precision and scale
//! included), character lengths, enum labels, booleans and date/time bounds.
//! Values stay unique within a run where the type allows it, because probe
//! rows of two tenants often share a unique key's other columns.

use std::cmp::Ordering;

use serde_json::Value;

use super::check_constraints::{Bound, Literal, Test};
use crate::catalog::{Column, ColumnType};

/// What the value is compared as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Integer { min: i128, max: i128 },
    Decimal { limit: Option<f64> },
    Text { max: Option<usize> },
    Time,
    Boolean,
    Enum,
    Other,
}

fn kind(column: &Column, ty: Option<&ColumnType>) -> Kind {
    let base = ty.map(|t| t.base.as_str()).unwrap_or("");
    match (base, column.base_type.as_str()) {
        ("int2", _) | (_, "smallint") => Kind::Integer {
            min: i16::MIN.into(),
            max: i16::MAX.into(),
        },
        ("int4", _) | (_, "integer") => Kind::Integer {
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        },
        ("int8", _) | (_, "bigint") => Kind::Integer {
            min: i64::MIN.into(),
            max: i64::MAX.into(),
        },
        ("numeric", _) => match ty.and_then(ColumnType::precision_scale) {
            // numeric(p, 0) is an integer of at most p digits.
            Some((p, 0)) if p < 30 => {
                let max = 10i128.pow(p) - 1;
                Kind::Integer { min: -max, max }
            }
            Some((p, s)) => Kind::Decimal {
                limit: Some(10f64.powi(p as i32 - s as i32)),
            },
            None => Kind::Decimal { limit: None },
        },
        _ => match column.category {
            'N' => Kind::Decimal { limit: None },
            'S' => Kind::Text {
                max: ty.and_then(ColumnType::max_length),
            },
            'D' => Kind::Time,
            'B' => Kind::Boolean,
            'E' => Kind::Enum,
            _ => Kind::Other,
        },
    }
}

/// Whether `value` (its text) passes `test` for a column of `kind`; a
/// comparison rlsctl cannot make is assumed to pass.
fn passes(kind: Kind, value: &str, test: &Test) -> bool {
    match test {
        Test::OneOf(list) => list.iter().any(|l| same(kind, value, l)),
        Test::NoneOf(list) => !list.iter().any(|l| same(kind, value, l)),
        Test::Compare(bound, l) => match compare(kind, value, &l.text) {
            Some(order) => match bound {
                Bound::Below => order == Ordering::Less,
                Bound::AtMost => order != Ordering::Greater,
                Bound::Above => order == Ordering::Greater,
                Bound::AtLeast => order != Ordering::Less,
            },
            None => true,
        },
        Test::Length(bound, n) => {
            let len = value.chars().count();
            match bound {
                Bound::Below => len < *n,
                Bound::AtMost => len <= *n,
                Bound::Above => len > *n,
                Bound::AtLeast => len >= *n,
            }
        }
        Test::IsNull => false,
        Test::NotNull | Test::Named => true,
    }
}

fn same(kind: Kind, value: &str, literal: &Literal) -> bool {
    match kind {
        Kind::Integer { .. } | Kind::Decimal { .. } => {
            compare(kind, value, &literal.text) == Some(Ordering::Equal)
        }
        Kind::Boolean => truth(value) == truth(&literal.text),
        _ => value == literal.text,
    }
}

fn truth(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn compare(kind: Kind, value: &str, other: &str) -> Option<Ordering> {
    match kind {
        Kind::Integer { .. } | Kind::Decimal { .. } => {
            let (a, b) = (
                value.trim().parse::<f64>().ok()?,
                other.trim().parse::<f64>().ok()?,
            );
            a.partial_cmp(&b)
        }
        Kind::Text { .. } => Some(value.cmp(other)),
        Kind::Time => {
            let rank = |s: &str| match s {
                "-infinity" => Some(0),
                "infinity" => Some(2),
                // ISO dates and timestamps compare as text.
                s if s.len() >= 10 && s.as_bytes()[4] == b'-' => Some(1),
                _ => None,
            };
            match (rank(value)?, rank(other)?) {
                (1, 1) => Some(value.cmp(other)),
                (a, b) => Some(a.cmp(&b)),
            }
        }
        _ => None,
    }
}

/// Whether `a OP b` holds for two values of the column's type; `None` when
/// rlsctl cannot compare them.
pub fn holds(
    column: &Column,
    ty: Option<&ColumnType>,
    a: &Value,
    bound: Bound,
    b: &Value,
) -> Option<bool> {
    let (a, b) = (
        super::super::rows::text_of(a)?,
        super::super::rows::text_of(b)?,
    );
    let order = compare(kind(column, ty), &a, &b)?;
    Some(match bound {
        Bound::Below => order == Ordering::Less,
        Bound::AtMost => order != Ordering::Greater,
        Bound::Above => order == Ordering::Greater,
        Bound::AtLeast => order != Ordering::Less,
    })
}

/// Whether a given value (the tenant id, a parent's key, an explicit probe
/// value) passes the column's tests.
pub fn accepts(column: &Column, ty: Option<&ColumnType>, value: &Value, tests: &[Test]) -> bool {
    let Some(text) = super::super::rows::text_of(value) else {
        return !tests.contains(&Test::NotNull);
    };
    let kind = kind(column, ty);
    within_type(kind, &text) && tests.iter().all(|t| passes(kind, &text, t))
}

fn within_type(kind: Kind, text: &str) -> bool {
    match kind {
        Kind::Integer { min, max } => text
            .trim()
            .parse::<i128>()
            .is_ok_and(|v| (min..=max).contains(&v)),
        Kind::Decimal { limit: Some(limit) } => {
            text.trim().parse::<f64>().is_ok_and(|v| v.abs() < limit)
        }
        Kind::Text { max: Some(max) } => text.chars().count() <= max,
        _ => true,
    }
}

/// A value for `column` passing `tests`, unique within the run where it can be
/// (`n` is the run's sequence, `token` the run's random token).
pub fn choose(
    column: &Column,
    ty: Option<&ColumnType>,
    tests: &[Test],
    n: u32,
    token: u32,
) -> Option<Value> {
    if tests.contains(&Test::IsNull) {
        let nullable = !column.not_null && !ty.is_some_and(|t| t.domain_not_null);
        return nullable.then_some(Value::Null);
    }
    let kind = kind(column, ty);
    let mut candidates: Vec<Value> = Vec::new();
    let listed: Option<Vec<&Literal>> = tests.iter().find_map(|t| match t {
        Test::OneOf(list) => Some(list.iter().collect()),
        _ => None,
    });
    if let Some(listed) = listed {
        candidates.extend(listed.iter().map(|l| Value::String(l.text.clone())));
    } else {
        let bounds: Vec<(Bound, &str)> = tests
            .iter()
            .filter_map(|t| match t {
                Test::Compare(b, l) => Some((*b, l.text.as_str())),
                _ => None,
            })
            .collect();
        candidates.extend(by_kind(column, ty, kind, &bounds, tests, n, token));
    }
    candidates
        .into_iter()
        .find(|v| match super::super::rows::text_of(v) {
            Some(text) => within_type(kind, &text) && tests.iter().all(|t| passes(kind, &text, t)),
            None => false,
        })
}

fn by_kind(
    column: &Column,
    ty: Option<&ColumnType>,
    kind: Kind,
    bounds: &[(Bound, &str)],
    tests: &[Test],
    n: u32,
    token: u32,
) -> Vec<Value> {
    let text = |s: String| Value::String(s);
    match kind {
        Kind::Integer { min, max } => {
            let mut low = min;
            let mut high = max;
            for (bound, limit) in bounds {
                let Ok(limit) = limit.trim().parse::<f64>() else {
                    continue;
                };
                match bound {
                    Bound::Above => low = low.max(limit.floor() as i128 + 1),
                    Bound::AtLeast => low = low.max(limit.ceil() as i128),
                    Bound::Below => high = high.min(limit.ceil() as i128 - 1),
                    Bound::AtMost => high = high.min(limit.floor() as i128),
                }
            }
            if low > high {
                return Vec::new();
            }
            // Far from the small numbers real keys start at, when it fits.
            let far = if max > i128::from(i16::MAX) {
                1_000_000_000 + i128::from(token % 1_000_000_000) + i128::from(n)
            } else {
                1 + i128::from(token % 20_000) + i128::from(n)
            };
            let width = high - low + 1;
            let spread = low + (i128::from(token) + i128::from(n)) % width;
            [far, spread, low, high]
                .into_iter()
                .map(|v| text(v.to_string()))
                .collect()
        }
        Kind::Decimal { limit } => {
            let scale = ty
                .and_then(ColumnType::precision_scale)
                .map_or(2, |(_, s)| s);
            let step = 10f64.powi(-(scale.min(6) as i32));
            let far = 1_000_000_000f64 + f64::from(token % 1_000_000_000) + f64::from(n);
            let small = limit.map(|l| 1.0 + f64::from(n) % (l - 1.0).max(1.0));
            let mut out = vec![far];
            out.extend(small);
            let mut low = None;
            let mut high = None;
            for (bound, limit) in bounds {
                let Ok(v) = limit.trim().parse::<f64>() else {
                    continue;
                };
                match bound {
                    Bound::AtLeast => {
                        out.push(v);
                        low = Some(v);
                    }
                    Bound::Above => {
                        out.extend([v + 1.0, v + step]);
                        low = Some(v);
                    }
                    Bound::AtMost => {
                        out.push(v);
                        high = Some(v);
                    }
                    Bound::Below => {
                        out.extend([v - 1.0, v - step]);
                        high = Some(v);
                    }
                }
            }
            if let (Some(l), Some(h)) = (low, high) {
                out.insert(0, l + (h - l) / 2.0);
            }
            out.into_iter()
                .map(|v| text(format!("{v:.prec$}", prec = scale.min(6) as usize)))
                .collect()
        }
        Kind::Text { max } => {
            let min = tests
                .iter()
                .filter_map(|t| match t {
                    Test::Length(Bound::AtLeast, m) => Some(*m),
                    Test::Length(Bound::Above, m) => Some(m + 1),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            let max = tests
                .iter()
                .filter_map(|t| match t {
                    Test::Length(Bound::AtMost, m) => Some(*m),
                    Test::Length(Bound::Below, m) => Some(m.saturating_sub(1)),
                    _ => None,
                })
                .chain(max)
                .min();
            let mut made = format!("rv{:06x}{n}", token & 0xff_ffff);
            while made.chars().count() < min {
                made.push('x');
            }
            if let Some(max) = max {
                // Keep the end: the sequence number keeps it unique.
                let skip = made.chars().count().saturating_sub(max);
                made = made.chars().skip(skip).collect();
            }
            let mut out = vec![text(made)];
            for (bound, limit) in bounds {
                match bound {
                    Bound::AtLeast | Bound::AtMost => out.push(text(limit.to_string())),
                    Bound::Above => out.push(text(format!("{limit}z"))),
                    Bound::Below => {}
                }
            }
            out
        }
        Kind::Time => {
            if bounds.is_empty() {
                // Distinct past days, so compared columns can be ordered and
                // `CHECK (at <= now())` holds; a time of day has no date.
                return match ty.map(|t| t.base.as_str()) {
                    Some("time" | "timetz") | None => vec![text("now".into())],
                    _ => vec![text(day(10_957 + i64::from(n % 7_000)))],
                };
            }
            let mut out = Vec::new();
            for (bound, limit) in bounds {
                match bound {
                    Bound::AtLeast | Bound::AtMost => out.push(text(limit.to_string())),
                    Bound::Above => out.push(text("infinity".into())),
                    Bound::Below => out.push(text("-infinity".into())),
                }
            }
            out
        }
        Kind::Boolean => vec![Value::Bool(false), Value::Bool(true)],
        Kind::Enum => {
            let labels = ty.map(|t| t.labels.clone()).unwrap_or_default();
            let labels = if labels.is_empty() {
                column.first_label.clone().into_iter().collect()
            } else {
                labels
            };
            labels.into_iter().map(text).collect()
        }
        Kind::Other => match (column.base_type.as_str(), column.category) {
            ("uuid", _) => vec![text(format!("{token:08x}-0000-4000-8000-{n:012x}"))],
            ("json" | "jsonb", _) => vec![Value::Object(Default::default())],
            (_, 'T') => vec![text("1 hour".into())],
            (_, 'A') => vec![text("{}".into())],
            (_, 'I') => vec![text(format!("192.0.2.{}", 1 + n % 254))],
            // A locally administered address: no vendor's.
            ("macaddr", _) => vec![text(format!(
                "02:00:{:02x}:00:{:02x}:{:02x}",
                token % 256,
                (n >> 8) % 256,
                n % 256
            ))],
            ("macaddr8", _) => vec![text(format!(
                "02:00:{:02x}:00:00:00:{:02x}:{:02x}",
                token % 256,
                (n >> 8) % 256,
                n % 256
            ))],
            _ => Vec::new(),
        },
    }
}

/// The ISO date `days` after 1970-01-01 (proleptic Gregorian).
fn day(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_days_are_iso_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(10_957), "2000-01-01");
        assert_eq!(day(11_016), "2000-02-29");
    }

    fn column(base_type: &str, category: char) -> Column {
        Column {
            name: "c".into(),
            base_type: base_type.into(),
            category,
            not_null: true,
            has_default: false,
            generated: false,
            identity_always: false,
            first_label: None,
        }
    }

    fn ty(base: &str, typmod: i32) -> ColumnType {
        ColumnType {
            base: base.into(),
            typmod,
            ..ColumnType::default()
        }
    }

    fn number(s: &str) -> Literal {
        Literal {
            text: s.into(),
            numeric: true,
        }
    }

    #[test]
    fn a_numeric_with_precision_and_scale_gets_a_value_that_fits() {
        // numeric(10,2): typmod = (10 << 16 | 2) + 4.
        let t = ty("numeric", (10 << 16 | 2) + 4);
        let v = choose(&column("numeric", 'N'), Some(&t), &[], 7, 123_456).unwrap();
        let v: f64 = v.as_str().unwrap().parse().unwrap();
        assert!(v.abs() < 1e8, "{v}");
    }

    #[test]
    fn a_varchar_gets_a_value_no_longer_than_its_length() {
        let t = ty("varchar", 3 + 4);
        let v = choose(
            &column("character varying", 'S'),
            Some(&t),
            &[],
            12,
            0xabcdef,
        )
        .unwrap();
        assert_eq!(v.as_str().unwrap().chars().count(), 3);
    }

    #[test]
    fn an_integer_range_is_respected_and_values_spread_within_it() {
        let tests = [
            Test::Compare(Bound::AtLeast, number("1")),
            Test::Compare(Bound::AtMost, number("5")),
        ];
        let c = column("integer", 'N');
        let t = ty("int4", -1);
        let a = choose(&c, Some(&t), &tests, 1, 0).unwrap();
        let b = choose(&c, Some(&t), &tests, 2, 0).unwrap();
        assert_ne!(a, b);
        for v in [a, b] {
            let v: i64 = v.as_str().unwrap().parse().unwrap();
            assert!((1..=5).contains(&v), "{v}");
        }
    }

    #[test]
    fn a_time_range_that_excludes_now_gets_its_lower_bound() {
        let tests = [
            Test::Compare(Bound::AtLeast, number("2001-01-01 00:00:00+00")),
            Test::Compare(Bound::Below, number("2001-02-01 00:00:00+00")),
        ];
        let v = choose(&column("timestamp with time zone", 'D'), None, &tests, 1, 0).unwrap();
        assert_eq!(v, Value::String("2001-01-01 00:00:00+00".into()));
    }

    #[test]
    fn an_enum_excluded_by_a_check_gets_its_next_label() {
        let mut t = ty("status", -1);
        t.labels = vec!["draft".into(), "sent".into()];
        let tests = [Test::NoneOf(vec![Literal {
            text: "draft".into(),
            numeric: false,
        }])];
        let v = choose(&column("status", 'E'), Some(&t), &tests, 1, 0).unwrap();
        assert_eq!(v, Value::String("sent".into()));
    }
}
