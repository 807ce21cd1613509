//! Policies that widen what the runtime role can see or write.

use super::Check;
use crate::audit::expression_tree::{Analysis, Tenancy};
use crate::audit::{CheckInfo, Context, Finding, Severity, mentions_column};
use crate::catalog::Function;
use crate::model::{Policy, Privilege, Table};
use crate::quote::QualifiedName;
use crate::quote::ident;
use crate::spec::Command;

fn object(policy: &Policy, table: &Table) -> String {
    format!("policy {} on {}", policy.name, table.name)
}

/// Permissive policies on tenant tables that apply to a runtime role.
fn runtime_permissive<'a>(
    ctx: &'a Context,
) -> impl Iterator<Item = (&'a Table, &'a str, &'a Policy)> {
    ctx.tenant_tables().flat_map(move |(t, column)| {
        t.policies
            .values()
            .filter(move |p| p.permissive && ctx.policy_applies_to_runtime(p))
            .map(move |p| (t, column, p))
    })
}

pub const WITHOUT_TENANT_FILTER: Check = Check {
    info: CheckInfo {
        id: "POLICY_WITHOUT_TENANT_FILTER",
        severity: Severity::Error,
        title: "A permissive policy lets the runtime role read rows without checking the tenant",
        why: "Permissive policies are OR-ed: one whose USING does not compare the tenant column (USING (true), a constant, a flag) opens every tenant's matching rows, whatever the tenant policy says.",
        fix: "Make it restrictive (AS RESTRICTIVE), add the tenant comparison, or declare it as a cross_tenant exception with a reason.",
    },
    run: |ctx| {
        runtime_permissive(ctx)
            .filter(|(_, _, p)| matches!(p.command, Command::All | Command::Select | Command::Update | Command::Delete))
            .filter(|(_, column, p)| p.using.as_ref().is_some_and(|u| !mentions_column(u.as_str(), column)))
            .map(|(t, column, p)| {
                WITHOUT_TENANT_FILTER.info.finding(
                    object(p, t),
                    format!("USING {} does not reference {column}", p.using.as_ref().map(|u| u.as_str()).unwrap_or_default()),
                    format!("ALTER POLICY {} ON {} USING (<tenant check> AND …); or make it AS RESTRICTIVE", ident(&p.name), t.name.quoted()),
                )
            })
            .collect()
    },
};

pub const WRITE_WITHOUT_TENANT_CHECK: Check = Check {
    info: CheckInfo {
        id: "POLICY_WRITE_WITHOUT_TENANT_CHECK",
        severity: Severity::Error,
        title: "A write policy's WITH CHECK does not pin the tenant",
        why: "WITH CHECK decides which new rows a role may write. If it does not compare the tenant column, the runtime role can insert rows into another tenant or move its rows there with UPDATE. Reported only where a runtime role may INSERT (for INSERT and ALL policies) or UPDATE (for UPDATE and ALL policies) the table.",
        fix: "ALTER POLICY <policy> ON <table> WITH CHECK (<tenant column> = (SELECT <context function>()));",
    },
    run: |ctx| {
        runtime_permissive(ctx)
            .filter(|(t, _, p)| {
                // A check on rows the runtime roles cannot write guards nothing yet.
                let privileges = ctx.runtime_privileges(t);
                let insert = privileges.contains(&Privilege::Insert);
                let update = privileges.contains(&Privilege::Update);
                match p.command {
                    Command::All => insert || update,
                    Command::Insert => insert,
                    Command::Update => update,
                    _ => false,
                }
            })
            .filter(|(_, column, p)| {
                // Without WITH CHECK, PostgreSQL checks new rows with USING.
                let check = p.with_check.as_ref().or(p.using.as_ref());
                check.is_none_or(|c| !mentions_column(c.as_str(), column))
            })
            .map(|(t, column, p)| {
                let check = p
                    .with_check
                    .as_ref()
                    .or(p.using.as_ref())
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_else(|| "(none)".into());
                WRITE_WITHOUT_TENANT_CHECK.info.finding(
                    object(p, t),
                    format!("new rows are checked with {check}, which does not reference {column}"),
                    format!(
                        "ALTER POLICY {} ON {} WITH CHECK ({} = (SELECT <context function>()));",
                        ident(&p.name),
                        t.name.quoted(),
                        ident(column)
                    ),
                )
            })
            .collect()
    },
};

