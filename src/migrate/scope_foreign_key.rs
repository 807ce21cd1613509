//! Step 6: the foreign key the backfill followed is scoped by tenant.
//!
//! Once child and parent both carry the tenant, `(parent_id) → parent (id)`
//! becomes `(tenant_id, parent_id) → parent (tenant_id, id)`, so a row can no
//! longer point at another tenant's parent (referential checks are not
//! filtered by RLS). Built without a long lock, each part resumable:
//!
//! 1. a unique index on the parent's `(tenant_id, id)`, CONCURRENTLY (an
//!    INVALID leftover of a killed build is dropped and rebuilt first);
//! 2. made a UNIQUE constraint with `USING INDEX` (brief);
//! 3. the new key added NOT VALID (brief: new writes are checked from here on);
//! 4. VALIDATE, which scans under SHARE UPDATE EXCLUSIVE: writes continue;
//! 5. the old key dropped (brief): the new one implies it, the tenant being NOT NULL.
//!
//! What the new key cannot carry over (ON UPDATE SET NULL, which would null
//! the tenant too; ON DELETE SET NULL before PostgreSQL 15, which has no
//! column list; MATCH FULL over several columns) is refused before anything
//! changes, with the way out.

use sqlx::PgConnection;

use super::{MigrateError, Subject, brief, db, run_alone};
use crate::catalog::ForeignKey;
use crate::desired::fitted_name;
use crate::model::State;
use crate::progress::{Progress, Report};
use crate::quote::{QualifiedName, Sql};
use crate::spec::Spec;

/// What step 6 does for a table.
pub(super) enum Scoping {
    /// Nothing to scope, and why (the dry run says it).
    Nothing(String),
    Key(Box<ScopedKey>),
}

pub(super) struct ScopedKey {
    child: QualifiedName,
    old: ForeignKey,
    /// The tenant column, then the old key's columns.
    columns: Vec<String>,
    /// The parent's tenant column, then the old key's referenced columns.
    referenced: Vec<String>,
    /// The new key's name: PostgreSQL's own for it, so a migration that adds
    /// the same key unnamed meets this one.
    name: String,
    /// The parent's unique index and constraint, named the way PostgreSQL
    /// names `UNIQUE (tenant_id, id)`.
    unique: String,
    /// `MATCH …`, `ON UPDATE …`, `ON DELETE …`, `DEFERRABLE …`: the old key's.
    behaviour: Sql,
}

impl ScopedKey {
    fn parent(&self) -> &QualifiedName {
        &self.old.references
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "scope the foreign key {} by tenant: ({}) → {} ({}), then drop it",
            self.old.name,
            self.columns.join(", "),
            self.parent(),
            self.referenced.join(", ")
        )
    }
}

/// The old key's catalog flags that the new one must repeat.
type KeyFlags = (String, String, String, bool, bool);

