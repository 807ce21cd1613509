//! Views: a view over tenant tables shows tenant A none of B's rows.
//!
//! [`Probing::shows_none_of_b`] is shared with the SECURITY DEFINER function
//! probe (`definer_functions.rs`): both read an object that reads tenant tables
//! and look for B's rows in what comes back.

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use crate::catalog::View;
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::Unbuildable;
use crate::verify::{Cell, VerifyError};

impl Probing<'_> {
    /// A view over tenant tables: with A bound, no row of B may come through.
    pub async fn view(
        &mut self,
        conn: &mut PgConnection,
        view: &View,
    ) -> Result<Cell, VerifyError> {
        let source = Sql::new("").qname(&view.name);
        self.shows_none_of_b(conn, &view.reads, &source, "the view")
            .await
    }

    /// Plants A's and B's probe rows in the tenant tables `reads` names, then
    /// reads `source` (a relation or a function call usable in FROM) with A
    /// bound: any row holding B's tenant id or one of B's key values is a
    /// LEAK. B's rows are recognised in the row's text, so this works whether
    /// or not the object shows the tenant column.
    pub(super) async fn shows_none_of_b(
        &mut self,
        conn: &mut PgConnection,
        reads: &BTreeSet<QualifiedName>,
        source: &Sql,
        what: &str,
    ) -> Result<Cell, VerifyError> {
        let marks = match self.plant_marks(conn, reads).await? {
            Ok(marks) => marks,
            Err(cell) => return Ok(cell),
        };
        let statement = marked_rows(source);
        let binds = vec![Value::from(marks).to_string()];
        // With B bound, an admin subject to RLS sees B's rows too.
        if self
            .admin_value(conn, self.b, &statement, &binds)
            .await?
            .is_null()
        {
            return Ok(Cell::not_proven(format!(
                "{what} shows none of tenant B's probe rows even to the admin: nothing to test with"
            )));
        }
        Ok(
            match self
                .attempt(conn, Some(self.a), &statement, &binds, true)
                .await?
            {
                Attempt::Done { rows, .. } => match rows.into_iter().next() {
                    Some(row) => {
                        Cell::leak(format!("{what} shows tenant A a row of tenant B"), row)
                    }
                    None => Cell::proven(format!("{what} shows tenant A none of tenant B's rows")),
                },
                Attempt::Stopped(stop) => stop.cell("reading"),
            },
        )
    }

    /// Plants a probe row of A and of B in each tenant table of `reads`, and
    /// returns what recognises B's rows in any text: B's tenant id and B's key
    /// values (those long enough not to match by chance). A table no row can
    /// be made for gives the NOT PROVEN cell instead.
    pub(super) async fn plant_marks(
        &mut self,
        conn: &mut PgConnection,
        reads: &BTreeSet<QualifiedName>,
    ) -> Result<Result<Vec<String>, Cell>, VerifyError> {
        let mut marks = vec![self.b.value.clone()];
        for table in reads {
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
                    return Ok(Err(Cell::not_proven(format!(
                        "no probe rows in {table}: {why}"
                    ))));
                }
            }
        }
        Ok(Ok(marks))
    }
}

/// The first row of `source` whose text holds one of the marks bound as `$1`
/// (a JSON array of strings), as JSON.
pub(super) fn marked_rows(source: &Sql) -> Sql {
    Sql::new("SELECT to_jsonb(x.*) FROM ").sql(source).push(
        " AS x WHERE EXISTS (SELECT 1 FROM pg_catalog.json_array_elements_text($1::json) AS f(mark)
           WHERE strpos(to_jsonb(x.*)::text, f.mark) > 0) LIMIT 1",
    )
}