/// The clauses of a policy that decide rows for its command: USING for rows
/// read, updated or deleted; WITH CHECK for rows written (PostgreSQL uses
/// USING there when WITH CHECK is absent, which the USING entry covers).
fn deciding_clauses(p: &Policy) -> Vec<(&'static str, &str)> {
    let reads = matches!(
        p.command,
        Command::All | Command::Select | Command::Update | Command::Delete
    );
    let writes = matches!(p.command, Command::All | Command::Insert | Command::Update);
    let mut out = Vec::new();
    if let Some(using) = p.using.as_ref().filter(|_| reads) {
        out.push(("USING", using.as_str()));
    }
    if let Some(check) = p.with_check.as_ref().filter(|_| writes) {
        out.push(("WITH CHECK", check.as_str()));
    }
    out
}

fn tenancy<'a>(ctx: &'a Context, column: &'a str) -> Tenancy<'a> {
    Tenancy {
        column,
        settings: &ctx.tenant_settings,
        function: ctx.context_function.as_ref(),
    }
}

/// One finding per runtime-facing permissive policy whose deciding clauses
/// (those `keep(text, column)` accepts) have branches that `pick` selects
/// from the expression's analysis; `says(column, branches)` describes them,
/// one clause after another, in the finding `make` builds.
fn tree_findings(
    ctx: &Context,
    keep: fn(&str, &str) -> bool,
    pick: fn(&Analysis) -> &Vec<String>,
    says: fn(&str, &str) -> String,
    make: fn(&Policy, &Table, &str) -> Finding,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (t, column, p) in runtime_permissive(ctx) {
        let tenancy = tenancy(ctx, column);
        let found: Vec<String> = deciding_clauses(p)
            .into_iter()
            .filter(|(_, text)| keep(text, column))
            .filter_map(|(clause, text)| {
                let analysis = ctx.expressions.of(text, &tenancy);
                let branches = pick(&analysis);
                (!branches.is_empty()).then(|| {
                    format!(
                        "{clause} {text}: {}",
                        says(column, &quoted_branches(branches))
                    )
                })
            })
            .collect();
        if !found.is_empty() {
            let mut finding = make(p, t, column);
            finding.found = found.join("; ");
            out.push(finding);
        }
    }
    out
}

