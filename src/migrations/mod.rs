//! SQL migrations in `migrations/` (refinery naming, `V1__name.sql`), run by
//! refinery over rlsctl's own sqlx connection.
//!
//! refinery drives any connection that implements its async traits; the
//! newtype here implements them for a sqlx connection that is already inside
//! rlsctl's transaction, so migrations and policies commit or roll back
//! together. The history table lives in the `rlsctl` schema. Before any of
//! that, every file is read with PostgreSQL's grammar and refused if it would
//! end the transaction (see `transaction_control`).

mod rls_filtered_dml;
mod transaction_control;

pub use transaction_control::Refused;

use std::path::Path;

use refinery::{AsyncMigrate, Migration, Runner};
use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use sqlx::PgConnection;

use crate::quote::display_ident;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const HISTORY_TABLE: &str = "rlsctl.refinery_schema_history";

/// A sqlx connection as refinery sees it.
pub struct RefineryConnection<'c> {
    conn: &'c mut PgConnection,
    /// The statement that failed, to name its file and line afterwards.
    failed: Option<FailedStatement>,
}

impl<'c> RefineryConnection<'c> {
    pub fn new(conn: &'c mut PgConnection) -> Self {
        RefineryConnection { conn, failed: None }
    }
}

/// What the server said about the one statement of a migration that failed.
#[derive(Debug)]
struct FailedStatement {
    /// The whole text refinery sent: the migration file's content.
    query: String,
    /// The byte offset of the failed statement in `query`.
    offset: usize,
    statement: String,
    code: Option<String>,
    /// The server's 1-based character position within `statement`.
    position: Option<usize>,
    message: String,
}

impl AsyncTransaction for RefineryConnection<'_> {
    type Error = sqlx::Error;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut count = 0;
        // Already inside rlsctl's transaction: no BEGIN/COMMIT of our own.
        for query in queries {
            // One statement at a time, as PostgreSQL's grammar splits the
            // file: inside the transaction that runs the same, and a failure
            // is then known to the statement (a lock wait names its tables).
            // A file the grammar rejects goes whole, and the server's error
            // position is into the file itself.
            let statements = pg_query::split_with_parser(query).unwrap_or_else(|_| vec![query]);
            for statement in statements {
                // Migration files are SQL written to be run as-is.
                let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
                    .execute(&mut *self.conn)
                    .await;
                if let Err(error) = result {
                    self.failed = Some(FailedStatement {
                        query: query.to_string(),
                        offset: statement.as_ptr() as usize - query.as_ptr() as usize,
                        statement: statement.to_string(),
                        code: error
                            .as_database_error()
                            .and_then(|db| db.code())
                            .map(|c| c.into_owned()),
                        position: error
                            .as_database_error()
                            .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
                            .and_then(|pg| match pg.position() {
                                Some(sqlx::postgres::PgErrorPosition::Original(at)) => Some(at),
                                _ => None,
                            }),
                        message: crate::errors::database_message(&error),
                    });
                    return Err(error);
                }
            }
            count += 1;
        }
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for RefineryConnection<'_> {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        // refinery's own query against its own history table.
        let rows: Vec<(i32, String, String, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(query.to_string()))
                .fetch_all(&mut *self.conn)
                .await?;
        rows.into_iter()
            .map(|(version, name, applied_on, checksum)| {
                let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                let checksum = checksum
                    .parse::<u64>()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok(Migration::applied(version, name, applied_on, checksum))
            })
            .collect()
    }
}

impl AsyncMigrate for RefineryConnection<'_> {}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot load migrations from {dir}: {source}")]
    Load {
        dir: String,
        source: refinery::Error,
    },
    #[error("migration failed: {0}")]
    Run(String),
    #[error("{0}")]
    Statement(String),
    #[error("{0}\nNothing was run.")]
    Refused(Box<Refused>),
    #[error(
        "{file}:{line}: this {kind} touches {tables}, where row-level security applies to {user} (neither superuser nor BYPASSRLS, and the table is FORCEd or not its own): it would silently change only the rows a policy admits, likely none.\nFixes: declare the admin's access (`maintenance:` with `access: read_write` and a reason, then apply once before this migration), bind a tenant inside the migration (SELECT set_config('app.current_tenant_id', '…', true)), run apply as a role that bypasses RLS, or pass --allow-rls-filtered-migrations if the filtering is intended.\nNothing was run."
    )]
    FilteredByRls {
        file: String,
        line: usize,
        kind: &'static str,
        tables: String,
        user: String,
    },
    #[error("cannot read migration {file}: {message}")]
    Read { file: String, message: String },
    #[error("{}", crate::errors::database_message(.0))]
    Database(#[from] sqlx::Error),
}

/// Loads `dir`'s migrations; a missing default folder means "no migrations".
pub fn load(dir: &Path, required: bool) -> Result<Vec<Migration>, MigrationError> {
    if !dir.exists() && !required {
        return Ok(Vec::new());
    }
    for (shown, sql) in files(dir)? {
        transaction_control::check(&shown, &sql)
            .map_err(|refused| MigrationError::Refused(Box::new(refused)))?;
    }
    refinery::load_sql_migrations(dir).map_err(|source| MigrationError::Load {
        dir: dir.display().to_string(),
        source,
    })
}

/// Each migration file of `dir` (as refinery finds them), named as the user
/// wrote the folder, with its text.
fn files(dir: &Path) -> Result<Vec<(std::path::PathBuf, String)>, MigrationError> {
    let found = refinery_core::find_migration_files(dir, refinery_core::MigrationType::Sql)
        .map_err(|source| MigrationError::Load {
            dir: dir.display().to_string(),
            source,
        })?;
    found
        .map(|path| {
            let shown = dir.join(path.file_name().unwrap_or_default());
            let sql = std::fs::read_to_string(&path).map_err(|e| MigrationError::Read {
                file: shown.display().to_string(),
                message: e.to_string(),
            })?;
            Ok((shown, sql))
        })
        .collect()
}

