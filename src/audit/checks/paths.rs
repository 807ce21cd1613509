//! Objects that reach tenant rows with someone else's rights.

use super::Check;
use crate::audit::{CheckInfo, Context, Severity, function_body};
use crate::catalog::View;
use crate::model::Privilege;
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

/// The tenant tables a function body (as its owner runs it) reads or writes
/// past their policies; `None` when the body cannot be read (C, other
/// languages). Unqualified names resolve in the pinned search_path, or
/// `public` and the owner's own schema, the default path.
fn bypassed_by_body(
    ctx: &Context,
    owner: &str,
    language: &str,
    body: &str,
    pinned: Option<Vec<String>>,
) -> Option<Vec<String>> {
    let path = pinned.unwrap_or_else(|| vec![owner.to_string(), "public".to_string()]);
    let touched = function_body::tables_touched(language, body, &path, ctx.tenant_tables.keys())?;
    Some(
        touched
            .iter()
            .filter_map(|t| ctx.table(t))
            .filter(|t| ctx.reads_past_policies(owner, t))
            .map(|t| t.name.to_string())
            .collect(),
    )
}

pub const SECURITY_DEFINER_FUNCTION: Check = Check {
    info: CheckInfo {
        id: "SECURITY_DEFINER_EXECUTABLE",
        severity: Severity::Error,
        title: "The runtime role can execute a SECURITY DEFINER function whose owner bypasses RLS",
        why: "A SECURITY DEFINER function runs as its owner; EXECUTE is granted to PUBLIC by default. If the owner bypasses RLS, whatever tables the function touches are reachable without the tenant policy. An error when its body (SQL or PL/pgSQL, read with PostgreSQL's grammar) reads or writes a tenant table whose policies the owner passes: the runtime role reaches other tenants' rows through it. A warning when the body touches none, or cannot be read (C and other languages).",
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
                let bypassed =
                    bypassed_by_body(ctx, &f.owner, &f.language, &f.body, f.pinned_search_path());
                let reach = match &bypassed {
                    Some(tables) if !tables.is_empty() => format!(
                        "; its body reaches {} past the tenant policy",
                        tables.join(", ")
                    ),
                    Some(_) => "; its body touches no tenant table".to_string(),
                    None => format!("; its {} body cannot be read", f.language),
                };
                let mut finding = SECURITY_DEFINER_FUNCTION.info.finding(
                    format!("function {}({})", f.name, f.arguments),
                    format!(
                        "SECURITY DEFINER, owned by {}, executable by the runtime role{reach}",
                        f.owner
                    ),
                    format!("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC;", f.signature()),
                );
                if bypassed.is_none_or(|t| t.is_empty()) {
                    finding.severity = Severity::Warning;
                }
                finding
            })
            .collect()
    },
};

pub const TRIGGER_AS_OWNER: Check = Check {
    info: CheckInfo {
        id: "TRIGGER_RUNS_AS_OWNER",
        severity: Severity::Error,
        title: "A tenant table fires a SECURITY DEFINER trigger function",
        why: "The trigger runs as the function's owner for every write the runtime role makes: what it reads or writes elsewhere is not filtered by the caller's tenant. An error when its body reads or writes a tenant table whose policies the owner passes (it can copy other tenants' rows into the caller's reach, or change them); a warning when it touches none or its body cannot be read.",
        fix: "ALTER FUNCTION <trigger function>() SECURITY INVOKER; or check the tenant inside it.",
    },
    run: |ctx| {
        ctx.posture
            .triggers
            .iter()
            .filter(|t| t.security_definer && ctx.tenant_tables.contains_key(&t.table))
            .map(|t| {
                let bypassed = bypassed_by_body(ctx, &t.owner, &t.language, &t.body, None);
                let reach = match &bypassed {
                    Some(tables) if !tables.is_empty() => format!(
                        ", which as {} reaches {} past the tenant policy",
                        t.owner,
                        tables.join(", ")
                    ),
                    _ => String::new(),
                };
                let mut finding = TRIGGER_AS_OWNER.info.finding(
                    format!("trigger {} on {}", t.name, t.table),
                    format!("calls SECURITY DEFINER {}(){reach}", t.function),
                    format!("ALTER FUNCTION {}() SECURITY INVOKER;", t.function.quoted()),
                );
                if reach.is_empty() {
                    finding.severity = Severity::Warning;
                }
                finding
            })
            .collect()
    },
};

