//! How a probe runs a statement as the runtime role and tells a refusal from
//! a failure, and the admin-side checks that follow it.

use serde_json::{Map, Value};
use sqlx::{PgConnection, Row};

use super::{LOCATED_AT_1, location};
use super::{Probing, Unbound};
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::{ProbeRow, insert_statement};
use crate::verify::{Cell, Tenant, VerifyError, db, set_role};

/// What the database did with a statement run as the runtime role.
pub(super) enum Attempt {
    Done { rows: Vec<Value>, affected: u64 },
    Stopped(Stop),
}

/// A statement the database did not complete.
pub(super) enum Stop {
    /// Refused for lack of rights, by a policy, or by the declared unbound error.
    Refused(String),
    /// Failed for another reason: nothing is proven either way.
    Failed(String),
}

impl Stop {
    /// What the stop says of `form`: a refusal proves the isolation held, any
    /// other failure proves nothing either way.
    pub(super) fn cell(self, form: &str) -> Cell {
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

pub(super) async fn exec(conn: &mut PgConnection, sql: &'static str) -> Result<(), VerifyError> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map_err(db(format!("running {sql}")))?;
    Ok(())
}

impl Probing<'_> {
    /// Runs `statement` as the runtime role with `tenant` bound (or none).
    pub(super) async fn attempt(
        &self,
        conn: &mut PgConnection,
        tenant: Option<&Tenant>,
        statement: &Sql,
        binds: &[String],
        returns_rows: bool,
    ) -> Result<Attempt, VerifyError> {
        exec(conn, "SAVEPOINT rlsctl_attempt").await?;
        match (tenant, self.unbound) {
            (Some(_), _) | (None, Unbound::Ended) => self.binding.bind(conn, tenant).await,
            (None, Unbound::Reset) => self.binding.reset(conn).await,
            // Touching the setting would define it: the fresh session is the
            // one that never did.
            (None, Unbound::Fresh) => Ok(()),
        }
        .map_err(db("binding the tenant"))?;
        self.act_as(conn).await?;
        if let (Some(roles), Some(tenant)) = (&self.admin.tenant_roles, tenant) {
            roles
                .act_as_tenant(conn, self.role, self.via, &tenant.value)
                .await?;
        }
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
                if let Some(roles) = &self.admin.tenant_roles {
                    roles.leave_tenant(conn).await?;
                }
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
    pub(super) async fn admin_value(
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
            .map_err(db("checking as the admin"))?;
        Ok(match row {
            Some(row) => row.try_get::<Value, _>(0).map_err(db("reading a check"))?,
            None => Value::Null,
        })
    }

    /// Whether a probe row is still exactly where it was (not updated, not deleted).
    pub(super) async fn untouched(
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
    pub(super) async fn unseen(
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
    pub(super) async fn open(&self, conn: &mut PgConnection) -> Result<ParentsMark, VerifyError> {
        exec(conn, "SAVEPOINT rlsctl_probe").await?;
        Ok(ParentsMark(self.factory.mark()))
    }

    pub(super) async fn close(
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
    pub(super) async fn must_not_touch(
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
    pub(super) async fn must_refuse_insert(
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

    /// `SET LOCAL ROLE` to the runtime role on `conn`'s open transaction.
    /// When the role is reached from a runtime role (`via`), the runtime role
    /// switches to it itself, as the application's connection could.
    pub(super) async fn act_as(&self, conn: &mut PgConnection) -> Result<(), VerifyError> {
        for role in self.via.iter().chain([&self.role]) {
            sqlx::query(set_role(role).to_query())
                .execute(&mut *conn)
                .await
                .map_err(db(format!("SET ROLE {role}")))?;
        }
        Ok(())
    }
}

/// The parents a factory knew before a probe, restored when the probe's
/// savepoint is rolled back (rows made inside it are gone).
pub(super) struct ParentsMark(crate::verify::rows::Parents);
