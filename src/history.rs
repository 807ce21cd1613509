//! `rlsctl.apply_history`: who changed what, from which spec, when — as a
//! hash chain, so an auditor can tell whether a row was edited or removed.
//!
//! Each row's `row_hash` is the sha256 of its own content and the previous
//! row's hash. Editing any field of a row, or deleting a row before the last,
//! breaks the chain at that row. Whoever can write the table can also rebuild
//! the whole chain, so the chain is tamper-evident, not tamper-proof: a report
//! prints the head hash, and comparing it with the one in the previous
//! period's report catches a rebuilt or truncated history.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// The `prev_hash` of the first chained row.
const GENESIS: &str = "genesis";

/// Timestamps are hashed in this one text form (UTC, microseconds).
const APPLIED_AT: &str =
    r#"to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

/// What one apply records.
pub struct Record<'a> {
    pub spec_hash: &'a str,
    pub migrations: &'a [String],
    pub statements: &'a [String],
    /// The flags that let this apply do what it otherwise refuses
    /// (`--prune`, `--allow-empty`, `--allow-rls-filtered-migrations`).
    pub flags: &'a [String],
}

/// One row as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub applied_at: String,
    pub applied_by: String,
    pub spec_hash: String,
    pub migrations: Vec<String>,
    pub statements: Vec<String>,
    pub flags: Vec<String>,
    /// Absent on rows written before the chain existed.
    pub prev_hash: Option<String>,
    pub row_hash: Option<String>,
}

/// Whether the stored rows still hash to their chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainStatus {
    pub intact: bool,
    pub rows: usize,
    /// Rows written before rlsctl chained its history (not covered).
    pub unchained_rows: usize,
    /// The last row's hash: compare it with the previous report's.
    pub head_hash: Option<String>,
    /// Where the chain breaks first, and how.
    pub broken_at: Option<Break>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Break {
    pub id: i64,
    pub reason: String,
}

/// Creates the table, or brings one from an older rlsctl up to date.
pub async fn ensure_table(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS rlsctl;
         CREATE TABLE IF NOT EXISTS rlsctl.apply_history (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now(),
             applied_by text NOT NULL DEFAULT current_user,
             spec_hash text NOT NULL,
             migrations text[] NOT NULL,
             statements text[] NOT NULL
         );
         ALTER TABLE rlsctl.apply_history
             ADD COLUMN IF NOT EXISTS flags text[] NOT NULL DEFAULT '{}',
             ADD COLUMN IF NOT EXISTS prev_hash text,
             ADD COLUMN IF NOT EXISTS row_hash text",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends one row, chained to the last. Runs inside the apply's
/// transaction, which holds rlsctl's advisory lock, so rows never race.
pub async fn record(conn: &mut PgConnection, record: &Record<'_>) -> Result<(), sqlx::Error> {
    ensure_table(conn).await?;
    let last: Option<Option<String>> =
        sqlx::query_scalar("SELECT row_hash FROM rlsctl.apply_history ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let prev_hash = last.flatten().unwrap_or_else(|| GENESIS.to_string());
    let inserted: (i64, String, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rlsctl.apply_history (spec_hash, migrations, statements, flags, prev_hash)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, {APPLIED_AT}, applied_by"
    )))
    .bind(record.spec_hash)
    .bind(record.migrations)
    .bind(record.statements)
    .bind(record.flags)
    .bind(&prev_hash)
    .fetch_one(&mut *conn)
    .await?;
    let (id, applied_at, applied_by) = inserted;
    let entry = Entry {
        id,
        applied_at,
        applied_by,
        spec_hash: record.spec_hash.to_string(),
        migrations: record.migrations.to_vec(),
        statements: record.statements.to_vec(),
        flags: record.flags.to_vec(),
        prev_hash: Some(prev_hash),
        row_hash: None,
    };
    sqlx::query("UPDATE rlsctl.apply_history SET row_hash = $1 WHERE id = $2")
        .bind(hash(&entry))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The newest applies as an audit report lists them: when (to the
/// second), who, which spec, which migrations, how many statements.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    pub applied_at: String,
    pub applied_by: String,
    pub spec_hash: String,
    pub migrations: Vec<String>,
    pub statements: i32,
}

/// No apply ever changed anything in a database without the table.
async fn exists(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass('rlsctl.apply_history') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
}

/// The newest `limit` rows, newest first, without the statements' text.
pub async fn recent(conn: &mut PgConnection, limit: i64) -> Result<Vec<Recent>, sqlx::Error> {
    if !exists(conn).await? {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, String, Vec<String>, i32)> = sqlx::query_as(
        "SELECT to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), applied_by, spec_hash,
                migrations, cardinality(statements)
           FROM rlsctl.apply_history ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(applied_at, applied_by, spec_hash, migrations, statements)| Recent {
                applied_at,
                applied_by,
                spec_hash,
                migrations,
                statements,
            },
        )
        .collect())
}

