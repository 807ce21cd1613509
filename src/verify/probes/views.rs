//! Views: a view over tenant tables shows tenant A none of B's rows.

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use crate::catalog::View;
use crate::quote::Sql;
use crate::verify::rows::Unbuildable;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// A view over tenant tables: with A bound, no row of B may come through.
    /// B's rows are recognised by their tenant id and key values in the row text,
    /// so this works whether or not the view shows the tenant column.
    pub async fn view(
        &mut self,
        conn: &mut PgConnection,
        view: &View,
    ) -> Result<Cell, VerifyError> {
        let mut marks = vec![self.b.value.clone()];
        for table in &view.reads {
            if !self.layout.tenant_columns.contains_key(table) {
                continue;
            }
            match self.pair(conn, table).await {
                Ok((_, b)) => marks.extend(
                    self.key(&b)
                        .as_object()
                        .into_iter()
                        .flat_map(|k| k.values().filter_map(crate::verify::rows::text_of))
                        .filter(|text| text.len() >= 8),
                ),
                Err(Unbuildable(why)) => {
                    return Ok(Cell::not_proven(format!("no probe rows in {table}: {why}")));
                }
            }
        }
        let statement = Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(&view.name)
            .push(
                " AS x WHERE EXISTS (SELECT 1 FROM pg_catalog.json_array_elements_text($1::json) AS f(mark)
                   WHERE strpos(to_jsonb(x.*)::text, f.mark) > 0) LIMIT 1",
            );
        let binds = vec![Value::from(marks).to_string()];
        // With B bound, an admin subject to RLS sees B's rows too.
        if self
            .admin_value(conn, self.b, &statement, &binds)
            .await?
            .is_null()
        {
            return Ok(Cell::not_proven(
                "the view shows none of tenant B's probe rows even to the admin: nothing to test with",
            ));
        }
        Ok(
            match self
                .attempt(conn, Some(self.a), &statement, &binds, true)
                .await?
            {
                Attempt::Done { rows, .. } => match rows.into_iter().next() {
                    Some(row) => Cell::leak("the view shows tenant A a row of tenant B", row),
                    None => Cell::proven("the view shows tenant A none of tenant B's rows"),
                },
                Attempt::Stopped(stop) => stop.cell("reading"),
            },
        )
    }
}