/// Decides what step 6 does, refusing (before anything changes) a key whose
/// behaviour a tenant-scoped key cannot keep.
pub(super) async fn plan(
    conn: &mut PgConnection,
    spec: &Spec,
    live: &State,
    s: &Subject<'_>,
    server_version: u32,
) -> Result<Scoping, MigrateError> {
    let Some(old) = &s.followed_key else {
        return Ok(Scoping::Nothing(
            "the backfill does not follow a foreign key".into(),
        ));
    };
    if !s.scope_foreign_key {
        return Ok(Scoping::Nothing(format!(
            "`scope_foreign_key: false`: {} stays as it is",
            old.name
        )));
    }
    let child = s.table();
    let tenant = s.column();
    if old.columns.iter().any(|c| c == tenant) {
        return Ok(Scoping::Nothing(format!(
            "{} already includes {tenant}",
            old.name
        )));
    }
    let parent = &old.references;
    let parent_tenant = spec
        .table(parent)
        .map(|t| t.column.clone())
        .unwrap_or_else(|| spec.tenancy.column.clone());
    let Some(parent_table) = live.tables.get(parent) else {
        return Ok(Scoping::Nothing(format!("{parent} is not readable")));
    };
    let Some(parent_type) = parent_table.columns.get(&parent_tenant) else {
        return Ok(Scoping::Nothing(format!(
            "{parent} has no {parent_tenant} column to scope {} by",
            old.name
        )));
    };
    let refuse = |why: String| {
        MigrateError::Refused(format!(
            "cannot scope the foreign key {} on {child} by tenant: {why}. Nothing was changed. \
Set `scope_foreign_key: false` under the table's `backfill:` to keep the key as it is \
(audit then reports it as FOREIGN_KEY_NOT_SCOPED_BY_TENANT)",
            old.name
        ))
    };
    let child_type = live
        .tables
        .get(child)
        .and_then(|t| t.columns.get(tenant).map(String::as_str))
        .unwrap_or(s.column_type);
    if parent_type != child_type {
        return Err(refuse(format!(
            "{parent}.{parent_tenant} is {parent_type} and {child}.{tenant} is {child_type}"
        )));
    }
    if parent_table.partitioned {
        return Err(refuse(format!(
            "{parent} is partitioned, and its unique index on ({parent_tenant}, …) cannot be built CONCURRENTLY"
        )));
    }

    let (on_update, on_delete, matching, deferrable, deferred): KeyFlags = sqlx::query_as(
        "SELECT con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text,
                con.condeferrable, con.condeferred
           FROM pg_catalog.pg_constraint con
          WHERE con.conrelid = pg_catalog.to_regclass($1) AND con.conname = $2",
    )
    .bind(child.quoted())
    .bind(&old.name)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading the foreign key"))?;
    let (may_index,): (bool,) = sqlx::query_as(
        "SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
           FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
          WHERE c.oid = pg_catalog.to_regclass($1) AND r.rolname = current_user",
    )
    .bind(parent.quoted())
    .fetch_one(&mut *conn)
    .await
    .map_err(db("checking rights on the parent"))?;
    if !may_index {
        return Err(refuse(format!(
            "the connecting role neither owns {parent} (owner: {}) nor is a superuser, and the key needs a unique index there",
            parent_table.owner
        )));
    }

    // MATCH FULL over one column is MATCH SIMPLE once the tenant is NOT NULL.
    if matching == "f" && old.columns.len() > 1 {
        return Err(refuse(
            "it is MATCH FULL over several columns, which a key that adds the tenant cannot keep"
                .into(),
        ));
    }
    let mut behaviour = Sql::new(" ON UPDATE ").sql(&action(&on_update).ok_or_else(|| {
        refuse("it sets the referencing columns on UPDATE of the parent, which would set the tenant too".into())
    })?);
    behaviour = behaviour.push(" ON DELETE ");
    match action(&on_delete) {
        Some(a) => behaviour = behaviour.sql(&a),
        None if server_version >= 150_000 => {
            // Only the old columns: the tenant stays.
            behaviour = behaviour
                .push(if on_delete == "n" {
                    "SET NULL ("
                } else {
                    "SET DEFAULT ("
                })
                .idents(old.columns.iter().map(String::as_str))
                .push(")");
        }
        None => {
            return Err(refuse(
                "it sets the referencing columns on DELETE of the parent, and before PostgreSQL 15 a key cannot leave its tenant column out of that".into(),
            ));
        }
    }
    if deferrable {
        behaviour = behaviour.push(if deferred {
            " DEFERRABLE INITIALLY DEFERRED"
        } else {
            " DEFERRABLE INITIALLY IMMEDIATE"
        });
    }

    let columns: Vec<String> = std::iter::once(tenant.to_string())
        .chain(old.columns.iter().cloned())
        .collect();
    let referenced: Vec<String> = std::iter::once(parent_tenant)
        .chain(old.referenced_columns.iter().cloned())
        .collect();

    // A key over the new columns that already exists (made by hand, or by an
    // earlier run) is used as it is; it must then behave as the old key does,
    // or dropping the old one would change what a parent's DELETE or UPDATE
    // does to the children.
    let existing: Vec<(String, String, String, String, bool, bool)> = sqlx::query_as(
        "SELECT con.conname::text, con.confupdtype::text, con.confdeltype::text,
                con.confmatchtype::text, con.condeferrable, con.condeferred
           FROM pg_catalog.pg_constraint con
          WHERE con.conrelid = pg_catalog.to_regclass($1) AND con.contype = 'f'
            AND con.confrelid = pg_catalog.to_regclass($2)
            AND ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) = $3::text[]
            AND ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) = $4::text[]",
    )
    .bind(child.quoted())
    .bind(parent.quoted())
    .bind(&columns)
    .bind(&referenced)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading the child's foreign keys"))?;
    for (name, update, delete, match_type, is_deferrable, is_deferred) in existing {
        let same = update == on_update
            && delete == on_delete
            && (match_type == matching || match_type == "s")
            && is_deferrable == deferrable
            && is_deferred == deferred;
        if !same {
            return Err(refuse(format!(
                "the key {name} over ({}) already exists with other actions than {} (ON UPDATE {}, ON DELETE {}{}), and dropping {} would leave that behaviour in its place; make {name} behave as {} does, or drop it",
                columns.join(", "),
                old.name,
                action_word(&update),
                action_word(&delete),
                if is_deferrable { ", DEFERRABLE" } else { "" },
                old.name,
                old.name
            )));
        }
    }
    Ok(Scoping::Key(Box::new(ScopedKey {
        child: child.clone(),
        name: fitted_name(&format!("{}_{}", child.name, columns.join("_")), "_fkey"),
        unique: fitted_name(&format!("{}_{}", parent.name, referenced.join("_")), "_key"),
        old: old.clone(),
        columns,
        referenced,
        behaviour,
    })))
}

