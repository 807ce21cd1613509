//! Lets the server say what a spec expression looks like once stored.
//!
//! PostgreSQL keeps a policy as a parse tree and prints it back with its own
//! spacing, casts and parentheses (`pg_get_expr`). Rather than imitate that
//! printer, rlsctl creates each spec expression as a policy on a temporary
//! copy of its table inside a savepoint, reads the deparse, and rolls back:
//! nothing persists and the real table is only read (`LIKE` takes an ACCESS
//! SHARE lock). Expressions are deduplicated first: the generated tenant
//! predicate needs one temporary table per tenant column shape, not per table.
//! A rejected expression is reported with the policy's name and the server's
//! message. Where nothing can be created (a hot standby, a read-only
//! credential), the deparses `apply` recorded are used instead (`recorded`).

pub mod recorded;

use std::collections::BTreeMap;

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
    /// Only the tenant column (name, type): enough for generated predicates.
    TenantColumn(String, String),
    /// A full copy of a real table, for expressions written in the spec.
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
    let shapes = group(desired, live, tenant_column);
    if shapes.is_empty() {
        return Ok(Normalization::default());
    }
    let major = recorded::server_major(conn).await?;
    let keys: Vec<Vec<String>> = shapes
        .iter()
        .map(|(shape, expressions)| {
            let described = describe(shape, live);
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
                    form.clone(),
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
fn group(desired: &State, live: &State, tenant_column: &str) -> Shapes {
    let mut shapes: Shapes = BTreeMap::new();
    for (name, table) in &desired.tables {
        let column_type = live
            .tables
            .get(name)
            .and_then(|t| t.columns.get(tenant_column))
            .cloned();
        for policy in table.policies.values() {
            for expression in policy.using.iter().chain(policy.with_check.iter()) {
                let simple_type = column_type.as_deref().and_then(type_sql).is_some();
                let generated = table.tenant_policy.as_ref() == Some(&policy.name);
                let shape = match (&column_type, generated && simple_type) {
                    (Some(ty), true) => Shape::TenantColumn(tenant_column.into(), ty.clone()),
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

/// What a deparse on `shape` depends on, for its recorded key.
fn describe(shape: &Shape, live: &State) -> String {
    match shape {
        Shape::TenantColumn(column, type_name) => format!("tenant column {column} {type_name}"),
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
        batch.push(match shape {
            Shape::TenantColumn(column, type_name) => Sql::new("CREATE TEMP TABLE ")
                .ident(&temp)
                .push(" (")
                .ident(column)
                .push(" ")
                .sql(&type_sql(type_name).unwrap_or_default())
                .push(")"),
            Shape::CopyOf(table) => Sql::new("CREATE TEMP TABLE ")
                .ident(&temp)
                .push(" (LIKE ")
                .qname(table)
                .push(")"),
        });
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

/// The tenant column types a one-column temporary table can declare; other
/// types (domains, varchar(n)) use a full copy of the real table instead.
fn type_sql(type_name: &str) -> Option<Sql> {
    Some(match type_name {
        "uuid" => Sql::new("uuid"),
        "text" => Sql::new("text"),
        "bigint" => Sql::new("bigint"),
        "integer" => Sql::new("integer"),
        _ => return None,
    })
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
            *slot = deparsed;
        }
    }
    Ok(out)
}
