//! `plan` and `apply`: one pipeline, two endings.
//!
//! Both open a transaction, run pending migrations, read the live state,
//! normalise the spec's expressions, diff, and render. `plan` then rolls
//! everything back and reports; `apply` executes the statements one by one,
//! records the run in `rlsctl.apply_history`, commits, and only then builds
//! the indexes that must be built CONCURRENTLY.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::catalog::{self, Connecting, Scope};
use crate::desired::desired_state;
use crate::diff::{Change, Notice, Options, diff, password_changes, role_changes};
use crate::errors::{database_message, is_already_exists, is_lock_timeout};
use crate::migrations::{self, MigrationError};
use crate::model::Role;
use crate::normalize::recorded::{self, server_is_read_only};
use crate::normalize::{NormalizeError, normalize};
use crate::plan::{PasswordError, Passwords, Statement, StatementView, render};
use crate::progress::{Progress, Report};
use crate::quote::QualifiedName;
use crate::role_rights::{self, MissingRights};
use crate::spec::{Spec, SpecError};

/// Serialises concurrent applies on one database ("rlsctl" in ASCII).
const APPLY_LOCK_KEY: i64 = 0x726c_7363_746c;

#[derive(Debug, Clone)]
pub struct Settings {
    pub migrations_dir: PathBuf,
    /// The migrations folder was named explicitly: a missing one is an error.
    pub migrations_required: bool,
    pub prune: bool,
    /// `--prune` may run with a spec that declares no tenant tables.
    pub allow_empty: bool,
    /// Migrations may change data that row-level security narrows for the
    /// connecting role (see `migrations::check_filtered_dml`).
    pub allow_rls_filtered_migrations: bool,
    /// How long a DDL statement may wait for its table lock, e.g. `5s`.
    pub lock_timeout: String,
    /// Set the password of every existing declared role with `password_env`,
    /// not only of those that have none.
    pub rotate_passwords: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "refusing to --prune: the spec declares no tenant tables, so pruning would drop every policy rlsctl made, on every table, and leave no tenant isolation. Check that --config names the right folder; if removing it all is intended, add --allow-empty"
    )]
    PruneWithoutTables,
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Migration(#[from] MigrationError),
    #[error("{0}")]
    Normalize(#[from] NormalizeError),
    #[error("{0}")]
    AdoptedFunction(#[from] crate::adopted_function::AdoptedFunctionError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    ReadOnly(String),
    #[error("{0}\nNothing was run: the database is unchanged.")]
    LockSlots(String),
    #[error("{0}\nNothing was run: the database is unchanged.")]
    Rights(#[from] MissingRights),
    #[error("{context}: {}", database_message(source))]
    Database {
        context: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "statement {position} of {total} failed on {object}: {message}\n  {sql}\nThe transaction was rolled back: the database is exactly as it was before this apply."
    )]
    Statement {
        position: usize,
        total: usize,
        object: String,
        sql: String,
        message: String,
    },
    #[error(
        "{object} could not be built: {message}\n  {sql}\nThe policies were applied and committed; the next apply drops the invalid index and builds it again."
    )]
    Concurrent {
        object: String,
        sql: String,
        message: String,
    },
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> ApplyError {
    move |source| ApplyError::Database { context, source }
}

/// What a plan or an apply found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Migrations run (apply) or pending (plan).
    pub migrations: Vec<String>,
    pub statements: Vec<StatementView>,
    pub notices: Vec<String>,
    /// What apply would refuse to run (plan only): role changes the
    /// connecting role lacks the rights for, with the grant that fixes it.
    pub warnings: Vec<String>,
    /// Statements executed: 0 for a plan, and for an apply with nothing to do.
    pub executed: usize,
    pub spec_hash: String,
    pub catalog_queries: u32,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty() && self.statements.is_empty()
    }
}

