//! `migrate-existing`: bring a table that already holds rows under RLS
//! without long locks.
//!
//! Every step is idempotent (it looks at the catalog to see whether it is done)
//! and the backfill records its position in `rlsctl.migrate_progress` in the
//! same transaction as each batch, so a killed run resumes where it stopped.
//!
//! 1. ADD COLUMN, nullable: metadata only, a brief ACCESS EXCLUSIVE lock.
//! 2. A BEFORE INSERT OR UPDATE trigger fills the column of new and changed rows.
//! 3. Backfill by key ranges, one short transaction per batch.
//! 4. NOT NULL via CHECK … NOT VALID, VALIDATE (reads and writes continue),
//!    SET NOT NULL (PostgreSQL 12+ skips the scan given the validated CHECK).
//! 5. CREATE INDEX CONCURRENTLY (an invalid leftover is dropped first).
//! 6. The foreign key a `via` backfill followed gains the tenant column on
//!    both sides (`scope_foreign_key.rs`): index CONCURRENTLY, NOT VALID, VALIDATE.
//! 7. The normal apply path: ENABLE, FORCE, policies, grants; the trigger goes.
//! 8. verify, on this table.
//!
//! Brief-lock DDL runs with a short lock_timeout and is retried, so it never
//! queues in front of the application's queries for long.

mod scope_foreign_key;
mod via;
mod visibility;

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

use crate::apply::{Until, set_lock_timeout};
use crate::catalog::{self, Scope};
use crate::desired::fitted_name;
use crate::errors::{database_message, is_lock_timeout};
use crate::progress::{Progress, Report};
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Backfill, Spec, TableSpec};

/// What to migrate and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub table: QualifiedName,
    pub backfill: Backfill,
    pub batch_size: i64,
    /// Rows per second, at most.
    pub max_rate: Option<f64>,
    /// The lock_timeout of each brief-lock statement, retried after a pause.
    pub lock_timeout: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {}", database_message(source))]
    Database {
        context: String,
        source: sqlx::Error,
    },
    #[error("{0}")]
    Apply(#[from] crate::apply::ApplyError),
}

fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let context = context.into();
    move |source| MigrateError::Database { context, source }
}

/// One step as `--dry-run` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub number: u32,
    pub what: String,
    pub lock: &'static str,
    pub done: bool,
    pub statements: Vec<String>,
}

/// The table as migrate-existing sees it.
struct Subject<'a> {
    declared: &'a TableSpec,
    column_type: &'static str,
    /// The single-column key batches are ranged by.
    key: String,
    /// `(SELECT …)` computing a row's tenant from the row aliased `x`.
    derivation: Sql,
    has_column: bool,
    not_null: bool,
    index: String,
    index_valid: Option<bool>,
    estimated_rows: i64,
    /// The first foreign key a `via` backfill follows.
    followed_key: Option<crate::catalog::ForeignKey>,
    scope_foreign_key: bool,
    /// What step 6 does.
    scoping: scope_foreign_key::Scoping,
}

impl Subject<'_> {
    fn table(&self) -> &QualifiedName {
        &self.declared.name
    }

    fn column(&self) -> &str {
        &self.declared.column
    }
}

const TRIGGER_NAME: &str = "rlsctl_fill_tenant";

