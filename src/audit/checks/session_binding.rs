//! Statements that bind the tenant for the rest of the session, read from
//! what pg_stat_statements recorded in this database.
//!
//! A session-level `SET app.current_tenant_id = …` (no LOCAL) or
//! `set_config('app.current_tenant_id', …, false)` outlives its
//! transaction: on a pooled connection the next request, whoever it serves,
//! starts bound to that tenant. Each recorded text is parsed with
//! PostgreSQL's grammar. pg_stat_statements stores constants as `$n`
//! (SET values too, from 18 on): a SET still names its setting and shows
//! LOCAL, but `set_config($1, $2, $3)` no longer says which setting or
//! whether it is local, and is left undecided (the README says so). A
//! `DO` block's text is kept whole, so its PL/pgSQL body is read too.

use std::collections::BTreeMap;

use pg_query::NodeRef;
use pg_query::protobuf::{self, a_const::Val, node::Node as N};

use super::Check;
use crate::audit::{CheckInfo, Context, Finding, Severity, function_body};
use crate::catalog::StatementLog;
use crate::quote::{display_ident, ident, literal};

pub const BOUND_AT_SESSION_LEVEL: Check = Check {
    info: CheckInfo {
        id: "TENANT_BOUND_AT_SESSION_LEVEL",
        severity: Severity::Error,
        title: "The application binds the tenant for the whole session, not the transaction",
        why: "pg_stat_statements recorded a `SET app.current_tenant_id = …` without LOCAL, or a `set_config('app.current_tenant_id', …, false)`. Either outlives COMMIT: on a pooled connection (an application pool, PgBouncer) the next request starts bound to the previous request's tenant, and one that forgets to bind, or fails before binding, reads and writes that tenant's rows through the policies. An error where the statement ran as a role subject to RLS (neither superuser nor BYPASSRLS); a warning for a role that bypasses RLS, or one since dropped. Only statements pg_stat_statements still holds are seen (since its last reset, within pg_stat_statements.max); `set_config($1, $2, $3)`, its constants replaced, cannot be decided. Info when the log cannot be read: not preloaded, SET statements not tracked, or other roles' query text hidden from the auditing role.",
        fix: "Bind inside each request's transaction: BEGIN; SET LOCAL app.current_tenant_id = …; … COMMIT; or SELECT set_config('app.current_tenant_id', $1, true) as the transaction's first statement.",
    },
    run: read_statement_log,
};

const PRELOAD_AND_GRANT: &str = "Preload it (shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, a restart) and let the auditing role read it (USAGE on the extension's schema, SELECT on the view), then audit again";
const TRACK_TOP: &str =
    "ALTER SYSTEM SET pg_stat_statements.track = 'top'; SELECT pg_reload_conf();";
const TRACK_UTILITY: &str =
    "ALTER SYSTEM SET pg_stat_statements.track_utility = on; SELECT pg_reload_conf();";

fn read_statement_log(ctx: &Context) -> Vec<Finding> {
    let log = match &ctx.posture.statement_log {
        StatementLog::NotInstalled => return Vec::new(),
        StatementLog::Unreadable(message) => {
            return vec![unreadable(
                format!("pg_stat_statements could not be read: {message}"),
                PRELOAD_AND_GRANT.into(),
            )];
        }
        StatementLog::Read(log) => log,
    };
    let mut out = Vec::new();
    if log.track == "none" {
        out.push(unreadable(
            "pg_stat_statements.track = none: no statement is recorded".into(),
            TRACK_TOP.into(),
        ));
    } else if !log.track_utility {
        out.push(unreadable(
            "pg_stat_statements.track_utility = off: SET statements are not recorded, only set_config calls".into(),
            TRACK_UTILITY.into(),
        ));
    }
    if !log.all_roles {
        let me = &ctx.snapshot.current_user;
        out.push(unreadable(
            format!(
                "{me} sees the query text of its own statements only (neither superuser nor a member of pg_read_all_stats): other roles' SET statements are hidden from this check"
            ),
            format!("GRANT pg_read_all_stats TO {};", ident(me)),
        ));
    }
    out.extend(session_bindings(ctx, &log.statements));
    out
}

