//! Unbound: with no tenant bound, nothing is visible and nothing can be
//! written, in each of the three states "no tenant" takes (see [`Unbound`]):
//! a fresh session that never defined the setting, after `RESET`, and after a
//! `SET LOCAL` transaction ended.

use serde_json::Value;
use sqlx::PgConnection;

use super::attempt::{Attempt, Stop};
use super::{Probing, Unbound};
use crate::quote::{QualifiedName, Sql};
use crate::spec::WhenUnbound;
use crate::verify::rows::{ProbeRow, Unbuildable};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// The unbound-read and unbound-write cells over the given states.
    pub(super) async fn unbound(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
        states: &[Unbound],
    ) -> Result<(Cell, Cell), VerifyError> {
        let before = self.unbound;
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        let mut outcome = Ok(());
        for state in states {
            self.unbound = *state;
            let read = self.unbound_read(conn, table).await;
            match read {
                Ok(read) => reads.push(read),
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
            match self.unbound_write(conn, table, column, a, b).await {
                Ok(write) => writes.push(write),
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        self.unbound = before;
        outcome?;
        Ok((Cell::combine(reads), Cell::combine(writes)))
    }

    /// Plants A's and B's rows and runs the unbound probes in the session as
    /// it is: for a session that never defined the setting, on a [`Probing`]
    /// that plants and checks with a setting of its own (see `verify`).
    /// `Err` says why no probe rows could be planted that way (e.g. a trigger
    /// that reads the setting).
    pub async fn fresh_session(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Result<(Cell, Cell), String>, VerifyError> {
        let (a, b) = match self.pair(conn, table).await {
            Ok(pair) => pair,
            Err(Unbuildable(why)) => {
                return Ok(Err(format!(
                    "no probe rows could be planted without binding the setting: {why}"
                )));
            }
        };
        Ok(Ok(self
            .unbound(conn, table, column, &a, &b, &[Unbound::Fresh])
            .await?))
    }

    async fn unbound_read(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
    ) -> Result<Cell, VerifyError> {
        let state = self.unbound.label();
        let any = Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(table)
            .push(" AS x LIMIT 1");
        Ok(match self.attempt(conn, None, &any, &[], true).await? {
            Attempt::Done { rows, .. } => match rows.first() {
                Some(Value::Object(row)) => Cell::leak(
                    format!("{state}, with no tenant bound, a row is visible"),
                    self.key_of(table, row),
                ),
                _ => Cell::proven(format!("{state}, nothing is visible")),
            },
            Attempt::Stopped(Stop::Refused(why)) => Cell::proven(match self.when_unbound {
                WhenUnbound::Error => format!("{state}, reading raises as declared ({why})"),
                WhenUnbound::Deny => format!("{state}, reading is refused ({why})"),
            }),
            Attempt::Stopped(Stop::Failed(why)) => Cell::not_proven(format!(
                "{state}, reading failed instead of showing nothing: {why}"
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
        let state = self.unbound.label();
        let mark = self.open(conn).await?;
        let values = self.factory.values_for(conn, table, self.a).await;
        let inserted = match values {
            Ok(values) => {
                self.must_refuse_insert(conn, &format!("INSERT {state}"), None, table, &values)
                    .await
            }
            Err(Unbuildable(why)) => Ok(Cell::not_proven(format!("INSERT {state}: {why}"))),
        };
        self.close(conn, mark).await?;
        let mut cells = vec![inserted?];
        let every = Sql::new("DELETE FROM ").qname(table).push(" AS x");
        cells.push(
            self.must_not_touch(
                conn,
                &format!("DELETE {state}"),
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
                    &format!("UPDATE {state}"),
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
}
