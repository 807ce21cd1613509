//! The probes: each one tries, as the runtime role, to cross from tenant A to
//! tenant B, and turns what the database did into a [`Cell`].
//!
//! A probe runs in a savepoint that is rolled back afterwards, so probes never
//! see each other's effects. The statement under test runs in a nested
//! savepoint, so a refused statement leaves the transaction usable for the
//! admin-side check that follows ("is B's row still exactly where it was?").
//!
//! UPDATE and DELETE are tried in two forms because PostgreSQL treats them
//! differently: a form that reads columns (a WHERE, SET x = x) is also filtered
//! by SELECT policies; a column-free form (`DELETE FROM t`) only by the
//! UPDATE/DELETE policies — the one a SELECT-only tenant policy forgets.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::{Connection, PgConnection, Row};

use super::admin::Admin;
use super::rows::{Layout, ProbeRow, RowFactory, Unbuildable, insert_statement};
use super::{Binding, Cell, Probe, Tenant, VerifyError, db, set_role};
use crate::catalog::View;
use crate::quote::{QualifiedName, Sql};
use crate::spec::WhenUnbound;

/// Everything a probe needs, for one runtime role.
pub struct Probing<'a> {
    pub role: &'a str,
    pub binding: &'a Binding,
    pub when_unbound: WhenUnbound,
    pub a: &'a Tenant,
    pub b: &'a Tenant,
    pub layout: &'a Layout<'a>,
    pub admin: &'a Admin,
    pub factory: RowFactory<'a>,
}

/// What the database did with a statement run as the runtime role.
enum Attempt {
    Done { rows: Vec<Value>, affected: u64 },
    Stopped(Stop),
}

/// A statement the database did not complete.
enum Stop {
    /// Refused for lack of rights, by a policy, or by the declared unbound error.
    Refused(String),
    /// Failed for another reason: nothing is proven either way.
    Failed(String),
}

impl Stop {
    /// What the stop says of `form`: a refusal proves the isolation held, any
    /// other failure proves nothing either way.
    fn cell(self, form: &str) -> Cell {
        match self {
            Stop::Refused(why) => Cell::proven(format!("{form}: refused ({why})")),
            Stop::Failed(why) => {
                Cell::not_proven(format!("{form}: failed for another reason: {why}"))
            }
        }
    }
}

/// SQLSTATEs that mean "not allowed": insufficient_privilege (permissions,
/// row-level security, rlsctl's unbound error), with_check_option_violation,
/// and a generated column that cannot be set.
const REFUSALS: [&str; 3] = ["42501", "44000", "428C9"];

/// SQLSTATEs of a policy or context function that fails closed by raising
/// while no tenant is bound: invalid input (`''::uuid` after a RESET),
/// an unrecognised parameter (`current_setting('x')` never set), invalid
/// parameter value, a NULL where none is allowed, a custom RAISE. With no
/// tenant bound, the statement did not complete, so nothing leaked: a
/// refusal. With a tenant bound they mean the probe itself failed.
const FAILS_CLOSED_WHEN_UNBOUND: [&str; 5] = ["22P02", "42704", "22023", "22004", "P0001"];

/// The targeted forms find a row by its exact place (any table, any key).
const LOCATED_AT_1: &str = " WHERE x.tableoid = $1::oid AND x.ctid = $2::tid";
const LOCATED_AT_2: &str = " WHERE x.tableoid = $2::oid AND x.ctid = $3::tid";

async fn exec(conn: &mut PgConnection, sql: &'static str) -> Result<(), VerifyError> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map_err(db(format!("running {sql}")))?;
    Ok(())
}

fn location(row: &ProbeRow) -> Vec<String> {
    vec![row.tableoid.clone(), row.ctid.clone()]
}

/// `{"column": value}`: the bound JSON for one column of a row type.
fn one_column(column: &str, value: &str) -> String {
    serde_json::json!({ column: value }).to_string()
}