fn unreadable(found: String, fix: String) -> Finding {
    let mut finding =
        BOUND_AT_SESSION_LEVEL
            .info
            .finding("extension pg_stat_statements", found, fix);
    finding.severity = Severity::Info;
    finding
}

fn session_bindings(
    ctx: &Context,
    statements: &[crate::catalog::RecordedStatement],
) -> Vec<Finding> {
    // The same text by the same role may be recorded more than once
    // (top-level and nested, or under two query ids).
    let mut calls: BTreeMap<(&str, &str), (i64, String)> = BTreeMap::new();
    for s in statements {
        if let Some(setting) = binds_for_session(&s.query, &ctx.tenant_settings) {
            let entry = calls
                .entry((s.query.as_str(), s.role.as_str()))
                .or_insert((0, setting));
            entry.0 += s.calls;
        }
    }
    // `set_config($1, $2, $3)`: the constants were replaced, so whether it
    // binds per transaction or per session cannot be read. Said once per
    // role subject to RLS, as info: a correct `…, true)` looks the same.
    let mut undecided: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    for s in statements {
        let subject_to_rls = ctx
            .posture
            .role_attributes
            .get(&s.role)
            .is_some_and(|a| !a.superuser && !a.bypass_rls);
        if subject_to_rls && undecided_set_config(&s.query, &ctx.tenant_settings) {
            let entry = undecided
                .entry(s.role.as_str())
                .or_insert((0, s.query.as_str()));
            entry.0 += s.calls;
        }
    }
    let undecided = undecided.into_iter().map(|(role, (calls, query))| {
        let mut finding = BOUND_AT_SESSION_LEVEL.info.finding(
            format!("role {role}"),
            format!(
                "{role} ran set_config with its arguments recorded as parameters ({calls} call(s), e.g. \"{}\"): pg_stat_statements replaced the constants, so whether it binds the tenant per transaction (true) or for the session (false) cannot be read here",
                shortened(query)
            ),
            "Check that the application passes true as set_config's third argument (or uses SET LOCAL)".to_string(),
        );
        finding.severity = Severity::Info;
        finding
    });
    let decided: Vec<Finding> = calls
        .into_iter()
        .map(|((query, role), (calls, setting))| {
            let mut finding = BOUND_AT_SESSION_LEVEL.info.finding(
                format!("statement \"{}\" by {role}", shortened(query)),
                format!(
                    "{role} ran it {calls} time(s): it binds {setting} for the rest of the session, so the next request on the same pooled connection starts as that tenant"
                ),
                format!(
                    "SET LOCAL {} = …; (or SELECT set_config({}, …, true);) inside each request's transaction",
                    setting_name(&setting),
                    literal(&setting)
                ),
            );
            // Severity follows reach: a session subject to RLS reads and
            // writes the bound tenant's rows through the policies.
            let unreached = match ctx.posture.role_attributes.get(role) {
                Some(a) if a.superuser || a.bypass_rls => Some(format!(
                    "{role} bypasses RLS itself; the binding reaches whatever role its session later SETs ROLE to"
                )),
                Some(_) => None,
                None => Some(format!("role {role} no longer exists")),
            };
            if let Some(why) = unreached {
                finding.severity = Severity::Warning;
                finding.found.push_str(&format!(" ({why})"));
            }
            finding
        })
        .collect();
    decided.into_iter().chain(undecided).collect()
}

/// Whether `query` calls `set_config` with an `is_local` argument that is no
/// longer a constant (pg_stat_statements' `$n`), on a tenant setting or on a
/// setting that is no longer a constant either.
fn undecided_set_config(query: &str, tenant_settings: &[String]) -> bool {
    let Ok(parsed) = pg_query::parse(query, pg_query::ParserOptions::default()) else {
        return false;
    };
    parsed.protobuf.nodes().into_iter().any(|(node, ..)| {
        let NodeRef::FuncCall(call) = node else {
            return false;
        };
        let is_set_config = call.funcname.last().is_some_and(
            |n| matches!(&n.node, Some(N::String(s)) if s.sval.eq_ignore_ascii_case("set_config")),
        );
        if !is_set_config || call.args.len() != 3 || constant(&call.args[2]).is_some() {
            return false;
        }
        match constant(&call.args[0]) {
            Some(name) => tenant_settings
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&name)),
            None => true,
        }
    })
}

