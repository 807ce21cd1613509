//! `rlsctl audit`: what stands between a runtime role and another tenant's rows.
//!
//! Reads one catalog snapshot (the same live-state model `plan` uses, plus the
//! posture facts in `catalog::posture`), runs every check in [`checks`] over
//! it, and reports findings. Each check is a small function with an id, a
//! severity and a why; its test builds the broken setup on a real server.

pub mod checks;
pub mod expression_tree;
pub mod function_body;
mod reader;
pub mod report;
mod run;

pub use reader::Connecting;
pub use run::{AuditError, Target, audit, audit_with_reader};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::catalog::{Path, Posture, Schema, Snapshot};
use crate::model::{Policy, Privilege, Table};
use crate::quote::QualifiedName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What a check is, for reports and `rlsctl explain`.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

impl CheckInfo {
    pub fn finding(
        &self,
        object: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            id: self.id,
            severity: self.severity,
            object: object.into(),
            found: found.into(),
            why: self.why,
            fix: fix.into(),
            accepted: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    /// The object it is about: `table public.projects`, `role app_user`, …
    pub object: String,
    pub found: String,
    pub why: &'static str,
    /// The SQL or spec change that fixes it.
    pub fix: String,
    /// The reason given in the spec when this is a declared exception.
    pub accepted: Option<String>,
}

/// An exception the spec declares: the finding shows as accepted, not hidden.
#[derive(Debug, Clone)]
pub struct Exception {
    pub id: String,
    pub object: String,
    pub reason: String,
}

/// Everything a check may look at.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub posture: &'a Posture,
    pub runtime_roles: BTreeSet<String>,
    /// Roles the spec says must reach no tenant's rows (`no_tenant_access:`).
    pub no_access_roles: BTreeSet<String>,
    /// Every role that reaches rows as itself, with the roles it can act as
    /// (see `Posture::paths`): the runtime and no-access roles, and every
    /// LOGIN role that is neither superuser nor BYPASSRLS (those bypass RLS
    /// anyway and are reported as such), except declared maintenance roles.
    pub reaching_roles: BTreeMap<String, BTreeMap<String, Path>>,
    /// Tenant tables and their tenant column: the declared ones with a spec,
    /// otherwise every table that has the tenant column.
    pub tenant_tables: BTreeMap<QualifiedName, String>,
    pub tenant_column: String,
    pub context_function: Option<QualifiedName>,
    /// The settings that carry the tenant (`app.current_tenant_id`, `request.jwt.claims`).
    pub tenant_settings: Vec<String>,
    /// Policy expressions read as trees, each distinct one once.
    pub expressions: expression_tree::Analyses,
    /// The day of the audit (UTC), for dates such as a major's end of life.
    pub today: time::Date,
}

