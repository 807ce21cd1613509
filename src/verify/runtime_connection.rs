//! `--runtime-url`: the application's own way in, checked over a connection
//! that logs in as the runtime role, besides the `SET ROLE` probes.
//!
//! `SET ROLE` from the admin cannot show what only a real login has: which
//! role the application really is (a superuser or BYPASSRLS login passes every
//! `SET ROLE` probe and then ignores every policy), the defaults a new session
//! starts with (`ALTER ROLE … SET`, `ALTER DATABASE … SET` of the tenant
//! setting), and what a pooler's next transaction inherits. So over that
//! connection verify plants nothing: it reads the role, then, unbound, looks
//! for the existing rows of every tenant table (found first by the admin) and
//! tries column-free UPDATE and DELETE in a transaction it rolls back; then it
//! binds a tenant with `set_config(…, true)` in one transaction and checks the
//! next one starts unbound. The only committed transaction sets nothing but a
//! transaction-local setting.

use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection};

use super::{Cell, Matrix, ObjectKind, ObjectResult, Probe, Target, Tenant, VerifyError, db};
use crate::errors::database_message;
use crate::quote::{QualifiedName, Sql};

/// The connecting role as the runtime connection sees itself.
#[derive(sqlx::FromRow)]
struct Login {
    session_user: String,
    current_user: String,
    superuser: bool,
    bypass_rls: bool,
    database: String,
}

/// Adds the runtime connection's rows to `matrix`: "runtime connection" (who
/// the role is, what an unbound new session sees and may write) and "runtime
/// connection (next transaction)" (binding per transaction, as a pooler does).
pub async fn probe(
    admin: &mut PgConnection,
    runtime: &mut PgConnection,
    target: &Target,
    matrix: &mut Matrix,
) -> Result<(), VerifyError> {
    let login: Login = sqlx::query_as(
        "SELECT session_user::text AS session_user, current_user::text AS current_user,
                r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
                current_database()::text AS database
           FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut *runtime)
    .await
    .map_err(db("reading the runtime connection's role"))?;
    if login.database != matrix.database {
        return Err(VerifyError::Setup(format!(
            "--runtime-url connects to database {}, but verify probed {}: point it at the same database",
            login.database, matrix.database
        )));
    }
    // Only what the admin sees holding rows can prove anything when the
    // runtime role sees none.
    let mut populated = Vec::new();
    for (table, column) in &matrix.tables {
        let query = Sql::new("SELECT EXISTS (SELECT 1 FROM ")
            .qname(table)
            .push(")");
        let has_rows: bool = sqlx::query_scalar(query.to_query())
            .fetch_one(&mut *admin)
            .await
            .map_err(db(format!("looking for existing rows in {table}")))?;
        if has_rows {
            populated.push((table, column.as_str()));
        }
    }
    let role = login.current_user.clone();
    let identity = Cell::combine(vec![
        identity(runtime, target, &login, &matrix.tables).await?,
        search_path(runtime, &role, &matrix.tables).await?,
    ]);
    let setting = target.binding.setting();
    let default: Option<String> =
        sqlx::query_scalar("SELECT nullif(pg_catalog.current_setting($1, true), '')")
            .bind(setting)
            .fetch_one(&mut *runtime)
            .await
            .map_err(db("reading the tenant setting"))?;
    let unbound_read = match default {
        Some(value) => Cell::leak(
            format!(
                "a new session of {role} starts bound: {setting} = {value} (a role or database default, ALTER ROLE/DATABASE … SET); RESET it"
            ),
            serde_json::json!({ "setting": setting, "value": value }),
        ),
        None => {
            unbound_sees_nothing(runtime, &populated, "a new session with nothing bound").await?
        }
    };
    let unbound_write = unbound_cannot_write(runtime, &populated).await?;
    let pooled = next_transaction(runtime, target, &matrix.tenant_a, &populated).await?;
    matrix.objects.push(ObjectResult {
        role: role.clone(),
        via: None,
        object: "runtime connection".into(),
        kind: ObjectKind::Connection,
        cells: BTreeMap::from([
            (Probe::RuntimeRole, identity),
            (Probe::UnboundRead, unbound_read),
            (Probe::UnboundWrite, unbound_write),
        ]),
    });
    matrix.objects.push(ObjectResult {
        role,
        via: None,
        object: "runtime connection (next transaction)".into(),
        kind: ObjectKind::Connection,
        cells: BTreeMap::from([(Probe::UnboundRead, pooled)]),
    });
    matrix.count();
    Ok(())
}