fn quoted_branches(branches: &[String]) -> String {
    branches
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub const OPEN_WHEN_UNBOUND: Check = Check {
    info: CheckInfo {
        id: "POLICY_OPEN_WHEN_UNBOUND",
        severity: Severity::Error,
        title: "A policy branch opens when no tenant is bound",
        why: "A connection with no tenant bound must see nothing. `current_setting(name, true)` is NULL in a session that never bound a tenant and '' after a transaction-local binding ended, so a branch such as `current_setting(…) IS NULL OR tenant_id = …` or `coalesce(current_setting(…), '') = ''` hands every tenant's rows to a background job, a pooled connection between requests, or any code path that forgot to bind.",
        fix: "Remove the branch: compare only the tenant column, USING (tenant_id = (SELECT <context function>())), whose NULL for an unbound session matches no row. A job that needs every tenant should run as a declared cross-tenant role.",
    },
    run: |ctx| {
        tree_findings(
            ctx,
            |_, _| true,
            |a| &a.opens_when_unbound,
            |_, branches| {
                format!("{branches} is true when the tenant setting is unset, NULL or ''")
            },
            |p, t, column| {
                OPEN_WHEN_UNBOUND.info.finding(
                    object(p, t),
                    String::new(),
                    format!(
                        "ALTER POLICY {} ON {} USING ({} = (SELECT <context function>())) WITH CHECK (…the same…); -- without the unbound branch",
                        ident(&p.name),
                        t.name.quoted(),
                        ident(column)
                    ),
                )
            },
        )
    },
};

pub const BROADER_THAN_TENANT: Check = Check {
    info: CheckInfo {
        id: "POLICY_BROADER_THAN_TENANT",
        severity: Severity::Error,
        title: "A policy compares the tenant column but ORs it with a branch that does not",
        why: "An OR is as wide as its widest branch: `tenant_id = x OR true` or `tenant_id = x OR other_col IS NOT NULL` mentions the tenant, looks like isolation in review, and admits other tenants' rows through the second branch.",
        fix: "Move the extra condition into its own RESTRICTIVE policy (AND-ed), or AND it with the tenant comparison: USING (tenant_id = (SELECT <context function>()) AND (…)). A deliberate cross-tenant path belongs in `cross_tenant:` with a reason.",
    },
    run: |ctx| {
        tree_findings(
            ctx,
            mentions_column,
            |a| &a.not_scoped_to_tenant,
            |column, branches| format!("{branches} does not constrain {column}"),
            |p, t, column| {
                BROADER_THAN_TENANT.info.finding(
                    object(p, t),
                    String::new(),
                    format!(
                        "ALTER POLICY {} ON {} USING ({} = (SELECT <context function>()) AND (…)); or a separate AS RESTRICTIVE policy",
                        ident(&p.name),
                        t.name.quoted(),
                        ident(column)
                    ),
                )
            },
        )
    },
};

pub const TO_PUBLIC: Check = Check {
    info: CheckInfo {
        id: "POLICY_TO_PUBLIC",
        severity: Severity::Warning,
        title: "A policy applies to PUBLIC",
        why: "A policy for PUBLIC applies to every role, including ones created later for other purposes; isolation should name the roles it governs.",
        fix: "ALTER POLICY <policy> ON <table> TO <runtime roles>;",
    },
    run: |ctx| {
        ctx.tenant_tables()
            .flat_map(|(t, _)| {
                t.policies
                    .values()
                    .filter(|p| p.permissive && p.roles.contains("PUBLIC"))
                    .map(move |p| (t, p))
            })
            .map(|(t, p)| {
                TO_PUBLIC.info.finding(
                    object(p, t),
                    "the policy applies to PUBLIC",
                    format!(
                        "ALTER POLICY {} ON {} TO <runtime roles>;",
                        ident(&p.name),
                        t.name.quoted()
                    ),
                )
            })
            .collect()
    },
};

/// Every function a policy on a tenant table calls: (table, policy, function).
fn tenant_policy_functions<'a>(
    ctx: &'a Context,
) -> impl Iterator<Item = (&'a QualifiedName, &'a str, &'a Function)> {
    ctx.posture
        .policy_calls
        .iter()
        .filter(|((table, _), _)| ctx.tenant_tables.contains_key(table))
        .flat_map(move |((table, policy), called)| {
            ctx.posture
                .functions
                .iter()
                .filter(move |f| called.contains(&f.name))
                .map(move |f| (table, policy.as_str(), f))
        })
}

pub const VOLATILE_FUNCTION: Check = Check {
    info: CheckInfo {
        id: "POLICY_CALLS_VOLATILE_FUNCTION",
        severity: Severity::Warning,
        title: "A policy calls a VOLATILE function",
        why: "A VOLATILE function cannot be an index condition and runs once per row: a tenant query that takes 9 ms with a STABLE function wrapped in (SELECT …) took 2 s with a VOLATILE plpgsql one on 1M rows.",
        fix: "Declare the function STABLE if it is (ALTER FUNCTION … STABLE) and call it as (SELECT fn()).",
    },
    run: |ctx| {
        tenant_policy_functions(ctx)
            .filter(|(_, _, f)| f.volatility == "v")
            .map(|(table, policy, f)| {
                VOLATILE_FUNCTION.info.finding(
                    format!("policy {policy} on {table}"),
                    format!("calls {}(), which is VOLATILE", f.name),
                    format!(
                        "ALTER FUNCTION {} STABLE; and call it as (SELECT {}())",
                        f.signature(),
                        f.name.quoted()
                    ),
                )
            })
            .collect()
    },
};

