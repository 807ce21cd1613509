//! Delete: with tenant A bound, a DELETE aimed at B's row and one with no
//! WHERE must leave B's row in place.

use sqlx::PgConnection;

use super::Probing;
use super::{LOCATED_AT_1, location};
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::ProbeRow;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    pub(super) async fn delete(
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
}