/// The login is a runtime role verify proved, and nothing exempts it from
/// row-level security: not SUPERUSER, not BYPASSRLS, not the owner of a
/// tenant table that does not FORCE it.
async fn identity(
    runtime: &mut PgConnection,
    target: &Target,
    login: &Login,
    tables: &[(QualifiedName, String)],
) -> Result<Cell, VerifyError> {
    let role = &login.current_user;
    let mut cells = Vec::new();
    for (exempt, attribute) in [
        (login.superuser, "SUPERUSER"),
        (login.bypass_rls, "BYPASSRLS"),
    ] {
        if exempt {
            cells.push(Cell::leak(
                format!(
                    "the application logs in as {role}, which is {attribute}: row-level security filters nothing it does"
                ),
                serde_json::json!({ "role": role, "attribute": attribute }),
            ));
        }
    }
    let (schemas, names): (Vec<&str>, Vec<&str>) = tables
        .iter()
        .map(|(t, _)| (t.schema.as_str(), t.name.as_str()))
        .unzip();
    let owned: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
             ON n.nspname = t.schema_name AND c.relname = t.table_name
          WHERE pg_catalog.pg_has_role(c.relowner, 'USAGE') AND NOT c.relforcerowsecurity
          ORDER BY 1, 2",
    )
    .bind(&schemas)
    .bind(&names)
    .fetch_all(&mut *runtime)
    .await
    .map_err(db("reading the owners of the tenant tables"))?;
    for (schema, name) in owned {
        let table = QualifiedName::new(schema, name);
        cells.push(Cell::leak(
            format!(
                "{role} has the rights of {table}'s owner and the table does not FORCE ROW LEVEL SECURITY: its policies do not apply to {role}"
            ),
            serde_json::json!({ "role": role, "table": table.to_string() }),
        ));
    }
    if !target.roles.contains(role) {
        cells.push(Cell::not_proven(format!(
            "the application logs in as {role}, which is not a runtime role verify proved ({}): the matrix does not speak for it",
            target.roles.join(", ")
        )));
    }
    if cells.is_empty() {
        let switched = if login.session_user != *role {
            format!(
                " (logged in as {}, switched by a default)",
                login.session_user
            )
        } else {
            String::new()
        };
        cells.push(Cell::proven(format!(
            "logs in as {role}{switched}: a runtime role verify proved, neither SUPERUSER nor BYPASSRLS, owning no tenant table"
        )));
    }
    Ok(Cell::combine(cells))
}

