//! Roles that bypass row-level security and hold rights on tenant tables.
//!
//! A SUPERUSER or BYPASSRLS role ignores every policy, FORCE included. Some
//! are meant to (Supabase's `service_role`, a backup role): the spec declares
//! them under `bypass_roles:` with the reason, and every finding that exists
//! only because of such a role shows as accepted with that reason. An
//! undeclared one is an error.
//!
//! Roles are cluster-wide, so a role counts only when this database's grants
//! name it (or a role it inherits): a grant on a tenant table is what ties a
//! bypassing role to this database's tenants.

use std::collections::{BTreeMap, BTreeSet};

use super::Check;
use crate::audit::{CheckInfo, Context, Finding, Severity};
use crate::catalog::Posture;
use crate::quote::ident;
use crate::spec::Spec;

pub const UNDECLARED: Check = Check {
    info: CheckInfo {
        id: "BYPASS_ROLE_UNDECLARED",
        severity: Severity::Error,
        title: "A role that bypasses RLS holds privileges on tenant tables and is not declared",
        why: "SUPERUSER and BYPASSRLS skip every policy, FORCE ROW LEVEL SECURITY included: whoever logs in as this role, or can SET ROLE to it, reads and writes every tenant's rows with the privileges it holds. That may be intended (a backend service role, a backup role), but then the spec should say so and why.",
        fix: "ALTER ROLE <role> NOBYPASSRLS; (as a superuser) or, when it is intended, declare it: `bypass_roles: [{role: <role>, reason: …}]`",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for (role, attributes) in &ctx.posture.role_attributes {
            if !(attributes.superuser || attributes.bypass_rls) || ctx.runtime_roles.contains(role)
            {
                continue;
            }
            let Some(entry) = way_in(ctx, role, attributes.login) else {
                continue;
            };
            let held = held_on_tenant_tables(ctx, role);
            if held.is_empty() {
                continue;
            }
            let attribute = if attributes.superuser {
                "is a superuser"
            } else {
                "has BYPASSRLS"
            };
            let rights: Vec<String> = held
                .iter()
                .map(|(table, privileges)| format!("{} on {table}", privileges.join(", ")))
                .collect();
            out.push(UNDECLARED.info.finding(
                format!("role {role}"),
                format!(
                    "role {role} {attribute}, {entry}, and holds {}: every tenant's rows, past every policy",
                    rights.join("; ")
                ),
                format!(
                    "ALTER ROLE {} NOBYPASSRLS; or, when it is intended, declare `bypass_roles: [{{role: {role}, reason: …}}]`",
                    ident(role)
                ),
            ));
        }
        out
    },
};

/// How a session comes to act as `role` with its attributes: it logs in
/// itself, or a LOGIN role may `SET ROLE` to it (attributes are never inherited).
fn way_in(ctx: &Context, role: &str, login: bool) -> Option<String> {
    if login {
        return Some("may log in".to_string());
    }
    ctx.posture
        .role_attributes
        .iter()
        .filter(|(other, a)| a.login && other.as_str() != role)
        .find(|(other, _)| ctx.can_set_role(other).contains(role))
        .map(|(other, _)| format!("LOGIN role {other} can SET ROLE {role}"))
}

/// The privileges `role` holds on each tenant table by a grant to it or to
/// a role it inherits (PUBLIC left out: it ties no role to this database).
/// Tables it owns, or can act as the owner of, are left out: an owner is
/// meant to hold everything.
fn held_on_tenant_tables(ctx: &Context, role: &str) -> BTreeMap<String, Vec<&'static str>> {
    let inherited = ctx.posture.inherits(role);
    let reach = ctx.reach(role);
    let mut out = BTreeMap::new();
    for (table, _) in ctx.tenant_tables() {
        if reach.contains(&table.owner) {
            continue;
        }
        let columns = ctx.posture.column_grants.get(&table.name);
        let privileges: BTreeSet<_> = table
            .grants
            .iter()
            .chain(columns.into_iter().flatten())
            .filter(|(grantee, _)| inherited.contains(*grantee))
            .flat_map(|(_, privileges)| privileges.iter().copied())
            .collect();
        if !privileges.is_empty() {
            out.insert(
                table.name.to_string(),
                privileges.into_iter().map(|p| p.keyword()).collect(),
            );
        }
    }
    out
}

/// A declared bypass role that a runtime or `no_tenant_access` role can act
/// as (by SET ROLE, or by inheriting its grants): never accepted.
pub const REACHED: CheckInfo = CheckInfo {
    id: "BYPASS_ROLE_REACHED_BY_APPLICATION",
    severity: Severity::Error,
    title: "A role the application uses, or one that must reach no tenant, can act as a declared bypass role",
    why: "A declared bypass role is accepted because only trusted code connects as it. A runtime or no_tenant_access role that is a member of it can SET ROLE to it and skip every policy, or inherits its grants (TRUNCATE on every tenant table), so nothing that role causes is accepted while the membership stands.",
    fix: "REVOKE <bypass role> FROM <role>;",
};