/// Every row, oldest first (empty when no apply ever changed anything).
pub async fn read(conn: &mut PgConnection) -> Result<Vec<Entry>, sqlx::Error> {
    if !exists(conn).await? {
        return Ok(Vec::new());
    }
    // An older table lacks the chain columns: read it as unchained rows.
    let chained: bool = sqlx::query_scalar(
        "SELECT count(*) = 3 FROM pg_attribute
          WHERE attrelid = 'rlsctl.apply_history'::regclass AND NOT attisdropped
            AND attname IN ('flags', 'prev_hash', 'row_hash')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let chain_columns = if chained {
        "flags, prev_hash, row_hash"
    } else {
        "'{}'::text[], NULL::text, NULL::text"
    };
    type Row = (
        i64,
        String,
        String,
        String,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, {APPLIED_AT}, applied_by, spec_hash, migrations, statements, {chain_columns}
           FROM rlsctl.apply_history ORDER BY id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, applied_at, applied_by, spec_hash, migrations, statements, flags, prev, row)| {
                Entry {
                    id,
                    applied_at,
                    applied_by,
                    spec_hash,
                    migrations,
                    statements,
                    flags,
                    prev_hash: prev,
                    row_hash: row,
                }
            },
        )
        .collect())
}

/// The row's hash: its content and its link, as one unambiguous JSON array.
pub fn hash(entry: &Entry) -> String {
    let content = serde_json::json!([
        entry.id,
        entry.applied_at,
        entry.applied_by,
        entry.spec_hash,
        entry.migrations,
        entry.statements,
        entry.flags,
        entry.prev_hash,
    ]);
    hex::encode(Sha256::digest(content.to_string().as_bytes()))
}

/// Walks the rows oldest first: rows before the first chained one are legacy;
/// from there every row must link to the one before and hash to itself.
pub fn check_chain(entries: &[Entry]) -> ChainStatus {
    let unchained_rows = entries
        .iter()
        .take_while(|e| e.prev_hash.is_none() && e.row_hash.is_none())
        .count();
    let mut expected_prev = GENESIS.to_string();
    let mut broken_at = None;
    for entry in &entries[unchained_rows..] {
        let reason = if entry.prev_hash.as_deref() != Some(expected_prev.as_str()) {
            Some(
                "it does not link to the row before it (a row was removed, or this link was edited)",
            )
        } else if entry.row_hash.as_deref() != Some(hash(entry).as_str()) {
            Some("its content no longer matches its hash (the row was edited)")
        } else {
            None
        };
        if let Some(reason) = reason {
            broken_at = Some(Break {
                id: entry.id,
                reason: reason.to_string(),
            });
            break;
        }
        expected_prev = entry.row_hash.clone().unwrap_or_default();
    }
    ChainStatus {
        intact: broken_at.is_none(),
        rows: entries.len(),
        unchained_rows,
        head_hash: entries.last().and_then(|e| e.row_hash.clone()),
        broken_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let mut entry = Entry {
                    id,
                    applied_at: format!("2026-12-0{id}T10:00:00.000000Z"),
                    applied_by: "deployer".into(),
                    spec_hash: "abc".into(),
                    migrations: vec![format!("V{id}__x")],
                    statements: vec!["ALTER TABLE t ENABLE ROW LEVEL SECURITY".into()],
                    flags: vec![],
                    prev_hash: Some(prev.clone()),
                    row_hash: None,
                };
                entry.row_hash = Some(hash(&entry));
                prev = entry.row_hash.clone().unwrap();
                entry
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_is_intact_and_names_its_head() {
        let entries = chain(3);
        let status = check_chain(&entries);
        assert!(status.intact);
        assert_eq!(status.head_hash, entries[2].row_hash);
        assert_eq!(status.rows, 3);
    }

    #[test]
    fn an_edited_field_breaks_the_chain_at_that_row() {
        let mut entries = chain(3);
        entries[1].applied_by = "someone_else".into();
        let status = check_chain(&entries);
        assert_eq!(status.broken_at.unwrap().id, 2);
    }

    #[test]
    fn a_removed_row_breaks_the_link_of_the_next() {
        let mut entries = chain(3);
        entries.remove(1);
        let broken = check_chain(&entries).broken_at.unwrap();
        assert_eq!(broken.id, 3);
        assert!(broken.reason.contains("does not link"), "{}", broken.reason);
    }

    #[test]
    fn rows_from_before_the_chain_are_counted_not_failed() {
        let mut entries = chain(2);
        let legacy = Entry {
            id: 0,
            prev_hash: None,
            row_hash: None,
            ..entries[0].clone()
        };
        entries.insert(0, legacy);
        let status = check_chain(&entries);
        assert!(status.intact);
        assert_eq!(status.unchained_rows, 1);
    }
}