/// The application names its tables as it likes, usually unqualified, and
/// a new session of its login resolves those names with the login's own
/// search_path (its role and database defaults), which `SET ROLE` from the
/// admin never shows. Where a tenant table's schema is on that path, its bare
/// name must find that table, not a same-named one earlier on the path, and
/// no schema the login may create tables in may come first. verify itself
/// names every table with its schema, so its probes are unaffected.
async fn search_path(
    runtime: &mut PgConnection,
    role: &str,
    tables: &[(QualifiedName, String)],
) -> Result<Cell, VerifyError> {
    let (schemas, names): (Vec<&str>, Vec<&str>) = tables
        .iter()
        .map(|(t, _)| (t.schema.as_str(), t.name.as_str()))
        .unzip();
    let found: Vec<Resolved> = sqlx::query_as(
        "WITH path AS (
           SELECT p.schema_name::text AS schema_name, p.place
             FROM unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p(schema_name, place))
         SELECT t.schema_name, t.table_name,
                (SELECT n.nspname::text FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(t.table_name))) AS found_in,
                ARRAY(SELECT e.schema_name FROM path e
                       WHERE e.place < own.place
                         AND pg_catalog.has_schema_privilege(e.schema_name, 'CREATE')
                       ORDER BY e.place) AS creatable_before,
                (SELECT pg_catalog.string_agg(e.schema_name, ', ' ORDER BY e.place) FROM path e) AS path
           FROM unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
           JOIN path own ON own.schema_name = t.schema_name
          ORDER BY 1, 2",
    )
    .bind(&schemas)
    .bind(&names)
    .fetch_all(&mut *runtime)
    .await
    .map_err(db("resolving the tenant tables with the runtime login's search_path"))?;
    let mut cells = Vec::new();
    for table in &found {
        let own = QualifiedName::new(table.schema_name.clone(), table.table_name.clone());
        match &table.found_in {
            Some(schema) if *schema != table.schema_name => {
                let shadow = QualifiedName::new(schema.clone(), table.table_name.clone());
                cells.push(Cell::leak(
                    format!(
                        "{role}'s search_path ({}) finds {shadow} by the bare name {}, not the tenant table {own}: what the application reads and writes there is not what verify proved; drop that table, or fix the search_path (ALTER ROLE {role} SET search_path = …)",
                        table.path, table.table_name
                    ),
                    serde_json::json!({ "table": own.to_string(), "found": shadow.to_string() }),
                ))
            }
            _ if !table.creatable_before.is_empty() => cells.push(Cell::not_proven(format!(
                "{role}'s search_path ({}) puts {} before {}, and {role} may create tables there: one named {} would take the place of {own} for the application; REVOKE CREATE ON SCHEMA {} FROM {role}, or put {} first in its search_path",
                table.path,
                table.creatable_before.join(", "),
                table.schema_name,
                table.table_name,
                table.creatable_before.join(", "),
                table.schema_name
            ))),
            _ => {}
        }
    }
    if cells.is_empty() {
        cells.push(Cell::proven(
            "its search_path finds each tenant table on it by its bare name, with no schema it may create in before",
        ));
    }
    Ok(Cell::combine(cells))
}

/// A tenant table as the runtime login's search_path resolves its bare name.
#[derive(sqlx::FromRow)]
struct Resolved {
    schema_name: String,
    table_name: String,
    /// The schema of the relation the bare name finds, if any.
    found_in: Option<String>,
    /// Schemas before the table's own on the path that the login may CREATE in.
    creatable_before: Vec<String>,
    path: String,
}

/// With nothing bound, no existing row of any tenant table is visible; a
/// refusal (permission denied, an error raised by the policy) counts too.
async fn unbound_sees_nothing(
    runtime: &mut PgConnection,
    populated: &[(&QualifiedName, &str)],
    state: &str,
) -> Result<Cell, VerifyError> {
    if populated.is_empty() {
        return Ok(no_rows());
    }
    let mut cells = Vec::new();
    for (table, column) in populated {
        // Only the tenant value is shown, never the row's other data.
        let query = Sql::new("SELECT to_jsonb(x.")
            .ident(column)
            .push(") FROM ")
            .qname(table)
            .push(" AS x LIMIT 1");
        // In a savepoint when inside a transaction, so a refusal leaves it usable.
        let mut attempt = runtime.begin().await.map_err(db("starting a savepoint"))?;
        let seen: Result<Option<Option<serde_json::Value>>, sqlx::Error> =
            sqlx::query_scalar(query.to_query())
                .fetch_optional(&mut *attempt)
                .await;
        attempt.rollback().await.map_err(db("rolling back"))?;
        cells.push(match seen {
            Ok(None) => Cell::proven(format!(
                "{state} sees no row of {} tables that hold rows",
                populated.len()
            )),
            Ok(Some(tenant)) => Cell::leak(
                format!("{state} reads existing rows of {table}"),
                serde_json::json!({ "table": table.to_string(), *column: tenant.unwrap_or_default() }),
            ),
            Err(error) => Cell::proven(format!(
                "{state}: reading refused ({})",
                database_message(&error)
            )),
        });
    }
    Ok(Cell::combine(cells))
}