/// The findings this module adds beside its check, for `explain`.
pub const INFOS: &[CheckInfo] = &[REACHED];

/// Marks as accepted every finding that exists only because of a declared
/// bypass role: run again with that role taken out of the role graph (no
/// one can become it or inherit from it), a finding that is gone was its
/// alone. Declared backup and maintenance roles are bypass roles on record
/// too. Nothing is accepted for a bypass role a runtime or
/// `no_tenant_access` role can act as: that role has no isolation at all,
/// which [`REACHED`] says; and findings about the runtime roles are never
/// accepted this way.
pub fn accept_declared(ctx: &Context, spec: &Spec, findings: &mut Vec<Finding>) {
    let declared = spec
        .bypass_roles
        .iter()
        .map(|b| (&b.role, format!("bypass role {}: {}", b.role, b.reason)))
        .chain(
            spec.backup_roles
                .iter()
                .map(|b| (&b.role, format!("backup role {}: {}", b.role, b.reason))),
        )
        .chain(spec.maintenance.iter().map(|m| {
            (
                &m.role,
                format!("maintenance role {}: {}", m.role, m.reason),
            )
        }));
    for (role, reason) in declared {
        if !ctx.bypasses(role) {
            continue;
        }
        let reachers: Vec<&String> = ctx
            .runtime_roles
            .iter()
            .chain(ctx.no_access_roles.iter())
            .filter(|r| r.as_str() != role.as_str() && ctx.reach(r).contains(role.as_str()))
            .collect();
        if !reachers.is_empty() {
            for reacher in reachers {
                let kind = if ctx.runtime_roles.contains(reacher) {
                    "runtime role"
                } else {
                    "no_tenant_access role"
                };
                // The membership to revoke is the reacher's own first step
                // towards the bypass role (it may be a member of a member).
                let first = ctx
                    .posture
                    .memberships
                    .get(reacher.as_str())
                    .into_iter()
                    .flat_map(|granted| granted.keys())
                    .find(|m| *m == role || ctx.reach(m).contains(role.as_str()))
                    .cloned()
                    .unwrap_or_else(|| role.clone());
                let through = if &first == role {
                    String::new()
                } else {
                    format!(" through {first}")
                };
                findings.push(REACHED.finding(
                    format!("role {reacher}"),
                    format!(
                        "{kind} {reacher} can act as {role}{through}, declared under bypass_roles: ({reason}); it skips every policy through it, so no finding about {role} is accepted"
                    ),
                    format!("REVOKE {} FROM {};", ident(&first), ident(reacher)),
                ));
            }
            continue;
        }
        let posture = without_role(ctx.posture, role);
        let keep = |name: &String| name != role;
        let reduced = Context {
            snapshot: ctx.snapshot,
            posture: &posture,
            runtime_roles: ctx
                .runtime_roles
                .iter()
                .filter(|r| keep(r))
                .cloned()
                .collect(),
            no_access_roles: ctx
                .no_access_roles
                .iter()
                .filter(|r| keep(r))
                .cloned()
                .collect(),
            reaching_roles: ctx
                .reaching_roles
                .keys()
                .filter(|r| keep(r))
                .map(|r| (r.clone(), posture.paths(r)))
                .collect(),
            tenant_tables: ctx.tenant_tables.clone(),
            tenant_column: ctx.tenant_column.clone(),
            context_function: ctx.context_function.clone(),
            tenant_settings: ctx.tenant_settings.clone(),
            expressions: Default::default(),
            today: ctx.today,
        };
        // Only the checks with an open finding can have one to accept.
        let open: BTreeSet<&str> = findings
            .iter()
            .filter(|f| f.accepted.is_none())
            .map(|f| f.id)
            .collect();
        let remaining: BTreeSet<(&str, String)> = super::ALL
            .iter()
            .filter(|check| open.contains(check.info.id))
            .flat_map(|check| (check.run)(&reduced))
            .map(|f| (f.id, f.object))
            .collect();
        for finding in findings.iter_mut() {
            if finding.accepted.is_none()
                && !finding.id.starts_with("RUNTIME_")
                && super::ALL.iter().any(|c| c.info.id == finding.id)
                && !remaining.contains(&(finding.id, finding.object.clone()))
            {
                finding.accepted = Some(reason.clone());
            }
        }
    }
}

/// The posture with `role` out of the role graph: no membership in it or
/// of it, and no attributes (so no check looks at it as a login).
fn without_role(posture: &Posture, role: &str) -> Posture {
    let mut out = posture.clone();
    out.memberships.remove(role);
    for granted in out.memberships.values_mut() {
        granted.remove(role);
    }
    out.role_attributes.remove(role);
    out
}