/// A setting's name as SET takes it: `app.current_tenant_id`, each part
/// quoted only where it needs to be.
fn setting_name(setting: &str) -> String {
    setting
        .split('.')
        .map(display_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Collapsed whitespace, at most 80 characters.
fn shortened(query: &str) -> String {
    let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(79) {
        Some((end, _)) => format!("{}…", &one_line[..end]),
        None => one_line,
    }
}

/// The tenant setting `query` binds for the session, if it does so in a way
/// its recorded text still shows: a top-level `SET [SESSION] name = …`, or
/// a `set_config('name', …, false)` whose name and `false` survived, also
/// inside a PL/pgSQL `DO` block (whose text pg_stat_statements keeps whole).
fn binds_for_session(query: &str, tenant_settings: &[String]) -> Option<String> {
    // A PL/pgSQL body's pieces may be an assignment or a bare expression.
    let parsed = [
        pg_query::ParserOptions::default(),
        pg_query::ParserOptions::PLPGSQL_ASSIGN1,
        pg_query::ParserOptions::PLPGSQL_EXPR,
    ]
    .into_iter()
    .find_map(|options| pg_query::parse(query, options).ok())?;
    let tenant = |name: &str| {
        tenant_settings
            .iter()
            .find(|s| s.eq_ignore_ascii_case(name))
            .cloned()
    };
    for raw in &parsed.protobuf.stmts {
        match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
            Some(N::VariableSetStmt(set))
                if set.kind == protobuf::VariableSetKind::VarSetValue as i32 && !set.is_local =>
            {
                if let Some(setting) = tenant(&set.name) {
                    return Some(setting);
                }
            }
            Some(N::DoStmt(block)) => {
                let found = plpgsql_body(block)
                    .and_then(function_body::plpgsql_queries)
                    .into_iter()
                    .flatten()
                    .find_map(|q| binds_for_session(&q, tenant_settings));
                if found.is_some() {
                    return found;
                }
            }
            _ => {}
        }
    }
    // `nodes()` does not descend into a PL/pgSQL assignment's value: walk it on its own.
    let assigned: Vec<N> = parsed
        .protobuf
        .stmts
        .iter()
        .filter_map(|raw| match raw.stmt.as_ref()?.node.as_ref()? {
            N::PlassignStmt(assignment) => Some(N::SelectStmt(assignment.val.clone()?)),
            _ => None,
        })
        .collect();
    let nodes = parsed
        .protobuf
        .nodes()
        .into_iter()
        .chain(assigned.iter().flat_map(N::nodes));
    nodes.map(|(node, ..)| node).find_map(|node| {
        let NodeRef::FuncCall(call) = node else {
            return None;
        };
        let name = call.funcname.last().and_then(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })?;
        if !name.eq_ignore_ascii_case("set_config") || call.args.len() != 3 {
            return None;
        }
        let setting = tenant(&constant(&call.args[0])?)?;
        (constant(&call.args[2])? == "false").then_some(setting)
    })
}

/// The body of a `DO` block written in PL/pgSQL (the default language).
fn plpgsql_body(block: &protobuf::DoStmt) -> Option<&str> {
    let option = |name: &str| {
        block.args.iter().find_map(|arg| match arg.node.as_ref()? {
            N::DefElem(d) if d.defname == name => match d.arg.as_ref()?.node.as_ref()? {
                N::String(s) => Some(s.sval.as_str()),
                _ => None,
            },
            _ => None,
        })
    };
    match option("language") {
        None => option("as"),
        Some(language) if language.eq_ignore_ascii_case("plpgsql") => option("as"),
        Some(_) => None,
    }
}

