//! The server's deparse of each spec expression, recorded by `apply` for
//! servers where nothing can be created.
//!
//! Normalising an expression means creating it as a policy on a temporary
//! table, and neither a hot standby nor a read-only credential may create
//! one. `apply` (which runs on a writable primary) therefore keeps each
//! deparse in `rlsctl.normalized_expressions`, which replicates like any
//! table; `plan` and `audit` on a read-only server look them up instead. An
//! entry's key covers everything the deparse depends on that rlsctl can see:
//! the server's major version, the table (or tenant-column shape) it was made
//! on with its columns and their types, and the expression as written. An
//! expression with no entry changed since the last apply and is reported as
//! such, never guessed.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// Whether this connection can create anything: not on a hot standby, not in
/// a read-only transaction (`default_transaction_read_only`, a read-only
/// credential).
pub async fn server_is_read_only(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT pg_catalog.pg_is_in_recovery()
             OR pg_catalog.current_setting('transaction_read_only')::boolean",
    )
    .fetch_one(conn)
    .await
}

/// The key of one deparse: `shape` names what it was made on, exactly.
pub fn key(server_major: i32, shape: &str, expression: &str) -> String {
    let mut hash = Sha256::new();
    for part in [&server_major.to_string(), shape, expression] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

pub async fn server_major(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_catalog.current_setting('server_version_num')::int / 10000")
        .fetch_one(conn)
        .await
}

/// Every recorded deparse (none when nothing was ever recorded).
pub async fn read(conn: &mut PgConnection) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT pg_catalog.to_regclass('rlsctl.normalized_expressions') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, deparsed FROM rlsctl.normalized_expressions")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Replaces the record with `forms` (inside apply's transaction). Does
/// nothing, and creates nothing, when the record already holds exactly them.
pub async fn store(
    conn: &mut PgConnection,
    forms: &BTreeMap<String, String>,
) -> Result<(), sqlx::Error> {
    if forms.is_empty() || &read(conn).await? == forms {
        return Ok(());
    }
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS rlsctl;
         CREATE TABLE IF NOT EXISTS rlsctl.normalized_expressions (
             key text PRIMARY KEY,
             deparsed text NOT NULL
         );
         DELETE FROM rlsctl.normalized_expressions",
    )
    .execute(&mut *conn)
    .await?;
    let (keys, deparsed): (Vec<&String>, Vec<&String>) = forms.iter().unzip();
    sqlx::query(
        "INSERT INTO rlsctl.normalized_expressions (key, deparsed)
         SELECT * FROM unnest($1::text[], $2::text[])",
    )
    .bind(keys)
    .bind(deparsed)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn a_key_changes_with_each_part_and_parts_cannot_run_together() {
        let k = key(15, "table public.t (a integer)", "a > 0");
        assert_eq!(k, key(15, "table public.t (a integer)", "a > 0"));
        assert_ne!(k, key(16, "table public.t (a integer)", "a > 0"));
        assert_ne!(k, key(15, "table public.t (a bigint)", "a > 0"));
        assert_ne!(k, key(15, "table public.t (a integer)", "a >= 0"));
        assert_ne!(key(15, "ab", "c"), key(15, "a", "bc"));
    }
}