pub const RULE_ON_TENANT_TABLE: Check = Check {
    info: CheckInfo {
        id: "RULE_ON_TENANT_TABLE",
        severity: Severity::Error,
        title: "A rewrite rule on a tenant table",
        why: "Rule actions run with the rights of the table's owner, not the caller: a rule that copies or redirects rows can move them past the tenant policy. An error when the runtime role can run the statement the rule rewrites and the rule's actions touch a tenant table whose policies the owner passes (another tenant's rows are read or changed), or a table without RLS the runtime role can read (every tenant's rows land where it reads them); a warning otherwise.",
        fix: "DROP RULE <rule> ON <table>; use a trigger (SECURITY INVOKER) instead.",
    },
    run: |ctx| {
        ctx.posture
            .rules
            .iter()
            .filter(|r| ctx.tenant_tables.contains_key(&r.table))
            .filter_map(|r| Some((r, ctx.table(&r.table)?)))
            .map(|(rule, table)| {
                let fires = ctx
                    .runtime_privileges(table)
                    .iter()
                    .any(|p| p.keyword() == rule.event);
                let reached: Vec<String> = rule
                    .touches
                    .iter()
                    .filter_map(|t| ctx.table(t))
                    .filter(|t| {
                        let tenant = ctx.tenant_tables.contains_key(&t.name);
                        ctx.reads_past_policies(&table.owner, t)
                            && (tenant
                                || (!t.rls_enabled
                                    && ctx.runtime_privileges(t).contains(&Privilege::Select)))
                    })
                    .map(|t| t.name.to_string())
                    .collect();
                let mut finding = RULE_ON_TENANT_TABLE.info.finding(
                    format!("rule {} on {}", rule.name, rule.table),
                    if fires && !reached.is_empty() {
                        format!(
                            "its actions on {} run as the table owner {} for the runtime role's {}",
                            reached.join(", "),
                            table.owner,
                            rule.event
                        )
                    } else {
                        "its actions run as the table owner".to_string()
                    },
                    format!(
                        "DROP RULE {} ON {};",
                        ident(&rule.name),
                        rule.table.quoted()
                    ),
                );
                if !fires || reached.is_empty() {
                    finding.severity = Severity::Warning;
                }
                finding
            })
            .collect()
    },
};

pub const FOREIGN_TABLE: Check = Check {
    info: CheckInfo {
        id: "FOREIGN_TABLE_READABLE",
        severity: Severity::Error,
        title: "The runtime role can read a foreign table",
        why: "Foreign tables cannot have row-level security: the remote server's rights apply, not the tenant policy. An error when a user mapping of its server applies to the runtime role (for it, for a role it can SET ROLE to, or for PUBLIC): its queries reach the remote data with the mapping's credentials, typically a role that sees every tenant there. A warning while no mapping applies, so the read fails today.",
        fix: "REVOKE SELECT ON <foreign table> FROM <runtime role>; DROP USER MAPPING FOR PUBLIC SERVER <server>; map only roles that need it.",
    },
    run: |ctx| {
        let mapped_roles: std::collections::BTreeSet<String> = ctx
            .runtime_roles
            .iter()
            .flat_map(|r| ctx.can_set_role(r))
            .chain(["PUBLIC".to_string()])
            .collect();
        ctx.posture
            .foreign_tables
            .iter()
            .filter(|f| ctx.includes_runtime(&f.readers))
            .map(|f| {
                let mapped: Vec<&String> = f.mapped.intersection(&mapped_roles).collect();
                let mut finding = FOREIGN_TABLE.info.finding(
                    format!("foreign table {}", f.name),
                    if mapped.is_empty() {
                        "readable by the runtime role, without row-level security (no user mapping applies to it yet)".to_string()
                    } else {
                        format!(
                            "readable by the runtime role, without row-level security, through the user mapping for {}",
                            mapped.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    },
                    format!("REVOKE SELECT ON {} FROM <runtime role>;", f.name.quoted()),
                );
                if mapped.is_empty() {
                    finding.severity = Severity::Warning;
                }
                finding
            })
            .collect()
    },
};
