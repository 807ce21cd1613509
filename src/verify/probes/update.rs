//! Update: with tenant A bound, an UPDATE aimed at B's row and a column-free
//! UPDATE of every row must leave B's row untouched.

use sqlx::PgConnection;

use super::Probing;
use super::{LOCATED_AT_1, location};
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::ProbeRow;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn update(
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
    pub(super) fn column_free_update(
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
}
