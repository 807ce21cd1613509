//! `backfill: via`: a row's tenant is found by following foreign keys, table
//! by table, to one that has the tenant column.
//!
//! Each entry names a key of the table reached so far, by one of its columns
//! or by its constraint name. A composite key is joined on every column it
//! has, so `(region, parent_id) → parent (region, id)` finds the parent of
//! that region, not any parent with that id. On the first hop the column
//! being filled is left out of the join: it is what the join derives.

use crate::catalog::{ForeignKey, Posture};
use crate::model::State;
use crate::quote::{QualifiedName, Sql};
use crate::spec::Spec;

use super::MigrateError;

/// The derivation and the key of the first hop (the one `scope_foreign_key`
/// replaces).
pub(super) struct Derivation {
    /// `(SELECT vN.tenant FROM parent AS v1 JOIN … WHERE v1.id = x.parent_id)`,
    /// over the row aliased `x`.
    pub sql: Sql,
    pub first_key: ForeignKey,
}

pub(super) fn derive(
    spec: &Spec,
    posture: &Posture,
    live: &State,
    table: &QualifiedName,
    filled_column: &str,
    entries: &[String],
) -> Result<Derivation, MigrateError> {
    let mut current = table.clone();
    let mut hops: Vec<&ForeignKey> = Vec::new();
    for entry in entries {
        let key = key_named(posture, &current, entry)?;
        current = key.references.clone();
        hops.push(key);
    }
    let tenant = spec
        .table(&current)
        .map(|t| t.column.clone())
        .unwrap_or_else(|| spec.tenancy.column.clone());
    if !live
        .tables
        .get(&current)
        .is_some_and(|t| t.columns.contains_key(&tenant))
    {
        return Err(MigrateError::Refused(format!(
            "backfill via {}: it ends at {current}, which has no {tenant} column",
            entries.join(", ")
        )));
    }
    let alias = |i: usize| format!("v{}", i + 1);
    let mut sql = Sql::new("(SELECT ")
        .ident(&alias(hops.len() - 1))
        .push(".")
        .ident(&tenant)
        .push(" FROM ");
    for (i, key) in hops.iter().enumerate() {
        if i > 0 {
            sql = sql.push(" JOIN ");
        }
        sql = sql.qname(&key.references).push(" AS ").ident(&alias(i));
        if i > 0 {
            sql = sql
                .push(" ON ")
                .sql(&join(key, &alias(i), &alias(i - 1), None));
        }
    }
    let first = hops[0];
    let condition = join(first, &alias(0), "x", Some(filled_column));
    if first.columns.iter().all(|c| c == filled_column) {
        return Err(MigrateError::Refused(format!(
            "backfill via {}: the key {} on {table} is on {filled_column} alone, the column being filled, so it cannot derive it",
            entries[0], first.name
        )));
    }
    Ok(Derivation {
        sql: sql.push(" WHERE ").sql(&condition).push(")"),
        first_key: first.clone(),
    })
}

/// The key of `table` that `entry` names: the key on that column alone, else
/// the one key containing it, else the key of that name.
fn key_named<'p>(
    posture: &'p Posture,
    table: &QualifiedName,
    entry: &str,
) -> Result<&'p ForeignKey, MigrateError> {
    let keys: Vec<&ForeignKey> = posture
        .foreign_keys
        .iter()
        .filter(|k| &k.table == table)
        .collect();
    if let Some(single) = keys.iter().find(|k| k.columns == [entry]) {
        return Ok(single);
    }
    if let Some(named) = keys.iter().find(|k| k.name == entry) {
        return Ok(named);
    }
    let containing: Vec<&&ForeignKey> = keys
        .iter()
        .filter(|k| k.columns.iter().any(|c| c == entry))
        .collect();
    match containing.as_slice() {
        [one] => Ok(one),
        [] => Err(MigrateError::Refused(format!(
            "backfill via {entry}: {table}.{entry} is in no foreign key of {table}, and no foreign key has that name{}",
            listed(&keys)
        ))),
        several => Err(MigrateError::Refused(format!(
            "backfill via {entry}: {table}.{entry} is in {} foreign keys of {table}; name the one to follow by its constraint name instead{}",
            several.len(),
            listed(&several.iter().map(|k| **k).collect::<Vec<_>>())
        ))),
    }
}