/// Reads what the steps need and refuses early: a table that is not declared,
/// no usable key, a derivation that names a missing foreign key, no DDL rights.
async fn subject<'a>(
    conn: &mut PgConnection,
    spec: &'a Spec,
    request: &Request,
) -> Result<Subject<'a>, MigrateError> {
    let declared = spec.table(&request.table).ok_or_else(|| {
        MigrateError::Refused(format!(
            "table {} is not declared in the spec{}: add it under `tables:` first",
            request.table,
            crate::suggest::did_you_mean(
                &request.table.to_string(),
                &spec
                    .tables
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect::<Vec<_>>()
            )
        ))
    })?;
    let snapshot = catalog::read(conn, &Scope::default())
        .await
        .map_err(db("reading the catalog"))?;
    let posture = catalog::read_posture(conn, &snapshot)
        .await
        .map_err(db("reading the catalog"))?;
    let table =
        snapshot.state.tables.get(&declared.name).ok_or_else(|| {
            MigrateError::Refused(format!("table {} does not exist", declared.name))
        })?;

    let (may_ddl,): (bool,) = sqlx::query_as(
        "SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, $1, 'USAGE')
           FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .bind(&table.owner)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("checking rights"))?;
    if !may_ddl {
        return Err(MigrateError::Refused(format!(
            "connected as {}, which neither owns {} (owner: {}) nor is a superuser: migrate-existing runs ALTER TABLE and CREATE TRIGGER, so use the admin connection",
            snapshot.current_user, declared.name, table.owner
        )));
    }

    let key = posture
        .unique_keys
        .iter()
        .filter(|k| k.table == declared.name && k.columns.len() == 1)
        .filter(|k| k.primary || table.not_null.contains(&k.columns[0]))
        .max_by_key(|k| k.primary)
        .map(|k| k.columns[0].clone())
        .ok_or_else(|| {
            MigrateError::Refused(format!(
                "table {} has no single-column primary key or unique NOT NULL key to backfill by in batches. \
Add one first without a long lock (CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD PRIMARY KEY USING INDEX), \
or, if a full-table lock is acceptable for this table, fill the column with one UPDATE yourself",
                declared.name
            ))
        })?;

    let column_type = spec.tenancy.column_type.sql_name();
    let mut followed_key = None;
    let mut scope_key = false;
    let derivation = match &request.backfill {
        Backfill::Constant(value) => Sql::new("(")
            .literal(value)
            .push("::")
            .sql(&Sql::new(column_type))
            .push(")"),
        Backfill::Expression(expression) => Sql::new("(").expr(expression).push(")"),
        Backfill::Via {
            keys,
            scope_foreign_key,
        } => {
            let derived = via::derive(
                spec,
                &posture,
                &snapshot.state,
                &declared.name,
                &declared.column,
                keys,
            )?;
            followed_key = Some(derived.first_key);
            scope_key = *scope_foreign_key;
            derived.sql
        }
    };

    let index = crate::desired::index_name(&declared.name.name, &declared.index_columns);
    let index_valid = table
        .indexes
        .iter()
        .find(|i| i.name == index)
        .map(|i| i.valid);
    let (estimated_rows,): (i64,) = sqlx::query_as(
        "SELECT greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(&declared.name.schema)
    .bind(&declared.name.name)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("estimating rows"))?;

    let mut s = Subject {
        declared,
        column_type,
        key,
        derivation,
        has_column: table.columns.contains_key(&declared.column),
        not_null: table.not_null.contains(&declared.column),
        index,
        index_valid,
        estimated_rows,
        followed_key,
        scope_foreign_key: scope_key,
        scoping: scope_foreign_key::Scoping::Nothing(String::new()),
    };
    s.scoping = scope_foreign_key::plan(
        conn,
        spec,
        &snapshot.state,
        &s,
        snapshot.connecting.server_version_num,
    )
    .await?;
    Ok(s)
}

/// The fill trigger's function: `rlsctl.fill_<schema>_<table>`.
fn trigger_function(table: &QualifiedName) -> QualifiedName {
    QualifiedName::new(
        "rlsctl",
        fitted_name(&format!("fill_{}_{}", table.schema, table.name), ""),
    )
}

/// The temporary `CHECK (column IS NOT NULL)` of step 4.
fn check_name(table: &QualifiedName, column: &str) -> String {
    fitted_name(&format!("{}_{}", table.name, column), "_not_null")
}

/// Dropping the fill trigger and its function (the end of step 7).
fn drop_trigger_statements(table: &QualifiedName) -> [Sql; 2] {
    [
        Sql::new("DROP TRIGGER IF EXISTS ")
            .ident(TRIGGER_NAME)
            .push(" ON ")
            .qname(table),
        Sql::new("DROP FUNCTION IF EXISTS ")
            .qname(&trigger_function(table))
            .push("()"),
    ]
}