/// A constant's value as text (`false` for every spelling of false): a
/// string or boolean literal, possibly cast. `None` for a `$n` or
/// any expression.
fn constant(node: &protobuf::Node) -> Option<String> {
    match node.node.as_ref()? {
        N::TypeCast(cast) => constant(cast.arg.as_ref()?),
        N::AConst(c) => match c.val.as_ref()? {
            Val::Boolval(b) => Some(b.boolval.to_string()),
            Val::Sval(s) => Some(match s.sval.to_ascii_lowercase().as_str() {
                "f" | "fa" | "fal" | "fals" | "false" | "n" | "no" | "of" | "off" | "0" => {
                    "false".to_string()
                }
                _ => s.sval.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{binds_for_session, setting_name, shortened};

    fn binds(query: &str) -> Option<String> {
        binds_for_session(query, &["app.current_tenant_id".to_string()])
    }

    #[test]
    fn a_session_level_set_of_the_tenant_setting_binds_the_session() {
        for query in [
            "SET app.current_tenant_id = '42'",
            "SET SESSION app.current_tenant_id TO 'abc'",
            "SET app.current_tenant_id = $1",
            "set APP.CURRENT_TENANT_ID = $1",
            "SELECT set_config('app.current_tenant_id', '44', false)",
            "SELECT pg_catalog.set_config('app.current_tenant_id'::text, $1, 'off')",
            "SELECT 1 FROM (SELECT set_config('app.current_tenant_id', $1, false)) x",
            "DO $$ BEGIN PERFORM set_config('app.current_tenant_id', '46', false); END $$",
            "DO $$ DECLARE t text; BEGIN t := set_config('app.current_tenant_id', '46', 'f'); END $$",
            "DO LANGUAGE plpgsql $$ BEGIN SET app.current_tenant_id = '47'; END $$",
        ] {
            assert_eq!(
                binds(query).as_deref(),
                Some("app.current_tenant_id"),
                "{query}"
            );
        }
    }

    #[test]
    fn local_bindings_other_settings_and_undecidable_calls_are_not_session_bindings() {
        for query in [
            "SET LOCAL app.current_tenant_id = '43'",
            "SET LOCAL app.current_tenant_id = $1",
            "RESET app.current_tenant_id",
            "SET app.current_tenant_id TO DEFAULT",
            "SET app.other = '1'",
            "SET lock_timeout = '1s'",
            "SELECT set_config('app.current_tenant_id', '45', true)",
            "SELECT set_config($1, $2, $3)",
            "PREPARE p(text) AS SELECT set_config($2, $1, $3)",
            "SELECT set_config('app.current_tenant_id', $1, $2)",
            "SELECT current_setting('app.current_tenant_id', true)",
            "ALTER ROLE app SET app.current_tenant_id = '1'",
            "<insufficient privilege>",
            "DO $$ BEGIN PERFORM set_config('app.current_tenant_id', '46', true); END $$",
            "DO $$ BEGIN SET LOCAL app.current_tenant_id = '47'; END $$",
            "DO LANGUAGE plperl $$ spi_exec_query(q{SET app.current_tenant_id = '1'}) $$",
        ] {
            assert_eq!(binds(query), None, "{query}");
        }
    }

    #[test]
    fn the_fix_names_the_setting_as_set_takes_it() {
        assert_eq!(
            setting_name("app.current_tenant_id"),
            "app.current_tenant_id"
        );
        assert_eq!(setting_name("app.Tenant"), "app.\"Tenant\"");
    }

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(shortened("SET  x\n = 1"), "SET x = 1");
        let long = format!("SELECT {}", "a, ".repeat(40));
        let short = shortened(&long);
        assert_eq!(short.chars().count(), 80);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn set_config_whose_constants_were_replaced_is_undecided() {
        let tenant = vec!["app.current_tenant_id".to_string()];
        assert!(super::undecided_set_config(
            "SELECT set_config($1, $2, $3)",
            &tenant
        ));
        assert!(super::undecided_set_config(
            "SELECT set_config('app.current_tenant_id', $1, $2)",
            &tenant
        ));
        assert!(!super::undecided_set_config(
            "SELECT set_config('app.current_tenant_id', $1, true)",
            &tenant
        ));
        assert!(!super::undecided_set_config(
            "SELECT set_config('app.other', $1, $2)",
            &tenant
        ));
    }
}
