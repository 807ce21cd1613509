//! The runtime role itself: who it is and what it can become.

use super::Check;
use crate::audit::{CheckInfo, Context, Finding, Severity};
use crate::catalog::Path;
use crate::quote::ident;

pub const SUPERUSER: Check = Check {
    info: CheckInfo {
        id: "RUNTIME_SUPERUSER",
        severity: Severity::Error,
        title: "The runtime role is a superuser",
        why: "Superusers are never subject to row-level security: every query the application makes sees and changes every tenant's rows.",
        fix: "ALTER ROLE <role> NOSUPERUSER; (as a superuser: rlsctl plan and apply refuse such a declared role rather than demote it)",
    },
    run: |ctx| {
        attribute(
            ctx,
            &SUPERUSER.info,
            |r| r.superuser,
            "is a superuser",
            "NOSUPERUSER",
        )
    },
};

pub const BYPASSRLS: Check = Check {
    info: CheckInfo {
        id: "RUNTIME_BYPASSRLS",
        severity: Severity::Error,
        title: "The runtime role has BYPASSRLS",
        why: "BYPASSRLS skips every policy, FORCE ROW LEVEL SECURITY included: tenant isolation does not exist for this role.",
        fix: "ALTER ROLE <role> NOBYPASSRLS;",
    },
    run: |ctx| {
        attribute(
            ctx,
            &BYPASSRLS.info,
            |r| r.bypass_rls,
            "has BYPASSRLS",
            "NOBYPASSRLS",
        )
    },
};

fn attribute(
    ctx: &Context,
    info: &CheckInfo,
    has: fn(&crate::model::Role) -> bool,
    what: &str,
    keyword: &str,
) -> Vec<Finding> {
    ctx.runtime_roles
        .iter()
        .filter_map(|name| ctx.snapshot.state.roles.get(name))
        .filter(|r| has(r))
        .map(|r| {
            info.finding(
                format!("role {}", r.name),
                format!("runtime role {} {what}", r.name),
                format!("ALTER ROLE {} {keyword};", ident(&r.name)),
            )
        })
        .collect()
}

pub const OWNS_TENANT_TABLE: Check = Check {
    info: CheckInfo {
        id: "RUNTIME_OWNS_TENANT_TABLE",
        severity: Severity::Error,
        title: "The runtime role owns a tenant table (or is a member of its owner)",
        why: "A table's owner bypasses its policies unless FORCE ROW LEVEL SECURITY is set, and can always turn RLS off, drop policies or disable FORCE: ownership is a way around isolation.",
        fix: "ALTER TABLE <table> OWNER TO <migration role>; let the application connect as a role that owns nothing. When ownership comes through a membership (the runtime role is a member of the owner), revoke the membership instead: REVOKE <owner> FROM <runtime role>;",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for role in &ctx.runtime_roles {
            let paths = ctx.paths(role);
            for (table, _) in ctx.tenant_tables() {
                if let Some(path) = paths.get(&table.owner) {
                    let how = match path {
                        Path::Itself => format!("runtime role {role} owns it"),
                        _ => format!(
                            "runtime role {}, which owns it",
                            path.describe(role, &table.owner)
                        ),
                    };
                    out.push(OWNS_TENANT_TABLE.info.finding(
                        format!("table {}", table.name),
                        format!(
                            "{how}{}",
                            if table.rls_forced {
                                ""
                            } else {
                                " and RLS is not forced: it reads every tenant's rows"
                            }
                        ),
                        match path {
                            // The membership is the way in: the owner may be right.
                            Path::Inherits => {
                                format!("REVOKE {} FROM {};", ident(&table.owner), ident(role))
                            }
                            Path::SetRole(to) => {
                                format!("REVOKE {} FROM {};", ident(to), ident(role))
                            }
                            Path::Itself => format!(
                                "ALTER TABLE {} OWNER TO <a role the application does not use>;",
                                table.name.quoted()
                            ),
                        },
                    ));
                }
            }
        }
        out
    },
};

pub const CAN_BECOME_PRIVILEGED: Check = Check {
    info: CheckInfo {
        id: "RUNTIME_CAN_BECOME_PRIVILEGED",
        severity: Severity::Error,
        title: "The runtime role can SET ROLE to a role that bypasses RLS",
        why: "A membership that allows SET (every membership before PostgreSQL 16; `WITH SET TRUE` from 16) lets the role run `SET ROLE`: any superuser or BYPASSRLS role it can become is one statement away. SUPERUSER and BYPASSRLS are never inherited, so a membership with INHERIT but without SET does not confer them.",
        fix: "REVOKE <privileged role> FROM <runtime role>; (on PostgreSQL 16+ at least REVOKE SET OPTION FOR <privileged role> FROM <runtime role>;)",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for role in &ctx.runtime_roles {
            for reached in ctx.can_set_role(role) {
                if &reached != role && ctx.bypasses(&reached) {
                    let path = Path::SetRole(reached.clone());
                    out.push(CAN_BECOME_PRIVILEGED.info.finding(
                        format!("role {role}"),
                        format!(
                            "{}, which is superuser or BYPASSRLS",
                            path.describe(role, &reached)
                        ),
                        format!("REVOKE {} FROM {};", ident(&reached), ident(role)),
                    ));
                }
            }
        }
        out
    },
};
