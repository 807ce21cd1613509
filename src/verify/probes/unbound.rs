//! Unbound: with no tenant bound, nothing is visible and nothing can be written.

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::{Attempt, Stop};
use crate::quote::{QualifiedName, Sql};
use crate::spec::WhenUnbound;
use crate::verify::rows::{ProbeRow, Unbuildable};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn unbound_read(
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

    pub(super) async fn unbound_write(
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
}
