//! Objects that reach tenant rows with someone else's rights.

use super::Check;
use crate::audit::{CheckInfo, Context, Severity};
use crate::catalog::View;
use crate::quote::ident;

/// The tenant tables `view` reads whose policies its owner does not pass.
fn bypassed_tables(ctx: &Context, view: &View) -> Vec<String> {
    view.reads
        .iter()
        .filter(|t| ctx.tenant_tables.contains_key(*t))
        .filter_map(|t| ctx.table(t))
        .filter(|t| ctx.reads_past_policies(&view.owner, t))
        .map(|t| t.name.to_string())
        .collect()
}

pub const VIEW_BYPASSES_RLS: Check = Check {
    info: CheckInfo {
        id: "VIEW_BYPASSES_RLS",
        severity: Severity::Error,
        title: "A view reads tenant tables with its owner's rights",
        why: "A view without security_invoker runs as its owner. If the owner bypasses RLS (superuser, BYPASSRLS, or the tables' owner without FORCE), everyone who can select from the view sees every tenant's rows.",
        fix: "ALTER VIEW <view> SET (security_invoker = true); before PostgreSQL 15, which lacks security_invoker: make the view's owner a role that neither bypasses RLS nor owns the tables (ALTER VIEW <view> OWNER TO <such a role>), so the tables' policies apply to it.",
    },
    run: |ctx| {
        let invoker = ctx.snapshot.connecting.server_version_num >= 150000;
        ctx.posture
            .views
            .iter()
            .filter(|v| !v.materialized && !v.security_invoker)
            .filter(|v| ctx.runtime_roles.iter().any(|r| v.readable_by(&ctx.reach(r))))
            .filter_map(|v| {
                let tables = bypassed_tables(ctx, v);
                (!tables.is_empty()).then(|| {
                    VIEW_BYPASSES_RLS.info.finding(
                        format!("view {}", v.name),
                        format!("runs as {} (bypasses RLS on {}) and the runtime role can select from it", v.owner, tables.join(", ")),
                        if invoker {
                            format!("ALTER VIEW {} SET (security_invoker = true);", v.name.quoted())
                        } else {
                            format!(
                                "PostgreSQL before 15 has no security_invoker: ALTER VIEW {} OWNER TO <a role that neither bypasses RLS nor owns {}>, and grant that role SELECT on them, so their policies apply to the view",
                                v.name.quoted(),
                                tables.join(", ")
                            )
                        },
                    )
                })
            })
            .collect()
    },
};

pub const MATERIALIZED_VIEW: Check = Check {
    info: CheckInfo {
        id: "MATERIALIZED_VIEW_OF_TENANT_DATA",
        severity: Severity::Error,
        title: "A materialized view of tenant tables is readable by the runtime role",
        why: "A materialized view stores rows computed with its owner's rights and cannot have row-level security: reading it returns every tenant's rows.",
        fix: "REVOKE SELECT ON <materialized view> FROM <runtime role>; expose it through a security_invoker view with a tenant filter, or per-tenant tables.",
    },
    run: |ctx| {
        ctx.posture
            .views
            .iter()
            .filter(|v| v.materialized && ctx.includes_runtime(&v.readers))
            .filter(|v| v.reads.iter().any(|t| ctx.tenant_tables.contains_key(t)))
            .map(|v| {
                MATERIALIZED_VIEW.info.finding(
                    format!("materialized view {}", v.name),
                    "stores tenant rows without RLS and the runtime role can select from it",
                    format!("REVOKE SELECT ON {} FROM <runtime role>;", v.name.quoted()),
                )
            })
            .collect()
    },
};