/// The statements of each step, for both the dry run and the run.
struct Statements {
    add_column: Sql,
    function: Sql,
    trigger: Sql,
    add_check: Sql,
    validate: Sql,
    set_not_null: Sql,
    drop_check: Sql,
    drop_invalid_index: Sql,
    create_index: Sql,
    drop_trigger: Sql,
    drop_function: Sql,
}

fn statements(s: &Subject) -> Statements {
    let table = s.table();
    let column = s.column();
    let check = check_name(table, column);
    let [drop_trigger, drop_function] = drop_trigger_statements(table);
    let function = trigger_function(table);
    // The trigger sees the row as NEW; `FROM (SELECT NEW.*) AS x` lets the
    // same derivation (written over `x`) serve the trigger and the backfill.
    let body = Sql::new("\nBEGIN\n  IF NEW.")
        .ident(column)
        .push(" IS NULL THEN\n    NEW.")
        .ident(column)
        .push(" := (SELECT ")
        .sql(&s.derivation)
        .push(" FROM (SELECT NEW.*) AS x);\n  END IF;\n  RETURN NEW;\nEND\n");
    Statements {
        add_column: Sql::new("ALTER TABLE ")
            .qname(table)
            .push(" ADD COLUMN IF NOT EXISTS ")
            .ident(column)
            .push(" ")
            .sql(&Sql::new(s.column_type)),
        function: Sql::new("CREATE OR REPLACE FUNCTION ")
            .qname(&function)
            .push("() RETURNS trigger LANGUAGE plpgsql AS ")
            .literal_of(&body),
        // CREATE OR REPLACE TRIGGER exists only from PostgreSQL 14; a resumed
        // run finds its own trigger (same name, same function) in place.
        trigger: Sql::new("DO ").literal_of(
            &Sql::new("BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = ")
                .literal(&table.quoted())
                .push("::regclass AND tgname = ")
                .literal(TRIGGER_NAME)
                .push(") THEN CREATE TRIGGER ")
                .ident(TRIGGER_NAME)
                .push(" BEFORE INSERT OR UPDATE ON ")
                .qname(table)
                .push(" FOR EACH ROW EXECUTE FUNCTION ")
                .qname(&function)
                .push("(); END IF; END"),
        ),
        add_check: Sql::new("ALTER TABLE ")
            .qname(table)
            .push(" ADD CONSTRAINT ")
            .ident(&check)
            .push(" CHECK (")
            .ident(column)
            .push(" IS NOT NULL) NOT VALID"),
        validate: Sql::new("ALTER TABLE ")
            .qname(table)
            .push(" VALIDATE CONSTRAINT ")
            .ident(&check),
        set_not_null: Sql::new("ALTER TABLE ")
            .qname(table)
            .push(" ALTER COLUMN ")
            .ident(column)
            .push(" SET NOT NULL"),
        drop_check: Sql::new("ALTER TABLE ")
            .qname(table)
            .push(" DROP CONSTRAINT IF EXISTS ")
            .ident(&check),
        drop_invalid_index: Sql::new("DROP INDEX CONCURRENTLY IF EXISTS ")
            .qname(&QualifiedName::new(&table.schema, &s.index)),
        create_index: Sql::new("CREATE INDEX CONCURRENTLY IF NOT EXISTS ")
            .ident(&s.index)
            .push(" ON ")
            .qname(table)
            .push(" (")
            .idents(s.declared.index_columns.iter().map(String::as_str))
            .push(")"),
        drop_trigger,
        drop_function,
    }
}

