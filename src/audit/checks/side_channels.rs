//! What a tenant learns without reading another tenant's rows, and what its
//! isolation rests on: info findings, each with its mitigation.

use std::collections::BTreeSet;

use super::Check;
use crate::audit::{CheckInfo, Severity};
use crate::model::Privilege;

pub const SHARED_SEQUENCE: Check = Check {
    info: CheckInfo {
        id: "SEQUENCE_SHARED_ACROSS_TENANTS",
        severity: Severity::Info,
        title: "A tenant table numbers its rows from a sequence every tenant draws from",
        why: "Every tenant's inserts advance the same sequence: a tenant that inserts twice and compares the ids, or reads the sequence, learns how many rows the other tenants inserted in between (their activity, growth, order volume). Reported where the runtime role draws from it (INSERT on an identity column's table, or USAGE / UPDATE on a serial's sequence) or reads it (SELECT).",
        fix: "Key tenant tables with unguessable ids (uuid DEFAULT gen_random_uuid()), or number rows per tenant; REVOKE SELECT ON SEQUENCE <sequence> FROM <runtime role>; where only the count matters.",
    },
    run: |ctx| {
        let mut out = Vec::new();
        for seq in &ctx.posture.sequences {
            let Some(table) = ctx
                .tenant_tables
                .contains_key(&seq.table)
                .then(|| ctx.table(&seq.table))
                .flatten()
            else {
                continue;
            };
            let on_sequence: BTreeSet<&str> = ctx
                .runtime_roles
                .iter()
                .flat_map(|r| {
                    let reach = ctx.reach(r);
                    let owner = reach.contains(&seq.owner);
                    seq.grants
                        .iter()
                        .filter(move |(g, _)| owner || *g == "PUBLIC" || reach.contains(*g))
                        .flat_map(|(_, p)| p.iter().map(String::as_str))
                        .chain(
                            owner
                                .then_some(["USAGE", "SELECT", "UPDATE"])
                                .into_iter()
                                .flatten(),
                        )
                        .collect::<Vec<_>>()
                })
                .collect();
            let inserts = ctx.runtime_privileges(table).contains(&Privilege::Insert);
            let mut ways = Vec::new();
            if inserts
                && (seq.identity || on_sequence.contains("USAGE") || on_sequence.contains("UPDATE"))
            {
                ways.push(format!("draws from it on every INSERT into {}", table.name));
            }
            if on_sequence.contains("SELECT") {
                ways.push("reads its last value (SELECT)".to_string());
            }
            if ways.is_empty() {
                continue;
            }
            out.push(SHARED_SEQUENCE.info.finding(
                format!("sequence {}", seq.sequence),
                format!(
                    "numbers {}.{} for every tenant, and the runtime role {}: the gaps between its own ids count other tenants' inserts",
                    table.name,
                    seq.column,
                    ways.join(" and ")
                ),
                format!(
                    "ALTER TABLE {} ALTER COLUMN {} … DEFAULT gen_random_uuid() (a uuid key), or a per-tenant counter",
                    table.name.quoted(),
                    crate::quote::ident(&seq.column)
                ),
            ));
        }
        out
    },
};

pub const ACTIVITY_READABLE: Check = Check {
    info: CheckInfo {
        id: "STAT_ACTIVITY_READABLE",
        severity: Severity::Info,
        title: "Sessions of the shared runtime role see each other's query text",
        why: "pg_stat_activity shows a session the query text of every other session of the same role. All tenants' requests run as the one runtime role, so a literal in one tenant's SQL (an e-mail address, a search term) shows in any other tenant's session that reads the view, whatever the row policies say. Planner estimates (EXPLAIN, pg_class.reltuples) are computed over every tenant's rows too, and no grant closes that channel.",
        fix: "Send values as bound parameters (the view then shows $1), and in this database: REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC; (monitoring roles keep it through pg_read_all_stats)",
    },
    run: |ctx| {
        if !ctx.includes_runtime(&ctx.posture.activity_readers) {
            return Vec::new();
        }
        let through: Vec<&str> = ctx
            .posture
            .activity_readers
            .iter()
            .map(String::as_str)
            .collect();
        vec![ACTIVITY_READABLE.info.finding(
            "view pg_catalog.pg_stat_activity",
            format!(
                "the runtime role reads it (granted to {}): its sessions see each other's query text",
                through.join(", ")
            ),
            "REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;",
        )]
    },
};

pub const SETTING_SETTABLE: Check = Check {
    info: CheckInfo {
        id: "TENANT_SETTING_SETTABLE",
        severity: Severity::Info,
        title: "The tenant is whatever the session's setting says, and the runtime role can set it",
        why: "A custom setting (`app.current_tenant_id`, `request.jwt.claims`) can be SET by any session: isolation holds only while the runtime role runs no SQL of an attacker's choosing. An SQL injection, a query console or a compromised application server binds another tenant with one SET and reads its rows through the policies. This is the design of setting-based tenancy, reported so the trust it rests on is on record.",
        fix: "Keep arbitrary SQL away from the runtime role (parameterised queries only), and where that is not enough bind the tenant from something the session cannot forge: a context function that verifies a signed token (a JWT checked against a key the runtime role cannot read), or one login role per tenant. Accept it under `exceptions:` with the reason once decided.",
    },
    run: |ctx| {
        let Some(function) = &ctx.context_function else {
            return Vec::new();
        };
        let body = ctx
            .posture
            .functions
            .iter()
            .find(|f| &f.name == function)
            .map(|f| f.body.to_lowercase())
            .filter(|b| b.contains("current_setting"));
        let policy_texts: Vec<&str> = ctx
            .tenant_tables()
            .flat_map(|(t, _)| t.policies.values())
            .filter(|p| ctx.policy_applies_to_runtime(p))
            .flat_map(|p| p.using.iter().chain(p.with_check.iter()))
            .map(|e| e.as_str())
            .filter(|e| e.contains("current_setting("))
            .collect();
        if (body.is_none() && policy_texts.is_empty()) || ctx.runtime_roles.is_empty() {
            return Vec::new();
        }
        // The tenant settings actually read, of those the audit knows.
        let read: Vec<&str> = ctx
            .tenant_settings
            .iter()
            .filter(|s| {
                let s = s.to_lowercase();
                body.as_ref().is_some_and(|b| b.contains(&s))
                    || policy_texts.iter().any(|t| t.to_lowercase().contains(&s))
            })
            .map(String::as_str)
            .collect();
        let settings = if read.is_empty() {
            "the tenant setting".to_string()
        } else {
            read.join(", ")
        };
        vec![SETTING_SETTABLE.info.finding(
            format!("setting {settings}"),
            format!(
                "the tenant policies trust {settings}, which any session of the runtime role may SET or set_config"
            ),
            "verify a signed token in the context function, or one login role per tenant; or accept it under exceptions: with the reason",
        )]
    },
};
