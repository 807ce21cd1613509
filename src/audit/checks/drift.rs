//! Drift: what `plan` would change, as findings. Reuses the pure diff, so
//! audit and apply can never disagree about what "matches the spec" means.

use crate::audit::{CheckInfo, Finding, Severity};
use crate::diff::{Change, Diff, Notice};
use crate::plan::Statement;

const fn info(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    why: &'static str,
) -> CheckInfo {
    CheckInfo {
        id,
        severity,
        title,
        why,
        fix: "Run `rlsctl plan` to see the statements and `rlsctl apply` to converge, or change the spec if the database is right.",
    }
}

pub const RLS: CheckInfo = info(
    "DRIFT_RLS",
    Severity::Error,
    "A declared table's ENABLE/FORCE ROW LEVEL SECURITY differs from the spec",
    "The spec says this table is isolated; the database does not enforce it.",
);
pub const POLICY_MISSING: CheckInfo = info(
    "DRIFT_POLICY_MISSING",
    Severity::Error,
    "A declared policy does not exist",
    "The isolation the spec promises for this table is not in place.",
);
pub const POLICY_CHANGED: CheckInfo = info(
    "DRIFT_POLICY_CHANGED",
    Severity::Error,
    "A policy differs from the spec",
    "Someone changed the policy by hand (compared in PostgreSQL's own normalised form, so formatting is not drift).",
);
pub const POLICY_EXTRA: CheckInfo = info(
    "DRIFT_POLICY_EXTRA",
    Severity::Warning,
    "A declared table has a policy the spec does not declare",
    "Permissive policies are OR-ed with the tenant policy: an undeclared one may widen access; nobody reviewed it in the spec.",
);
pub const FUNCTION: CheckInfo = info(
    "DRIFT_CONTEXT_FUNCTION",
    Severity::Error,
    "The tenant context function or who may execute it differs from the spec",
    "Every policy trusts this function to return the bound tenant.",
);
pub const ROLE: CheckInfo = info(
    "DRIFT_ROLE",
    Severity::Error,
    "A declared role is missing or its attributes differ (LOGIN, SUPERUSER, BYPASSRLS)",
    "A runtime role that is superuser or BYPASSRLS ignores every policy.",
);
pub const GRANTS: CheckInfo = info(
    "DRIFT_GRANTS",
    Severity::Warning,
    "A declared role's privileges differ from the spec",
    "Roles should hold exactly what the spec grants; extra privileges such as TRUNCATE bypass RLS.",
);
pub const OBJECT_GRANT: CheckInfo = info(
    "DRIFT_OBJECT_GRANT",
    Severity::Warning,
    "A privilege declared under `grants:` is missing, or a declared role holds more on a declared object",
    "A missing privilege breaks the worker that needs it; an extra one (INSERT on a lookup table, EXECUTE on a function) is access nobody reviewed in the spec.",
);
pub const TENANT_DEFAULT: CheckInfo = info(
    "DRIFT_TENANT_DEFAULT",
    Severity::Warning,
    "A tenant column declared `default_from_context` does not default to the context function",
    "Writers that omit the tenant then fail NOT NULL (or write NULL) instead of getting the bound tenant.",
);
pub const RESOLVER: CheckInfo = info(
    "DRIFT_RESOLVER",
    Severity::Error,
    "A declared tenant resolver is missing, redefined, or callable by roles the spec does not name",
    "A resolver runs as its owner and returns any tenant's id for a key: changed, or callable by others, it hands out tenants.",
);
pub const INDEX: CheckInfo = info(
    "DRIFT_TENANT_INDEX",
    Severity::Warning,
    "A declared table's tenant index is missing or invalid",
    "Without it every tenant query scans the table.",
);
pub const UNDECLARED: CheckInfo = info(
    "DRIFT_TABLE_UNDECLARED",
    Severity::Warning,
    "A table has the tenant column but is not declared in the spec",
    "New tables are where isolation is forgotten: nobody decided whether it is tenant data.",
);

pub const AWAITING_BACKFILL: CheckInfo = CheckInfo {
    id: "DRIFT_TABLE_AWAITING_BACKFILL",
    severity: Severity::Error,
    title: "A declared table has no tenant column yet, or rows without a tenant: they await `migrate-existing`",
    why: "Until the column is added and filled, the table has no tenant isolation at all.",
    fix: "Run `rlsctl migrate-existing --table TABLE --dry-run`, then without --dry-run in a maintenance window.",
};

pub const INFOS: &[CheckInfo] = &[
    RLS,
    AWAITING_BACKFILL,
    POLICY_MISSING,
    POLICY_CHANGED,
    POLICY_EXTRA,
    FUNCTION,
    ROLE,
    GRANTS,
    OBJECT_GRANT,
    TENANT_DEFAULT,
    RESOLVER,
    INDEX,
    UNDECLARED,
];

