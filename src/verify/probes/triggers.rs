//! Triggers: a SECURITY DEFINER trigger function runs with its owner's rights
//! whenever the runtime role writes the table, so it can copy another tenant's
//! rows into the new row or into a table the role reads. With A bound, the
//! role inserts a row of A's (firing the trigger); neither the row the insert
//! returns nor any table the trigger's body names may then show A a row of B.
//!
//! Which tables the function reads and writes comes from its body, parsed by
//! PostgreSQL's grammar (`audit::function_body`); a body in another language
//! is not probed (audit still names the trigger).

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::PgConnection;

use super::Probing;
use super::attempt::Attempt;
use super::views::marked_rows;
use crate::audit::function_body;
use crate::catalog::{Trigger, pinned_search_path};
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::{Unbuildable, insert_statement};
use crate::verify::{Cell, VerifyError, db};

/// A SECURITY DEFINER trigger on a probed tenant table whose function reads
/// tenant tables.
#[derive(Debug, Clone)]
pub struct DefinerTrigger {
    pub table: QualifiedName,
    pub name: String,
    pub owner: String,
    /// The tenant tables its function reads (B's rows are planted there).
    pub reads: BTreeSet<QualifiedName>,
    /// Every table its function names, and its own table: where a copy of
    /// B's rows could land.
    pub lands: BTreeSet<QualifiedName>,
    /// Why an INSERT would not show what the trigger does: it does not fire
    /// on INSERT, or a WHEN condition decides whether it fires. `None` when
    /// it fires on every INSERT.
    pub not_fired: Option<String>,
    /// Disabled (`ALTER TABLE … DISABLE TRIGGER`): it never fires.
    pub disabled: bool,
}

/// How a trigger fires, from `pg_trigger`.
type Firing = (String, String, i16, bool, String, Option<Vec<String>>);