/// Runs the pending migrations on `conn` (inside the caller's transaction);
/// returns the names of those applied, like `V1__init`. A failure names the
/// file in `dir` and the line of the failing statement.
pub async fn run(
    conn: &mut PgConnection,
    dir: &Path,
    migrations: &[Migration],
) -> Result<Vec<String>, MigrationError> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::raw_sql("CREATE SCHEMA IF NOT EXISTS rlsctl")
        .execute(&mut *conn)
        .await?;
    let mut runner = Runner::new(migrations).set_abort_divergent(true);
    runner.set_migration_table_name(HISTORY_TABLE);
    let mut connection = RefineryConnection::new(conn);
    let result = runner.run_async(&mut connection).await;
    let report = match (result, connection.failed.take()) {
        (Ok(report), _) => report,
        (Err(_), Some(failed)) => return Err(located(dir, &failed)),
        (Err(e), None) => return Err(MigrationError::Run(describe(&e))),
    };
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}

/// `file:line:column: message`, the line shown beneath, for the statement of
/// a migration file that failed; for a lock wait, the tables it waited for.
fn located(dir: &Path, failed: &FailedStatement) -> MigrationError {
    let file = files(dir)
        .ok()
        .and_then(|found| found.into_iter().find(|(_, sql)| *sql == failed.query))
        .map(|(shown, _)| shown.display().to_string())
        .unwrap_or_else(|| "a migration".to_string());
    // The server counts characters; the file is indexed by bytes.
    let within = failed
        .position
        .and_then(|at| failed.statement.char_indices().nth(at.saturating_sub(1)))
        .map(|(byte, _)| byte)
        .unwrap_or_else(|| {
            // No position: the statement's first non-blank character.
            failed.statement.len() - failed.statement.trim_start().len()
        });
    let at = (failed.offset + within).min(failed.query.len());
    let before = &failed.query[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = failed.query[line_start..at].chars().count() + 1;
    let source_line = failed.query[line_start..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end();
    let message = if failed.code.as_deref() == Some("55P03") {
        let mut tables: Vec<String> = pg_query::parse(&failed.statement, 0)
            .map(|parsed| {
                parsed
                    .protobuf
                    .nodes()
                    .into_iter()
                    .filter_map(|(node, ..)| match node {
                        pg_query::NodeRef::RangeVar(v) if v.schemaname.is_empty() => {
                            Some(display_ident(&v.relname))
                        }
                        pg_query::NodeRef::RangeVar(v) => Some(format!(
                            "{}.{}",
                            display_ident(&v.schemaname),
                            display_ident(&v.relname)
                        )),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        tables.sort();
        tables.dedup();
        let on = if tables.is_empty() {
            "a lock".to_string()
        } else {
            format!("a lock on {}", tables.join(", "))
        };
        format!(
            "waited longer than lock_timeout for {on}: another session holds it (a long transaction?). Retry when it ends, or pass a longer --lock-timeout"
        )
    } else {
        failed.message.clone()
    };
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    MigrationError::Statement(format!(
        "{file}:{line}:{column}: migration failed: {message}\n{pad} |\n{number} | {source_line}\n{pad} | {caret}^\nNothing was applied: the transaction was rolled back.",
        caret = " ".repeat(column - 1),
    ))
}

/// The names of `migrations` not yet recorded as applied, read without
/// running or creating anything (for read-only servers).
pub async fn pending(
    conn: &mut PgConnection,
    migrations: &[Migration],
) -> Result<Vec<String>, MigrationError> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    let exists: bool = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
        .bind(HISTORY_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    let applied: Vec<i32> = if exists {
        sqlx::query_scalar("SELECT version FROM rlsctl.refinery_schema_history")
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    Ok(migrations
        .iter()
        .filter(|m| !applied.contains(&m.version()))
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}

/// Refuses a pending migration whose data changes row-level security would
/// narrow for the connecting role (see `rls_filtered_dml`). A table where a
/// declared read-write maintenance policy (`open_policies`, by name) already
/// admits the connecting role to every row is not narrowed. Reads only.
pub async fn check_filtered_dml(
    conn: &mut PgConnection,
    dir: &Path,
    pending: &[String],
    open_policies: &[String],
) -> Result<(), MigrationError> {
    if pending.is_empty() || !dir.exists() {
        return Ok(());
    }
    for (shown, sql) in files(dir)? {
        let stem = shown
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Ok((_, version, name)) = refinery_core::parse_migration_name(&stem) else {
            continue;
        };
        if !pending.contains(&format!("V{version}__{name}")) {
            continue;
        }
        for dml in rls_filtered_dml::statements(&shown, &sql) {
            let (user, filtered) = crate::catalog::row_security::filtering_current_user(
                conn,
                &dml.tables,
                open_policies,
            )
            .await?;
            if !filtered.is_empty() {
                return Err(MigrationError::FilteredByRls {
                    file: dml.file.display().to_string(),
                    line: dml.line,
                    kind: dml.kind,
                    tables: filtered.join(", "),
                    user,
                });
            }
        }
    }
    Ok(())
}

/// refinery's error with the database's own message underneath.
fn describe(error: &refinery::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(db) = inner.downcast_ref::<sqlx::Error>() {
            message.push_str(&format!(": {}", crate::errors::database_message(db)));
        }
        source = inner.source();
    }
    message
}
