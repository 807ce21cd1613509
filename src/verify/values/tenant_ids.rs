//! Two made-up tenant ids that every probed table's tenant column accepts.
//!
//! The application binds one text per transaction and each policy casts it to
//! its own column's type, so both ids must be text that every tenant column's
//! type reads (the type's own input function decides: the server parses each
//! candidate as each column) and that the column's CHECK and domain
//! constraints accept. Candidates of several shapes are tried in turn; when no
//! pair suits every table (a uuid column beside an inet or a date one), the
//! pair suiting the most is the run's, and each other table gets the first
//! pair its own column takes: what an application binds there is that
//! column's kind of id.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::PgConnection;

use super::Constraints;
use super::check_constraints::{Formula, Test};
use super::column_types;
use crate::catalog::Column;
use crate::quote::{QualifiedName, Sql};

/// Candidate pairs, most specific first.
fn candidates(a: &str, b: &str, token: u32) -> Vec<(String, String)> {
    let t = i64::from(token);
    vec![
        (a.to_string(), b.to_string()),
        (
            (-(1_000_000_000 + t % 500_000_000)).to_string(),
            (-(1_500_000_000 + (t + 7) % 500_000_000)).to_string(),
        ),
        (
            (2_000_000_000 + t % 50_000_000).to_string(),
            (2_050_000_000 + t % 50_000_000).to_string(),
        ),
        (
            (30_000 + t % 1_000).to_string(),
            (31_000 + t % 1_000).to_string(),
        ),
        (
            format!("rlsctl-verify-a-{}", &a[..8]),
            format!("rlsctl-verify-b-{}", &b[..8]),
        ),
        (format!("a{}", &a[..4]), format!("b{}", &b[..4])),
    ]
}

/// The tests a table's constraints put on its tenant column alone (only
/// what holds whatever the other columns are).
fn tenant_tests(formulas: &[(String, Formula)], column: &str) -> Vec<Test> {
    formulas
        .iter()
        .flat_map(|(_, f)| f.conjunctive_tests(column))
        .collect()
}

/// The run's pair, and the tables it does not suit with a pair of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub pair: (String, String),
    pub per_table: BTreeMap<QualifiedName, (String, String)>,
}

/// Picks the pairs; `a` and `b` are two random uuids, `token` the run's token.
pub async fn choose(
    conn: &mut PgConnection,
    tables: &BTreeMap<QualifiedName, String>,
    columns: &BTreeMap<QualifiedName, Vec<Column>>,
    constraints: &mut Constraints<'_>,
    a: &str,
    b: &str,
    token: u32,
) -> Result<Chosen, sqlx::Error> {
    let mut pairs = candidates(a, b, token);
    // One table per distinct tenant column type parses the candidates.
    let mut by_type: BTreeMap<String, (&QualifiedName, &str)> = BTreeMap::new();
    let mut tenant_columns: Vec<TenantColumn> = Vec::new();
    for (table, column) in tables {
        let Some(c) = columns
            .get(table)
            .and_then(|cs| cs.iter().find(|c| &c.name == column))
        else {
            continue;
        };
        let ty = constraints
            .rules
            .types
            .get(&(table.clone(), column.clone()))
            .cloned();
        let key = format!("{}:{:?}", c.base_type, ty);
        by_type.entry(key.clone()).or_insert((table, column));
        let all = columns.get(table).map(Vec::as_slice).unwrap_or(&[]);
        let tests = tenant_tests(&constraints.of(table, all), column);
        tenant_columns.push((table, key, c.clone(), ty, tests));
    }
    // Then a pair of each column's own made-up values: any type rlsctl can
    // make a value of (an inet, a date…).
    for (_, _, column, ty, tests) in &tenant_columns {
        let made = [1, 2].map(|n| {
            column_types::choose(column, ty.as_ref(), tests, n, token)
                .and_then(|v| super::super::rows::text_of(&v))
        });
        if let [Some(x), Some(y)] = made
            && x != y
            && !pairs.contains(&(x.clone(), y.clone()))
        {
            pairs.push((x, y));
        }
    }
    let mut parses: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (key, (table, column)) in &by_type {
        for (x, y) in &pairs {
            for value in [x, y] {
                let statement =
                    Sql::new("SELECT to_jsonb(r.*) ->> $2 FROM ").sql(&Sql::json_row(table));
                let parsed: Result<Option<String>, sqlx::Error> =
                    sqlx::query_scalar(statement.to_query())
                        .bind(super::template(
                            constraints.rules,
                            table,
                            columns.get(*table).map(Vec::as_slice).unwrap_or(&[]),
                            column,
                            value,
                        ))
                        .bind(*column)
                        .fetch_one(&mut *conn)
                        .await;
                // Read back as written: a value the type reads as another
                // (`2000-01-02` as a macaddr) would plant a row of neither tenant.
                let same = matches!(&parsed, Ok(Some(back)) if back == value);
                parses.insert((key.clone(), value.clone()), same);
            }
        }
    }
    // A table whose row template fails whatever the tenant (a NOT NULL domain
    // on another column) tells nothing: its type is left to the insert.
    for key in by_type.keys() {
        if !parses.iter().any(|((k, _), ok)| k == key && *ok) {
            for ((k, _), ok) in parses.iter_mut() {
                if k == key {
                    *ok = true;
                }
            }
        }
    }
    let suits = |(_, key, column, ty, tests): &TenantColumn, (x, y): &(String, String)| {
        [x, y].iter().all(|v| {
            parses.get(&(key.clone(), (*v).clone())) == Some(&true)
                && column_types::accepts(column, ty.as_ref(), &Value::String((*v).clone()), tests)
        })
    };
    let score = |pair: &(String, String)| tenant_columns.iter().filter(|c| suits(c, pair)).count();
    let best = pairs
        .iter()
        .enumerate()
        .max_by_key(|(i, p)| (score(p), usize::MAX - i))
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| pairs[0].clone());
    let per_table = tenant_columns
        .iter()
        .filter(|c| !suits(c, &best))
        .filter_map(|c| {
            let own = pairs.iter().find(|p| suits(c, p))?;
            Some((c.0.clone(), own.clone()))
        })
        .collect();
    Ok(Chosen {
        pair: best,
        per_table,
    })
}

/// A tenant column: its table, its type's key, the column, its type's
/// rules, and the tests its table's constraints put on it alone.
type TenantColumn<'t> = (
    &'t QualifiedName,
    String,
    Column,
    Option<crate::catalog::ColumnType>,
    Vec<Test>,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_check_is_read_only_where_it_always_holds() {
        let f = Formula::parse(
            "((tenant_id > 0) AND ((kind = 'a'::text) OR (tenant_id < 5)))",
            None,
        );
        let tests = tenant_tests(&[("c".into(), f)], "tenant_id");
        assert_eq!(tests.len(), 1);
    }

    #[test]
    fn the_candidates_are_distinct_pairs() {
        for (a, b) in candidates("0123456789abcdef", "fedcba9876543210", 42) {
            assert_ne!(a, b);
        }
    }
}