/// The steps with their locks, marking those the catalog shows done.
pub async fn dry_run(
    conn: &mut PgConnection,
    spec: &Spec,
    request: &Request,
) -> Result<Vec<Step>, MigrateError> {
    let s = subject(conn, spec, request).await?;
    visibility::check(conn, &s).await?;
    let st = statements(&s);
    let null_rows = if s.has_column {
        count_null(conn, &s).await?
    } else {
        s.estimated_rows
    };
    let step = |number, what: String, lock, done, statements: &[&Sql]| Step {
        number,
        what,
        lock,
        done,
        statements: statements.iter().map(|s| s.shown().to_string()).collect(),
    };
    Ok(vec![
        step(
            1,
            format!(
                "add {} {} as a nullable column (metadata only)",
                s.column(),
                s.column_type
            ),
            "ACCESS EXCLUSIVE, brief (lock_timeout, retried)",
            s.has_column,
            &[&st.add_column],
        ),
        step(
            2,
            "fill the column of new and updated rows with a trigger while the backfill runs".into(),
            "SHARE ROW EXCLUSIVE, brief (lock_timeout, retried)",
            false,
            &[&st.function, &st.trigger],
        ),
        step(
            3,
            format!(
                "backfill about {null_rows} row(s) in batches of {} by {}, each batch its own transaction{}",
                request.batch_size,
                s.key,
                request
                    .max_rate
                    .map(|r| format!(", at most {r} rows/s"))
                    .unwrap_or_default()
            ),
            "ROW EXCLUSIVE, per batch (row locks on the batch only)",
            s.has_column && null_rows == 0,
            &[],
        ),
        step(
            4,
            format!("make {} NOT NULL without a long exclusive scan", s.column()),
            "ACCESS EXCLUSIVE brief; VALIDATE takes SHARE UPDATE EXCLUSIVE (reads and writes continue)",
            s.not_null,
            &[
                &st.add_check,
                &st.validate,
                &st.set_not_null,
                &st.drop_check,
            ],
        ),
        step(
            5,
            format!("build the tenant index {}", s.index),
            "SHARE UPDATE EXCLUSIVE (writes continue)",
            s.index_valid == Some(true),
            &[&st.drop_invalid_index, &st.create_index],
        ),
        scope_step(conn, &s).await?,
        step(
            7,
            "apply: ENABLE and FORCE row-level security, policies, grants; drop the trigger".into(),
            "ACCESS EXCLUSIVE, brief (lock_timeout)",
            false,
            &[&st.drop_trigger, &st.drop_function],
        ),
        step(
            8,
            format!("verify {}", s.table()),
            "none (rolled back)",
            false,
            &[],
        ),
    ])
}

/// Step 6 as the dry run shows it: the statements still to run.
async fn scope_step(conn: &mut PgConnection, s: &Subject<'_>) -> Result<Step, MigrateError> {
    const LOCK: &str = "SHARE UPDATE EXCLUSIVE to build the parent's index and to VALIDATE (writes continue); \
brief SHARE ROW EXCLUSIVE / ACCESS EXCLUSIVE to add the key and drop the old one (lock_timeout, retried)";
    Ok(match &s.scoping {
        scope_foreign_key::Scoping::Nothing(why) => Step {
            number: 6,
            what: format!("scope the foreign key by tenant: nothing to do ({why})"),
            lock: "none",
            done: true,
            statements: Vec::new(),
        },
        scope_foreign_key::Scoping::Key(key) => {
            let live = scope_foreign_key::read(conn, key).await?;
            let statements = scope_foreign_key::statements(key, &live);
            Step {
                number: 6,
                what: key.describe(),
                lock: LOCK,
                done: statements.is_empty(),
                statements: statements
                    .iter()
                    .map(|(sql, _)| sql.shown().to_string())
                    .collect(),
            }
        }
    })
}

async fn count_null(conn: &mut PgConnection, s: &Subject<'_>) -> Result<i64, MigrateError> {
    let sql = Sql::new("SELECT count(*) FROM ")
        .qname(s.table())
        .push(" WHERE ")
        .ident(s.column())
        .push(" IS NULL");
    sqlx::query_scalar(sql.to_query())
        .fetch_one(&mut *conn)
        .await
        .map_err(db("counting rows without a tenant"))
}

/// What a finished run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub rows_filled: i64,
    pub batches: u64,
    pub lock_retries: u32,
    pub seconds: f64,
}

