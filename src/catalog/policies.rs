//! Every policy of the user schemas, its expressions printed as
//! `pg_get_expr` prints them, but printed once per distinct shape.
//!
//! The first query reads the stored trees as text (`polqual::text`, no
//! printing); [`super::node_tree`] keys each by what its printed form
//! depends on; the second query prints one expression per key, and the
//! others of that key take its text. A spec's 8,000 policies on 2,000
//! tables are a handful of keys. Should a printed policy have changed
//! between the two queries (its tree no longer the one keyed), each policy
//! of that key is printed on its own in a third query, which only such a
//! concurrent change costs.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::command_from_catalog;
use super::node_tree::template;
use crate::model::{MANAGED_MARKER, Policy, State};
use crate::quote::QualifiedName;
use crate::spec::Expression;

/// Columns of each table by attribute number: name, and type as
/// `format_type` prints it.
pub type ColumnsByNumber = HashMap<QualifiedName, HashMap<i16, (String, String)>>;

type PolicyRow = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    Vec<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// One expression of one policy: its row, and whether it is the WITH CHECK.
type Slot = (usize, bool);

/// What a printed expression depends on.
#[derive(PartialEq, Eq, Hash)]
enum Key<'a> {
    Shared {
        /// The template's text, by number.
        template: usize,
        /// Name and type of each column the template's placeholders stand for.
        columns: Vec<&'a (String, String)>,
        /// The table's name, where the printed form may show it.
        table: Option<&'a str>,
    },
    /// A tree the template reader does not expect, or a column it cannot
    /// name: printed on its own.
    Alone(Slot),
}

/// Reads every policy into the tables of `state` already read; returns the
/// number of queries it took.
pub(super) async fn read(
    conn: &mut PgConnection,
    state: &mut State,
    columns: &ColumnsByNumber,
) -> Result<u32, sqlx::Error> {
    let rows: Vec<PolicyRow> = sqlx::query_as(concat!(
        "SELECT p.oid::int8, n.nspname::text, c.relname::text, p.polname::text, p.polcmd::text,
                p.polpermissive,
                ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r)::text END
                        FROM unnest(p.polroles) r),
                p.polqual::text, p.polwithcheck::text,
                coalesce(d.description = $1, false)
           FROM pg_catalog.pg_policy p
           JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_description d
                  ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_policy'::regclass
          WHERE ",
        user_schemas!(),
        ""
    ))
    .bind(MANAGED_MARKER)
    .fetch_all(&mut *conn)
    .await?;
    let mut queries = 1;

    let groups = group(&rows, columns);
    let tree = |(row, with_check): Slot| -> Option<&str> {
        let r = &rows[row];
        if with_check { &r.8 } else { &r.7 }.as_deref()
    };
    let oid = |(row, _): Slot| rows[row].0;

    // Printed text per slot; a slot left None after both passes belongs to a
    // policy dropped meanwhile.
    let mut printed: HashMap<Slot, Option<String>> = HashMap::new();
    let representatives: Vec<(i64, bool)> = groups.iter().map(|g| (oid(g[0]), g[0].1)).collect();
    let first = print(conn, &representatives).await?;
    queries += 1;
    let mut alone: Vec<Slot> = Vec::new();
    for (members, result) in groups.iter().zip(first) {
        match result {
            Some((text, now)) if now.as_deref() == tree(members[0]) => {
                for &slot in members {
                    printed.insert(slot, text.clone());
                }
            }
            _ => alone.extend(members),
        }
    }
    let mut dropped = vec![false; rows.len()];
    if !alone.is_empty() {
        let slots: Vec<(i64, bool)> = alone.iter().map(|&s| (oid(s), s.1)).collect();
        let again = print(conn, &slots).await?;
        queries += 1;
        for (slot, result) in alone.into_iter().zip(again) {
            match result {
                Some((text, _)) => {
                    printed.insert(slot, text);
                }
                None => dropped[slot.0] = true,
            }
        }
    }

    for (i, row) in rows.into_iter().enumerate() {
        let (_, schema, table, name, command, permissive, roles, _, _, managed) = row;
        if dropped[i] {
            continue;
        }
        let Some(t) = state.tables.get_mut(&QualifiedName::new(schema, table)) else {
            continue;
        };
        let mut text = |with_check| printed.remove(&(i, with_check)).flatten();
        let policy = Policy {
            name: name.clone(),
            command: command_from_catalog(&command),
            permissive,
            roles: roles.into_iter().collect(),
            using: text(false).map(Expression::trusted),
            with_check: text(true).map(Expression::trusted),
            managed,
        };
        t.policies.insert(name, policy);
    }
    Ok(queries)
}

