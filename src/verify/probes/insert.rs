//! Insert: with tenant A bound, a row for tenant B must be refused, and an
//! upsert carrying B's key must not reach B's row (see [`super::on_conflict`]).

use sqlx::PgConnection;

use super::Probing;
use crate::quote::QualifiedName;
use crate::verify::rows::{ProbeRow, Unbuildable};
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn insert(
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

    pub(super) async fn insert_probes(
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
}