/// Runs steps 1–6 (apply and verify are the caller's, through their own paths).
pub async fn prepare_table(
    conn: &mut PgConnection,
    spec: &Spec,
    request: &Request,
    progress: &mut Report<'_>,
) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let s = subject(conn, spec, request).await?;
    visibility::check(conn, &s).await?;
    let st = statements(&s);
    let mut summary = Summary::default();

    progress(Progress::Message(&format!(
        "1/8 add column {}.{}",
        s.table(),
        s.column()
    )));
    summary.lock_retries += brief(conn, &request.lock_timeout, &[&st.add_column], progress).await?;
    progress(Progress::Message(
        "2/8 trigger filling new and updated rows",
    ));
    summary.lock_retries += brief(
        conn,
        &request.lock_timeout,
        &[&st.function, &st.trigger],
        progress,
    )
    .await?;

    progress(Progress::Message("3/8 backfill"));
    backfill(conn, &s, request, &mut summary, progress).await?;
    let missing = count_null(conn, &s).await?;
    if missing > 0 {
        let sample = Sql::new("SELECT to_jsonb(x.")
            .ident(&s.key)
            .push(") FROM ")
            .qname(s.table())
            .push(" AS x WHERE x.")
            .ident(s.column())
            .push(" IS NULL LIMIT 5");
        let keys: Vec<Value> = sqlx::query_scalar(sample.to_query())
            .fetch_all(&mut *conn)
            .await
            .map_err(db("sampling rows without a tenant"))?;
        return Err(MigrateError::Refused(format!(
            "{missing} row(s) of {} have no derivable tenant (e.g. {} = {}); nothing was constrained. \
Fix those rows (or the backfill rule), then run migrate-existing again: it resumes",
            s.table(),
            s.key,
            keys.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    if !s.not_null {
        progress(Progress::Message("4/8 NOT NULL via a validated CHECK"));
        let exists = constraint_exists(conn, &s).await?;
        if !exists {
            summary.lock_retries +=
                brief(conn, &request.lock_timeout, &[&st.add_check], progress).await?;
        }
        summary.lock_retries += brief(
            conn,
            &request.lock_timeout,
            &[&st.validate, &st.set_not_null, &st.drop_check],
            progress,
        )
        .await?;
    }

    progress(Progress::Message(&format!(
        "5/8 index {} (CONCURRENTLY)",
        s.index
    )));
    if s.index_valid == Some(false) {
        run_alone(conn, &st.drop_invalid_index).await?;
    }
    run_alone(conn, &st.create_index).await?;

    match &s.scoping {
        scope_foreign_key::Scoping::Key(key) => {
            progress(Progress::Message(&format!("6/8 {}", key.describe())));
            summary.lock_retries +=
                scope_foreign_key::run(conn, key, &request.lock_timeout, progress).await?;
        }
        scope_foreign_key::Scoping::Nothing(why) => {
            progress(Progress::Message(&format!(
                "6/8 scope the foreign key by tenant: nothing to do ({why})"
            )));
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Step 7's end: the trigger is no longer needed once the policies are in place.
pub async fn remove_trigger(
    conn: &mut PgConnection,
    request: &Request,
    progress: &mut Report<'_>,
) -> Result<u32, MigrateError> {
    let [drop_trigger, drop_function] = drop_trigger_statements(&request.table);
    let retries = brief(
        conn,
        &request.lock_timeout,
        &[&drop_trigger, &drop_function],
        progress,
    )
    .await?;
    let forget = sqlx::query("DELETE FROM rlsctl.migrate_progress WHERE table_name = $1")
        .bind(request.table.to_string())
        .execute(&mut *conn)
        .await;
    forget.map_err(db("clearing progress"))?;
    Ok(retries)
}

async fn constraint_exists(conn: &mut PgConnection, s: &Subject<'_>) -> Result<bool, MigrateError> {
    let check = check_name(s.table(), s.column());
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
           JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND con.conname = $3)",
    )
    .bind(&s.table().schema)
    .bind(&s.table().name)
    .bind(check)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading constraints"))
}

/// Runs statements that need a brief strong lock, each in its own
/// transaction with a short lock_timeout; on a timeout, waits and retries so
/// the application's queries never queue behind rlsctl for long.
async fn brief(
    conn: &mut PgConnection,
    lock_timeout: &str,
    statements: &[&Sql],
    progress: &mut Report<'_>,
) -> Result<u32, MigrateError> {
    const ATTEMPTS: u32 = 30;
    let mut retries = 0;
    for statement in statements {
        for attempt in 1..=ATTEMPTS {
            let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
            set_lock_timeout(&mut tx, lock_timeout, Until::TransactionEnd)
                .await
                .map_err(db("invalid --lock-timeout"))?;
            match sqlx::query(statement.to_query()).execute(&mut *tx).await {
                Ok(_) => {
                    tx.commit().await.map_err(db("committing"))?;
                    break;
                }
                Err(e) if is_lock_timeout(&e) && attempt < ATTEMPTS => {
                    tx.rollback().await.map_err(db("rolling back"))?;
                    retries += 1;
                    progress(Progress::Message(&format!(
                        "lock not granted within {lock_timeout}; retrying ({attempt}/{ATTEMPTS})"
                    )));
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10))))
                        .await;
                }
                Err(e) => {
                    tx.rollback().await.ok();
                    return Err(MigrateError::Database {
                        context: statement.shown().to_string(),
                        source: e,
                    });
                }
            }
        }
    }
    Ok(retries)
}

