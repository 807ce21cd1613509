//! Lets the server say what a spec expression looks like once stored.
//!
//! PostgreSQL keeps a policy as a parse tree and prints it back with its own
//! spacing, casts and parentheses (`pg_get_expr`). Rather than imitate that
//! printer, rlsctl creates each spec expression as a policy on a temporary
//! copy of its table inside a savepoint, reads the deparse, and rolls back:
//! nothing persists and the real table is only read (`LIKE` takes an ACCESS
//! SHARE lock). Expressions are deduplicated first, by their text and the
//! names and types of the columns they use: the generated tenant predicate,
//! a cross-tenant `true` or an extra policy's `NOT archived` needs one
//! temporary table whatever the number of tables carrying it.
//! A rejected expression is reported with the policy's name and the server's
//! message. Where nothing can be created (a hot standby, a read-only
//! credential), the deparses `apply` recorded are used instead (`recorded`).

mod outer_reference;
pub mod recorded;

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use crate::diff::Normalized;
use crate::model::State;
use crate::plan::{Passwords, render};
use crate::quote::{QualifiedName, Sql};
use crate::spec::Expression;

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error(
        "policy {policy} on {table}: PostgreSQL rejects its expression `{expression}`: {message}"
    )]
    Rejected {
        policy: String,
        table: QualifiedName,
        expression: String,
        message: String,
    },
    #[error(
        "policy {policy} on {table}: its expression `{expression}` changed since the last apply, and this server is read-only (a hot standby or a read-only transaction), so PostgreSQL cannot normalise it here. Run this command against the primary, or apply the spec there first."
    )]
    NotRecorded {
        policy: String,
        table: QualifiedName,
        expression: String,
    },
    #[error("{}", crate::errors::database_message(.0))]
    Database(#[from] sqlx::Error),
}

/// The deparse of every spec expression, and the same under the keys
/// `recorded::store` keeps them by.
#[derive(Debug, Default)]
pub struct Normalization {
    pub forms: Normalized,
    pub keyed: BTreeMap<String, String>,
}

/// The temporary table an expression is deparsed against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    /// The columns of the table whose names the expression uses (name, type
    /// as `format_type` prints it). Tables that agree on these give the
    /// expression the same deparse, so one temporary copy of any of them
    /// serves all: a predicate such as `true` or `tenant_id = …` is deparsed
    /// once, however many tables carry it.
    Columns(Vec<(String, String)>),
    /// A copy of this very table: the expression names the table itself
    /// (`orders.tenant_id`, a whole-row reference), the table is not there
    /// yet, or the expression's words could not be read.
    CopyOf(QualifiedName),
}

struct Job {
    table: QualifiedName,
    policy: String,
    expression: Expression,
}

/// Normalizes every expression of `desired`. Runs inside the caller's
/// transaction; leaves nothing behind. With `read_only`, creates nothing and
/// uses the deparses recorded by the last apply.
pub async fn normalize(
    conn: &mut PgConnection,
    desired: &State,
    live: &State,
    tenant_column: &str,
    read_only: bool,
) -> Result<Normalization, NormalizeError> {
    let shapes = group(desired, live);
    if shapes.is_empty() {
        return Ok(Normalization::default());
    }
    let major = recorded::server_major(conn).await?;
    let keys: Vec<Vec<String>> = shapes
        .iter()
        .map(|(shape, expressions)| {
            let described = describe(shape, live, tenant_column);
            expressions
                .keys()
                .map(|text| recorded::key(major, &described, text))
                .collect()
        })
        .collect();
    let deparsed: Vec<Vec<String>> = if read_only {
        let record = recorded::read(conn).await?;
        let mut out = Vec::new();
        for ((_, expressions), keys) in shapes.values().enumerate().zip(&keys) {
            let mut forms = Vec::new();
            for (group, key) in expressions.values().zip(keys) {
                let Some(form) = record.get(key) else {
                    let job = &group[0];
                    return Err(NormalizeError::NotRecorded {
                        policy: job.policy.clone(),
                        table: job.table.clone(),
                        expression: job.expression.to_string(),
                    });
                };
                forms.push(form.clone());
            }
            out.push(forms);
        }
        out
    } else {
        on_temporary_tables(conn, desired, live, &shapes).await?
    };

    let mut result = Normalization::default();
    for ((expressions, keys), forms) in shapes.values().zip(&keys).zip(deparsed) {
        for ((group, key), form) in expressions.values().zip(keys).zip(forms) {
            for job in group {
                result.forms.0.insert(
                    (job.table.clone(), job.expression.as_str().to_string()),
                    outer_reference::on_table(&form, &job.table),
                );
            }
            result.keyed.insert(key.clone(), form);
        }
    }
    Ok(result)
}

