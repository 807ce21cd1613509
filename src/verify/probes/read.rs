//! Read: with tenant A bound, no row of another tenant is visible, and all of
//! A's own rows are (a policy that hides everything proves nothing).

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::{Attempt, Stop};
use crate::quote::{QualifiedName, Sql};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn read(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        let tenant_json = vec![self.one_column(table, column, &self.a.value)];
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
}
