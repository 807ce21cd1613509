//! Children: a partition or inheritance child read directly is held to its
//! own policies, not its parent's.

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::Unbuildable;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// A partition or inheritance child read directly: the parent's policies
    /// do not apply there, only the child's own. Probe rows go through the
    /// parent into a partition (the server routes them within its bounds),
    /// but straight into an inheritance child, which a parent's rows never reach.
    pub async fn child(
        &mut self,
        conn: &mut PgConnection,
        child: &QualifiedName,
        parent: &QualifiedName,
        column: &str,
        partition: bool,
    ) -> Result<Cell, VerifyError> {
        let planted_in = if partition { parent } else { child };
        if let Err(Unbuildable(why)) = self.pair(conn, planted_in).await {
            return Ok(Cell::not_proven(format!("no probe rows: {why}")));
        }
        let tenant_json = vec![self.one_column(child, column, &self.a.value)];
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
}
