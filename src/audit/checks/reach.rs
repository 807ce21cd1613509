//! Roles the spec says must reach no tenant's rows (`no_tenant_access:`,
//! e.g. Supabase's `anon`): any row privilege they hold on a tenant table.
//! TRUNCATE, TRIGGER, REFERENCES and MAINTAIN are reported for them, as for
//! every role that reaches rows, by `shape`.

use super::Check;
use crate::audit::{CheckInfo, Context, Finding, Holding, Severity};
use crate::model::{Privilege, Table};
use crate::spec::Command;

const ROW_PRIVILEGES: [Privilege; 4] = [
    Privilege::Select,
    Privilege::Insert,
    Privilege::Update,
    Privilege::Delete,
];

pub const NO_TENANT_ACCESS_GRANTED: Check = Check {
    info: CheckInfo {
        id: "NO_TENANT_ACCESS_ROLE_GRANTED",
        severity: Severity::Error,
        title: "A role declared to have no tenant access holds a row privilege on a tenant table",
        why: "The spec lists the role under `no_tenant_access:` (an anonymous API role, a reporting login that must see no customer data). An error when the privilege reaches rows: the table's RLS is off, or a permissive policy for the command applies to the role (directly, through a role it is a member of, or to PUBLIC). A warning otherwise: the policies deny it today, and the grant is one careless policy away from every tenant's rows.",
        fix: "REVOKE ALL ON <table> FROM <role>; or, through a membership, REVOKE <group> FROM <role>; and drop policies that apply to it or to PUBLIC.",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for role in &ctx.no_access_roles {
            for (table, _) in ctx.tenant_tables() {
                out.extend(findings_for(ctx, role, table));
            }
        }
        out
    },
};

fn findings_for(ctx: &Context, role: &str, table: &Table) -> Vec<Finding> {
    let paths = ctx.paths(role);
    let mut out = Vec::new();
    for privilege in ROW_PRIVILEGES {
        let holding: Option<Holding> = ctx
            .holders(table, privilege)
            .into_iter()
            .find(|h| h.role == role || h.role == "PUBLIC");
        let Some(holding) = holding else { continue };
        let open: Vec<&str> = table
            .policies
            .values()
            .filter(|p| p.permissive && covers(p.command, privilege))
            .filter(|p| p.roles.contains("PUBLIC") || p.roles.iter().any(|r| paths.contains_key(r)))
            .map(|p| p.name.as_str())
            .collect();
        let reaches = !table.rls_enabled || !open.is_empty();
        let how = if !table.rls_enabled {
            "; row-level security is off: it reaches every tenant's rows".to_string()
        } else if !open.is_empty() {
            format!("; policy {} applies to it", open.join(", "))
        } else {
            "; no policy applies to it yet".to_string()
        };
        let mut finding = NO_TENANT_ACCESS_GRANTED.info.finding(
            format!("table {}", table.name),
            format!(
                "{role} is declared no_tenant_access, and {}{how}",
                holding.describe(privilege.keyword())
            ),
            holding.fix(privilege.keyword(), &table.name),
        );
        if !reaches {
            finding.severity = Severity::Warning;
        }
        out.push(finding);
    }
    out
}

/// Whether a policy for `command` governs statements needing `privilege`.
fn covers(command: Command, privilege: Privilege) -> bool {
    match command {
        Command::All => true,
        Command::Select => privilege == Privilege::Select,
        Command::Insert => privilege == Privilege::Insert,
        Command::Update => privilege == Privilege::Update,
        Command::Delete => privilege == Privilege::Delete,
    }
}