struct Prepared {
    migrations: Vec<String>,
    statements: Vec<Statement>,
    /// How many of `statements`, from the first, already ran in `prepare`:
    /// the CREATE ROLEs that come before the migrations.
    ran_before_migrations: usize,
    notices: Vec<Notice>,
    warnings: Vec<String>,
    catalog_queries: u32,
    /// Deparses to record for plan and audit on read-only servers.
    normalized: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Missing rights are warnings.
    Plan,
    /// Missing rights are errors, before anything runs.
    Apply,
}

/// Everything up to the statements, inside an open transaction on `conn`.
async fn prepare(
    conn: &mut PgConnection,
    spec: &Spec,
    settings: &Settings,
    intent: Intent,
    progress: &mut Report<'_>,
) -> Result<Prepared, ApplyError> {
    if settings.prune && !settings.allow_empty && spec.tables.is_empty() {
        return Err(ApplyError::PruneWithoutTables);
    }
    let passwords = match intent {
        Intent::Plan => Passwords::Masked,
        Intent::Apply => Passwords::FromEnvironment,
    };
    set_lock_timeout(conn, &settings.lock_timeout, Until::TransactionEnd)
        .await
        .map_err(db("invalid --lock-timeout"))?;

    let read_only = server_is_read_only(conn)
        .await
        .map_err(db("asking whether the server is read-only"))?;
    let found = migrations::load(&settings.migrations_dir, settings.migrations_required)?;

    // Roles are cluster-wide and their changes follow from the spec alone, so
    // a privileged declared role and missing rights are found before any
    // migration or statement runs.
    let role_names: Vec<String> = spec.roles.iter().map(|r| r.name.clone()).collect();
    let desired_roles = desired_state(spec).roles;
    let live_roles = catalog::read_roles(conn, &role_names)
        .await
        .map_err(db("reading the roles"))?;
    let early_role_changes = role_changes(&desired_roles, &live_roles.roles);
    let missing_rights = check_roles(
        spec,
        &early_role_changes,
        &live_roles.roles,
        &live_roles.bootstrap_superuser,
        &live_roles.connecting,
        intent,
    )?;

    // The declared roles exist before the migrations run, so a migration may
    // GRANT to them. A plan creates them too (rolled back with it), unless
    // it could not: on a read-only server, or without the rights (a warning).
    let before_migrations = if read_only || !missing_rights.is_empty() {
        Vec::new()
    } else {
        let creations: Vec<Change> = early_role_changes
            .into_iter()
            .filter(|c| matches!(c, Change::CreateRole { .. }))
            .collect();
        create_roles(conn, &creations, spec, &passwords, settings, progress).await?
    };

    let migrations = if read_only {
        // Nothing can run here; pending migrations would change what the
        // policies apply to, so there is no honest plan without them.
        let pending = migrations::pending(conn, &found).await?;
        if !pending.is_empty() {
            return Err(ApplyError::ReadOnly(format!(
                "{} migration(s) are pending ({}), and this server is read-only (a hot standby or a read-only transaction), so they cannot be run to see their effect. Plan against the primary.",
                pending.len(),
                pending.join(", ")
            )));
        }
        pending
    } else {
        if !settings.allow_rls_filtered_migrations {
            let pending = migrations::pending(conn, &found).await?;
            // Only read-write access lets an UPDATE or DELETE reach every row.
            let open_policies: Vec<String> = spec
                .maintenance
                .iter()
                .filter(|m| m.access == crate::spec::Access::ReadWrite)
                .map(|m| m.policy())
                .collect();
            migrations::check_filtered_dml(
                conn,
                &settings.migrations_dir,
                &pending,
                &open_policies,
            )
            .await?;
        }
        check_lock_slots_for_migrations(conn, &found).await?;
        migrations::run(conn, &settings.migrations_dir, &found).await?
    };

    let scope = Scope {
        function: Some(spec.tenancy.function.clone()),
        roles: spec.roles.iter().map(|r| r.name.clone()).collect(),
        resolvers: spec.resolvers.iter().map(|r| r.name.clone()).collect(),
    };
    let mut snapshot = catalog::read(conn, &scope)
        .await
        .map_err(db("reading the catalog"))?;
    snapshot.state.object_grants = crate::grants::read_live(conn, spec)
        .await
        .map_err(db("reading the declared grants"))?;
    let null_rows = null_tenant_rows(conn, spec, &snapshot.state)
        .await
        .map_err(db("counting rows without a tenant"))?;
    let (narrowed, waiting) = convergeable_now(spec, &snapshot.state, &null_rows);
    let spec = &crate::children::cover_children(&narrowed, &snapshot.state);
    crate::references::check(spec, &snapshot)?;
    crate::maintenance_guard::check(conn, spec).await?;
    // Before normalize, whose policies on temporary tables call it.
    crate::adopted_function::check(conn, spec).await?;

    let desired = desired_state(spec);
    let normalized = normalize(
        conn,
        &desired,
        &snapshot.state,
        &spec.tenancy.column,
        read_only,
    )
    .await?;
    let mut result = diff(
        &desired,
        &snapshot.state,
        &normalized.forms,
        &spec.tenancy.column,
        Options {
            prune: settings.prune,
        },
    );
    // Roles this apply created got their password with CREATE ROLE.
    let created: BTreeSet<String> = before_migrations
        .iter()
        .filter_map(|s| s.creates_role.as_ref().map(|r| r.name.clone()))
        .collect();
    let known = catalog::passwords_known(conn, &role_names, snapshot.connecting.superuser)
        .await
        .map_err(db("reading which roles have a password"))?;
    let (passwords_to_set, password_notices) = password_changes(
        &desired.roles,
        &snapshot.state.roles,
        &created,
        &known,
        settings.rotate_passwords,
    );
    result.changes.extend(passwords_to_set);
    result.notices.extend(password_notices);
    // Again on what the migrations left (one of them may have made a role).
    let warnings = check_roles(
        spec,
        &result.changes,
        &snapshot.state.roles,
        &snapshot.bootstrap_superuser,
        &snapshot.connecting,
        intent,
    )?;
    choose_index_builds(conn, &mut result.changes, &snapshot.state).await?;
    let mut warnings = warnings;
    if !read_only {
        let capacity = crate::lock_slots::capacity(conn)
            .await
            .map_err(db("reading the lock table's size"))?;
        let held = crate::lock_slots::held(conn)
            .await
            .map_err(db("counting the locks held"))?;
        let needed = held + crate::lock_slots::for_changes(&result.changes, &snapshot.state);
        if let Some(refusal) = capacity.refusal(needed, "applying these statements") {
            match intent {
                Intent::Apply => return Err(ApplyError::LockSlots(refusal)),
                Intent::Plan => warnings.push(refusal),
            }
        }
    }
    result.notices.extend(waiting);
    let ran_before_migrations = before_migrations.len();
    let mut statements = before_migrations;
    statements.extend(render(&result.changes, &passwords)?);
    Ok(Prepared {
        migrations,
        statements,
        ran_before_migrations,
        notices: result.notices,
        warnings,
        catalog_queries: snapshot.queries,
        normalized: normalized.keyed,
    })
}