/// A foreign key action code as SQL says it.
fn action_word(code: &str) -> &'static str {
    match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "?",
    }
}

/// The actions a scoped key repeats as they are; `None` for SET NULL and
/// SET DEFAULT, which would touch the tenant column too.
fn action(code: &str) -> Option<Sql> {
    match code {
        "r" => Some(Sql::new("RESTRICT")),
        "c" => Some(Sql::new("CASCADE")),
        "n" | "d" => None,
        _ => Some(Sql::new("NO ACTION")),
    }
}

/// How far step 6 got, from the catalog.
pub(super) struct Live {
    /// A valid unique index over the parent's columns: its name and whether
    /// it backs a constraint.
    covering: Option<(String, bool)>,
    /// This step's own index exists but is INVALID (a killed build).
    own_invalid: bool,
    /// A key over the new columns: its name and whether it is validated.
    key: Option<(String, bool)>,
    old_exists: bool,
}

pub(super) async fn read(conn: &mut PgConnection, k: &ScopedKey) -> Result<Live, MigrateError> {
    let mut sorted = k.referenced.clone();
    sorted.sort();
    let indexes: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT i.relname::text, x.indisvalid,
                EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                         WHERE con.conindid = x.indexrelid AND con.conrelid = x.indrelid
                           AND con.contype IN ('p', 'u'))
           FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = pg_catalog.to_regclass($1) AND x.indisunique AND x.indimmediate
            AND x.indpred IS NULL AND x.indexprs IS NULL
            AND ARRAY(SELECT a.attname::text
                        FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                       WHERE k.ord <= x.indnkeyatts
                       ORDER BY a.attname COLLATE \"C\") = $2::text[]
          ORDER BY x.indisvalid DESC, 3 DESC, i.relname",
    )
    .bind(k.parent().quoted())
    .bind(&sorted)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading the parent's unique indexes"))?;
    let covering = indexes
        .iter()
        .find(|(_, valid, _)| *valid)
        .map(|(name, _, constraint)| (name.clone(), *constraint));
    let own_invalid = indexes
        .iter()
        .any(|(name, valid, _)| name == &k.unique && !valid);
    let key: Option<(String, bool)> = sqlx::query_as(
        "SELECT con.conname::text, con.convalidated
           FROM pg_catalog.pg_constraint con
          WHERE con.conrelid = pg_catalog.to_regclass($1) AND con.contype = 'f'
            AND con.confrelid = pg_catalog.to_regclass($2)
            AND ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) = $3::text[]
            AND ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) = $4::text[]
          ORDER BY con.convalidated DESC, con.conname
          LIMIT 1",
    )
    .bind(k.child.quoted())
    .bind(k.parent().quoted())
    .bind(&k.columns)
    .bind(&k.referenced)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("reading the child's foreign keys"))?;
    let (old_exists,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                         WHERE conrelid = pg_catalog.to_regclass($1) AND conname = $2)",
    )
    .bind(k.child.quoted())
    .bind(&k.old.name)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading the child's foreign keys"))?;
    Ok(Live {
        covering,
        own_invalid,
        key,
        old_exists,
    })
}