impl Context<'_> {
    pub fn table(&self, name: &QualifiedName) -> Option<&Table> {
        self.snapshot.state.tables.get(name)
    }

    pub fn tenant_tables(&self) -> impl Iterator<Item = (&Table, &str)> {
        self.tenant_tables
            .iter()
            .filter_map(|(name, column)| Some((self.table(name)?, column.as_str())))
    }

    /// `role` and every role it can act as (membership, transitively):
    /// inheriting rights, or by `SET ROLE` where the membership allows it.
    pub fn reach(&self, role: &str) -> BTreeSet<String> {
        self.posture.reach(role)
    }

    /// Every role `role` can act as, with how (see `Posture::paths`).
    pub fn paths(&self, role: &str) -> BTreeMap<String, Path> {
        self.posture.paths(role)
    }

    /// `role` and the roles it may `SET ROLE` to: the only way to take on
    /// another role's SUPERUSER or BYPASSRLS, which are never inherited.
    pub fn can_set_role(&self, role: &str) -> BTreeSet<String> {
        self.posture.can_set_role(role)
    }

    /// Superuser or BYPASSRLS: never subject to any policy.
    pub fn bypasses(&self, role: &str) -> bool {
        self.snapshot
            .state
            .roles
            .get(role)
            .is_some_and(|r| r.superuser || r.bypass_rls)
    }

    /// Whether `role` reads `table` without its policies (bypass, or owner without FORCE).
    pub fn reads_past_policies(&self, role: &str, table: &Table) -> bool {
        !table.rls_enabled
            || self.can_set_role(role).iter().any(|r| self.bypasses(r))
            || (!table.rls_forced && self.reach(role).contains(&table.owner))
    }

    /// Whether a grant list (or a policy's TO list) includes a runtime role.
    pub fn includes_runtime(&self, grantees: &BTreeSet<String>) -> bool {
        grantees.contains("PUBLIC")
            || self.runtime_roles.iter().any(|r| {
                self.reach(r)
                    .iter()
                    .any(|reached| grantees.contains(reached))
            })
    }

    pub fn policy_applies_to_runtime(&self, policy: &Policy) -> bool {
        self.includes_runtime(&policy.roles)
    }

    fn superuser(&self, role: &str) -> bool {
        self.snapshot
            .state
            .roles
            .get(role)
            .is_some_and(|r| r.superuser)
    }

    /// What the runtime roles may do to `table`: table and column grants to
    /// them, to a role they reach or to PUBLIC; everything when one reaches
    /// the table's owner or a superuser.
    pub fn runtime_privileges(&self, table: &Table) -> BTreeSet<Privilege> {
        let columns = self.posture.column_grants.get(&table.name);
        let mut out = BTreeSet::new();
        for role in &self.runtime_roles {
            let reach = self.reach(role);
            let superuser = self.can_set_role(role).iter().any(|r| self.superuser(r));
            if superuser || reach.contains(&table.owner) {
                return Privilege::ALL.into_iter().collect();
            }
            for (grantee, privileges) in table.grants.iter().chain(columns.into_iter().flatten()) {
                if grantee == "PUBLIC" || reach.contains(grantee) {
                    out.extend(privileges.iter().copied());
                }
            }
        }
        out
    }

    /// Who holds `privilege` on `table` by a grant (to the table or, for
    /// column privileges, one of its columns): PUBLIC once if granted to it,
    /// then each role of `reaching_roles` granted it directly or through a
    /// membership. Roles that are or can become the table's owner are left
    /// out: ownership is RUNTIME_OWNS_TENANT_TABLE's, and an admin that owns
    /// the table is meant to hold everything.
    pub fn holders(&self, table: &Table, privilege: Privilege) -> Vec<Holding> {
        let columns = self.posture.column_grants.get(&table.name);
        let grantees: BTreeSet<&String> = table
            .grants
            .iter()
            .chain(columns.into_iter().flatten())
            .filter(|(_, privileges)| privileges.contains(&privilege))
            .map(|(grantee, _)| grantee)
            .collect();
        let mut out = Vec::new();
        if grantees.iter().any(|g| *g == "PUBLIC") {
            out.push(Holding {
                role: "PUBLIC".into(),
                grantee: "PUBLIC".into(),
                path: Path::Itself,
            });
        }
        for (role, paths) in &self.reaching_roles {
            if paths.contains_key(&table.owner) {
                continue;
            }
            let mut via: Vec<(&String, &Path)> = grantees
                .iter()
                .filter(|g| **g != "PUBLIC")
                .filter_map(|g| Some((*g, paths.get(*g)?)))
                .collect();
            via.sort_by_key(|(_, path)| !matches!(path, Path::Itself));
            if let Some((grantee, path)) = via.first() {
                out.push(Holding {
                    role: role.clone(),
                    grantee: (*grantee).clone(),
                    path: (*path).clone(),
                });
            }
        }
        out
    }

    /// Schemas a runtime role may CREATE in: (schema, runtime role, the role
    /// the right comes through). Superusers are left out: they may do
    /// anything, which RUNTIME_SUPERUSER reports.
    pub fn runtime_creatable_schemas(&self) -> Vec<CreateRight<'_>> {
        let mut out = Vec::new();
        for role in &self.runtime_roles {
            if self.can_set_role(role).iter().any(|r| self.superuser(r)) {
                continue;
            }
            let reach = self.reach(role);
            for schema in &self.posture.schemas {
                if let Some(via) = schema.creator_among(&reach) {
                    out.push(CreateRight {
                        schema,
                        role,
                        via: via.to_string(),
                    });
                }
            }
        }
        out
    }
}

/// A role holding a privilege on a table, and the grant it comes through.
#[derive(Debug, Clone)]
pub struct Holding {
    /// The role that holds it, or `PUBLIC` for a grant to every role.
    pub role: String,
    /// The role the privilege is granted to.
    pub grantee: String,
    pub path: Path,
}

impl Holding {
    /// `app may TRUNCATE it (…how…)`.
    pub fn describe(&self, privilege: &str) -> String {
        match &self.path {
            _ if self.role == "PUBLIC" => {
                format!("PUBLIC (every role) may {privilege} it")
            }
            Path::Itself => format!("{} may {privilege} it (granted to {0})", self.role),
            path => format!(
                "{} may {privilege} it: {}, which is granted {privilege}",
                self.role,
                path.describe(&self.role, &self.grantee)
            ),
        }
    }

