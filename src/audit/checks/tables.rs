//! Tenant tables: RLS flags, policies present, the tenant column and its index.

use super::Check;
use crate::audit::expression_tree::admits_null_tenant;
use crate::audit::{CheckInfo, Context, Severity};
use crate::model::{Privilege, Table};
use crate::quote::{QualifiedName, ident};
use crate::spec::Command;

pub const WITHOUT_RLS: Check = Check {
    info: CheckInfo {
        id: "TABLE_WITHOUT_RLS",
        severity: Severity::Error,
        title: "A table with the tenant column has row-level security off",
        why: "With RLS off, policies are ignored: anyone granted the table reads and writes every tenant's rows. A table nobody declared (a new one) is the usual case. Reported as info, not error, while no runtime role holds any privilege on the table (no table or column grant to it, to a role it is a member of or to PUBLIC, and it does not own it): nothing reaches it through the application yet, but the first GRANT will. Partitions and inheritance children of a tenant table are reported as CHILD_TABLE_WITHOUT_RLS instead.",
        fix: "Declare the table under `tables:` and run rlsctl apply (ENABLE and FORCE ROW LEVEL SECURITY plus the tenant policy).",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .filter(|(t, _)| !t.rls_enabled)
            .filter(|(t, _)| !is_child_of_tenant_table(ctx, &t.name))
            .map(|(t, _)| {
                let policies = if t.policies.is_empty() {
                    String::new()
                } else {
                    format!(" (its {} policies do nothing)", t.policies.len())
                };
                let unreachable = ctx.runtime_privileges(t).is_empty();
                let reach = if unreachable {
                    "; no runtime role holds a privilege on it yet"
                } else {
                    ""
                };
                let mut finding = WITHOUT_RLS.info.finding(
                    format!("table {}", t.name),
                    format!("row-level security is disabled{policies}{reach}"),
                    format!("ALTER TABLE {0} ENABLE ROW LEVEL SECURITY; ALTER TABLE {0} FORCE ROW LEVEL SECURITY;", t.name.quoted()),
                );
                if unreachable {
                    finding.severity = Severity::Info;
                }
                finding
            })
            .collect()
    },
};

/// A partition or inheritance child of a tenant table: CHILD_WITHOUT_RLS's.
fn is_child_of_tenant_table(ctx: &Context, table: &QualifiedName) -> bool {
    ctx.posture
        .children
        .iter()
        .any(|(child, parent)| child == table && ctx.tenant_tables.contains_key(parent))
}

pub const NOT_FORCED: Check = Check {
    info: CheckInfo {
        id: "TABLE_RLS_NOT_FORCED",
        severity: Severity::Warning,
        title: "Row-level security is enabled but not forced",
        why: "Without FORCE the table's owner (and members of the owner role) bypasses every policy: a job or service connecting as the owner sees all tenants.",
        fix: "ALTER TABLE <table> FORCE ROW LEVEL SECURITY;",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .filter(|(t, _)| t.rls_enabled && !t.rls_forced)
            .map(|(t, _)| {
                NOT_FORCED.info.finding(
                    format!("table {}", t.name),
                    format!(
                        "RLS is enabled but not forced: its owner {} bypasses the policies",
                        t.owner
                    ),
                    format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", t.name.quoted()),
                )
            })
            .collect()
    },
};

pub const RLS_WITHOUT_POLICY: Check = Check {
    info: CheckInfo {
        id: "TABLE_RLS_WITHOUT_POLICY",
        severity: Severity::Info,
        title: "Row-level security is on but the table has no policy",
        why: "No policy means no row is visible and every write fails for roles subject to RLS: safe, but usually a table someone forgot to finish.",
        fix: "Declare the table in the spec so rlsctl creates its tenant policy.",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .filter(|(t, _)| t.rls_enabled && t.policies.is_empty())
            .map(|(t, _)| {
                RLS_WITHOUT_POLICY.info.finding(
                    format!("table {}", t.name),
                    "RLS is enabled and no policy exists: everything is denied",
                    "add the table under `tables:` and run rlsctl apply",
                )
            })
            .collect()
    },
};

