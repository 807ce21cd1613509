//! What a tenant policy depends on besides its own table (pg_depend): the
//! functions it calls and the tables it reads. Whoever can change them
//! decides what the policy admits.

use std::collections::BTreeSet;

use super::Check;
use crate::audit::{CheckInfo, Severity};
use crate::catalog::Path;
use crate::model::Privilege;
use crate::quote::ident;

pub const FUNCTION_WRITABLE: Check = Check {
    info: CheckInfo {
        id: "POLICY_FUNCTION_WRITABLE",
        severity: Severity::Error,
        title: "The runtime role can redefine a function a tenant policy calls",
        why: "A policy calls its functions by identity, and whoever owns one can CREATE OR REPLACE it: a runtime role that owns it (or is a member of its owner) can make it return true, or another tenant's id, and the policy admits every row. The context function itself is CONTEXT_FUNCTION_WRITABLE.",
        fix: "ALTER FUNCTION <function> OWNER TO <a role the application does not use>; or, when ownership comes through a membership, REVOKE <owner> FROM <runtime role>;",
    },
    run: |ctx| {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for ((table, policy), called) in &ctx.posture.policy_calls {
            if !ctx.tenant_tables.contains_key(table) {
                continue;
            }
            for f in ctx
                .posture
                .functions
                .iter()
                .filter(|f| called.contains(&f.name))
                .filter(|f| ctx.context_function.as_ref() != Some(&f.name))
            {
                for role in &ctx.runtime_roles {
                    let Some(path) = ctx.paths(role).get(&f.owner).cloned() else {
                        continue;
                    };
                    if !seen.insert((f.signature(), role.clone())) {
                        continue;
                    }
                    let (how, fix) = match &path {
                        Path::Itself => (
                            format!("{role} owns it"),
                            format!(
                                "ALTER FUNCTION {} OWNER TO <a role the application does not use>;",
                                f.signature()
                            ),
                        ),
                        Path::Inherits => (
                            path.describe(role, &f.owner) + ", which owns it",
                            format!("REVOKE {} FROM {};", ident(&f.owner), ident(role)),
                        ),
                        Path::SetRole(to) => (
                            path.describe(role, &f.owner) + ", which owns it",
                            format!("REVOKE {} FROM {};", ident(to), ident(role)),
                        ),
                    };
                    out.push(FUNCTION_WRITABLE.info.finding(
                        format!("function {}({})", f.name, f.arguments),
                        format!("called by policy {policy} on {table}; {how}"),
                        fix,
                    ));
                }
            }
        }
        out
    },
};

pub const LOOKUP_WRITABLE: Check = Check {
    info: CheckInfo {
        id: "POLICY_LOOKUP_WRITABLE",
        severity: Severity::Error,
        title: "The runtime role can write a table a tenant policy reads",
        why: "A policy that looks up who may see a row (`tenant_id IN (SELECT tenant_id FROM memberships WHERE user_id = …)`) is only as strong as that lookup table: a runtime role that can INSERT or UPDATE it past its policies (RLS off, or the role bypasses them) adds a row that admits it to another tenant. A warning when the lookup table's own policies govern those writes: they decide, so check that they pin the tenant (nothing is reported when the lookup table is itself a tenant table under RLS, whose policies the other checks examine).",
        fix: "REVOKE INSERT, UPDATE, DELETE ON <lookup table> FROM <runtime role>; or put the lookup table under RLS with a WITH CHECK that pins the tenant.",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for ((table, policy), reads) in &ctx.posture.policy_reads {
            let applies = ctx
                .table(table)
                .and_then(|t| t.policies.get(policy))
                .is_some_and(|p| ctx.policy_applies_to_runtime(p));
            if !ctx.tenant_tables.contains_key(table) || !applies {
                continue;
            }
            for lookup in reads.iter().filter_map(|r| ctx.table(r)) {
                let writes: Vec<&str> = ctx
                    .runtime_privileges(lookup)
                    .into_iter()
                    .filter(|p| {
                        matches!(p, Privilege::Insert | Privilege::Update | Privilege::Delete)
                    })
                    .map(|p| p.keyword())
                    .collect();
                if writes.is_empty() {
                    continue;
                }
                let past_policies = ctx
                    .runtime_roles
                    .iter()
                    .any(|r| ctx.reads_past_policies(r, lookup));
                // A tenant table's own policies pin its writes to the
                // tenant, which the policy checks verify on it.
                if !past_policies && ctx.tenant_tables.contains_key(&lookup.name) {
                    continue;
                }
                let mut finding = LOOKUP_WRITABLE.info.finding(
                    format!("policy {policy} on {table}"),
                    format!(
                        "reads {}, which the runtime role may {}{}",
                        lookup.name,
                        writes.join(", "),
                        if past_policies {
                            " past any policy"
                        } else {
                            " as its own policies allow"
                        }
                    ),
                    format!(
                        "REVOKE {} ON {} FROM <runtime role>;",
                        writes.join(", "),
                        lookup.name.quoted()
                    ),
                );
                if !past_policies {
                    finding.severity = Severity::Warning;
                }
                out.push(finding);
            }
        }
        out
    },
};
