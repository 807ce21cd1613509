//! The live side of `grants:`: which declared objects exist, and the direct
//! grants the declared roles hold on them. Names and argument types are
//! bound parameters; the server resolves argument types (`to_regtype`), so
//! `int4` and `integer` find the same function. One query per kind of object,
//! and none when the spec declares no grant.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use crate::grants::{GrantKind, GrantTarget, ObjectGrants, ObjectPrivilege};
use crate::quote::QualifiedName;

/// Separates a function's argument types in one text parameter.
const SEPARATOR: &str = "\u{1f}";

/// One row per (object, grant): the object's position among the declared
/// ones (from 1), whether it exists, its owner, its argument types
/// (functions), and a grantee with one privilege, or NULLs.
type Row = (
    i64,
    bool,
    Option<String>,
    Vec<String>,
    Option<String>,
    Option<String>,
);

/// The declared objects that exist, keyed as the spec names them, with the
/// privileges `roles` hold on them by a grant of their own (an owner's
/// implicit rights are not grants and are left out).
pub async fn read_object_grants(
    conn: &mut PgConnection,
    targets: &[&GrantTarget],
    roles: &BTreeSet<String>,
) -> Result<BTreeMap<GrantTarget, ObjectGrants>, sqlx::Error> {
    let roles: Vec<String> = roles.iter().cloned().collect();
    let mut rows: Vec<(GrantTarget, Row)> = Vec::new();

    let relations: Vec<&GrantTarget> = targets
        .iter()
        .copied()
        .filter(|t| matches!(t.kind, GrantKind::Table | GrantKind::Sequence))
        .collect();
    if !relations.is_empty() {
        let kinds: Vec<&str> = relations.iter().map(|t| t.kind.name()).collect();
        let schemas: Vec<&str> = relations.iter().map(|t| t.name.schema.as_str()).collect();
        let names: Vec<&str> = relations.iter().map(|t| t.name.name.as_str()).collect();
        let found: Vec<Row> = sqlx::query_as(
            "SELECT d.i, c.oid IS NOT NULL, pg_catalog.pg_get_userbyid(c.relowner)::text,
                    ARRAY[]::text[],
                    a.grantee, a.privilege
               FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS d(kind, schema, name, i)
               LEFT JOIN LATERAL (
                    SELECT c.oid, c.relacl, c.relowner
                      FROM pg_catalog.pg_class c
                      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = d.schema AND c.relname = d.name
                       AND CASE d.kind WHEN 'sequence' THEN c.relkind = 'S'
                                       ELSE c.relkind IN ('r', 'p', 'v', 'm', 'f') END) c ON true
               LEFT JOIN LATERAL (
                    SELECT pg_catalog.pg_get_userbyid(e.grantee)::text AS grantee,
                           e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END AS privilege
                      FROM pg_catalog.aclexplode(c.relacl) e
                     WHERE e.grantee <> 0 AND e.grantee <> c.relowner
                       AND pg_catalog.pg_get_userbyid(e.grantee) = ANY($4)) a ON true",
        )
        .bind(&kinds)
        .bind(&schemas)
        .bind(&names)
        .bind(&roles)
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(pair(&relations, found));
    }

    let functions: Vec<&GrantTarget> = targets
        .iter()
        .copied()
        .filter(|t| t.kind == GrantKind::Function)
        .collect();
    if !functions.is_empty() {
        let schemas: Vec<&str> = functions.iter().map(|t| t.name.schema.as_str()).collect();
        let names: Vec<&str> = functions.iter().map(|t| t.name.name.as_str()).collect();
        let arguments: Vec<String> = functions
            .iter()
            .map(|t| t.arguments.join(SEPARATOR))
            .collect();
        let found: Vec<Row> = sqlx::query_as(
            "SELECT d.i, p.oid IS NOT NULL, pg_catalog.pg_get_userbyid(p.proowner)::text,
                    COALESCE(ARRAY(SELECT tn.nspname::text || $4 || t.typname::text
                                     FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(type, i)
                                     JOIN pg_catalog.pg_type t ON t.oid = u.type
                                     JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
                                    ORDER BY u.i), ARRAY[]::text[]),
                    a.grantee, a.privilege
               FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS d(schema, name, arguments, i)
               LEFT JOIN LATERAL (
                    SELECT p.oid, p.proargtypes, p.proacl, p.proowner
                      FROM pg_catalog.pg_proc p
                      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = d.schema AND p.proname = d.name
                       -- An oidvector's array counts from 0: unnest it to compare.
                       AND ARRAY(SELECT unnest(p.proargtypes::oid[])) = ARRAY(
                            SELECT pg_catalog.to_regtype(x.type)::oid
                              FROM unnest(pg_catalog.string_to_array(NULLIF(d.arguments, ''), $4))
                                   WITH ORDINALITY AS x(type, i)
                             ORDER BY x.i)) p ON true
               LEFT JOIN LATERAL (
                    SELECT pg_catalog.pg_get_userbyid(e.grantee)::text AS grantee,
                           e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END AS privilege
                      FROM pg_catalog.aclexplode(p.proacl) e
                     WHERE e.grantee <> 0 AND e.grantee <> p.proowner
                       AND pg_catalog.pg_get_userbyid(e.grantee) = ANY($5)) a ON true",
        )
        .bind(&schemas)
        .bind(&names)
        .bind(&arguments)
        .bind(SEPARATOR)
        .bind(&roles)
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(pair(&functions, found));
    }

    let schemas: Vec<&GrantTarget> = targets
        .iter()
        .copied()
        .filter(|t| t.kind == GrantKind::Schema)
        .collect();
    if !schemas.is_empty() {
        let names: Vec<&str> = schemas.iter().map(|t| t.name.name.as_str()).collect();
        let found: Vec<Row> = sqlx::query_as(
            "SELECT d.i, n.oid IS NOT NULL, pg_catalog.pg_get_userbyid(n.nspowner)::text,
                    ARRAY[]::text[],
                    a.grantee, a.privilege
               FROM unnest($1::text[]) WITH ORDINALITY AS d(name, i)
               LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = d.name
               LEFT JOIN LATERAL (
                    SELECT pg_catalog.pg_get_userbyid(e.grantee)::text AS grantee,
                           e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END AS privilege
                      FROM pg_catalog.aclexplode(n.nspacl) e
                     WHERE e.grantee <> 0 AND e.grantee <> n.nspowner
                       AND pg_catalog.pg_get_userbyid(e.grantee) = ANY($2)) a ON true",
        )
        .bind(&names)
        .bind(&roles)
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(pair(&schemas, found));
    }

    let mut out: BTreeMap<GrantTarget, ObjectGrants> = BTreeMap::new();
    for (target, (_, exists, owner, argument_types, grantee, privilege)) in rows {
        if !exists {
            continue;
        }
        let entry = out.entry(target).or_insert_with(|| ObjectGrants {
            argument_types: argument_types
                .iter()
                .map(|t| {
                    let (schema, name) = t.split_once(SEPARATOR).unwrap_or(("", t));
                    QualifiedName::new(schema, name)
                })
                .collect(),
            owner,
            privileges: BTreeMap::new(),
            grantable: BTreeMap::new(),
        });
        let Some((grantee, privilege)) = grantee.zip(privilege) else {
            continue;
        };
        // `*` marks a privilege held WITH GRANT OPTION.
        let (keyword, grantable) = match privilege.strip_suffix('*') {
            Some(keyword) => (keyword, true),
            None => (privilege.as_str(), false),
        };
        if let Some(privilege) = ObjectPrivilege::from_keyword(keyword) {
            if grantable {
                entry
                    .grantable
                    .entry(grantee.clone())
                    .or_default()
                    .insert(privilege);
            }
            entry
                .privileges
                .entry(grantee)
                .or_default()
                .insert(privilege);
        }
    }
    Ok(out)
}

/// Each row with the declared target it answers (by position).
fn pair(targets: &[&GrantTarget], rows: Vec<Row>) -> Vec<(GrantTarget, Row)> {
    rows.into_iter()
        .filter_map(|row| {
            let target = targets.get(usize::try_from(row.0).ok()?.checked_sub(1)?)?;
            Some(((*target).clone(), row))
        })
        .collect()
}
