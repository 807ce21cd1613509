//! What a value must satisfy to be accepted by a table: each column's exact
//! type (length, precision and scale, enum labels, domain checks), the table's
//! CHECK constraints, and where each partition and inheritance child lies.
//! `verify` reads it to make up probe rows the schema accepts. Three queries,
//! whatever the number of tables.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::qualified;
use crate::quote::QualifiedName;

/// A column's type in the detail a made-up value must respect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnType {
    /// `pg_type.typname` of the base type (`int4`, `numeric`, `varchar`, `bpchar`…).
    pub base: String,
    /// `pg_type.typcategory` of the base type.
    pub category: char,
    /// The declared type modifier (the domain's when the column has none), -1 if none.
    pub typmod: i32,
    /// Every label of an enum, in order.
    pub labels: Vec<String>,
    /// The domain's CHECK expressions (and its base domain's), `VALUE` standing for the column.
    pub domain_checks: Vec<String>,
    /// A domain with NOT NULL.
    pub domain_not_null: bool,
}

impl ColumnType {
    /// `varchar(n)` / `char(n)`: at most n characters.
    pub fn max_length(&self) -> Option<usize> {
        (matches!(self.base.as_str(), "varchar" | "bpchar") && self.typmod > 4)
            .then(|| (self.typmod - 4) as usize)
    }

    /// `numeric(p, s)`: (p, s).
    pub fn precision_scale(&self) -> Option<(u32, u32)> {
        (self.base == "numeric" && self.typmod >= 4).then(|| {
            let m = (self.typmod - 4) as u32;
            ((m >> 16) & 0xffff, m & 0xffff)
        })
    }
}

/// Where a partition or inheritance child sits under a table rows go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descendant {
    pub table: QualifiedName,
    /// `pg_class.oid` as text: what `tableoid::text` of a row in it reads.
    pub oid: String,
    /// A leaf partition: its partition constraint, ancestors' included (rows
    /// inserted through the ancestor land here when they satisfy it). `None`
    /// for an inheritance child, which only gets rows inserted into it.
    pub constraint: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ValueRules {
    /// (table, column) → its type.
    pub types: BTreeMap<(QualifiedName, String), ColumnType>,
    /// table → its CHECK constraints: (name, expression as the server deparses it).
    pub checks: BTreeMap<QualifiedName, Vec<(String, String)>>,
    /// partitioned table → its leaf partitions (every level); inheritance
    /// parent → its direct children.
    pub descendants: BTreeMap<QualifiedName, Vec<Descendant>>,
}

type TypeRow = (
    String,
    String,
    String,
    String,
    i32,
    Vec<String>,
    Vec<String>,
    bool,
);

pub async fn read_value_rules(conn: &mut PgConnection) -> Result<ValueRules, sqlx::Error> {
    let mut rules = ValueRules::default();
    let rows: Vec<TypeRow> = sqlx::query_as(concat!(
        "SELECT n.nspname::text || chr(31) || c.relname::text, a.attname::text,
                b.typname::text, b.typcategory::text,
                CASE WHEN a.atttypmod <> -1 OR t.typtype <> 'd' THEN a.atttypmod ELSE t.typtypmod END,
                ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                       WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder),
                ARRAY(SELECT pg_catalog.pg_get_expr(d.conbin, 0) FROM pg_catalog.pg_constraint d
                       WHERE d.contype = 'c' AND t.typtype = 'd'
                         AND d.contypid IN (t.oid, t.typbasetype) ORDER BY d.conname),
                t.typtype = 'd' AND t.typnotnull
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
           JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
           JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN bt.typtype = 'd' THEN bt.typbasetype ELSE bt.oid END
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (table, column, base, category, typmod, labels, domain_checks, domain_not_null) in rows {
        rules.types.insert(
            (qualified(&table), column),
            ColumnType {
                base,
                category: category.chars().next().unwrap_or('X'),
                typmod,
                labels,
                domain_checks,
                domain_not_null,
            },
        );
    }

    let checks: Vec<(String, String, String)> = sqlx::query_as(concat!(
        "SELECT n.nspname::text || chr(31) || c.relname::text, k.conname::text,
                pg_catalog.pg_get_expr(k.conbin, k.conrelid)
           FROM pg_catalog.pg_constraint k
           JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE k.contype = 'c' AND c.relkind IN ('r', 'p') AND ",
        user_schemas!(),
        " ORDER BY 1, 2"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (table, name, expression) in checks {
        rules
            .checks
            .entry(qualified(&table))
            .or_default()
            .push((name, expression));
    }

    // Leaf partitions under every partitioned ancestor, and direct
    // inheritance children (which are not partitions).
    let descendants: Vec<(String, String, String, Option<String>)> = sqlx::query_as(concat!(
        "SELECT pn.nspname::text || chr(31) || p.relname::text,
                n.nspname::text || chr(31) || c.relname::text, c.oid::text,
                pg_catalog.pg_get_partition_constraintdef(c.oid)
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.oid) AS up(relid)
           JOIN pg_catalog.pg_class p ON p.oid = up.relid
           JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
          WHERE c.relispartition AND c.relkind = 'r' AND up.relid <> c.oid AND ",
        user_schemas!(),
        "
         UNION ALL
         SELECT pn.nspname::text || chr(31) || p.relname::text,
                n.nspname::text || chr(31) || c.relname::text, c.oid::text, NULL
           FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
           JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
          WHERE NOT c.relispartition AND c.relkind = 'r' AND ",
        user_schemas!(),
        " ORDER BY 1, 2"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (ancestor, table, oid, constraint) in descendants {
        rules
            .descendants
            .entry(qualified(&ancestor))
            .or_default()
            .push(Descendant {
                table: qualified(&table),
                oid,
                constraint,
            });
    }
    Ok(rules)
}
