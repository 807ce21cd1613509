//! Existence: `INSERT … ON CONFLICT DO NOTHING` with a key another tenant
//! holds. The conflict is decided by the unique index, which row-level
//! security does not filter, so "0 rows" where a fresh key gives "1 row"
//! tells tenant A that someone holds that key: a natural key (an email, an
//! invoice number) unique across tenants is an existence oracle. Keys the
//! server fills (identity, serial, `gen_random_uuid()`) are not chosen by the
//! application and are not probed.

use serde_json::{Map, Value};
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use crate::catalog::UniqueKey;
use crate::quote::QualifiedName;
use crate::verify::rows::{ProbeRow, Unbuildable, insert_statement};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn existence(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let keys: Vec<&UniqueKey> = self
            .layout
            .unique_keys
            .iter()
            .filter(|k| {
                &k.table == table
                    && !k.columns.iter().any(|c| c == column)
                    && k.columns
                        .iter()
                        .all(|c| self.layout.column(table, c).is_some_and(|c| c.writable()))
                    && k.columns
                        .iter()
                        .any(|c| self.layout.column(table, c).is_some_and(|c| !c.has_default))
            })
            .collect();
        if keys.is_empty() {
            return Ok(Cell::proven(
                "no unique key the application chooses lies outside the tenant column: a conflict cannot tell a tenant what another holds",
            ));
        }
        let mut cells = Vec::new();
        for key in keys {
            let mark = self.open(conn).await?;
            let cell = self.oracle(conn, table, key, b).await;
            self.close(conn, mark).await?;
            cells.push(cell?);
        }
        Ok(Cell::combine(cells))
    }

    /// A's row inserted with DO NOTHING twice: with a fresh key (the control:
    /// it must insert) and with B's key (it must insert too, or be refused).
    async fn oracle(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        key: &UniqueKey,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let names = key.columns.join(", ");
        let form = format!("INSERT … ON CONFLICT DO NOTHING with tenant B's ({names})");
        let mut counts = Vec::new();
        for with_b_key in [false, true] {
            let mut values: Map<String, Value> =
                match self.factory.values_for(conn, table, self.a).await {
                    Ok(values) => values,
                    Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
                };
            if with_b_key {
                for c in &key.columns {
                    if let Some(v) = b.values.get(c) {
                        values.insert(c.clone(), v.clone());
                    }
                }
            }
            let statement = insert_statement(table, values.keys().map(String::as_str))
                .push(" ON CONFLICT DO NOTHING");
            let binds = vec![Value::Object(values).to_string()];
            match self
                .attempt(conn, Some(self.a), &statement, &binds, false)
                .await?
            {
                Attempt::Done { affected, .. } => counts.push(affected),
                Attempt::Stopped(stop) => return Ok(stop.cell(&form)),
            }
        }
        Ok(match counts[..] {
            [1, 0] => Cell::leak(
                format!(
                    "{form} inserted nothing where a fresh key inserts a row: tenant A learns another tenant holds ({names})"
                ),
                self.key(b),
            ),
            [1, _] => Cell::proven(format!("{form}: inserted as with a fresh key")),
            _ => Cell::not_proven(format!(
                "{form}: with a fresh key the insert did nothing either, so the counts compare nothing"
            )),
        })
    }
}