/// How a statement of the step runs.
pub(super) enum Run {
    /// CONCURRENTLY: outside any transaction block.
    Alone,
    /// A brief lock: lock_timeout, retried.
    Brief,
}

/// The statements still to run, in order.
pub(super) fn statements(k: &ScopedKey, live: &Live) -> Vec<(Sql, Run)> {
    let parent = k.parent();
    let mut out = Vec::new();
    let unique = QualifiedName::new(&parent.schema, &k.unique);
    let building = live.covering.is_none();
    if building && live.own_invalid {
        out.push((
            Sql::new("DROP INDEX CONCURRENTLY IF EXISTS ").qname(&unique),
            Run::Alone,
        ));
    }
    if building {
        out.push((
            Sql::new("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ")
                .ident(&k.unique)
                .push(" ON ")
                .qname(parent)
                .push(" (")
                .idents(k.referenced.iter().map(String::as_str))
                .push(")"),
            Run::Alone,
        ));
    }
    // Only this step's own index becomes a constraint; another unique index
    // already serves the key as it is.
    let own_index_bare = match &live.covering {
        None => true,
        Some((name, constraint)) => name == &k.unique && !constraint,
    };
    if own_index_bare {
        out.push((
            Sql::new("ALTER TABLE ")
                .qname(parent)
                .push(" ADD CONSTRAINT ")
                .ident(&k.unique)
                .push(" UNIQUE USING INDEX ")
                .ident(&k.unique),
            Run::Brief,
        ));
    }
    let name = match &live.key {
        Some((name, _)) => name.clone(),
        None => {
            out.push((
                Sql::new("ALTER TABLE ")
                    .qname(&k.child)
                    .push(" ADD CONSTRAINT ")
                    .ident(&k.name)
                    .push(" FOREIGN KEY (")
                    .idents(k.columns.iter().map(String::as_str))
                    .push(") REFERENCES ")
                    .qname(parent)
                    .push(" (")
                    .idents(k.referenced.iter().map(String::as_str))
                    .push(")")
                    .sql(&k.behaviour)
                    .push(" NOT VALID"),
                Run::Brief,
            ));
            k.name.clone()
        }
    };
    if !live.key.as_ref().is_some_and(|(_, valid)| *valid) {
        out.push((
            Sql::new("ALTER TABLE ")
                .qname(&k.child)
                .push(" VALIDATE CONSTRAINT ")
                .ident(&name),
            Run::Brief,
        ));
    }
    if live.old_exists {
        out.push((
            Sql::new("ALTER TABLE ")
                .qname(&k.child)
                .push(" DROP CONSTRAINT IF EXISTS ")
                .ident(&k.old.name),
            Run::Brief,
        ));
    }
    out
}

/// Runs what is left of step 6; returns the lock retries.
pub(super) async fn run(
    conn: &mut PgConnection,
    k: &ScopedKey,
    lock_timeout: &str,
    progress: &mut Report<'_>,
) -> Result<u32, MigrateError> {
    let live = read(conn, k).await?;
    let mut retries = 0;
    for (statement, how) in statements(k, &live) {
        match how {
            Run::Alone => run_alone(conn, &statement).await?,
            Run::Brief => {
                retries += brief(conn, lock_timeout, &[&statement], progress)
                    .await
                    .map_err(|e| explain_mismatch(e, k))?;
            }
        }
    }
    progress(Progress::Message(&format!(
        "{} now references {} ({})",
        k.child,
        k.parent(),
        k.referenced.join(", ")
    )));
    Ok(retries)
}

/// A VALIDATE that finds rows whose tenant is not their parent's (a tenant
/// column that held values before the backfill) says what to fix; the key
/// stays NOT VALID and checks every new write meanwhile.
fn explain_mismatch(e: MigrateError, k: &ScopedKey) -> MigrateError {
    match e {
        MigrateError::Database { context, source }
            if source
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|code| code == "23503") =>
        {
            MigrateError::Refused(format!(
                "{context}: {}. Some rows of {} carry a {} other than their {} row's; \
the new key is in place NOT VALID (it checks every new write). Correct those rows, then run migrate-existing again: it resumes",
                crate::errors::database_message(&source),
                k.child,
                k.columns[0],
                k.parent()
            ))
        }
        other => other,
    }
}