/// With nothing bound, column-free UPDATE and DELETE reach no existing row;
/// tried in a transaction that is always rolled back.
async fn unbound_cannot_write(
    runtime: &mut PgConnection,
    populated: &[(&QualifiedName, &str)],
) -> Result<Cell, VerifyError> {
    if populated.is_empty() {
        return Ok(no_rows());
    }
    let mut tx = runtime
        .begin()
        .await
        .map_err(db("starting a transaction"))?;
    let mut cells = Vec::new();
    for (table, column) in populated {
        let update = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET ")
            .ident(column)
            .push(" = x.")
            .ident(column);
        let delete = Sql::new("DELETE FROM ").qname(table);
        for (verb, statement) in [("UPDATE", update), ("DELETE", delete)] {
            let mut savepoint = tx.begin().await.map_err(db("starting a savepoint"))?;
            let result = sqlx::query(statement.to_query())
                .execute(&mut *savepoint)
                .await;
            savepoint
                .rollback()
                .await
                .map_err(db("rolling back a savepoint"))?;
            cells.push(match result {
                Ok(done) if done.rows_affected() > 0 => Cell::leak(
                    format!(
                        "unbound, {verb} reached {} existing row(s) of {table} (rolled back)",
                        done.rows_affected()
                    ),
                    serde_json::json!({ "table": table.to_string(), "command": verb }),
                ),
                Ok(_) => Cell::proven(format!(
                    "unbound, UPDATE and DELETE reach no existing row of {} tables that hold rows (rolled back)",
                    populated.len()
                )),
                Err(error) => Cell::proven(format!(
                    "unbound, {verb} refused ({})",
                    database_message(&error)
                )),
            });
        }
    }
    tx.rollback().await.map_err(db("rolling back"))?;
    Ok(Cell::combine(cells))
}

/// As a transaction-mode pooler hands out connections: a transaction binds
/// tenant A with `set_config(…, true)` and commits; the next transaction on
/// the same connection has nothing bound and sees no existing row.
async fn next_transaction(
    runtime: &mut PgConnection,
    target: &Target,
    tenant_a: &str,
    populated: &[(&QualifiedName, &str)],
) -> Result<Cell, VerifyError> {
    let setting = target.binding.setting();
    let a = Tenant {
        label: "A",
        value: tenant_a.to_string(),
    };
    let mut first = runtime
        .begin()
        .await
        .map_err(db("starting a transaction"))?;
    target
        .binding
        .bind(&mut first, Some(&a))
        .await
        .map_err(db("binding the tenant on the runtime connection"))?;
    first.commit().await.map_err(db("committing"))?;
    let mut next = runtime
        .begin()
        .await
        .map_err(db("starting a transaction"))?;
    let left: Option<String> =
        sqlx::query_scalar("SELECT nullif(pg_catalog.current_setting($1, true), '')")
            .bind(setting)
            .fetch_one(&mut *next)
            .await
            .map_err(db("reading the tenant setting"))?;
    let cell = match left {
        Some(value) => Cell::leak(
            format!("the next transaction on the runtime connection still has {setting} = {value}"),
            serde_json::json!({ "setting": setting, "value": value }),
        ),
        None => {
            let seen = unbound_sees_nothing(
                &mut next,
                populated,
                "the transaction after one bound to tenant A",
            )
            .await?;
            let starts = Cell::proven(format!(
                "after a committed transaction bound to tenant A, the next one starts with {setting} unset"
            ));
            if seen.verdict == super::Verdict::NotProven {
                starts
            } else {
                Cell::combine(vec![starts, seen])
            }
        }
    };
    next.rollback().await.map_err(db("rolling back"))?;
    Ok(cell)
}

fn no_rows() -> Cell {
    Cell::not_proven(
        "no tenant table holds rows the admin can see, so an unbound session seeing none proves nothing; give --runtime-url a database with data (a staging copy)",
    )
}
