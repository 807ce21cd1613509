//! The tenant context: the function policies call, and the settings it reads.

use super::Check;
use crate::audit::{CheckInfo, Severity};
use crate::model::Volatility;
use crate::quote::{ident, literal};

pub const UNSAFE_DEFINITION: Check = Check {
    info: CheckInfo {
        id: "CONTEXT_FUNCTION_UNSAFE",
        severity: Severity::Warning,
        title: "The tenant context function can fail open, raise, or run per row",
        why: "It must be STABLE (evaluated once per statement), read the setting with current_setting(name, true) (no error when never set), and treat '' as no tenant: after RESET or the end of a SET LOCAL the setting reads '', and ''::uuid raises.",
        fix: "Let rlsctl generate it: LANGUAGE sql STABLE, SELECT nullif(current_setting(name, true), '')::<type>.",
    },
    run: |ctx| {
        let Some(f) = &ctx.snapshot.state.function else {
            return Vec::new();
        };
        let body = f.body.to_lowercase();
        let mut problems = Vec::new();
        if f.volatility == Volatility::Volatile {
            problems.push("it is VOLATILE");
        }
        if body.contains("current_setting(") {
            let missing_ok = body.split("current_setting(").skip(1).all(|call| {
                let args = call.split(')').next().unwrap_or_default();
                args.contains(',') && args.trim_end().ends_with("true")
            });
            if !missing_ok {
                problems.push("current_setting is called without missing_ok = true");
            }
            if !(body.contains("nullif") && body.contains("''")) {
                problems.push("'' (the value after RESET) is not treated as no tenant");
            }
        }
        if problems.is_empty() {
            return Vec::new();
        }
        vec![UNSAFE_DEFINITION.info.finding(
            format!("function {}()", f.name),
            problems.join("; "),
            "run rlsctl apply to regenerate it",
        )]
    },
};

pub const CALLED_PER_ROW: Check = Check {
    info: CheckInfo {
        id: "CONTEXT_CALLED_PER_ROW",
        severity: Severity::Warning,
        title: "A policy calls the context function directly instead of as (SELECT fn())",
        why: "Wrapped in a sub-select the call becomes an InitPlan evaluated once per statement and the comparison uses the tenant index; called directly, a non-inlinable function runs once per row.",
        fix: "ALTER POLICY … USING (tenant_id = (SELECT <context function>()));",
    },
    run: |ctx| {
        let Some(function) = &ctx.context_function else {
            return Vec::new();
        };
        let call = format!("{}(", crate::quote::display_ident(&function.name));
        let schema = crate::quote::display_ident(&function.schema);
        let mut out = Vec::new();
        for (t, _) in ctx.tenant_tables() {
            for p in t.policies.values() {
                // pg_depend says whether the policy calls this very function;
                // the text only says where.
                let calls_it = ctx
                    .posture
                    .policy_calls
                    .get(&(t.name.clone(), p.name.clone()))
                    .is_some_and(|called| called.contains(function));
                if !calls_it {
                    continue;
                }
                let texts = p.using.iter().chain(p.with_check.iter());
                let per_row = texts.into_iter().any(|e| {
                    let e = e.as_str();
                    e.match_indices(&call).any(|(i, _)| {
                        let before = &e[..i];
                        let before = match before.strip_suffix('.') {
                            // Another schema's function of the same name is not this one.
                            Some(qualified) => match qualified.strip_suffix(schema.as_str()) {
                                Some(rest) => rest,
                                None => return false,
                            },
                            None => before,
                        };
                        let part_of_a_longer_name = before
                            .chars()
                            .last()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"');
                        !part_of_a_longer_name && !before.trim_end().ends_with("SELECT")
                    })
                });
                if per_row {
                    out.push(CALLED_PER_ROW.info.finding(
                        format!("policy {} on {}", p.name, t.name),
                        format!("calls {function}() outside a sub-select"),
                        format!(
                            "ALTER POLICY {} ON {} USING (… = (SELECT {}()));",
                            ident(&p.name),
                            t.name.quoted(),
                            function.quoted()
                        ),
                    ));
                }
            }
        }
        out
    },
};

pub const WRITABLE_BY_RUNTIME: Check = Check {
    info: CheckInfo {
        id: "CONTEXT_FUNCTION_WRITABLE",
        severity: Severity::Error,
        title: "The runtime role can redefine the tenant context function",
        why: "Its owner can CREATE OR REPLACE it: a runtime role that owns it can make it return any tenant, or NULL-safe values that match everything.",
        fix: "ALTER FUNCTION <function>() OWNER TO <admin role>;",
    },
    run: |ctx| {
        let Some(function) = &ctx.context_function else {
            return Vec::new();
        };
        let Some(owner) = ctx
            .posture
            .functions
            .iter()
            .find(|f| &f.name == function)
            .map(|f| f.owner.clone())
        else {
            return Vec::new();
        };
        ctx.runtime_roles
            .iter()
            .filter(|r| ctx.reach(r).contains(&owner))
            .map(|r| {
                WRITABLE_BY_RUNTIME.info.finding(
                    format!("function {function}()"),
                    format!("owned by {owner}, which runtime role {r} is or can become"),
                    format!(
                        "ALTER FUNCTION {}() OWNER TO <admin role>;",
                        function.quoted()
                    ),
                )
            })
            .collect()
    },
};

pub const TENANT_DEFAULT_SETTING: Check = Check {
    info: CheckInfo {
        id: "TENANT_DEFAULT_SETTING",
        severity: Severity::Error,
        title: "A role or database binds a default tenant",
        why: "ALTER ROLE/DATABASE … SET app.current_tenant_id = … binds every session that forgets to bind its own tenant to that tenant: unbound requests silently read and write one customer's data.",
        fix: "ALTER ROLE <role> RESET <setting>; / ALTER DATABASE <db> RESET <setting>;",
    },
    run: |ctx| {
        // Only defaults that reach a runtime session: for a runtime role (or
        // one it can become) or for every role, here or in every database.
        let reach: std::collections::BTreeSet<String> = ctx
            .runtime_roles
            .iter()
            .flat_map(|r| ctx.reach(r))
            .collect();
        let database = &ctx.snapshot.database;
        ctx.posture
            .settings
            .iter()
            .filter(|(role, db, _, _)| {
                role.as_ref().is_none_or(|r| reach.contains(r))
                    && db.as_ref().is_none_or(|d| d == database)
            })
            .filter(|(_, _, name, _)| {
                ctx.tenant_settings
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(name))
            })
            .map(|(role, database, name, value)| {
                let (object, fix) = match (role, database) {
                    (Some(r), _) => (
                        format!("role {r}"),
                        format!("ALTER ROLE {} RESET {};", ident(r), ident(name)),
                    ),
                    (None, Some(d)) => (
                        format!("database {d}"),
                        format!("ALTER DATABASE {} RESET {};", ident(d), ident(name)),
                    ),
                    (None, None) => (
                        "cluster".to_string(),
                        format!("ALTER ROLE ALL RESET {};", ident(name)),
                    ),
                };
                TENANT_DEFAULT_SETTING.info.finding(
                    object,
                    format!("{name} defaults to {}", literal(value)),
                    fix,
                )
            })
            .collect()
    },
};
