//! Column details `verify` needs to build rows that a table accepts: which
//! columns must be given a value, which must not (generated, identity ALWAYS),
//! and what kind of value each type takes. One query for every table.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::qualified;
use crate::quote::QualifiedName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The type as `format_type` prints it, domains resolved to their base type.
    pub base_type: String,
    /// `pg_type.typcategory` of the base type: S string, N numeric, B boolean,
    /// D date/time, T interval, A array, E enum, U user-defined (uuid, json…).
    pub category: char,
    pub not_null: bool,
    /// A default or an identity: the server fills it when an INSERT omits it.
    pub has_default: bool,
    /// Computed by the server: a value cannot be given.
    pub generated: bool,
    /// `GENERATED ALWAYS AS IDENTITY`: a value cannot be given either.
    pub identity_always: bool,
    /// An enum's first label: a value the type accepts.
    pub first_label: Option<String>,
}

impl Column {
    /// Whether an INSERT may name this column.
    pub fn writable(&self) -> bool {
        !self.generated && !self.identity_always
    }
}

type ColumnRow = (
    String,
    String,
    String,
    String,
    bool,
    bool,
    bool,
    bool,
    Option<String>,
);

/// Every user table's columns in attribute order.
pub async fn read_columns(
    conn: &mut PgConnection,
) -> Result<BTreeMap<QualifiedName, Vec<Column>>, sqlx::Error> {
    let rows: Vec<ColumnRow> = sqlx::query_as(concat!(
        "SELECT n.nspname::text || chr(31) || c.relname::text, a.attname::text,
                pg_catalog.format_type(b.oid, NULL), b.typcategory::text,
                a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> '', a.attidentity = 'a',
                (SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                  WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder LIMIT 1)
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
           JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ",
        user_schemas!(),
        " ORDER BY 1, a.attnum"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut tables: BTreeMap<QualifiedName, Vec<Column>> = BTreeMap::new();
    for (
        table,
        name,
        base_type,
        category,
        not_null,
        has_default,
        generated,
        identity_always,
        first_label,
    ) in rows
    {
        tables.entry(qualified(&table)).or_default().push(Column {
            name,
            base_type,
            category: category.chars().next().unwrap_or('X'),
            not_null,
            has_default,
            generated,
            identity_always,
            first_label,
        });
    }
    Ok(tables)
}