/// Refuses, before they run, pending migrations that would take more lock
/// slots than the server has (see `lock_slots`).
async fn check_lock_slots_for_migrations(
    conn: &mut PgConnection,
    found: &[refinery::Migration],
) -> Result<(), ApplyError> {
    let pending = migrations::pending(conn, found).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let texts = found
        .iter()
        .filter(|m| pending.contains(&format!("V{}__{}", m.version(), m.name())))
        .filter_map(|m| m.sql());
    let needed = crate::lock_slots::for_migrations(texts);
    let capacity = crate::lock_slots::capacity(conn)
        .await
        .map_err(db("reading the lock table's size"))?;
    match capacity.refusal(
        needed,
        &format!("running the {} pending migration(s)", pending.len()),
    ) {
        Some(refusal) => Err(ApplyError::LockSlots(refusal)),
        None => Ok(()),
    }
}

/// Runs the CREATE ROLE of each of `creations`; returns their statements.
/// A plan shows each with its password masked and runs it without one.
async fn create_roles(
    conn: &mut PgConnection,
    creations: &[Change],
    spec: &Spec,
    passwords: &Passwords,
    settings: &Settings,
    progress: &mut Report<'_>,
) -> Result<Vec<Statement>, ApplyError> {
    let statements = render(creations, passwords)?;
    let total = statements.len();
    for (i, statement) in statements.iter().enumerate() {
        let Some(role) = &statement.creates_role else {
            continue;
        };
        let run = match passwords {
            Passwords::FromEnvironment => statement.clone(),
            Passwords::Masked => {
                let without_password = Role {
                    password_env: None,
                    ..role.clone()
                };
                let change = Change::CreateRole {
                    role: without_password,
                };
                render(&[change], passwords)?.remove(0)
            }
        };
        if let Err(failure) = create_role(conn, &run, role, spec, progress).await {
            return Err(match failure {
                Failure::Database(error) => {
                    statement_error(i + 1, total, statement, &error, &settings.lock_timeout)
                }
                Failure::Refused(error) => error,
            });
        }
    }
    Ok(statements)
}