impl Probing<'_> {
    /// All seven probes on one tenant table.
    pub async fn table(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<BTreeMap<Probe, Cell>, VerifyError> {
        let (a, b) = match self.pair(conn, table).await {
            Ok(pair) => pair,
            Err(Unbuildable(why)) => {
                let cell = Cell::not_proven(format!("no probe rows: {why}"));
                return Ok(Probe::ALL.iter().map(|p| (*p, cell.clone())).collect());
            }
        };
        let mut cells = BTreeMap::new();
        cells.insert(Probe::Read, self.read(conn, table, column).await?);
        cells.insert(
            Probe::Update,
            self.update(conn, table, column, &a, &b).await?,
        );
        cells.insert(Probe::Delete, self.delete(conn, table, &b).await?);
        cells.insert(Probe::Insert, self.insert(conn, table, column, &b).await?);
        cells.insert(Probe::Move, self.moving(conn, table, column, &a, &b).await?);
        cells.insert(Probe::UnboundRead, self.unbound_read(conn, table).await?);
        cells.insert(
            Probe::UnboundWrite,
            self.unbound_write(conn, table, column, &a, &b).await?,
        );
        Ok(cells)
    }

    async fn pair(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
    ) -> Result<(ProbeRow, ProbeRow), Unbuildable> {
        let a = self.factory.insert(conn, table, self.a).await?;
        let b = self.factory.insert(conn, table, self.b).await?;
        Ok((a, b))
    }

    /// Runs `statement` as the runtime role with `tenant` bound (or none).
    async fn attempt(
        &self,
        conn: &mut PgConnection,
        tenant: Option<&Tenant>,
        statement: &Sql,
        binds: &[String],
        returns_rows: bool,
    ) -> Result<Attempt, VerifyError> {
        exec(conn, "SAVEPOINT rlsctl_attempt").await?;
        self.binding
            .bind(conn, tenant)
            .await
            .map_err(db("binding the tenant"))?;
        self.act_as(conn).await?;
        let mut query = sqlx::query(statement.to_query());
        for value in binds {
            query = query.bind(value.as_str());
        }
        let result = if returns_rows {
            query.fetch_all(&mut *conn).await.and_then(|rows| {
                let rows = rows
                    .iter()
                    .map(|r| r.try_get::<Value, _>(0))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Attempt::Done {
                    affected: rows.len() as u64,
                    rows,
                })
            })
        } else {
            query.execute(&mut *conn).await.map(|done| Attempt::Done {
                rows: Vec::new(),
                affected: done.rows_affected(),
            })
        };
        match result {
            Ok(done) => {
                exec(conn, "RESET ROLE").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_attempt").await?;
                Ok(done)
            }
            Err(error) => {
                // Undoes the statement, the binding and the role switch.
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_attempt").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_attempt").await?;
                let message = crate::errors::database_message(&error);
                let code = error
                    .as_database_error()
                    .and_then(|e| e.code())
                    .map(|c| c.to_string());
                match code {
                    Some(code) if REFUSALS.contains(&code.as_str()) => {
                        Ok(Attempt::Stopped(Stop::Refused(message)))
                    }
                    Some(code)
                        if tenant.is_none()
                            && FAILS_CLOSED_WHEN_UNBOUND.contains(&code.as_str()) =>
                    {
                        Ok(Attempt::Stopped(Stop::Refused(format!(
                            "fails closed by raising: {message}"
                        ))))
                    }
                    Some(_) => Ok(Attempt::Stopped(Stop::Failed(message))),
                    None => Err(VerifyError::Database {
                        context: format!("probing as {}", self.role),
                        source: error,
                    }),
                }
            }
        }
    }

    /// A query run as the admin (tenant bound for FORCEd owners), one JSON value back.
    async fn admin_value(
        &self,
        conn: &mut PgConnection,
        tenant: &Tenant,
        statement: &Sql,
        binds: &[String],
    ) -> Result<Value, VerifyError> {
        self.binding
            .bind(conn, Some(tenant))
            .await
            .map_err(db("binding the tenant"))?;
        let mut query = sqlx::query(statement.to_query());
        for value in binds {
            query = query.bind(value.as_str());
        }
        let row = query
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(format!("checking as the admin: {statement}")))?;
        Ok(match row {
            Some(row) => row.try_get::<Value, _>(0).map_err(db("reading a check"))?,
            None => Value::Null,
        })
    }

    /// Whether a probe row is still exactly where it was (not updated, not deleted).
    async fn untouched(
        &self,
        conn: &mut PgConnection,
        row: &ProbeRow,
    ) -> Result<bool, VerifyError> {
        let tenant = self.tenant_of(row);
        let check = Sql::new("SELECT to_jsonb(count(*)) FROM ")
            .qname(&row.table)
            .push(" AS x")
            .push(LOCATED_AT_1);
        Ok(self
            .admin_value(conn, tenant, &check, &location(row))
            .await?
            == 1)
    }

    /// NOT PROVEN when the admin cannot see a probe row before a probe: an
    /// admin subject to RLS sees a row only through the policies, with its
    /// tenant bound, and a check of a row it cannot see would prove nothing.
    async fn unseen(
        &self,
        conn: &mut PgConnection,
        rows: &[&ProbeRow],
    ) -> Result<Option<Cell>, VerifyError> {
        for row in rows {
            if !self.untouched(conn, row).await? {
                return Ok(Some(Cell::not_proven(format!(
                    "{} cannot see tenant {}'s probe row in {} even with that tenant bound, so whether a probe changes it cannot be checked",
                    self.admin.name,
                    self.tenant_of(row).label,
                    row.table
                ))));
            }
        }
        Ok(None)
    }

    /// Opens a probe's savepoint; its parents are forgotten when it closes.
    async fn open(&self, conn: &mut PgConnection) -> Result<ParentsMark, VerifyError> {
        exec(conn, "SAVEPOINT rlsctl_probe").await?;
        Ok(ParentsMark(self.factory.mark()))
    }

    async fn close(
        &mut self,
        conn: &mut PgConnection,
        mark: ParentsMark,
    ) -> Result<(), VerifyError> {
        exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_probe").await?;
        exec(conn, "RELEASE SAVEPOINT rlsctl_probe").await?;
        self.factory.restore(mark.0);
        Ok(())
    }

    /// Runs a write that must leave every `guarded` row untouched.
    async fn must_not_touch(
        &mut self,
        conn: &mut PgConnection,
        form: &str,
        tenant: Option<&Tenant>,
        statement: Sql,
        binds: Vec<String>,
        guarded: &[&ProbeRow],
    ) -> Result<Cell, VerifyError> {
        let mark = self.open(conn).await?;
        if let Some(cell) = self.unseen(conn, guarded).await? {
            self.close(conn, mark).await?;
            return Ok(cell);
        }
        let attempt = self
            .attempt(conn, tenant, &statement, &binds, false)
            .await?;
        let mut touched = None;
        for row in guarded {
            if !self.untouched(conn, row).await? {
                touched = Some(*row);
                break;
            }
        }
        self.close(conn, mark).await?;
        Ok(match (attempt, touched) {
            (_, Some(row)) => Cell::leak(
                format!("{form} changed tenant {}'s row", self.tenant_of(row).label),
                self.key(row),
            ),
            (Attempt::Done { affected, .. }, None) => Cell::proven(format!(
                "{form}: {} untouched ({affected} row(s) affected)",
                if guarded.len() == 1 {
                    "tenant B's row"
                } else {
                    "the probe rows"
                }
            )),
            (Attempt::Stopped(stop), None) => stop.cell(form),
        })
    }

    /// Tries to insert `values` as the runtime role; it must be refused.
    async fn must_refuse_insert(
        &self,
        conn: &mut PgConnection,
        form: &str,
        tenant: Option<&Tenant>,
        table: &QualifiedName,
        values: &Map<String, Value>,
    ) -> Result<Cell, VerifyError> {
        let statement = insert_statement(table, values.keys().map(String::as_str));
        let binds = if values.is_empty() {
            Vec::new()
        } else {
            vec![Value::Object(values.clone()).to_string()]
        };
        Ok(
            match self
                .attempt(conn, tenant, &statement, &binds, false)
                .await?
            {
                Attempt::Done { .. } => {
                    Cell::leak(format!("{form} was accepted"), self.key_of(table, values))
                }
                Attempt::Stopped(stop) => stop.cell(form),
            },
        )
    }

    /// The made-up tenant a probe row belongs to.
    fn tenant_of(&self, row: &ProbeRow) -> &Tenant {
        let b = Value::String(self.b.value.clone());
        if row.values.values().any(|v| v == &b) {
            self.b
        } else {
            self.a
        }
    }

    /// `SET LOCAL ROLE` to the runtime role on `conn`'s open transaction.
    async fn act_as(&self, conn: &mut PgConnection) -> Result<(), VerifyError> {
        sqlx::query(set_role(self.role).to_query())
            .execute(conn)
            .await
            .map_err(db(format!("SET ROLE {}", self.role)))?;
        Ok(())
    }

    fn key(&self, row: &ProbeRow) -> Value {
        self.key_of(&row.table, &row.values)
    }

    /// The primary key of a row, or the whole row when the table has none.
    fn key_of(&self, table: &QualifiedName, values: &Map<String, Value>) -> Value {
        let key = self.layout.primary_key(table).and_then(|key| {
            key.columns
                .iter()
                .map(|c| Some((c.clone(), values.get(c)?.clone())))
                .collect::<Option<Map<_, _>>>()
        });
        // A row about to be inserted has no key yet when a default makes it.
        Value::Object(key.unwrap_or_else(|| values.clone()))
    }

    /// A column any UPDATE may set; the first that an INSERT may name.
    fn settable(&self, table: &QualifiedName) -> Option<String> {
        self.layout
            .columns(table)
            .iter()
            .find(|c| c.writable())
            .map(|c| c.name.clone())
    }

    /// A column a column-free UPDATE can set to a row's own value without
    /// breaking a key: outside every unique and foreign key, not the tenant.
    fn harmless(&self, table: &QualifiedName, tenant_column: &str) -> Option<String> {
        self.layout
            .columns(table)
            .iter()
            .find(|c| {
                c.writable()
                    && c.name != tenant_column
                    && !self.layout.is_key_column(table, &c.name)
            })
            .map(|c| c.name.clone())
    }

    /// `SELECT to_jsonb(x.*) FROM t AS x WHERE x.col IS DISTINCT FROM <A> LIMIT 1`.
    fn other_tenant_rows(table: &QualifiedName, column: &str) -> Sql {
        Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(table)
            .push(" AS x WHERE x.")
            .ident(column)
            .push(" IS DISTINCT FROM (SELECT r.")
            .ident(column)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(") LIMIT 1")
    }

    async fn read(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        let tenant_json = vec![one_column(column, &self.a.value)];
        let leak = Self::other_tenant_rows(table, column);
        match self
            .attempt(conn, Some(self.a), &leak, &tenant_json, true)
            .await?
        {
            Attempt::Done { rows, .. } if !rows.is_empty() => {
                let Value::Object(row) = &rows[0] else {
                    return Ok(Cell::not_proven("unexpected row shape"));
                };
                return Ok(Cell::leak(
                    "tenant A's transaction sees a row of another tenant",
                    self.key_of(table, row),
                ));
            }
            Attempt::Done { .. } => {}
            Attempt::Stopped(stop) => return Ok(stop.cell("reading")),
        }
        let count = Sql::new("SELECT to_jsonb(count(*)) FROM ")
            .qname(table)
            .push(" AS x");
        let visible = match self.attempt(conn, Some(self.a), &count, &[], true).await? {
            Attempt::Done { rows, .. } => rows.into_iter().next().unwrap_or(Value::Null),
            Attempt::Stopped(Stop::Refused(why) | Stop::Failed(why)) => {
                return Ok(Cell::not_proven(format!("counting failed: {why}")));
            }
        };
        let truth = Sql::new("SELECT to_jsonb(count(*)) FROM ")
            .qname(table)
            .push(" AS x WHERE x.")
            .ident(column)
            .push(" = (SELECT r.")
            .ident(column)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(")");
        let truth = self.admin_value(conn, self.a, &truth, &tenant_json).await?;
        // Tenant A's probe row exists: an admin subject to RLS that counts none
        // cannot tell a policy that hides everything from one that isolates.
        if truth == 0 {
            return Ok(Cell::not_proven(format!(
                "{} sees none of tenant A's rows even with A bound: nothing to compare with",
                self.admin.name
            )));
        }
        Ok(if visible == truth {
            Cell::proven(format!(
                "sees exactly its own {truth} row(s); tenant B's row and all other tenants' rows hidden"
            ))
        } else {
            Cell::not_proven(format!(
                "sees {visible} of tenant A's {truth} row(s): the policy hides the tenant's own rows"
            ))
        })
    }

    async fn update(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let Some(settable) = self.settable(table) else {
            return Ok(Cell::not_proven(
                "the table has no column an UPDATE may set",
            ));
        };
        let targeted = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET ")
            .ident(&settable)
            .push(" = x.")
            .ident(&settable)
            .push(LOCATED_AT_1);
        let mut cells = vec![
            self.must_not_touch(
                conn,
                "UPDATE aimed at tenant B's row",
                Some(self.a),
                targeted,
                location(b),
                &[b],
            )
            .await?,
        ];
        if let Some(free) = self.column_free_update(table, column, a, b) {
            cells.push(
                self.must_not_touch(
                    conn,
                    "column-free UPDATE of every row",
                    Some(self.a),
                    free.0,
                    free.1,
                    &[b],
                )
                .await?,
            );
        }
        Ok(Cell::combine(cells))
    }

    /// `UPDATE t SET c = <value>` with no WHERE and no column read: `c` set to
    /// B's own value, or the tenant column set to A's (the "steal" form).
    fn column_free_update(
        &self,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Option<(Sql, Vec<String>)> {
        let (target, source) = match self.harmless(table, column) {
            Some(c) => (c, b),
            None if self
                .layout
                .column(table, column)
                .is_some_and(|c| c.writable()) =>
            {
                (column.to_string(), a)
            }
            None => return None,
        };
        let statement = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET ")
            .ident(&target)
            .push(" = (SELECT r.")
            .ident(&target)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(")");
        Some((statement, vec![source.json()]))
    }

    async fn delete(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let targeted = Sql::new("DELETE FROM ")
            .qname(table)
            .push(" AS x")
            .push(LOCATED_AT_1);
        let every = Sql::new("DELETE FROM ").qname(table).push(" AS x");
        let cells = vec![
            self.must_not_touch(
                conn,
                "DELETE aimed at tenant B's row",
                Some(self.a),
                targeted,
                location(b),
                &[b],
            )
            .await?,
            self.must_not_touch(
                conn,
                "DELETE with no WHERE",
                Some(self.a),
                every,
                Vec::new(),
                &[b],
            )
            .await?,
        ];
        Ok(Cell::combine(cells))
    }

    async fn insert(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let mark = self.open(conn).await?;
        let result = self.insert_probes(conn, table, column, b).await;
        self.close(conn, mark).await?;
        result
    }

    async fn insert_probes(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let for_b = match self.factory.values_for(conn, table, self.b).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
        };
        let mut cells = vec![
            self.must_refuse_insert(
                conn,
                "INSERT of a row for tenant B",
                Some(self.a),
                table,
                &for_b,
            )
            .await?,
        ];
        cells.push(self.on_conflict(conn, table, column, b).await?);
        Ok(Cell::combine(cells))
    }

    /// `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING` with A's row carrying
    /// B's key: the conflict must not reach, change or return B's row.
    async fn on_conflict(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let key = self.layout.unique_keys.iter().find(|k| {
            &k.table == table
                && !k.columns.iter().any(|c| c == column)
                && k.columns
                    .iter()
                    .all(|c| self.layout.column(table, c).is_some_and(|c| c.writable()))
        });
        let Some(key) = key else {
            return Ok(Cell::proven(
                "ON CONFLICT: every unique key includes the tenant column, so a conflict cannot reach another tenant",
            ));
        };
        let mut values = match self.factory.values_for(conn, table, self.a).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
        };
        for c in &key.columns {
            if let Some(v) = b.values.get(c) {
                values.insert(c.clone(), v.clone());
            }
        }
        let settable = self
            .settable(table)
            .unwrap_or_else(|| key.columns[0].clone());
        let statement = insert_statement(table, values.keys().map(String::as_str))
            .push(" ON CONFLICT (")
            .idents(key.columns.iter().map(String::as_str))
            .push(") DO UPDATE SET ")
            .ident(&settable)
            .push(" = EXCLUDED.")
            .ident(&settable)
            .push(" RETURNING to_jsonb(x.*)");
        let form = "INSERT … ON CONFLICT DO UPDATE RETURNING with tenant B's key";
        if let Some(cell) = self.unseen(conn, &[b]).await? {
            return Ok(cell);
        }
        let binds = vec![Value::Object(values).to_string()];
        let attempt = self
            .attempt(conn, Some(self.a), &statement, &binds, true)
            .await?;
        Ok(match attempt {
            Attempt::Done { rows, .. } if !rows.is_empty() => Cell::leak(
                format!("{form} reached and returned tenant B's row"),
                self.key(b),
            ),
            Attempt::Done { .. } if !self.untouched(conn, b).await? => {
                Cell::leak(format!("{form} changed tenant B's row"), self.key(b))
            }
            Attempt::Done { .. } => Cell::proven(format!("{form}: tenant B's row untouched")),
            Attempt::Stopped(stop) => stop.cell(form),
        })
    }

    /// Moving A's own row to B: the tenant column and every foreign key column
    /// set to B's row's values (so the keys stay consistent and only the
    /// policy's WITH CHECK can refuse).
    async fn moving(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let mut columns: Vec<String> = Vec::new();
        let tenant_target = match self.layout.column(table, column) {
            Some(c) if c.writable() => Some(column.to_string()),
            _ => self.layout.tenant_source_column(table).map(str::to_string),
        };
        let Some(tenant_target) = tenant_target else {
            return Ok(Cell::not_proven(
                "the tenant column is computed by the server and no column it comes from is known",
            ));
        };
        columns.push(tenant_target);
        for key in self
            .layout
            .foreign_keys
            .iter()
            .filter(|k| &k.table == table)
        {
            for c in &key.columns {
                let writable = self.layout.column(table, c).is_some_and(|c| c.writable());
                if writable && !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
        }
        let mut sources = Sql::default();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                sources = sources.push(", ");
            }
            sources = sources.push("r.").ident(c);
        }
        let assignment = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET (")
            .idents(columns.iter().map(String::as_str))
            .push(") = (SELECT ")
            .sql(&sources)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(")");
        // With a WHERE, PostgreSQL also holds the new row to the SELECT
        // policies; the column-free form is held only to WITH CHECK.
        let mut targeted_binds = vec![b.json()];
        targeted_binds.extend(location(a));
        let forms = [
            (
                "UPDATE moving tenant A's row to tenant B",
                assignment.clone().push(LOCATED_AT_2),
                targeted_binds,
            ),
            (
                "column-free UPDATE moving every visible row to tenant B",
                assignment,
                vec![b.json()],
            ),
        ];
        let mut cells = Vec::new();
        for (form, statement, binds) in forms {
            let mark = self.open(conn).await?;
            let attempt = self
                .attempt(conn, Some(self.a), &statement, &binds, false)
                .await;
            self.close(conn, mark).await?;
            cells.push(match attempt? {
                Attempt::Done { affected, .. } if affected > 0 => {
                    Cell::leak(format!("{form} succeeded ({affected} row(s))"), self.key(a))
                }
                Attempt::Done { .. } => Cell::proven(format!(
                    "{form}: 0 rows (tenant A cannot update its own row here, so nothing can move)"
                )),
                Attempt::Stopped(stop) => stop.cell(form),
            });
        }
        Ok(Cell::combine(cells))
    }

    async fn unbound_read(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
    ) -> Result<Cell, VerifyError> {
        let any = Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(table)
            .push(" AS x LIMIT 1");
        Ok(match self.attempt(conn, None, &any, &[], true).await? {
            Attempt::Done { rows, .. } => match rows.first() {
                Some(Value::Object(row)) => Cell::leak(
                    "with no tenant bound, a row is visible",
                    self.key_of(table, row),
                ),
                _ => Cell::proven("with no tenant bound, nothing is visible"),
            },
            Attempt::Stopped(Stop::Refused(why)) => Cell::proven(match self.when_unbound {
                WhenUnbound::Error => {
                    format!("with no tenant bound, reading raises as declared ({why})")
                }
                WhenUnbound::Deny => format!("with no tenant bound, reading is refused ({why})"),
            }),
            Attempt::Stopped(Stop::Failed(why)) => Cell::not_proven(format!(
                "with no tenant bound, reading failed instead of showing nothing: {why}"
            )),
        })
    }

    async fn unbound_write(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let mark = self.open(conn).await?;
        let values = self.factory.values_for(conn, table, self.a).await;
        let inserted = match values {
            Ok(values) => {
                self.must_refuse_insert(conn, "INSERT with no tenant bound", None, table, &values)
                    .await
            }
            Err(Unbuildable(why)) => Ok(Cell::not_proven(why)),
        };
        self.close(conn, mark).await?;
        let mut cells = vec![inserted?];
        let every = Sql::new("DELETE FROM ").qname(table).push(" AS x");
        cells.push(
            self.must_not_touch(
                conn,
                "DELETE with no tenant bound",
                None,
                every,
                Vec::new(),
                &[a, b],
            )
            .await?,
        );
        if let Some((statement, binds)) = self.column_free_update(table, column, a, b) {
            cells.push(
                self.must_not_touch(
                    conn,
                    "UPDATE with no tenant bound",
                    None,
                    statement,
                    binds,
                    &[a, b],
                )
                .await?,
            );
        }
        Ok(Cell::combine(cells))
    }

    /// A partition or inheritance child read directly: the parent's policies
    /// do not apply there, only the child's own.
    pub async fn child(
        &mut self,
        conn: &mut PgConnection,
        child: &QualifiedName,
        parent: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        if let Err(Unbuildable(why)) = self.pair(conn, parent).await {
            return Ok(Cell::not_proven(format!("no probe rows: {why}")));
        }
        let tenant_json = vec![one_column(column, &self.a.value)];
        let other = Self::other_tenant_rows(child, column);
        let evidence = Sql::new("SELECT to_jsonb(EXISTS (").sql(&other).push("))");
        // With B bound, an admin subject to RLS sees B's row too.
        if self
            .admin_value(conn, self.b, &evidence, &tenant_json)
            .await?
            != Value::Bool(true)
        {
            return Ok(Cell::not_proven(
                "holds no row of another tenant to test with (probe rows went to other partitions)",
            ));
        }
        Ok(
            match self
                .attempt(conn, Some(self.a), &other, &tenant_json, true)
                .await?
            {
                Attempt::Done { rows, .. } => match rows.first() {
                    Some(Value::Object(row)) => Cell::leak(
                        "read directly, the child shows tenant A another tenant's row",
                        self.key_of(child, row),
                    ),
                    _ => Cell::proven("read directly, the child hides other tenants' rows"),
                },
                Attempt::Stopped(stop) => stop.cell("reading"),
            },
        )
    }

    /// A view over tenant tables: with A bound, no row of B may come through.
    /// B's rows are recognised by their tenant id and key values in the row text,
    /// so this works whether or not the view shows the tenant column.
    pub async fn view(
        &mut self,
        conn: &mut PgConnection,
        view: &View,
    ) -> Result<Cell, VerifyError> {
        let mut marks = vec![self.b.value.clone()];
        for table in &view.reads {
            if !self.layout.tenant_columns.contains_key(table) {
                continue;
            }
            match self.pair(conn, table).await {
                Ok((_, b)) => marks.extend(
                    self.key(&b)
                        .as_object()
                        .into_iter()
                        .flat_map(|k| k.values().filter_map(super::rows::text_of))
                        .filter(|text| text.len() >= 8),
                ),
                Err(Unbuildable(why)) => {
                    return Ok(Cell::not_proven(format!("no probe rows in {table}: {why}")));
                }
            }
        }
        let statement = Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(&view.name)
            .push(
                " AS x WHERE EXISTS (SELECT 1 FROM pg_catalog.json_array_elements_text($1::json) AS f(mark)
                   WHERE strpos(to_jsonb(x.*)::text, f.mark) > 0) LIMIT 1",
            );
        let binds = vec![Value::from(marks).to_string()];
        // With B bound, an admin subject to RLS sees B's rows too.
        if self
            .admin_value(conn, self.b, &statement, &binds)
            .await?
            .is_null()
        {
            return Ok(Cell::not_proven(
                "the view shows none of tenant B's probe rows even to the admin: nothing to test with",
            ));
        }
        Ok(
            match self
                .attempt(conn, Some(self.a), &statement, &binds, true)
                .await?
            {
                Attempt::Done { rows, .. } => match rows.into_iter().next() {
                    Some(row) => Cell::leak("the view shows tenant A a row of tenant B", row),
                    None => Cell::proven("the view shows tenant A none of tenant B's rows"),
                },
                Attempt::Stopped(stop) => stop.cell("reading"),
            },
        )
    }

    /// A pooled connection: after a committed transaction bound to A, the next
    /// transaction on the same connection must start with no tenant. Role and
    /// database defaults for the setting would bind every new session, too.
    pub async fn pooled_connection(
        &mut self,
        conn: &mut PgConnection,
        defaults: &[(Option<String>, Option<String>, String, String)],
        database: &str,
    ) -> Result<Cell, VerifyError> {
        let setting = self.binding.setting();
        for (role, db_name, name, value) in defaults {
            let applies = role.as_deref().is_none_or(|r| r == self.role)
                && db_name.as_deref().is_none_or(|d| d == database);
            if name == setting && applies && !value.is_empty() {
                return Ok(Cell::leak(
                    format!(
                        "a default (ALTER {} … SET) binds every new session of {} to {setting} = {value}",
                        if role.is_some() { "ROLE" } else { "DATABASE" },
                        self.role
                    ),
                    serde_json::json!({ "setting": setting, "value": value }),
                ));
            }
        }
        let mut first = conn.begin().await.map_err(db("starting a transaction"))?;
        // This transaction commits, so verify may not grant itself the role
        // here; binding with set_config is transaction-local whoever binds.
        if !self.admin.grants_itself(self.role) {
            self.act_as(&mut first).await?;
        }
        self.binding
            .bind(&mut first, Some(self.a))
            .await
            .map_err(db("binding the tenant"))?;
        first.commit().await.map_err(db("committing"))?;
        let mut next = conn.begin().await.map_err(db("starting a transaction"))?;
        self.admin.grant_inside(&mut next, self.role).await?;
        self.act_as(&mut next).await?;
        let left: Option<String> =
            sqlx::query_scalar("SELECT nullif(pg_catalog.current_setting($1, true), '')")
                .bind(setting)
                .fetch_one(&mut *next)
                .await
                .map_err(db("reading the tenant setting"))?;
        next.rollback().await.map_err(db("rolling back"))?;
        Ok(match left {
            Some(value) => Cell::leak(
                format!("the next transaction on the connection still has {setting} = {value}"),
                serde_json::json!({ "setting": setting, "value": value }),
            ),
            None => Cell::proven(format!(
                "after a committed transaction bound to tenant A, the next one starts with {setting} unset"
            )),
        })
    }
}

/// The parents a factory knew before a probe, restored when the probe's
/// savepoint is rolled back (rows made inside it are gone).
struct ParentsMark(super::rows::Parents);