    /// Revokes the grant, or, when it comes through a membership, the
    /// membership (the group's grant may be right for its other members).
    pub fn fix(&self, privilege: &str, table: &QualifiedName) -> String {
        let revoke_grant = |from: &str| {
            let from = if from == "PUBLIC" {
                from.to_string()
            } else {
                crate::quote::ident(from)
            };
            format!("REVOKE {privilege} ON {} FROM {from};", table.quoted())
        };
        match &self.path {
            Path::Itself => revoke_grant(&self.grantee),
            Path::Inherits => format!(
                "REVOKE {} FROM {}; (or {})",
                crate::quote::ident(&self.grantee),
                crate::quote::ident(&self.role),
                revoke_grant(&self.grantee)
            ),
            Path::SetRole(to) => format!(
                "REVOKE {} FROM {}; (or {})",
                crate::quote::ident(to),
                crate::quote::ident(&self.role),
                revoke_grant(&self.grantee)
            ),
        }
    }
}

/// A runtime role's right to CREATE in a schema.
pub struct CreateRight<'a> {
    pub schema: &'a Schema,
    pub role: &'a str,
    /// The role holding the right: the runtime role, one it reaches, or PUBLIC.
    pub via: String,
}

impl CreateRight<'_> {
    pub fn describe(&self) -> String {
        if self.via == self.role {
            format!("{} can CREATE in schema {}", self.role, self.schema.name)
        } else {
            format!(
                "{} can CREATE in schema {} (through {})",
                self.role, self.schema.name, self.via
            )
        }
    }
}

/// Whether a deparsed expression mentions `column`.
pub fn mentions_column(expression: &str, column: &str) -> bool {
    let quoted = crate::quote::display_ident(column);
    let bytes = expression.as_bytes();
    expression.match_indices(quoted.as_str()).any(|(i, _)| {
        let before = i.checked_sub(1).map(|b| bytes[b]);
        let after = bytes.get(i + quoted.len()).copied();
        let boundary = |c: Option<u8>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_'));
        // `p.tenant_id` counts; `other_tenant_id` does not.
        boundary(before) && boundary(after)
    })
}

/// Runs every check; declared exceptions become accepted findings.
pub fn run(ctx: &Context, exceptions: &[Exception]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = checks::ALL
        .iter()
        .flat_map(|check| (check.run)(ctx))
        .collect();
    // By (id, object), the first declared winning: a spec covering 10,000
    // tables declares thousands of exceptions, and scanning them all for
    // each of tens of thousands of findings took longer than the checks.
    let mut accepted: HashMap<(&str, &str), &str> = HashMap::with_capacity(exceptions.len());
    for e in exceptions {
        accepted
            .entry((e.id.as_str(), e.object.as_str()))
            .or_insert(e.reason.as_str());
    }
    for finding in &mut findings {
        if let Some(reason) = accepted.get(&(finding.id, finding.object.as_str())) {
            finding.accepted = Some((*reason).to_string());
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(b.id))
            .then(a.object.cmp(&b.object))
    });
    findings
}

/// Looks a check up by id, for `rlsctl explain`.
pub fn explain(id: &str) -> Option<CheckInfo> {
    known_findings().find(|info| info.id.eq_ignore_ascii_case(id))
}

/// Every finding audit can report, posture checks first, then drift.
pub fn known_findings() -> impl Iterator<Item = CheckInfo> {
    checks::ALL
        .iter()
        .map(|c| c.info)
        .chain(checks::drift::INFOS.iter().copied())
        .chain(checks::maintenance::INFOS.iter().copied())
        .chain(checks::backup::INFOS.iter().copied())
        .chain(checks::bypass::INFOS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::mentions_column;

    /// Every id `rlsctl explain` knows is in the README's finding table.
    #[test]
    fn the_readme_lists_every_finding_id() {
        let readme = include_str!("../../README.md");
        let ids = super::checks::ALL
            .iter()
            .map(|c| c.info.id)
            .chain(super::checks::drift::INFOS.iter().map(|i| i.id))
            .chain(super::checks::maintenance::INFOS.iter().map(|i| i.id));
        for id in ids {
            assert!(
                readme.contains(&format!("`{id}`")),
                "{id} is missing from the README"
            );
            assert!(super::explain(id).is_some(), "explain {id}");
        }
    }

    #[test]
    fn column_mentions_respect_word_boundaries() {
        assert!(mentions_column(
            "(tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id))",
            "tenant_id"
        ));
        assert!(mentions_column("(p.tenant_id = 1)", "tenant_id"));
        assert!(!mentions_column("(other_tenant_id = 1)", "tenant_id"));
        assert!(!mentions_column("true", "tenant_id"));
        assert!(mentions_column("(\"Org\" = 'x')", "Org"));
    }
}