/// Refuses privileged declared roles; returns, for a plan, the role changes
/// the connecting role could not make (an apply fails on them instead).
fn check_roles(
    spec: &Spec,
    changes: &[Change],
    live: &std::collections::BTreeMap<String, Role>,
    bootstrap_superuser: &str,
    connecting: &Connecting,
    intent: Intent,
) -> Result<Vec<String>, ApplyError> {
    crate::role_guard::check(spec, live, bootstrap_superuser)?;
    match role_rights::check(changes, connecting) {
        Ok(()) => Ok(Vec::new()),
        Err(missing) if intent == Intent::Plan => Ok(vec![format!(
            "{missing}\n`rlsctl apply` as {} would stop before running anything.",
            missing.connecting
        )]),
        Err(missing) => Err(missing.into()),
    }
}

/// How long a `set_lock_timeout` holds.
pub(crate) enum Until {
    TransactionEnd,
    SessionEnd,
}

/// A DDL statement waiting for a lock also blocks every query queued behind
/// it, so apply and migrate-existing give up after `timeout` instead.
pub(crate) async fn set_lock_timeout(
    conn: &mut PgConnection,
    timeout: &str,
    until: Until,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('lock_timeout', $1, $2)")
        .bind(timeout)
        .bind(matches!(until, Until::TransactionEnd))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The part of `spec` that can be converged now, and a notice for each table
/// left out. A declared table with a `backfill` waits for `rlsctl
/// migrate-existing` while it exists without its tenant column, or, not yet
/// under row-level security, still has rows whose tenant is NULL (counted in
/// `null_rows`, see `null_tenant_rows`): a tenant policy would hide those rows
/// from every tenant instead of giving them one.
pub fn convergeable_now(
    spec: &Spec,
    live: &crate::model::State,
    null_rows: &BTreeMap<QualifiedName, i64>,
) -> (Spec, Vec<Notice>) {
    let mut notices = Vec::new();
    let mut waiting = BTreeSet::new();
    for table in spec.tables.iter().filter(|t| t.backfill.is_some()) {
        let Some(found) = live.tables.get(&table.name) else {
            continue;
        };
        let null_rows = if !found.columns.contains_key(&table.column) {
            None
        } else {
            match null_rows.get(&table.name) {
                Some(&rows) if rows > 0 => Some(rows),
                _ => continue,
            }
        };
        waiting.insert(table.name.clone());
        notices.push(Notice::AwaitingBackfill {
            table: table.name.clone(),
            null_rows,
        });
    }
    (spec.without(&waiting), notices)
}

/// For each declared table with a `backfill` that has its tenant column,
/// nullable, and is not under row-level security yet: how many of its rows
/// have a NULL tenant. Read-only (a count per table), so audit uses it too.
pub async fn null_tenant_rows(
    conn: &mut PgConnection,
    spec: &Spec,
    live: &crate::model::State,
) -> Result<BTreeMap<QualifiedName, i64>, sqlx::Error> {
    let mut counts = BTreeMap::new();
    for table in spec.tables.iter().filter(|t| t.backfill.is_some()) {
        let Some(found) = live.tables.get(&table.name) else {
            continue;
        };
        if found.rls_enabled
            || !found.columns.contains_key(&table.column)
            || found.not_null.contains(&table.column)
        {
            continue;
        }
        let count = crate::quote::Sql::new("SELECT count(*) FROM ")
            .qname(&table.name)
            .push(" WHERE ")
            .ident(&table.column)
            .push(" IS NULL");
        let (rows,): (i64,) = sqlx::query_as(count.to_query())
            .persistent(false)
            .fetch_one(&mut *conn)
            .await?;
        counts.insert(table.name.clone(), rows);
    }
    Ok(counts)
}

/// An index on a table that holds rows is built CONCURRENTLY, after commit,
/// so writes continue while it builds; an empty table gets it in the
/// transaction. Partitioned tables cannot build concurrently at all.
async fn choose_index_builds(
    conn: &mut PgConnection,
    changes: &mut [Change],
    live: &crate::model::State,
) -> Result<(), ApplyError> {
    let candidates: Vec<QualifiedName> = changes
        .iter()
        .filter_map(|c| match c {
            Change::CreateIndex { table, .. } | Change::DropInvalidIndex { table, .. } => {
                let partitioned = live.tables.get(table).is_some_and(|t| t.partitioned);
                (!partitioned).then(|| table.clone())
            }
            _ => None,
        })
        .collect();
    let with_rows = catalog::tables_with_rows(conn, &candidates)
        .await
        .map_err(db("measuring tables that need an index"))?;
    for change in changes.iter_mut() {
        if let Change::CreateIndex {
            table,
            concurrently,
            ..
        }
        | Change::DropInvalidIndex {
            table,
            concurrently,
            ..
        } = change
        {
            *concurrently = with_rows.contains(table);
        }
    }
    Ok(())
}

fn outcome(prepared: &Prepared, spec: &Spec, executed: usize) -> Outcome {
    Outcome {
        migrations: prepared.migrations.clone(),
        statements: prepared.statements.iter().map(Statement::view).collect(),
        notices: prepared.notices.iter().map(ToString::to_string).collect(),
        warnings: prepared.warnings.clone(),
        executed,
        spec_hash: spec.hash.clone(),
        catalog_queries: prepared.catalog_queries,
    }
}

/// What `apply` would do, computed in a transaction that is always rolled back.
pub async fn plan(
    conn: &mut PgConnection,
    spec: &Spec,
    settings: &Settings,
) -> Result<Outcome, ApplyError> {
    let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
    let prepared = prepare(&mut tx, spec, settings, Intent::Plan, &mut |_| {}).await;
    tx.rollback().await.map_err(db("rolling back the plan"))?;
    Ok(outcome(&prepared?, spec, 0))
}

/// Converges the database on the spec; `progress` hears about each statement.
pub async fn apply(
    conn: &mut PgConnection,
    spec: &Spec,
    settings: &Settings,
    progress: &mut Report<'_>,
) -> Result<Outcome, ApplyError> {
    wait_for_apply_lock(conn, progress).await?;
    let result = apply_locked(conn, spec, settings, progress).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(APPLY_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    let outcome = result?;
    unlock.map_err(db("releasing the apply lock"))?;
    Ok(outcome)
}

/// A session-level advisory lock, polled rather than waited on: a waiting
/// statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the holder
/// waits for every older snapshot, so a blocking wait could deadlock the two.
async fn wait_for_apply_lock(
    conn: &mut PgConnection,
    progress: &mut Report<'_>,
) -> Result<(), ApplyError> {
    let mut told = false;
    loop {
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(APPLY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("taking the apply lock"))?;
        if locked {
            return Ok(());
        }
        if !told {
            progress(Progress::Message(
                "another rlsctl apply is running on this database; waiting for it to finish",
            ));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn apply_locked(
    conn: &mut PgConnection,
    spec: &Spec,
    settings: &Settings,
    progress: &mut Report<'_>,
) -> Result<Outcome, ApplyError> {
    let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
    if server_is_read_only(&mut tx)
        .await
        .map_err(db("asking whether the server is read-only"))?
    {
        tx.rollback().await.map_err(db("rolling back"))?;
        return Err(ApplyError::ReadOnly(
            "this server is read-only (a hot standby, or a read-only transaction for this credential): apply must run against the primary with a role that can change it".into(),
        ));
    }
    let prepared = match prepare(&mut tx, spec, settings, Intent::Apply, progress).await {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await.map_err(db("rolling back"))?;
            return Err(e);
        }
    };
    for name in &prepared.migrations {
        progress(Progress::Message(&format!("migration {name} applied")));
    }
    let (inside, outside): (Vec<&Statement>, Vec<&Statement>) = prepared
        .statements
        .iter()
        .partition(|s| !s.outside_transaction);
    let total = prepared.statements.len();
    let skip = prepared.ran_before_migrations;
    for (i, statement) in inside.iter().enumerate().skip(skip) {
        let result = match &statement.creates_role {
            Some(role) => create_role(&mut tx, statement, role, spec, progress).await,
            None => sqlx::query(statement.sql.to_query())
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map(|_| ())
                .map_err(Failure::Database),
        };
        if let Err(failure) = result {
            tx.rollback().await.map_err(db("rolling back"))?;
            return Err(match failure {
                Failure::Database(error) => {
                    statement_error(i + 1, total, statement, &error, &settings.lock_timeout)
                }
                Failure::Refused(error) => error,
            });
        }
        progress(Progress::Step {
            done: i + 1,
            total,
            what: &statement.object,
        });
    }
    if !prepared.migrations.is_empty() || total > 0 {
        record_history(&mut tx, spec, &prepared, settings).await?;
    }
    if let Err(error) = recorded::store(&mut tx, &prepared.normalized).await {
        tx.rollback().await.map_err(db("rolling back"))?;
        return Err(ApplyError::Database {
            context: "recording normalised expressions in rlsctl.normalized_expressions",
            source: error,
        });
    }
    tx.commit().await.map_err(db("committing"))?;

    for (j, statement) in outside.iter().enumerate() {
        let building = format!("{} (concurrently; writes continue)", statement.object);
        progress(Progress::Message(&building));
        progress(Progress::Step {
            done: inside.len() + j,
            total,
            what: &building,
        });
        set_lock_timeout(conn, &settings.lock_timeout, Until::SessionEnd)
            .await
            .map_err(db("setting lock_timeout"))?;
        if let Err(error) = sqlx::query(statement.sql.to_query())
            .persistent(false)
            .execute(&mut *conn)
            .await
        {
            return Err(ApplyError::Concurrent {
                object: statement.object.clone(),
                sql: statement.sql.to_string(),
                message: database_message(&error),
            });
        }
        progress(Progress::Step {
            done: inside.len() + j + 1,
            total,
            what: &statement.object,
        });
    }
    Ok(outcome(&prepared, spec, total))
}

/// Why one planned statement did not go through.
enum Failure {
    Database(sqlx::Error),
    /// Refused before or instead of a statement; already a whole message.
    Refused(ApplyError),
}

/// `CREATE ROLE`, safe against an apply to another database of the cluster
/// creating the same role at the same moment. Advisory locks are per
/// database and no lock on a shared catalog is open to a non-superuser, so
/// rather than serialise, this lets PostgreSQL's unique index on role names
/// decide: the second CREATE waits for the first transaction, then fails
/// (or finds the role already there). Inside a savepoint that failure is
/// undone and the role the other apply made is checked like any existing
/// role: accepted when it is as the spec wants, altered when only LOGIN
/// differs, refused when it is privileged.
async fn create_role(
    tx: &mut PgConnection,
    statement: &Statement,
    role: &Role,
    spec: &Spec,
    progress: &mut Report<'_>,
) -> Result<(), Failure> {
    let mut told = false;
    loop {
        let mut savepoint = tx.begin().await.map_err(Failure::Database)?;
        let created = sqlx::query(statement.sql.to_query())
            .persistent(false)
            .execute(&mut *savepoint)
            .await;
        let error = match created {
            Ok(_) => return savepoint.commit().await.map_err(Failure::Database),
            Err(error) => error,
        };
        savepoint.rollback().await.map_err(Failure::Database)?;
        if is_lock_timeout(&error) {
            // Only another transaction creating the same name makes CREATE
            // ROLE wait; it ends, and then this one knows the outcome.
            if !told {
                progress(Progress::Message(&format!(
                    "role {}: another transaction is creating it (an apply to another database?); waiting for it to finish",
                    role.name
                )));
                told = true;
            }
            continue;
        }
        if !is_already_exists(&error) {
            return Err(Failure::Database(error));
        }
        let Some(existing) = catalog::read_role(tx, &role.name)
            .await
            .map_err(Failure::Database)?
        else {
            return Err(Failure::Database(error));
        };
        progress(Progress::Message(&format!(
            "role {}: created meanwhile by another session; using it",
            role.name
        )));
        let live = std::collections::BTreeMap::from([(role.name.clone(), existing.clone())]);
        crate::role_guard::check(spec, &live, "")
            .map_err(|e| Failure::Refused(ApplyError::Spec(e)))?;
        let attributes = role.changed_from(&existing);
        if !attributes.is_empty() {
            sqlx::query(crate::plan::alter_role(&role.name, &attributes).to_query())
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(Failure::Database)?;
        }
        return Ok(());
    }
}

fn statement_error(
    position: usize,
    total: usize,
    statement: &Statement,
    error: &sqlx::Error,
    lock_timeout: &str,
) -> ApplyError {
    let message = if is_lock_timeout(error) {
        format!(
            "could not get its lock within lock_timeout ({lock_timeout}): another session holds a lock on it (a long transaction?). Retry when it ends, or pass a longer --lock-timeout"
        )
    } else {
        database_message(error)
    };
    ApplyError::Statement {
        position,
        total,
        object: statement.object.clone(),
        sql: statement.sql.to_string(),
        message,
    }
}

/// Evidence for auditors: who changed what, from which spec, when, and
/// which flags let it (see `crate::history`).
async fn record_history(
    conn: &mut PgConnection,
    spec: &Spec,
    prepared: &Prepared,
    settings: &Settings,
) -> Result<(), ApplyError> {
    let statements: Vec<String> = prepared
        .statements
        .iter()
        .map(|s| s.sql.to_string())
        .collect();
    let flags: Vec<String> = [
        (settings.prune, "--prune"),
        (settings.allow_empty, "--allow-empty"),
        (
            settings.allow_rls_filtered_migrations,
            "--allow-rls-filtered-migrations",
        ),
        (settings.rotate_passwords, "--rotate-passwords"),
    ]
    .into_iter()
    .filter(|(given, _)| *given)
    .map(|(_, flag)| flag.to_string())
    .collect();
    crate::history::record(
        conn,
        &crate::history::Record {
            spec_hash: &spec.hash,
            migrations: &prepared.migrations,
            statements: &statements,
            flags: &flags,
        },
    )
    .await
    .map_err(db("recording the apply in rlsctl.apply_history"))
}