fn listed(keys: &[&ForeignKey]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let each: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{} ({}) → {} ({})",
                k.name,
                k.columns.join(", "),
                k.references,
                k.referenced_columns.join(", ")
            )
        })
        .collect();
    format!(" (its foreign keys: {})", each.join("; "))
}

/// `parent.ref1 = child.col1 AND …` over every column pair of `key`, but
/// `skip` (the column being filled).
fn join(key: &ForeignKey, parent: &str, child: &str, skip: Option<&str>) -> Sql {
    let mut sql = Sql::default();
    let pairs = key
        .columns
        .iter()
        .zip(&key.referenced_columns)
        .filter(|(column, _)| Some(column.as_str()) != skip);
    for (i, (column, referenced)) in pairs.enumerate() {
        if i > 0 {
            sql = sql.push(" AND ");
        }
        sql = sql
            .ident(parent)
            .push(".")
            .ident(referenced)
            .push(" = ")
            .ident(child)
            .push(".")
            .ident(column);
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        name: &str,
        table: &str,
        columns: &[&str],
        parent: &str,
        referenced: &[&str],
    ) -> ForeignKey {
        ForeignKey {
            table: QualifiedName::new("public", table),
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            references: QualifiedName::new("public", parent),
            referenced_columns: referenced.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn posture(keys: Vec<ForeignKey>) -> Posture {
        Posture {
            foreign_keys: keys,
            ..Posture::default()
        }
    }

    #[test]
    fn a_composite_key_is_joined_on_every_column_but_the_one_being_filled() {
        let k = key(
            "orders_region_customer_fkey",
            "orders",
            &["tenant_id", "region", "customer_id"],
            "customers",
            &["tenant_id", "region", "id"],
        );
        assert_eq!(
            join(&k, "v1", "x", Some("tenant_id")).shown(),
            r#""v1"."region" = "x"."region" AND "v1"."id" = "x"."customer_id""#
        );
        assert_eq!(
            join(&k, "v2", "v1", None).shown(),
            r#""v2"."tenant_id" = "v1"."tenant_id" AND "v2"."region" = "v1"."region" AND "v2"."id" = "v1"."customer_id""#
        );
    }

    #[test]
    fn a_via_entry_names_a_key_by_its_only_column_by_a_column_of_one_key_or_by_its_name() {
        let single = key("c_task_fkey", "c", &["task_id"], "tasks", &["id"]);
        let regional = key(
            "c_region_fkey",
            "c",
            &["region", "task_id"],
            "tasks",
            &["region", "id"],
        );
        let other = key(
            "c_region_office_fkey",
            "c",
            &["region", "office"],
            "offices",
            &["region", "code"],
        );
        let p = posture(vec![single, regional, other]);
        let c = QualifiedName::new("public", "c");
        assert_eq!(key_named(&p, &c, "task_id").unwrap().name, "c_task_fkey");
        assert_eq!(
            key_named(&p, &c, "office").unwrap().name,
            "c_region_office_fkey"
        );
        assert_eq!(
            key_named(&p, &c, "c_region_fkey").unwrap().name,
            "c_region_fkey"
        );
        let ambiguous = key_named(&p, &c, "region").unwrap_err().to_string();
        assert!(
            ambiguous.contains("in 2 foreign keys") && ambiguous.contains("c_region_office_fkey"),
            "{ambiguous}"
        );
        let missing = key_named(&p, &c, "author_id").unwrap_err().to_string();
        assert!(missing.contains("in no foreign key"), "{missing}");
    }
}