/// The expressions of `rows`, grouped so that those of one group print alike.
fn group(rows: &[PolicyRow], columns: &ColumnsByNumber) -> Vec<Vec<Slot>> {
    // Per distinct tree text: its template's number, the columns its
    // placeholders stand for, whether it may print the table's name.
    type Shape = Option<(usize, Vec<i16>, bool)>;
    let mut shapes: Vec<Shape> = Vec::new();
    let mut shape_of: HashMap<&str, usize> = HashMap::new();
    let mut texts: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<Slot>> = Vec::new();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    // The last tree of each kind (USING, WITH CHECK) and its shape: policies
    // of one shape tend to come in a row, and comparing with the last tree
    // costs less than hashing a kilobyte of text again.
    let mut last: [Option<(&str, usize)>; 2] = [None, None];
    for (row, r) in rows.iter().enumerate() {
        let table_columns = columns.get(&QualifiedName::new(r.1.as_str(), r.2.as_str()));
        for (with_check, tree) in [(false, &r.7), (true, &r.8)] {
            let Some(tree) = tree.as_deref() else {
                continue;
            };
            let slot = (row, with_check);
            let shape = match last[usize::from(with_check)] {
                Some((previous, shape)) if previous == tree => shape,
                _ => {
                    let shape = *shape_of.entry(tree).or_insert_with(|| {
                        shapes.push(template(tree).map(|t| {
                            let next = texts.len();
                            let number = *texts.entry(t.text).or_insert(next);
                            (number, t.columns, t.names_table)
                        }));
                        shapes.len() - 1
                    });
                    last[usize::from(with_check)] = Some((tree, shape));
                    shape
                }
            };
            let key = shapes[shape]
                .as_ref()
                .and_then(|(number, attnos, names_table)| {
                    let named: Option<Vec<&(String, String)>> = attnos
                        .iter()
                        .map(|a| table_columns.and_then(|c| c.get(a)))
                        .collect();
                    Some(Key::Shared {
                        template: *number,
                        columns: named?,
                        table: names_table.then_some(r.2.as_str()),
                    })
                })
                .unwrap_or(Key::Alone(slot));
            let next = groups.len();
            let g = *by_key.entry(key).or_insert(next);
            if g == next {
                groups.push(Vec::new());
            }
            groups[g].push(slot);
        }
    }
    groups
}

/// `pg_get_expr` of each (policy oid, WITH CHECK?) with the tree it printed
/// as text; `None` for a policy that no longer exists.
async fn print(
    conn: &mut PgConnection,
    slots: &[(i64, bool)],
) -> Result<Vec<Option<(Option<String>, Option<String>)>>, sqlx::Error> {
    let (oids, with_check): (Vec<i64>, Vec<bool>) = slots.iter().copied().unzip();
    let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT r.i, pg_catalog.pg_get_expr(e.tree, p.polrelid), e.tree::text
           FROM unnest($1::int8[], $2::bool[]) WITH ORDINALITY AS r(policy, with_check, i)
           JOIN pg_catalog.pg_policy p ON p.oid = r.policy::oid
          CROSS JOIN LATERAL (SELECT CASE WHEN r.with_check THEN p.polwithcheck
                                          ELSE p.polqual END AS tree) e",
    )
    .bind(&oids)
    .bind(&with_check)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = vec![None; slots.len()];
    for (i, text, tree) in rows {
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some((text, tree));
        }
    }
    Ok(out)
}
