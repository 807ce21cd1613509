//! Upsert: `INSERT … ON CONFLICT` with a key another tenant holds must not
//! reach, change or return that tenant's row.

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use crate::quote::QualifiedName;
use crate::verify::rows::{ProbeRow, Unbuildable, insert_statement};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING` with A's row carrying
    /// B's key: the conflict must not reach, change or return B's row.
    pub(super) async fn on_conflict(
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
}
