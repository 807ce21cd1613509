//! Move: tenant A's own row must not be rewritten into tenant B.

use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use super::{LOCATED_AT_2, location};
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::ProbeRow;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// Moving A's own row to B: the tenant column and every foreign key column
    /// set to B's row's values (so the keys stay consistent and only the
    /// policy's WITH CHECK can refuse).
    pub(super) async fn moving(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let mut columns: Vec<String> = Vec::new();
        let tenant_target = match self.layout.column(table, column) {
            Some(c) if c.writable() => Some(column.to_string()),
            _ => self.layout.tenant_source_column(table).map(str::to_string),
        };
        let Some(tenant_target) = tenant_target else {
            return Ok(Cell::not_proven(
                "the tenant column is computed by the server and no column it comes from is known",
            ));
        };
        columns.push(tenant_target);
        for key in self
            .layout
            .foreign_keys
            .iter()
            .filter(|k| &k.table == table)
        {
            for c in &key.columns {
                let writable = self.layout.column(table, c).is_some_and(|c| c.writable());
                if writable && !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
        }
        let mut sources = Sql::default();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                sources = sources.push(", ");
            }
            sources = sources.push("r.").ident(c);
        }
        let assignment = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET (")
            .idents(columns.iter().map(String::as_str))
            .push(") = (SELECT ")
            .sql(&sources)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(")");
        // With a WHERE, PostgreSQL also holds the new row to the SELECT
        // policies; the column-free form is held only to WITH CHECK.
        let mut targeted_binds = vec![b.json()];
        targeted_binds.extend(location(a));
        let forms = [
            (
                "UPDATE moving tenant A's row to tenant B",
                assignment.clone().push(LOCATED_AT_2),
                targeted_binds,
            ),
            (
                "column-free UPDATE moving every visible row to tenant B",
                assignment,
                vec![b.json()],
            ),
        ];
        let mut cells = Vec::new();
        for (form, statement, binds) in forms {
            let mark = self.open(conn).await?;
            let attempt = self
                .attempt(conn, Some(self.a), &statement, &binds, false)
                .await;
            self.close(conn, mark).await?;
            cells.push(match attempt? {
                Attempt::Done { affected, .. } if affected > 0 => {
                    Cell::leak(format!("{form} succeeded ({affected} row(s))"), self.key(a))
                }
                Attempt::Done { .. } => Cell::proven(format!(
                    "{form}: 0 rows (tenant A cannot update its own row here, so nothing can move)"
                )),
                Attempt::Stopped(stop) => stop.cell(form),
            });
        }
        Ok(Cell::combine(cells))
    }
}