/// One finding per planned change (with its statement as the fix) and notice.
pub fn findings(diff: &Diff, statements: &[Statement]) -> Vec<Finding> {
    let mut out = Vec::new();
    for change in &diff.changes {
        let info = match change {
            Change::EnableRls { .. } | Change::ForceRls { .. } => RLS,
            Change::CreatePolicy { .. } => POLICY_MISSING,
            Change::AlterPolicy { .. } | Change::DropPolicy { .. } => POLICY_CHANGED,
            Change::ReplaceFunction { .. }
            | Change::GrantExecute { .. }
            | Change::RevokeExecute { .. }
            | Change::CreateSchema { .. } => FUNCTION,
            Change::CreateRole { .. } | Change::AlterRole { .. } | Change::SetPassword { .. } => {
                ROLE
            }
            Change::GrantTable { .. }
            | Change::RevokeTable { .. }
            | Change::GrantSchemaUsage { .. }
            | Change::GrantSequenceUsage { .. } => GRANTS,
            Change::GrantObject { .. } | Change::RevokeObject { .. } => OBJECT_GRANT,
            Change::SetTenantDefault { .. } => TENANT_DEFAULT,
            Change::ReplaceResolver { .. }
            | Change::GrantResolverExecute { .. }
            | Change::RevokeResolverExecute { .. } => RESOLVER,
            Change::CreateIndex { .. } | Change::DropInvalidIndex { .. } => INDEX,
        };
        let object = change.object();
        // A recreated policy is one finding, not a drop and a create.
        if matches!(change, Change::CreatePolicy { .. })
            && out.iter().any(|f: &Finding| f.object == object)
        {
            continue;
        }
        let fix = statements
            .iter()
            .filter(|s| s.object == object && s.kind == change.kind())
            .map(|s| format!("{};", s.sql))
            .collect::<Vec<_>>()
            .join(" ");
        out.push(info.finding(object, describe(change), fix));
    }
    for notice in &diff.notices {
        if let Notice::AwaitingBackfill { table, .. } = notice {
            out.push(AWAITING_BACKFILL.finding(
                format!("table {table}"),
                notice.to_string(),
                AWAITING_BACKFILL.fix,
            ));
            continue;
        }
        let (info, object) = match notice {
            Notice::UnmanagedPolicy { table, name } => {
                (POLICY_EXTRA, format!("policy {name} on {table}"))
            }
            Notice::UndeclaredManagedTable { table, .. }
            | Notice::UncoveredTable { table, .. }
            | Notice::AwaitingBackfill { table, .. } => (UNDECLARED, format!("table {table}")),
            Notice::PasswordUnknown { role, .. } => (ROLE, format!("role {role}")),
            Notice::ExtraObjectPrivileges { target, .. } => (OBJECT_GRANT, target.to_string()),
        };
        out.push(info.finding(
            object,
            notice.to_string(),
            "declare it in the spec, or drop it with `rlsctl apply --prune`",
        ));
    }
    out
}

fn describe(change: &Change) -> String {
    match change {
        Change::EnableRls { .. } => "row-level security is disabled".into(),
        Change::ForceRls { .. } => "row-level security is not forced".into(),
        Change::CreatePolicy { .. } => "the policy does not exist".into(),
        Change::AlterPolicy { .. } => "roles or expressions differ from the spec".into(),
        Change::DropPolicy { .. } => "command or kind differs from the spec".into(),
        Change::ReplaceFunction { .. } => {
            "the function is missing or its definition differs".into()
        }
        Change::GrantExecute { role, .. } => format!("{role} may not execute it"),
        Change::RevokeExecute { role, .. } => format!("{role} may execute it"),
        Change::CreateSchema { schema } => format!("schema {schema} does not exist"),
        Change::CreateRole { .. } => "the role does not exist".into(),
        Change::SetPassword {
            reason: crate::diff::PasswordReason::Unset,
            ..
        } => "the role has no password, and the spec names where it comes from".into(),
        Change::SetPassword {
            reason: crate::diff::PasswordReason::Rotation,
            ..
        } => "--rotate-passwords sets the password again".into(),
        Change::AlterRole { attributes, .. } => format!(
            "attributes differ from the spec, which needs {}",
            attributes
                .iter()
                .map(|a| a.keyword())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Change::GrantTable {
            role, privileges, ..
        } => format!("{role} lacks {}", keywords(privileges)),
        Change::RevokeTable {
            role, privileges, ..
        } => format!("{role} also holds {}", keywords(privileges)),
        Change::GrantObject {
            role, privileges, ..
        } => format!(
            "{role} lacks {}, which the spec grants it",
            privileges
                .iter()
                .map(|p| p.keyword())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Change::RevokeObject {
            role,
            privileges,
            grant_option,
            ..
        } => format!(
            "{role} also holds {}{}",
            privileges
                .iter()
                .map(|p| p.keyword())
                .collect::<Vec<_>>()
                .join(", "),
            if *grant_option {
                " WITH GRANT OPTION (it may grant them on to anyone)"
            } else {
                ""
            }
        ),
        Change::GrantSchemaUsage { role, .. } => format!("{role} lacks USAGE"),
        Change::GrantSequenceUsage { role, .. } => format!("{role} lacks USAGE on it"),
        Change::ReplaceResolver { drop_first: None, .. } => {
            "its definition (body, SECURITY DEFINER, search_path) differs from the spec, or it does not exist".into()
        }
        Change::ReplaceResolver {
            drop_first: Some(arg),
            ..
        } => format!("a function of that name takes {arg}, not the declared key type"),
        Change::GrantResolverExecute { role, .. } => format!("{role} may not execute it"),
        Change::RevokeResolverExecute { role, .. } => format!("{role} may execute it"),
        Change::SetTenantDefault { function, .. } => {
            format!("the tenant column does not default to {function}()")
        }
        Change::CreateIndex { .. } => "the tenant index does not exist".into(),
        Change::DropInvalidIndex { .. } => {
            "the tenant index is INVALID (a failed concurrent build)".into()
        }
    }
}

fn keywords(privileges: &std::collections::BTreeSet<crate::model::Privilege>) -> String {
    privileges
        .iter()
        .map(|p| p.keyword())
        .collect::<Vec<_>>()
        .join(", ")
}