pub const PARALLEL_UNSAFE_FUNCTION: Check = Check {
    info: CheckInfo {
        id: "POLICY_BLOCKS_PARALLEL_QUERY",
        severity: Severity::Warning,
        title: "A policy calls a PARALLEL UNSAFE function, so no query on the table runs in parallel",
        why: "PARALLEL UNSAFE is CREATE FUNCTION's default, and one such function anywhere in a query makes PostgreSQL plan it without parallel workers. A policy's expressions are part of every query on its table: a large tenant's full scan took 1.16× as long on 2 cores in rlsctl's benchmark, and a machine with more cores loses more workers.",
        fix: "ALTER FUNCTION … PARALLEL SAFE, when the function only reads (settings, tables) and writes nothing.",
    },
    run: |ctx| {
        tenant_policy_functions(ctx)
            .filter(|(_, _, f)| f.parallel == "u")
            .map(|(table, policy, f)| {
                PARALLEL_UNSAFE_FUNCTION.info.finding(
                    format!("policy {policy} on {table}"),
                    format!("calls {}(), which is PARALLEL UNSAFE", f.name),
                    format!("ALTER FUNCTION {} PARALLEL SAFE;", f.signature()),
                )
            })
            .collect()
    },
};

pub const TENANT_COLUMN_WRAPPED: Check = Check {
    info: CheckInfo {
        id: "POLICY_TENANT_COLUMN_WRAPPED",
        severity: Severity::Warning,
        title: "A policy compares the tenant column only through a cast or a function call",
        why: "`tenant_id::text = …` or `lower(tenant_id) = …` cannot use the index on tenant_id: every tenant query scans the whole table, and the cost grows with every customer's data.",
        fix: "Compare the bare column with a value of its own type: USING (tenant_id = (SELECT <context function>())).",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for (t, column) in ctx.tenant_tables() {
            for p in t.policies.values() {
                let Some(using) = &p.using else { continue };
                let text = using.as_str();
                if mentions_column(text, column) && !compares_bare_column(text, column) {
                    out.push(TENANT_COLUMN_WRAPPED.info.finding(
                        format!("policy {} on {}", p.name, t.name),
                        format!("USING {text}"),
                        format!(
                            "ALTER POLICY {} ON {} USING ({} = (SELECT …));",
                            ident(&p.name),
                            t.name.quoted(),
                            ident(column)
                        ),
                    ));
                }
            }
        }
        out
    },
};

/// Whether a deparsed expression uses `column` bare somewhere: not as a
/// function argument `f(column` and not cast `(column)::type`.
fn compares_bare_column(expression: &str, column: &str) -> bool {
    let name = crate::quote::display_ident(column);
    let bytes = expression.as_bytes();
    expression.match_indices(name.as_str()).any(|(i, _)| {
        let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
        let before = i.checked_sub(1).map(|b| bytes[b]);
        let after = &expression[i + name.len()..];
        if before.is_some_and(|c| is_word(c) && c != b'.')
            || after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            return false; // part of another name
        }
        let called = before == Some(b'(')
            && i.checked_sub(2)
                .is_some_and(|b| bytes[b].is_ascii_alphanumeric() || bytes[b] == b'_');
        let cast = before == Some(b'(') && after.starts_with(")::");
        !called && !cast
    })
}

#[cfg(test)]
mod tests {
    use super::compares_bare_column;

    #[test]
    fn casts_and_function_calls_hide_the_column_from_its_index() {
        let bare = "(tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id))";
        assert!(compares_bare_column(bare, "tenant_id"));
        assert!(compares_bare_column(
            "((tenant_id = x) AND (NOT archived))",
            "tenant_id"
        ));
        assert!(!compares_bare_column(
            "((tenant_id)::text = current_setting('app.current_tenant_id'::text))",
            "tenant_id"
        ));
        assert!(!compares_bare_column(
            "(lower((tenant_id)::text) = 'a'::text)",
            "tenant_id"
        ));
        assert!(!compares_bare_column(
            "(md5(tenant_id) = 'a'::text)",
            "tenant_id"
        ));
    }
}