type Shapes = BTreeMap<Shape, BTreeMap<String, Vec<Job>>>;

/// Every expression of `desired`, by the temporary table it is deparsed on,
/// then by its text.
fn group(desired: &State, live: &State) -> Shapes {
    let mut shapes: Shapes = BTreeMap::new();
    let mut words_of: BTreeMap<&str, Option<BTreeSet<String>>> = BTreeMap::new();
    for (name, table) in &desired.tables {
        let live_columns = live.tables.get(name).map(|t| &t.columns);
        for policy in table.policies.values() {
            for expression in policy.using.iter().chain(policy.with_check.iter()) {
                let words = words_of
                    .entry(expression.as_str())
                    .or_insert_with(|| words(expression.as_str()));
                let shape = match (live_columns, words) {
                    (Some(columns), Some(words)) if !words.contains(&name.name) => Shape::Columns(
                        columns
                            .iter()
                            .filter(|(column, _)| words.contains(*column))
                            .map(|(column, ty)| (column.clone(), ty.clone()))
                            .collect(),
                    ),
                    _ => Shape::CopyOf(name.clone()),
                };
                shapes
                    .entry(shape)
                    .or_default()
                    .entry(expression.as_str().to_string())
                    .or_default()
                    .push(Job {
                        table: name.clone(),
                        policy: policy.name.clone(),
                        expression: expression.clone(),
                    });
            }
        }
    }
    shapes
}