pub const SECURITY_DEFINER_FUNCTION: Check = Check {
    info: CheckInfo {
        id: "SECURITY_DEFINER_EXECUTABLE",
        severity: Severity::Warning,
        title: "The runtime role can execute a SECURITY DEFINER function whose owner bypasses RLS",
        why: "A SECURITY DEFINER function runs as its owner; EXECUTE is granted to PUBLIC by default. If the owner bypasses RLS, whatever tables the function touches are reachable without the tenant policy.",
        fix: "REVOKE EXECUTE ON FUNCTION <function> FROM PUBLIC, <runtime role>; or make it SECURITY INVOKER.",
    },
    run: |ctx| {
        let owns_tenant_table = |owner: &str| {
            ctx.tenant_tables()
                .any(|(t, _)| t.owner == owner && !t.rls_forced)
        };
        ctx.posture
            .functions
            .iter()
            .filter(|f| f.security_definer && ctx.includes_runtime(&f.executors))
            .filter(|f| {
                ctx.reach(&f.owner)
                    .iter()
                    .any(|r| ctx.bypasses(r) || owns_tenant_table(r))
            })
            .map(|f| {
                SECURITY_DEFINER_FUNCTION.info.finding(
                    format!("function {}({})", f.name, f.arguments),
                    format!(
                        "SECURITY DEFINER, owned by {}, executable by the runtime role",
                        f.owner
                    ),
                    format!("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC;", f.signature()),
                )
            })
            .collect()
    },
};

pub const TRIGGER_AS_OWNER: Check = Check {
    info: CheckInfo {
        id: "TRIGGER_RUNS_AS_OWNER",
        severity: Severity::Warning,
        title: "A tenant table fires a SECURITY DEFINER trigger function",
        why: "The trigger runs as the function's owner for every write the runtime role makes: what it reads or writes elsewhere is not filtered by the caller's tenant.",
        fix: "ALTER FUNCTION <trigger function>() SECURITY INVOKER; or check the tenant inside it.",
    },
    run: |ctx| {
        ctx.posture
            .triggers
            .iter()
            .filter(|t| t.security_definer && ctx.tenant_tables.contains_key(&t.table))
            .map(|t| {
                TRIGGER_AS_OWNER.info.finding(
                    format!("trigger {} on {}", t.name, t.table),
                    format!("calls SECURITY DEFINER {}()", t.function),
                    format!("ALTER FUNCTION {}() SECURITY INVOKER;", t.function.quoted()),
                )
            })
            .collect()
    },
};

pub const RULE_ON_TENANT_TABLE: Check = Check {
    info: CheckInfo {
        id: "RULE_ON_TENANT_TABLE",
        severity: Severity::Warning,
        title: "A rewrite rule on a tenant table",
        why: "Rule actions run with the rights of the table's owner, not the caller: a rule that copies or redirects rows can move them past the tenant policy.",
        fix: "DROP RULE <rule> ON <table>; use a trigger (SECURITY INVOKER) instead.",
    },
    run: |ctx| {
        ctx.posture
            .rules
            .iter()
            .filter(|(t, _)| ctx.tenant_tables.contains_key(t))
            .map(|(t, rule)| {
                RULE_ON_TENANT_TABLE.info.finding(
                    format!("rule {rule} on {t}"),
                    "its actions run as the table owner",
                    format!("DROP RULE {} ON {};", ident(rule), t.quoted()),
                )
            })
            .collect()
    },
};

pub const FOREIGN_TABLE: Check = Check {
    info: CheckInfo {
        id: "FOREIGN_TABLE_READABLE",
        severity: Severity::Warning,
        title: "The runtime role can read a foreign table",
        why: "Foreign tables cannot have row-level security: the remote server's rights apply, not the tenant policy.",
        fix: "REVOKE SELECT ON <foreign table> FROM <runtime role>;",
    },
    run: |ctx| {
        ctx.posture
            .foreign_tables
            .iter()
            .filter(|(_, readers)| ctx.includes_runtime(readers))
            .map(|(name, _)| {
                FOREIGN_TABLE.info.finding(
                    format!("foreign table {name}"),
                    "readable by the runtime role, without row-level security",
                    format!("REVOKE SELECT ON {} FROM <runtime role>;", name.quoted()),
                )
            })
            .collect()
    },
};
