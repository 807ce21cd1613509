//! Roles that take backups but are subject to row-level security.
//!
//! pg_dump sets `row_security = off` unless given `--enable-row-security`.
//! For a role that is subject to a table's policies that setting does not
//! bypass them: the table's COPY fails with "query would be affected by
//! row-level security policy", and the dump stops. With
//! `--enable-row-security` the policies filter the COPY instead, and the dump
//! succeeds holding only the rows they admit, none where no policy applies to
//! the role: a backup that restores to less than it was taken from.
//!
//! Roles are cluster-wide, so a role counts only when it is tied to this
//! database: declared under `backup_roles:`, or a member of
//! `pg_read_all_data` or a REPLICATION role that holds an explicit CONNECT
//! grant on this database or owns one of its tables. A role made for another
//! database of the same cluster is not this audit's business.

use std::collections::BTreeSet;

use crate::audit::{CheckInfo, Context, Finding, Severity};
use crate::model::{Policy, Table};
use crate::quote::ident;
use crate::spec::{Command, Spec};

pub const SUBJECT_TO_RLS: CheckInfo = CheckInfo {
    id: "BACKUP_ROLE_SUBJECT_TO_RLS",
    severity: Severity::Error,
    title: "A role that takes backups is subject to row-level security",
    why: "pg_dump sets row_security = off by default; for a role subject to a table's policies that is an error, not a bypass: the dump stops at the first such table with \"query would be affected by row-level security policy\". Run with --enable-row-security, pg_dump succeeds and writes only the rows the policies admit the role to (none on a FORCEd table where no policy names it): the backup is silently partial. Physical copies (pg_basebackup, streaming) are not filtered; logical dumps are.",
    fix: "As a superuser: ALTER ROLE <role> BYPASSRLS; (pg_dump then reads every row with its default settings), or declare `maintenance: [{role: <role>, access: read, reason: …}]`, apply, and run pg_dump --enable-row-security.",
};

pub const INFOS: &[CheckInfo] = &[SUBJECT_TO_RLS];

/// Predefined role whose members read every table: a backup role by design.
const READ_ALL_DATA: &str = "pg_read_all_data";

pub fn findings(ctx: &Context, spec: Option<&Spec>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (role, why) in backup_roles(ctx, spec) {
        // A declared role that does not exist takes no dump (DRIFT does not
        // cover it: apply never creates backup roles).
        let Some(attributes) = ctx.posture.role_attributes.get(&role) else {
            continue;
        };
        if attributes.superuser || attributes.bypass_rls {
            continue;
        }
        let admitted_by_maintenance: Option<String> = spec
            .and_then(|s| s.maintenance.iter().find(|m| m.role == role))
            .map(|m| m.policy());
        let reach = ctx.reach(&role);
        let subject: Vec<&Table> = ctx
            .snapshot
            .state
            .tables
            .values()
            .filter(|t| t.rls_enabled && (t.rls_forced || !reach.contains(&t.owner)))
            .filter(|t| {
                admitted_by_maintenance
                    .as_ref()
                    .is_none_or(|policy| !t.policies.contains_key(policy))
            })
            .collect();
        if subject.is_empty() {
            continue;
        }
        let empty = subject
            .iter()
            .filter(|t| !t.policies.values().any(|p| applies_to(p, &reach)))
            .count();
        let names: Vec<String> = subject.iter().map(|t| t.name.to_string()).collect();
        out.push(SUBJECT_TO_RLS.finding(
            format!("role {role}"),
            format!(
                "role {role} ({why}) is subject to row-level security on {} table(s): {}. pg_dump as {role} fails there with \"query would be affected by row-level security policy\" (its default row_security = off); with --enable-row-security it exits 0 and writes only the rows the policies admit{}",
                subject.len(),
                names.join(", "),
                if empty > 0 {
                    format!(": {empty} of these tables have no policy that applies to it and dump empty")
                } else {
                    String::new()
                }
            ),
            format!(
                "As a superuser: ALTER ROLE {} BYPASSRLS; or declare `maintenance: [{{role: {role}, access: read, reason: …}}]`, apply, and dump with pg_dump --enable-row-security",
                ident(&role)
            ),
        ));
    }
    out
}

/// Each backup role with how audit knows it is one.
fn backup_roles(ctx: &Context, spec: Option<&Spec>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = spec
        .into_iter()
        .flat_map(|s| &s.backup_roles)
        .map(|b| {
            (
                b.role.clone(),
                format!("declared a backup role: {}", b.reason),
            )
        })
        .collect();
    let declared: BTreeSet<String> = out.iter().map(|(r, _)| r.clone()).collect();
    let owners: BTreeSet<&String> = ctx
        .snapshot
        .state
        .tables
        .values()
        .map(|t| &t.owner)
        .collect();
    for (role, attributes) in &ctx.posture.role_attributes {
        if declared.contains(role) || !attributes.login {
            continue;
        }
        let kind = if ctx.reach(role).contains(READ_ALL_DATA) {
            "member of pg_read_all_data"
        } else if attributes.replication {
            "REPLICATION"
        } else {
            continue;
        };
        let tie = if ctx.posture.database_connectors.contains(role) {
            "granted CONNECT on this database"
        } else if owners.contains(role) {
            "owns tables in this database"
        } else {
            continue;
        };
        out.push((role.clone(), format!("{kind}, {tie}")));
    }
    out
}

/// Whether a policy admits `reach`'s rows to a read (pg_dump's COPY).
fn applies_to(policy: &Policy, reach: &BTreeSet<String>) -> bool {
    policy.permissive
        && matches!(policy.command, Command::All | Command::Select)
        && (policy.roles.contains("PUBLIC") || !policy.roles.is_disjoint(reach))
}