/// Every name `text` could use for a column, as PostgreSQL folds it: each
/// identifier and keyword token (a column may be called `name` or `type`),
/// unquoted identifiers in lower case. Taking every word, not only those the
/// grammar places as column references, can only split shapes more finely,
/// never merge two that deparse differently. `None` when the text cannot be
/// scanned or uses a `U&"…"` identifier.
fn words(text: &str) -> Option<BTreeSet<String>> {
    use pg_query::protobuf::{KeywordKind, Token};
    let mut out = BTreeSet::new();
    for token in pg_query::scan_tokens(text).ok()? {
        let word = text.get(token.start.max(0) as usize..token.end.max(0) as usize)?;
        match Token::try_from(token.token) {
            Ok(Token::Uident) => return None,
            Ok(Token::Ident) if word.starts_with('"') => {
                let inner = word.strip_prefix('"')?.strip_suffix('"')?;
                out.insert(inner.replace("\"\"", "\""));
            }
            Ok(Token::Ident) => {
                out.insert(word.to_ascii_lowercase());
            }
            _ if token.keyword_kind != KeywordKind::NoKeyword as i32 => {
                out.insert(word.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    Some(out)
}

/// What a deparse on `shape` depends on, for its recorded key.
fn describe(shape: &Shape, live: &State, tenant_column: &str) -> String {
    match shape {
        // The key earlier versions gave the generated tenant predicate, so
        // their records stay valid on a read-only server.
        Shape::Columns(columns) if matches!(columns.as_slice(), [(c, _)] if c == tenant_column) => {
            format!("tenant column {} {}", columns[0].0, columns[0].1)
        }
        Shape::Columns(columns) => format!(
            "columns ({})",
            columns
                .iter()
                .map(|(name, ty)| format!("{name:?} {ty}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Shape::CopyOf(table) => {
            let columns = live
                .tables
                .get(table)
                .map(|t| {
                    t.columns
                        .iter()
                        .map(|(name, ty)| format!("{name:?} {ty}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("table {table:?} ({columns})")
        }
    }
}

/// The deparse of each (shape, expression), in `shapes` order.
async fn on_temporary_tables(
    conn: &mut PgConnection,
    desired: &State,
    live: &State,
    shapes: &Shapes,
) -> Result<Vec<Vec<String>>, NormalizeError> {
    // Policies may call the context function: make the desired one visible.
    let mut setup = Vec::new();
    if let Some(function) = &desired.function
        && live
            .function
            .as_ref()
            .is_none_or(|f| !f.same_definition(function))
    {
        let changes = [
            crate::diff::Change::CreateSchema {
                schema: function.name.schema.clone(),
            },
            crate::diff::Change::ReplaceFunction {
                function: function.clone(),
            },
        ];
        let statements = render(&changes, &Passwords::Masked).expect("no passwords involved");
        setup.extend(statements.into_iter().map(|s| s.sql));
    }

    // Temporary table and policy names are positional, so no spec text is
    // needed to find the results again. rlsctl's own statements go in one
    // batch; each statement carrying spec text goes alone, over the extended
    // protocol, which refuses a second statement in one message.
    let mut batch: Vec<Sql> = setup;
    let mut policies: Vec<(Sql, &Job)> = Vec::new();
    for (t, (shape, expressions)) in shapes.iter().enumerate() {
        let temp = format!("rlsctl_normalize_{t}");
        // Any table of a `Columns` shape will do: they all have its columns.
        let copied = match shape {
            Shape::CopyOf(table) => table,
            Shape::Columns(_) => &expressions.values().next().expect("a shape has a job")[0].table,
        };
        batch.push(
            Sql::new("CREATE TEMP TABLE ")
                .ident(&temp)
                .push(" (LIKE ")
                .qname(copied)
                .push(")"),
        );
        for (e, group) in expressions.values().enumerate() {
            policies.push((policy_on(&temp, e, &group[0].expression), &group[0]));
        }
    }

    sqlx::raw_sql("SAVEPOINT rlsctl_normalize")
        .execute(&mut *conn)
        .await?;
    let result = match create_all(conn, &batch, &policies).await {
        Ok(()) => read_back(conn, shapes).await,
        Err(error) => Err(error),
    };
    sqlx::raw_sql("ROLLBACK TO SAVEPOINT rlsctl_normalize; RELEASE SAVEPOINT rlsctl_normalize")
        .execute(&mut *conn)
        .await?;
    result
}

async fn create_all(
    conn: &mut PgConnection,
    batch: &[Sql],
    policies: &[(Sql, &Job)],
) -> Result<(), NormalizeError> {
    sqlx::raw_sql(Sql::batch(batch).to_query())
        .execute(&mut *conn)
        .await?;
    for (statement, job) in policies {
        sqlx::query(statement.to_query())
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(|e| NormalizeError::Rejected {
                policy: job.policy.clone(),
                table: job.table.clone(),
                expression: job.expression.to_string(),
                message: crate::errors::database_message(&e),
            })?;
    }
    Ok(())
}

fn policy_on(temp: &str, e: usize, expression: &Expression) -> Sql {
    Sql::new("CREATE POLICY ")
        .ident(&format!("e{e}"))
        .push(" ON ")
        .ident(temp)
        .push(" USING (")
        .expr(expression)
        .push(")")
}

async fn read_back(
    conn: &mut PgConnection,
    shapes: &Shapes,
) -> Result<Vec<Vec<String>>, NormalizeError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
           FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
          WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()
            AND c.relname LIKE 'rlsctl\\_normalize\\_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<Vec<String>> = shapes
        .values()
        .map(|expressions| vec![String::new(); expressions.len()])
        .collect();
    for (temp, policy, deparsed) in rows {
        let t: usize = temp
            .trim_start_matches("rlsctl_normalize_")
            .parse()
            .unwrap_or(usize::MAX);
        let e: usize = policy.trim_start_matches('e').parse().unwrap_or(usize::MAX);
        if let Some(slot) = out.get_mut(t).and_then(|forms| forms.get_mut(e)) {
            *slot = outer_reference::template(&deparsed, &temp);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Policy, Table};
    use crate::spec::Command;

    fn policy(name: &str, using: &str) -> Policy {
        Policy {
            name: name.into(),
            command: Command::All,
            permissive: true,
            roles: ["app".to_string()].into(),
            using: Some(Expression::trusted(using.into())),
            with_check: None,
            managed: true,
        }
    }

    /// `count` tables with the given columns (name, type) on the live side,
    /// and on the desired side each with the given policies.
    fn states(tables: &[(&str, &[(&str, &str)])], policies: &[(&str, &str)]) -> (State, State) {
        let (mut desired, mut live) = (State::default(), State::default());
        for (name, columns) in tables {
            let qualified = QualifiedName::new("public", *name);
            let mut want = Table::default();
            for (policy_name, using) in policies {
                want.policies
                    .insert(policy_name.to_string(), policy(policy_name, using));
            }
            desired.tables.insert(qualified.clone(), want);
            let have = Table {
                columns: columns
                    .iter()
                    .map(|(c, t)| (c.to_string(), t.to_string()))
                    .collect(),
                ..Table::default()
            };
            live.tables.insert(qualified, have);
        }
        (desired, live)
    }

    #[test]
    fn many_tables_sharing_the_columns_an_expression_uses_need_one_temporary_table() {
        let wide: &[(&str, &str)] = &[
            ("tenant_id", "uuid"),
            ("archived", "boolean"),
            ("body", "text"),
        ];
        let narrow: &[(&str, &str)] = &[("tenant_id", "uuid"), ("archived", "boolean")];
        let tables: Vec<(String, &[(&str, &str)])> = (0..500)
            .map(|i| (format!("t{i}"), if i % 2 == 0 { wide } else { narrow }))
            .collect();
        let tables: Vec<(&str, &[(&str, &str)])> =
            tables.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let (desired, live) = states(
            &tables,
            &[
                ("tenant", "tenant_id = (SELECT rls.current_tenant_id())"),
                ("reader", "true"),
                ("archived", "NOT \"archived\""),
            ],
        );
        let shapes = group(&desired, &live);
        // tenant_id alone, nothing, and archived alone: the body column,
        // which no expression names, splits nothing.
        assert_eq!(shapes.len(), 3, "{:?}", shapes.keys().collect::<Vec<_>>());
        assert!(
            shapes
                .values()
                .all(|e| e.len() == 1 && e.values().all(|jobs| jobs.len() == 500))
        );
    }

    #[test]
    fn a_column_of_another_type_or_a_reference_to_the_table_itself_gets_its_own_copy() {
        let (desired, live) = states(
            &[
                ("a", &[("tenant_id", "uuid")]),
                ("b", &[("tenant_id", "text")]),
                ("c", &[("tenant_id", "uuid")]),
            ],
            &[("own", "c.tenant_id IS NOT NULL OR tenant_id IS NULL")],
        );
        let shapes: Vec<Shape> = group(&desired, &live).into_keys().collect();
        assert_eq!(
            shapes,
            vec![
                Shape::Columns(vec![("tenant_id".into(), "text".into())]),
                Shape::Columns(vec![("tenant_id".into(), "uuid".into())]),
                Shape::CopyOf(QualifiedName::new("public", "c")),
            ]
        );
    }

    #[test]
    fn words_are_folded_as_postgresql_folds_identifiers() {
        let words = words("\"Archived\" AND Name = 'Tenant_Id' AND Tenant_ID > 0").unwrap();
        for w in ["Archived", "name", "tenant_id", "and"] {
            assert!(words.contains(w), "{w}: {words:?}");
        }
        assert!(!words.contains("Tenant_Id"), "a string literal is no name");
        assert_eq!(super::words("U&\"d\\0061t\" > 0"), None);
    }
}