/// CONCURRENTLY statements cannot run inside a transaction block.
async fn run_alone(conn: &mut PgConnection, statement: &Sql) -> Result<(), MigrateError> {
    sqlx::query(statement.to_query())
        .execute(&mut *conn)
        .await
        .map_err(db(statement.shown().to_string()))?;
    Ok(())
}

/// Fills the column batch by batch, in key order, from where the last run stopped.
async fn backfill(
    conn: &mut PgConnection,
    s: &Subject<'_>,
    request: &Request,
    summary: &mut Summary,
    progress: &mut Report<'_>,
) -> Result<(), MigrateError> {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS rlsctl;
         CREATE TABLE IF NOT EXISTS rlsctl.migrate_progress (
             table_name text PRIMARY KEY,
             last_key   jsonb NOT NULL,
             rows_done  bigint NOT NULL DEFAULT 0,
             updated_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await
    .map_err(db("creating rlsctl.migrate_progress"))?;
    let name = s.table().to_string();
    let mut last: Option<Value> =
        sqlx::query_scalar("SELECT last_key FROM rlsctl.migrate_progress WHERE table_name = $1")
            .bind(&name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading progress"))?;
    if let Some(position) = &last {
        // A stored position is a hint, not a fact: rows before it that still
        // lack a tenant (a derivation that failed, since fixed) are redone.
        let behind = Sql::new("SELECT EXISTS (SELECT 1 FROM ")
            .qname(s.table())
            .push(" AS x WHERE x.")
            .ident(s.column())
            .push(" IS NULL AND x.")
            .ident(&s.key)
            .push(" <= (SELECT r.")
            .ident(&s.key)
            .push(" FROM ")
            .sql(&Sql::json_row(s.table()))
            .push("))");
        let redo: bool = sqlx::query_scalar(behind.to_query())
            .bind(position.to_string())
            .fetch_one(&mut *conn)
            .await
            .map_err(db("checking the rows before the stored position"))?;
        if redo {
            progress(Progress::Message(
                "rows before the stored position still lack a tenant: the backfill starts again from the first row",
            ));
            last = None;
        } else {
            progress(Progress::Message(
                "resuming the backfill where the last run stopped",
            ));
        }
    }
    let batch = |from_start: bool| {
        // Both forms take the same three parameters ($1 is '' at the start).
        let lower = if from_start {
            Sql::new(" WHERE $1::text = ''")
        } else {
            Sql::new(" WHERE x.")
                .ident(&s.key)
                .push(" > (SELECT r.")
                .ident(&s.key)
                .push(" FROM ")
                .sql(&Sql::json_row(s.table()))
                .push(")")
        };
        Sql::new("WITH batch AS (SELECT x.")
            .ident(&s.key)
            .push(" AS k FROM ")
            .qname(s.table())
            .push(" AS x")
            .sql(&lower)
            .push(" ORDER BY x.")
            .ident(&s.key)
            .push(" LIMIT $2), filled AS (UPDATE ")
            .qname(s.table())
            .push(" AS x SET ")
            .ident(s.column())
            .push(" = ")
            .sql(&s.derivation)
            .push(" FROM batch WHERE x.")
            .ident(&s.key)
            .push(" = batch.k AND x.")
            .ident(s.column())
            .push(
                " IS NULL RETURNING 1)
             SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM filled),
                    (SELECT jsonb_build_object($3::text, b.k) FROM batch b ORDER BY b.k DESC LIMIT 1)",
            )
    };
    let first = batch(true);
    let next = batch(false);
    let total = s.estimated_rows.max(1);
    let started = Instant::now();
    let mut scanned: i64 = 0;
    loop {
        let mut tx = conn.begin().await.map_err(db("starting a batch"))?;
        let statement = if last.is_some() { &next } else { &first };
        let row = sqlx::query(statement.to_query())
            .bind(last.as_ref().map(Value::to_string).unwrap_or_default())
            .bind(request.batch_size)
            .bind(&s.key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db(format!("backfilling {}", s.table())))?;
        let (seen, filled, key): (i64, i64, Option<Value>) = (
            row.try_get(0).map_err(db("reading a batch"))?,
            row.try_get(1).map_err(db("reading a batch"))?,
            row.try_get(2).map_err(db("reading a batch"))?,
        );
        let Some(key) = key else {
            tx.commit().await.map_err(db("committing a batch"))?;
            break;
        };
        sqlx::query(
            "INSERT INTO rlsctl.migrate_progress (table_name, last_key, rows_done) VALUES ($1, $2, $3)
             ON CONFLICT (table_name) DO UPDATE SET last_key = EXCLUDED.last_key,
                 rows_done = rlsctl.migrate_progress.rows_done + EXCLUDED.rows_done, updated_at = now()",
        )
        .bind(&name)
        .bind(&key)
        .bind(filled)
        .execute(&mut *tx)
        .await
        .map_err(db("recording progress"))?;
        tx.commit().await.map_err(db("committing a batch"))?;
        last = Some(key);
        scanned += seen;
        summary.rows_filled += filled;
        summary.batches += 1;

        let elapsed = started.elapsed().as_secs_f64().max(1e-3);
        if let Some(rate) = request.max_rate {
            let due = scanned as f64 / rate;
            if due > elapsed {
                tokio::time::sleep(Duration::from_secs_f64(due - elapsed)).await;
            }
        }
        // The estimate may be low (rows added since the last ANALYZE): the
        // total grows with the work, and is exact once the table is done.
        let rate = scanned as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let left = (total - scanned).max(0) as f64 / rate.max(1.0);
        progress(Progress::Step {
            done: scanned as usize,
            total: total.max(scanned + 1) as usize,
            what: &format!("{rate:.0} rows/s, about {left:.0}s left"),
        });
        if seen < request.batch_size {
            break;
        }
    }
    progress(Progress::Step {
        done: scanned as usize,
        total: scanned as usize,
        what: "",
    });
    progress(Progress::Message(&format!(
        "backfill: done, {} row(s) filled in {} batch(es)",
        summary.rows_filled, summary.batches
    )));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tables_get_distinct_trigger_functions_and_checks() {
        let long = "t".repeat(60);
        let a = QualifiedName::new("public", format!("{long}_a"));
        let b = QualifiedName::new("public", format!("{long}_b"));
        // Truncated to 63 bytes, both would share one fill function, and the
        // second table's derivation would replace the first's.
        assert_ne!(trigger_function(&a), trigger_function(&b));
        assert_ne!(check_name(&a, "tenant_id"), check_name(&b, "tenant_id"));
        for name in [trigger_function(&a).name, check_name(&a, "tenant_id")] {
            assert!(name.len() <= 63, "{name}");
        }
        assert!(check_name(&a, "tenant_id").ends_with("_not_null"));
    }
}
