//! The admin's declared access (`maintenance:`): shown as accepted, and an
//! error where the application can reach it. These need the spec, so they
//! run beside the drift findings rather than in [`super::ALL`].

use crate::audit::{CheckInfo, Context, Finding, Severity};
use crate::quote::ident;
use crate::spec::{Access, Spec};

pub const ACCESS: CheckInfo = CheckInfo {
    id: "MAINTENANCE_ACCESS",
    severity: Severity::Info,
    title: "A maintenance role reads (or writes) every tenant's rows, as the spec declares",
    why: "On FORCEd tables the admin is subject to the policies like any role; without a declared policy its data migrations see no row. The maintenance policy admits it to every row on purpose, so it is listed as an accepted exception with the spec's reason.",
    fix: "Remove the `maintenance:` entry and apply with --prune when the access is no longer needed.",
};

pub const REACHED_BY_RUNTIME: CheckInfo = CheckInfo {
    id: "RUNTIME_MEMBER_OF_MAINTENANCE_ROLE",
    severity: Severity::Error,
    title: "A runtime role is a member of a maintenance role",
    why: "A maintenance policy admits its role to every tenant's rows (USING (true)). A runtime role that is a member of that role, directly or through other roles, inherits the policy or can SET ROLE to it: the application crosses tenants.",
    fix: "REVOKE <maintenance role> FROM <runtime role>; (rlsctl plan and apply refuse until then)",
};

pub const INFOS: &[CheckInfo] = &[ACCESS, REACHED_BY_RUNTIME];

pub fn findings(ctx: &Context, spec: &Spec) -> Vec<Finding> {
    let mut out = Vec::new();
    for maintenance in &spec.maintenance {
        let policy = maintenance.policy();
        let what = match maintenance.access {
            Access::Read => "reads",
            Access::ReadWrite => "reads and writes",
        };
        for (table, _) in ctx.tenant_tables() {
            if !table.policies.contains_key(&policy) {
                continue;
            }
            let mut finding = ACCESS.finding(
                format!("policy {policy} on {}", table.name),
                format!(
                    "maintenance role {} {what} every tenant's rows",
                    maintenance.role
                ),
                ACCESS.fix,
            );
            finding.accepted = Some(maintenance.reason.clone());
            out.push(finding);
        }
        for runtime in &ctx.runtime_roles {
            if runtime != &maintenance.role && ctx.reach(runtime).contains(&maintenance.role) {
                out.push(REACHED_BY_RUNTIME.finding(
                    format!("role {runtime}"),
                    format!(
                        "runtime role {runtime} is a member of maintenance role {} (directly or through other roles), so {policy} admits it to every tenant's rows",
                        maintenance.role
                    ),
                    format!(
                        "REVOKE {} FROM {};",
                        ident(&maintenance.role),
                        ident(runtime)
                    ),
                ));
            }
        }
    }
    out
}
