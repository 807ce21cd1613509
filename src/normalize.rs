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
//! message.

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
    #[error("{0}")]
    Database(#[from] sqlx::Error),
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
/// transaction; leaves nothing behind.
pub async fn normalize(
    conn: &mut PgConnection,
    desired: &State,
    live: &State,
    tenant_column: &str,
) -> Result<Normalized, NormalizeError> {
    let mut shapes: BTreeMap<Shape, BTreeMap<String, Vec<Job>>> = BTreeMap::new();
    for (name, table) in &desired.tables {
        let column_type = live
            .tables
            .get(name)
            .and_then(|t| t.columns.get(tenant_column))
            .cloned();
        for policy in table.policies.values() {
            for expression in policy.using.iter().chain(policy.with_check.iter()) {
                let simple_type = column_type.as_deref().and_then(type_sql).is_some();
                let shape = match (&column_type, is_generated(&policy.name) && simple_type) {
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
    if shapes.is_empty() {
        return Ok(Normalized::default());
    }

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
    let mut index: Vec<Vec<&Vec<Job>>> = Vec::new();
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
        let mut jobs = Vec::new();
        for (e, (_, group)) in expressions.iter().enumerate() {
            policies.push((policy_on(&temp, e, &group[0].expression), &group[0]));
            jobs.push(group);
        }
        index.push(jobs);
    }

    sqlx::raw_sql("SAVEPOINT rlsctl_normalize")
        .execute(&mut *conn)
        .await?;
    let result = match create_all(conn, &batch, &policies).await {
        Ok(()) => read_back(conn, &index).await,
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

fn is_generated(policy: &str) -> bool {
    policy == crate::spec::TENANT_POLICY
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
    index: &[Vec<&Vec<Job>>],
) -> Result<Normalized, NormalizeError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
           FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
          WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()
            AND c.relname LIKE 'rlsctl\\_normalize\\_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut normalized = Normalized::default();
    for (temp, policy, deparsed) in rows {
        let t: usize = temp
            .trim_start_matches("rlsctl_normalize_")
            .parse()
            .unwrap_or(usize::MAX);
        let e: usize = policy.trim_start_matches('e').parse().unwrap_or(usize::MAX);
        if let Some(group) = index.get(t).and_then(|jobs| jobs.get(e)) {
            for job in group.iter() {
                normalized.0.insert(
                    (job.table.clone(), job.expression.as_str().to_string()),
                    deparsed.clone(),
                );
            }
        }
    }
    Ok(normalized)
}
