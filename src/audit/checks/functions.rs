//! Functions that run code the runtime role can steer: LEAKPROOF ones see
//! rows before the policy filters them, and SECURITY DEFINER ones resolve
//! names through a search_path the runtime role may control.

use std::collections::{BTreeMap, BTreeSet};

use super::Check;
use crate::audit::{CheckInfo, Context, CreateRight, Finding, Severity};
use crate::quote::ident;

pub const LEAKPROOF_USER_FUNCTION: Check = Check {
    info: CheckInfo {
        id: "LEAKPROOF_USER_FUNCTION",
        severity: Severity::Warning,
        title: "A user function is marked LEAKPROOF",
        why: "The planner may run a LEAKPROOF function on rows before the policy's quals have filtered them (that is what the mark promises is safe). If it can raise an error, log or write its arguments, a query like `WHERE f(secret_col)` shows the runtime role values from other tenants' rows. Only PostgreSQL's own, audited functions should carry the mark.",
        fix: "ALTER FUNCTION <function> NOT LEAKPROOF; (as a superuser)",
    },
    run: |ctx| {
        ctx.posture
            .functions
            .iter()
            .filter(|f| f.leakproof && ctx.includes_runtime(&f.executors))
            .map(|f| {
                LEAKPROOF_USER_FUNCTION.info.finding(
                    format!("function {}({})", f.name, f.arguments),
                    format!(
                        "LEAKPROOF, owned by {}, executable by the runtime role: it may see rows the tenant policy has not yet filtered",
                        f.owner
                    ),
                    format!("ALTER FUNCTION {} NOT LEAKPROOF;", f.signature()),
                )
            })
            .collect()
    },
};

pub const SECURITY_DEFINER_SEARCH_PATH: Check = Check {
    info: CheckInfo {
        id: "SECURITY_DEFINER_SEARCH_PATH",
        severity: Severity::Error,
        title: "A SECURITY DEFINER function the runtime role can execute has no pinned search_path",
        why: "A SECURITY DEFINER function runs as its owner but, without `SET search_path`, looks up every unqualified table, function and operator on the caller's search_path. A caller who can CREATE in any schema puts a same-named object first on its own search_path and has it run, or read, with the owner's rights. Error when a runtime role can CREATE in a schema (or one on a pinned path); warning otherwise, where the caller's path still decides which objects the function uses (and pg_temp is searched first for tables unless listed last).",
        fix: "ALTER FUNCTION <function> SET search_path = pg_catalog, <the schemas it needs>, pg_temp; and schema-qualify names in its body",
    },
    run: |ctx| {
        let creatable = ctx.runtime_creatable_schemas();
        let mut out = Vec::new();
        for f in ctx
            .posture
            .functions
            .iter()
            .filter(|f| f.security_definer && ctx.includes_runtime(&f.executors))
        {
            let object = format!("function {}({})", f.name, f.arguments);
            let fix = format!(
                "ALTER FUNCTION {} SET search_path = pg_catalog, pg_temp; -- plus the schemas it needs, none the runtime role can CREATE in",
                f.signature()
            );
            match f.pinned_search_path() {
                None => {
                    let mut finding = SECURITY_DEFINER_SEARCH_PATH.info.finding(
                        object,
                        format!(
                            "SECURITY DEFINER, owned by {}, executable by the runtime role, with no pinned search_path: names resolve through the caller's{}",
                            f.owner,
                            creatable_note(&creatable)
                        ),
                        fix,
                    );
                    if creatable.is_empty() {
                        finding.severity = Severity::Warning;
                    }
                    out.push(finding);
                }
                Some(path) => {
                    let writable: Vec<String> = creatable
                        .iter()
                        .filter(|right| path.contains(&right.schema.name))
                        .map(CreateRight::describe)
                        .collect();
                    if !writable.is_empty() {
                        out.push(SECURITY_DEFINER_SEARCH_PATH.info.finding(
                            object,
                            format!(
                                "SECURITY DEFINER, owned by {}, executable by the runtime role, pinned to search_path {} where {}",
                                f.owner,
                                path.join(", "),
                                writable.join("; ")
                            ),
                            fix,
                        ));
                    }
                }
            }
        }
        out
    },
};

fn creatable_note(creatable: &[CreateRight]) -> String {
    if creatable.is_empty() {
        return String::new();
    }
    let list: Vec<String> = creatable.iter().map(CreateRight::describe).collect();
    format!(", and {}", list.join("; "))
}

pub const SCHEMA_CREATE_FOR_RUNTIME: Check = Check {
    info: CheckInfo {
        id: "SCHEMA_CREATE_FOR_RUNTIME",
        severity: Severity::Warning,
        title: "The runtime role may CREATE in a schema",
        why: "CREATE in a schema lets the application's role add functions, operators and tables that shadow the ones other code resolves by name: a SECURITY DEFINER function or a privileged job that uses an unqualified name, or whose search_path includes the schema, then runs the runtime role's code with its own rights. PostgreSQL 15 stopped granting CREATE on `public` to PUBLIC for this reason; upgraded databases keep the old grant.",
        fix: "REVOKE CREATE ON SCHEMA <schema> FROM PUBLIC, <runtime role>; (or change the owner, if the runtime role owns it)",
    },
    run: |ctx| schema_create_findings(ctx),
};

fn schema_create_findings(ctx: &Context) -> Vec<Finding> {
    let mut by_schema: BTreeMap<&str, Vec<CreateRight>> = BTreeMap::new();
    for right in ctx.runtime_creatable_schemas() {
        by_schema
            .entry(right.schema.name.as_str())
            .or_default()
            .push(right);
    }
    by_schema
        .into_values()
        .map(|rights| {
            let schema = rights[0].schema;
            let name = ident(&schema.name);
            let fixes: BTreeSet<String> = rights
                .iter()
                .map(|right| {
                    if right.via == schema.owner {
                        format!(
                            "ALTER SCHEMA {name} OWNER TO <a role the application does not use>;"
                        )
                    } else if right.via == "PUBLIC" {
                        format!("REVOKE CREATE ON SCHEMA {name} FROM PUBLIC;")
                    } else {
                        format!("REVOKE CREATE ON SCHEMA {name} FROM {};", ident(&right.via))
                    }
                })
                .collect();
            let found: Vec<String> = rights.iter().map(CreateRight::describe).collect();
            SCHEMA_CREATE_FOR_RUNTIME.info.finding(
                format!("schema {}", schema.name),
                found.join("; "),
                fixes.into_iter().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}
