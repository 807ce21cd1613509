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
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const HISTORY_TABLE: &str = "rlsctl.refinery_schema_history";

/// A sqlx connection as refinery sees it.
pub struct RefineryConnection<'c>(pub &'c mut PgConnection);

impl AsyncTransaction for RefineryConnection<'_> {
    type Error = sqlx::Error;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut count = 0;
        // Already inside rlsctl's transaction: no BEGIN/COMMIT of our own.
        for query in queries {
            // Migration files are SQL written to be run as-is.
            sqlx::raw_sql(sqlx::AssertSqlSafe(query.to_string()))
                .execute(&mut *self.0)
                .await?;
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
                .fetch_all(&mut *self.0)
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
    #[error("{0}")]
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
/// returns the names of those applied, like `V1__init`.
pub async fn run(
    conn: &mut PgConnection,
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
    let report = runner
        .run_async(&mut RefineryConnection(conn))
        .await
        .map_err(|e| MigrationError::Run(describe(&e)))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
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