pub const NULLABLE_TENANT_COLUMN: Check = Check {
    info: CheckInfo {
        id: "TENANT_COLUMN_NULLABLE",
        severity: Severity::Error,
        title: "The tenant column allows NULL",
        why: "A row with no tenant belongs to nobody. Where a policy for the runtime role tests `tenant_id IS NULL` (shared rows), every tenant reads those rows, and where that policy also checks new rows, any tenant writes rows every other tenant reads: an error. Otherwise (warning) the tenant policy hides them from everyone, which is lost data today and a leak the day someone writes `OR tenant_id IS NULL`.",
        fix: "ALTER TABLE <table> ALTER COLUMN <column> SET NOT NULL; (rlsctl migrate-existing does it without a long lock); keep shared rows in their own table, readable by everyone and writable by none of the tenants.",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .filter(|(t, column)| t.columns.contains_key(*column) && !t.not_null.contains(*column))
            .map(|(t, column)| {
                let sharing = null_tenant_sharing(ctx, t, column);
                let mut finding = NULLABLE_TENANT_COLUMN.info.finding(
                    format!("table {}", t.name),
                    if sharing.is_empty() {
                        format!("column {column} is nullable")
                    } else {
                        format!(
                            "column {column} is nullable and rows with a NULL {column} are shared across tenants: {}",
                            sharing.join("; ")
                        )
                    },
                    format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL;",
                        t.name.quoted(),
                        ident(column)
                    ),
                );
                if sharing.is_empty() {
                    finding.severity = Severity::Warning;
                }
                finding
            })
            .collect()
    },
};

/// The runtime-facing permissive policies of `table` that admit rows whose
/// tenant is NULL, each saying whether for reading, writing or both.
fn null_tenant_sharing(ctx: &Context, table: &Table, column: &str) -> Vec<String> {
    let privileges = ctx.runtime_privileges(table);
    let writes = privileges.contains(&Privilege::Insert) || privileges.contains(&Privilege::Update);
    table
        .policies
        .values()
        .filter(|p| p.permissive && ctx.policy_applies_to_runtime(p))
        .filter_map(|p| {
            let reads_rows = matches!(
                p.command,
                Command::All | Command::Select | Command::Update | Command::Delete
            );
            let writes_rows = matches!(p.command, Command::All | Command::Insert | Command::Update);
            let admits = |e: Option<&crate::spec::Expression>| {
                e.is_some_and(|e| admits_null_tenant(e.as_str(), column))
            };
            let read = reads_rows && admits(p.using.as_ref());
            let write = writes && writes_rows && admits(p.with_check.as_ref().or(p.using.as_ref()));
            let what = match (read, write) {
                (true, true) => "every tenant reads and writes them",
                (true, false) => "every tenant reads them",
                (false, true) => "every tenant writes them",
                (false, false) => return None,
            };
            Some(format!("policy {} admits them ({what})", p.name))
        })
        .collect()
}

pub const TENANT_INDEX_MISSING: Check = Check {
    info: CheckInfo {
        id: "TENANT_INDEX_MISSING",
        severity: Severity::Warning,
        title: "No index leads with the tenant column",
        why: "Every query on the table filters on the tenant column through the policy; without an index whose first column is the tenant column each one scans the whole table.",
        fix: "CREATE INDEX CONCURRENTLY ON <table> (<tenant column>); (rlsctl apply creates it)",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .filter(|(t, column)| {
                !t.indexes
                    .iter()
                    .any(|i| i.valid && i.columns.first().map(String::as_str) == Some(*column))
            })
            .map(|(t, column)| {
                TENANT_INDEX_MISSING.info.finding(
                    format!("table {}", t.name),
                    format!("no valid index starts with {column}"),
                    format!(
                        "CREATE INDEX CONCURRENTLY ON {} ({});",
                        t.name.quoted(),
                        ident(column)
                    ),
                )
            })
            .collect()
    },
};

pub const CHILD_WITHOUT_RLS: Check = Check {
    info: CheckInfo {
        id: "CHILD_TABLE_WITHOUT_RLS",
        severity: Severity::Error,
        title: "A partition or inheritance child of a tenant table has row-level security off",
        why: "Querying the parent applies the parent's policies, but a child has its own RLS flags and policies: selecting from the partition directly skips the parent's tenant policy.",
        fix: "ALTER TABLE <child> ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; and give it the tenant policy (declare it in the spec), or REVOKE the runtime role's privileges on it.",
    },
    run: |ctx| {
        ctx.posture
            .children
            .iter()
            .filter(|(_, parent)| ctx.tenant_tables.contains_key(parent))
            .filter_map(|(child, parent)| Some((ctx.table(child)?, parent)))
            .filter(|(child, _)| !child.rls_enabled)
            .filter(|(child, _)| !ctx.runtime_privileges(child).is_empty())
            .map(|(child, parent)| {
                CHILD_WITHOUT_RLS.info.finding(
                    format!("table {}", child.name),
                    format!("a child of {parent} that the runtime role can query directly, with RLS off"),
                    format!("ALTER TABLE {0} ENABLE ROW LEVEL SECURITY; ALTER TABLE {0} FORCE ROW LEVEL SECURITY;", child.name.quoted()),
                )
            })
            .collect()
    },
};
