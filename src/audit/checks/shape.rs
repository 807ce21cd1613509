//! Schema shapes and grants that leak across tenants without reading a row.

use super::Check;
use crate::audit::{CheckInfo, Context, Holding, Severity};
use crate::catalog::UniqueKey;
use crate::model::{Privilege, Table};
use crate::quote::{QualifiedName, ident};

pub const UNIQUE_NOT_SCOPED: Check = Check {
    info: CheckInfo {
        id: "UNIQUE_NOT_SCOPED_BY_TENANT",
        severity: Severity::Warning,
        title: "A unique constraint on a tenant table does not include the tenant column",
        why: "Uniqueness is checked across all rows, whatever the policies: inserting a value another tenant already uses fails (or takes the ON CONFLICT branch), which tells the runtime role that value exists (an existence oracle, e.g. for e-mail addresses). Reported only where the runtime role can probe it, and the finding says how: INSERT (… ON CONFLICT) or UPDATE on the table, REFERENCES on it, or a foreign key to the key from a table it can write.",
        fix: "Make the key (tenant_id, …): ALTER TABLE … ADD UNIQUE (tenant_id, col), then drop the old one.",
    },
    run: |ctx| {
        ctx.posture
            .unique_keys
            .iter()
            .filter_map(|k| Some((k, ctx.tenant_tables.get(&k.table)?, ctx.table(&k.table)?)))
            .filter(|(k, column, _)| !k.columns.contains(column))
            // A key whose single column takes an unguessable default cannot be probed.
            .filter(|(k, _, _)| !k.random_default)
            .filter_map(|(k, column, table)| {
                let probes = unique_probes(ctx, k, table);
                (!probes.is_empty()).then(|| {
                    UNIQUE_NOT_SCOPED.info.finding(
                        format!("constraint {} on {}", k.name, k.table),
                        format!(
                            "unique ({}) without {column}: the runtime role learns whether another tenant uses a value through {}",
                            k.columns.join(", "),
                            probes.join(", ")
                        ),
                        format!(
                            "ALTER TABLE {} ADD UNIQUE ({}, {});",
                            k.table.quoted(),
                            ident(column),
                            k.columns
                                .iter()
                                .map(|c| ident(c))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .collect()
    },
};

/// How the runtime role can test a unique key for a value: by writing the
/// table, by REFERENCES on it, or through a foreign key to the key from a
/// table it writes.
fn unique_probes(ctx: &Context, key: &UniqueKey, table: &Table) -> Vec<String> {
    let privileges = ctx.runtime_privileges(table);
    let mut out = Vec::new();
    if privileges.contains(&Privilege::Insert) {
        out.push(format!("INSERT (… ON CONFLICT) on {}", table.name));
    }
    if privileges.contains(&Privilege::Update) {
        out.push(format!("UPDATE of {}", table.name));
    }
    if privileges.contains(&Privilege::References) {
        out.push(format!(
            "REFERENCES on {} (a foreign key of its own)",
            table.name
        ));
    }
    for fk in ctx
        .posture
        .foreign_keys
        .iter()
        .filter(|fk| fk.references == key.table && fk.referenced_columns == key.columns)
    {
        let writes = ctx.table(&fk.table).is_some_and(|t| {
            let p = ctx.runtime_privileges(t);
            p.contains(&Privilege::Insert) || p.contains(&Privilege::Update)
        });
        if writes {
            out.push(format!("foreign key {} from {}", fk.name, fk.table));
        }
    }
    out
}

pub const FOREIGN_KEY_NOT_SCOPED: Check = Check {
    info: CheckInfo {
        id: "FOREIGN_KEY_NOT_SCOPED_BY_TENANT",
        severity: Severity::Warning,
        title: "A foreign key between tenant tables does not include the tenant column",
        why: "Referential checks bypass RLS: a row may reference another tenant's row, and whether an insert fails tells the runtime role which ids exist in other tenants. Reported only where the runtime role can INSERT or UPDATE the referencing table, the finding says which.",
        fix: "Reference (tenant_id, id): FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id).",
    },
    run: |ctx| {
        ctx.posture
            .foreign_keys
            .iter()
            .filter(|fk| ctx.tenant_tables.contains_key(&fk.references))
            .filter_map(|fk| Some((fk, ctx.tenant_tables.get(&fk.table)?, ctx.table(&fk.table)?)))
            .filter(|(fk, column, _)| !fk.columns.contains(column))
            .filter_map(|(fk, column, table)| {
                let privileges = ctx.runtime_privileges(table);
                let writes: Vec<&str> = [Privilege::Insert, Privilege::Update]
                    .into_iter()
                    .filter(|p| privileges.contains(p))
                    .map(|p| p.keyword())
                    .collect();
                (!writes.is_empty()).then(|| {
                    FOREIGN_KEY_NOT_SCOPED.info.finding(
                        format!("constraint {} on {}", fk.name, fk.table),
                        format!(
                            "({}) references {} without {column}, and the runtime role may {} {}: whether a row naming another tenant's id is accepted tells it the id exists",
                            fk.columns.join(", "),
                            fk.references,
                            writes.join(" or "),
                            fk.table
                        ),
                        format!(
                            "FOREIGN KEY ({}, {}) REFERENCES {} ({}, …)",
                            ident(column),
                            fk.columns
                                .iter()
                                .map(|c| ident(c))
                                .collect::<Vec<_>>()
                                .join(", "),
                            fk.references.quoted(),
                            ident(column)
                        ),
                    )
                })
            })
            .collect()
    },
};

/// Who holds each of `privileges` on each tenant table: (table, privilege,
/// holding), among every role that reaches rows as itself (`Context::holders`).
fn granted(ctx: &Context, privileges: &[Privilege]) -> Vec<(QualifiedName, Privilege, Holding)> {
    let mut out = Vec::new();
    for (t, _) in ctx.tenant_tables() {
        for p in privileges {
            for holding in ctx.holders(t, *p) {
                out.push((t.name.clone(), *p, holding));
            }
        }
    }
    out
}

pub const TRUNCATE_GRANTED: Check = Check {
    info: CheckInfo {
        id: "TRUNCATE_GRANTED",
        severity: Severity::Error,
        title: "A role that reaches tenant rows may TRUNCATE a tenant table",
        why: "TRUNCATE is not subject to row-level security: one statement deletes every tenant's rows. Checked for every role that reaches rows as itself: the runtime roles, every LOGIN role that is neither superuser nor BYPASSRLS, PUBLIC, and the spec's `no_tenant_access` roles (Supabase's `anon`); roles that own the table (or can become its owner) are left out. When the privilege comes through a membership, the finding names it and the fix revokes the membership.",
        fix: "REVOKE TRUNCATE ON <table> FROM <role>; or, through a membership, REVOKE <group> FROM <role>;",
    },
    run: |ctx| {
        granted(ctx, &[Privilege::Truncate])
            .into_iter()
            .map(|(table, p, holding)| {
                TRUNCATE_GRANTED.info.finding(
                    format!("table {table}"),
                    holding.describe(p.keyword()),
                    holding.fix(p.keyword(), &table),
                )
            })
            .collect()
    },
};

pub const EXCESS_PRIVILEGE: Check = Check {
    info: CheckInfo {
        id: "EXCESS_TABLE_PRIVILEGE",
        severity: Severity::Error,
        title: "A role that reaches tenant rows holds TRIGGER, REFERENCES or MAINTAIN on a tenant table",
        why: "TRIGGER lets it attach code that sees every other session's writes, every tenant's new rows included, and copy them where it reads them: an error. REFERENCES lets it create foreign keys that probe for other tenants' keys; MAINTAIN (PostgreSQL 17+) lets it LOCK TABLE, VACUUM FULL, CLUSTER or REINDEX the table, holding locks that stop every tenant's queries: warnings. Checked for the same roles as TRUNCATE_GRANTED. The application needs none of them.",
        fix: "REVOKE TRIGGER, REFERENCES ON <table> FROM <role>; (on PostgreSQL 17+ also MAINTAIN); through a membership, REVOKE <group> FROM <role>;",
    },
    run: |ctx| {
        granted(
            ctx,
            &[
                Privilege::Trigger,
                Privilege::References,
                Privilege::Maintain,
            ],
        )
        .into_iter()
        .map(|(table, p, holding)| {
            let mut finding = EXCESS_PRIVILEGE.info.finding(
                format!("table {table}"),
                holding.describe(p.keyword()),
                holding.fix(p.keyword(), &table),
            );
            if p != Privilege::Trigger {
                finding.severity = Severity::Warning;
            }
            finding
        })
        .collect()
    },
};

pub const DEFAULT_PRIVILEGES_TO_PUBLIC: Check = Check {
    info: CheckInfo {
        id: "DEFAULT_PRIVILEGES_TO_PUBLIC",
        severity: Severity::Warning,
        title: "Default privileges hand future tables to PUBLIC",
        why: "Every table created later, before anyone declares it or enables RLS, is readable or writable by every role, the runtime role included.",
        fix: "ALTER DEFAULT PRIVILEGES FOR ROLE <owner> REVOKE ALL ON TABLES FROM PUBLIC;",
    },
    run: |ctx| {
        ctx.posture
            .default_privileges
            .iter()
            .filter(|(_, _, grantee, _)| grantee == "PUBLIC")
            .map(|(owner, schema, _, privilege)| {
                let scope = schema.as_ref().map(|s| format!(" in schema {s}")).unwrap_or_default();
                DEFAULT_PRIVILEGES_TO_PUBLIC.info.finding(
                    format!("default privileges of {owner}{scope}"),
                    format!("future tables grant {privilege} to PUBLIC"),
                    format!("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE {privilege} ON TABLES FROM PUBLIC;", ident(owner)),
                )
            })
            .collect()
    },
};