/// The SECURITY DEFINER triggers on `probed` tables whose function's body
/// names a tenant table, with the events that fire them. `known` is every
/// table of the database; names in the body resolve in the function's
/// pinned search_path, else the owner's default path.
pub async fn definer_triggers<'a>(
    conn: &mut PgConnection,
    triggers: &[Trigger],
    probed: impl Fn(&QualifiedName) -> bool,
    tenant_table: impl Fn(&QualifiedName) -> bool,
    known: impl Iterator<Item = &'a QualifiedName> + Clone,
) -> Result<Vec<DefinerTrigger>, VerifyError> {
    let candidates: Vec<&Trigger> = triggers
        .iter()
        .filter(|t| t.security_definer && probed(&t.table))
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let tables: Vec<String> = candidates.iter().map(|t| t.table.quoted()).collect();
    let names: Vec<String> = candidates.iter().map(|t| t.name.clone()).collect();
    let firing: Vec<Firing> = sqlx::query_as(
        "SELECT c.t, c.n, t.tgtype, t.tgqual IS NOT NULL, t.tgenabled::text, p.proconfig
           FROM unnest($1::text[], $2::text[]) AS c(t, n)
           JOIN pg_catalog.pg_trigger t
             ON t.tgrelid = pg_catalog.to_regclass(c.t) AND t.tgname = c.n
           JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid",
    )
    .bind(&tables)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading how the SECURITY DEFINER triggers fire"))?;
    Ok(candidates
        .into_iter()
        .filter_map(|t| {
            let (_, _, tgtype, when, enabled, config) = firing
                .iter()
                .find(|(table, name, ..)| *table == t.table.quoted() && *name == t.name)?;
            let path = pinned_search_path(config.as_deref().unwrap_or_default())
                .unwrap_or_else(|| vec![t.owner.clone(), "public".to_string()]);
            let touched =
                function_body::tables_touched(&t.language, &t.body, &path, known.clone())?;
            let reads: BTreeSet<QualifiedName> =
                touched.iter().filter(|r| tenant_table(r)).cloned().collect();
            if reads.is_empty() {
                return None;
            }
            let mut lands = touched;
            lands.insert(t.table.clone());
            // TRIGGER_TYPE_INSERT, _DELETE, _UPDATE, _TRUNCATE (trigger.h).
            let events: Vec<&str> = [(4, "INSERT"), (8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE")]
                .into_iter()
                .filter(|(bit, _)| tgtype & bit != 0)
                .map(|(_, event)| event)
                .collect();
            let not_fired = if events != ["INSERT"] {
                Some(format!(
                    "it fires on {}; verify fires it by INSERT only, so what it does on the other events is not shown",
                    events.join(", ")
                ))
            } else if *when {
                Some("a WHEN condition decides whether it fires, and verify cannot tell that its INSERT met it".to_string())
            } else {
                None
            };
            Some(DefinerTrigger {
                table: t.table.clone(),
                name: t.name.clone(),
                owner: t.owner.clone(),
                reads,
                lands,
                not_fired,
                disabled: enabled == "D",
            })
        })
        .collect())
}

impl Probing<'_> {
    /// With A bound, inserts a row of A's into the trigger's table as the
    /// role, then looks for B's rows in what the insert returned and in every
    /// table the trigger's function names.
    pub async fn definer_trigger(
        &mut self,
        conn: &mut PgConnection,
        trigger: &DefinerTrigger,
    ) -> Result<Cell, VerifyError> {
        if trigger.disabled {
            return Ok(Cell::proven(format!(
                "trigger {} is disabled: it never fires",
                trigger.name
            )));
        }
        let marks = match self.plant_marks(conn, &trigger.reads).await? {
            Ok(marks) => marks,
            Err(cell) => return Ok(cell),
        };
        let binds_marks = Value::from(marks.clone()).to_string();
        let values = match self.factory.values_for(conn, &trigger.table, self.a).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
        };
        let insert = insert_statement(&trigger.table, values.keys().map(String::as_str))
            .push(" RETURNING to_jsonb(x.*)");
        let binds = if values.is_empty() {
            Vec::new()
        } else {
            vec![Value::Object(values).to_string()]
        };
        let form = format!("INSERT of a row of tenant A (firing {})", trigger.name);
        let returned = match self
            .attempt(conn, Some(self.a), &insert, &binds, true)
            .await?
        {
            Attempt::Done { rows, .. } => rows,
            Attempt::Stopped(stop) => return Ok(stop.cell(&form)),
        };
        if let Some(row) = returned.into_iter().find(|row| {
            let text = row.to_string();
            marks.iter().any(|mark| text.contains(mark.as_str()))
        }) {
            return Ok(Cell::leak(
                format!(
                    "the row tenant A inserted came back holding tenant B's data, written by trigger {}",
                    trigger.name
                ),
                row,
            ));
        }
        for table in &trigger.lands {
            let statement = marked_rows(&Sql::new("").qname(table));
            match self
                .attempt(
                    conn,
                    Some(self.a),
                    &statement,
                    std::slice::from_ref(&binds_marks),
                    true,
                )
                .await?
            {
                Attempt::Done { rows, .. } => {
                    if let Some(row) = rows.into_iter().next() {
                        return Ok(Cell::leak(
                            format!(
                                "after tenant A's insert fired trigger {}, {table} shows tenant A a row of tenant B",
                                trigger.name
                            ),
                            row,
                        ));
                    }
                }
                // A table the role may not read shows it nothing.
                Attempt::Stopped(_) => {}
            }
        }
        if let Some(why) = &trigger.not_fired {
            return Ok(Cell::not_proven(format!(
                "tenant A's insert showed nothing of tenant B, but {why}"
            )));
        }
        Ok(Cell::proven(format!(
            "tenant A's insert fired trigger {}, and neither the row nor {} showed tenant A a row of tenant B",
            trigger.name,
            trigger
                .lands
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
