//! Unique and foreign keys of the user schemas, read in two steps: the
//! keys with their columns as attribute numbers, then the numbers named
//! from the columns the snapshot already read. Naming them in the query (a
//! probe of pg_attribute per key) was the costliest posture read at 10,000
//! tables, and the two steps let the first run on a second connection
//! while the snapshot is read.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::posture::{ForeignKey, UniqueKey};
use super::{ColumnsByNumber, qualified};
use crate::quote::QualifiedName;

type KeyRow = (
    i64,
    String,
    String,
    String,
    Vec<i16>,
    bool,
    Option<String>,
    Vec<i16>,
);

/// Keys as stored: columns by attribute number.
pub struct StoredKeys(Vec<KeyRow>);

/// One query. A key's default is never printed: whether it calls a
/// random-UUID function is read from its stored tree (pg_depend records no
/// calls of built-in functions).
pub async fn read(conn: &mut PgConnection) -> Result<StoredKeys, sqlx::Error> {
    let rows: Vec<KeyRow> = sqlx::query_as(concat!(
        "SELECT con.oid::int8, n.nspname::text || chr(31) || c.relname::text,
                con.conname::text, con.contype::text, con.conkey,
                con.contype <> 'f' AND pg_catalog.cardinality(con.conkey) = 1 AND EXISTS (
                     SELECT FROM pg_catalog.pg_attrdef ad, pg_catalog.pg_proc pr
                      WHERE ad.adrelid = con.conrelid AND ad.adnum = con.conkey[1]
                        AND pr.proname IN ('gen_random_uuid', 'uuid_generate_v4') AND pr.pronargs = 0
                        AND pg_catalog.strpos(ad.adbin::text, ':funcid ' || pr.oid || ' ') > 0),
                CASE WHEN con.contype = 'f' THEN rn.nspname::text || chr(31) || rc.relname::text END,
                CASE WHEN con.contype = 'f' THEN con.confkey ELSE '{}' END
           FROM pg_catalog.pg_constraint con
           JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
           LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
          WHERE con.contype IN ('p', 'u', 'f') AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok(StoredKeys(rows))
}

impl StoredKeys {
    /// Names each key's columns from `columns`; a table it does not hold
    /// (outside the user schemas, or created since it was read) is named by
    /// the server in one more query. A key dropped meanwhile is left out.
    pub async fn name(
        self,
        conn: &mut PgConnection,
        columns: &ColumnsByNumber,
    ) -> Result<(Vec<UniqueKey>, Vec<ForeignKey>), sqlx::Error> {
        let name = |table: &QualifiedName, numbers: &[i16]| -> Option<Vec<String>> {
            let by_number = columns.get(table)?;
            numbers
                .iter()
                .map(|n| by_number.get(n).map(|(column, _)| column.clone()))
                .collect()
        };
        let mut keys = Vec::with_capacity(self.0.len());
        let mut unnamed = Vec::new();
        for (oid, table, key_name, kind, conkey, random_default, references, confkey) in self.0 {
            let table = qualified(&table);
            let references = references.map(|r| qualified(&r));
            let names = name(&table, &conkey).zip(match &references {
                Some(r) => name(r, &confkey),
                None => Some(Vec::new()),
            });
            if names.is_none() {
                unnamed.push(oid);
            }
            keys.push((
                oid,
                table,
                key_name,
                kind,
                random_default,
                references,
                names,
            ));
        }
        let named_here: HashMap<i64, (Vec<String>, Vec<String>)> = if unnamed.is_empty() {
            HashMap::new()
        } else {
            let rows: Vec<(i64, Vec<String>, Vec<String>)> = sqlx::query_as(
                "SELECT con.oid::int8,
                        ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                                JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                               ORDER BY k.i),
                        ARRAY(SELECT a.attname::text FROM unnest(coalesce(con.confkey, '{}')) WITH ORDINALITY k(attnum, i)
                                JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                               ORDER BY k.i)
                   FROM pg_catalog.pg_constraint con WHERE con.oid = ANY ($1::int8[]::oid[])",
            )
            .bind(&unnamed)
            .fetch_all(&mut *conn)
            .await?;
            rows.into_iter().map(|(oid, c, r)| (oid, (c, r))).collect()
        };
        let (mut unique, mut foreign) = (Vec::new(), Vec::new());
        for (oid, table, name, kind, random_default, references, names) in keys {
            let Some((columns, referenced_columns)) =
                names.or_else(|| named_here.get(&oid).cloned())
            else {
                continue;
            };
            match (kind.as_str(), references) {
                ("f", Some(references)) => foreign.push(ForeignKey {
                    table,
                    name,
                    columns,
                    references,
                    referenced_columns,
                }),
                _ => unique.push(UniqueKey {
                    table,
                    name,
                    primary: kind == "p",
                    columns,
                    random_default,
                }),
            }
        }
        Ok((unique, foreign))
    }
}
