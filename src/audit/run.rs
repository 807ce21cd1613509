//! Collects one snapshot and turns it into a [`Report`].

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::reader::{Aside, Connecting};
use super::report::{Report, RoleState, Summary, TableState};
use super::{Context, Exception, checks};
use crate::catalog::{self, Scope};
use crate::desired::desired_state;
use crate::diff::{Options, diff};
use crate::errors::database_message;
use crate::normalize::normalize;
use crate::normalize::recorded::server_is_read_only;
use crate::plan::{Passwords, render};
use crate::quote::QualifiedName;
use crate::spec::{Access, Spec, TenantSource};

/// What to audit against: a spec, or flags for a database rlsctl did not build.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: Option<Spec>,
    /// Runtime roles; from the spec unless given.
    pub roles: Vec<String>,
    pub tenant_column: String,
    pub context_function: QualifiedName,
    pub tenant_settings: Vec<String>,
}

impl Target {
    pub fn from_spec(spec: Spec) -> Target {
        let settings = match &spec.tenancy.source {
            TenantSource::Setting(name) => vec![name.clone()],
            TenantSource::JwtClaim { claims_setting, .. } => vec![claims_setting.clone()],
            TenantSource::Role(_) => Vec::new(),
        };
        Target {
            roles: spec.runtime_roles().map(|r| r.name.clone()).collect(),
            tenant_column: spec.tenancy.column.clone(),
            context_function: spec.tenancy.function.clone(),
            tenant_settings: settings,
            spec: Some(spec),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Spec(#[from] crate::spec::SpecError),
    #[error("{0}")]
    Normalize(#[from] crate::normalize::NormalizeError),
    #[error("{context}: {}", database_message(source))]
    Database {
        context: &'static str,
        source: sqlx::Error,
    },
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> AuditError {
    move |source| AuditError::Database { context, source }
}

/// Runs the audit. Read-only: everything happens in a transaction that is
/// rolled back (drift detection deparses spec expressions on temporary tables,
/// or, on a hot standby or with a read-only credential, uses the deparses the
/// last apply recorded).
pub async fn audit(conn: &mut PgConnection, target: &Target) -> Result<Report, AuditError> {
    audit_with_reader(conn, None, target).await
}

/// [`audit`], with a second connection to the same database being opened
/// (`reader`) to read the posture alongside (see [`super::reader`]).
pub async fn audit_with_reader(
    conn: &mut PgConnection,
    reader: Option<Connecting>,
    target: &Target,
) -> Result<Report, AuditError> {
    let aside = match (reader, conn.server_version_num()) {
        (Some(reader), Some(version)) => Some(Aside::start(reader, version)),
        _ => None,
    };
    let mut tx = conn.begin().await.map_err(db("starting a transaction"))?;
    // The catalog reads join tens of thousands of rows at 10,000 tables,
    // which prices some above `jit_above_cost`; compiling them costs more
    // than it saves (measured: ~40 ms at bind on the key read alone).
    // Transaction-local, and the transaction is rolled back.
    sqlx::query("SET LOCAL jit = off")
        .execute(&mut *tx)
        .await
        .map_err(db("turning JIT compilation off for the audit"))?;
    let result = collect(&mut tx, target, aside).await;
    tx.rollback().await.map_err(db("rolling back"))?;
    result
}

async fn collect(
    conn: &mut PgConnection,
    target: &Target,
    aside: Option<Aside>,
) -> Result<Report, AuditError> {
    // Every declared role, not only runtime ones: drift covers them all.
    let mut roles = target.roles.clone();
    if let Some(spec) = &target.spec {
        roles.extend(spec.roles.iter().map(|r| r.name.clone()));
    }
    let scope = Scope {
        function: Some(target.context_function.clone()),
        roles,
        resolvers: target
            .spec
            .iter()
            .flat_map(|s| s.resolvers.iter().map(|r| r.name.clone()))
            .collect(),
    };
    let mut snapshot = catalog::read(conn, &scope)
        .await
        .map_err(db("reading the catalog"))?;
    if let Some(spec) = &target.spec {
        snapshot.state.object_grants = crate::grants::read_live(conn, spec)
            .await
            .map_err(db("reading the declared grants"))?;
    }
    let early = match aside {
        Some(aside) => aside.take(conn).await,
        None => None,
    };
    let posture = match early {
        Some(unnamed) => unnamed.finish(conn, &snapshot).await,
        None => catalog::read_posture(conn, &snapshot).await,
    }
    .map_err(db("reading the catalog"))?;

    // Every table with the tenant column is tenant data, declared or not;
    // declared tables may name their own tenant column.
    let mut tenant_tables: BTreeMap<QualifiedName, String> = snapshot
        .state
        .tables
        .values()
        .filter(|t| t.columns.contains_key(&target.tenant_column))
        .map(|t| (t.name.clone(), target.tenant_column.clone()))
        .collect();
    if let Some(spec) = &target.spec {
        tenant_tables.extend(
            spec.tables
                .iter()
                .map(|t| (t.name.clone(), t.column.clone())),
        );
    } else if tenant_tables.is_empty() {
        tenant_tables = tenant_tables_from_policies(&snapshot);
    }
    let runtime_roles: BTreeSet<String> = target.roles.iter().cloned().collect();
    let no_access_roles: BTreeSet<String> = target
        .spec
        .iter()
        .flat_map(|s| s.no_tenant_access.iter().map(|n| n.role.clone()))
        .collect();
    let maintenance: BTreeSet<&str> = target
        .spec
        .iter()
        .flat_map(|s| s.maintenance.iter().map(|m| m.role.as_str()))
        .collect();
    let reaching_roles = posture
        .role_attributes
        .iter()
        .filter(|(name, a)| {
            a.login && !a.superuser && !a.bypass_rls && !maintenance.contains(name.as_str())
        })
        .map(|(name, _)| name)
        .chain(runtime_roles.iter())
        .chain(no_access_roles.iter())
        .map(|role| (role.clone(), posture.paths(role)))
        .collect();
    let (context_function, tenant_settings) = match &target.spec {
        Some(_) => (
            target.context_function.clone(),
            target.tenant_settings.clone(),
        ),
        None => infer_tenant_context(&snapshot, &posture, &tenant_tables, target),
    };
    let ctx = Context {
        snapshot: &snapshot,
        posture: &posture,
        runtime_roles,
        no_access_roles,
        reaching_roles,
        tenant_tables,
        tenant_column: target.tenant_column.clone(),
        context_function: Some(context_function),
        tenant_settings,
        expressions: Default::default(),
        today: OffsetDateTime::now_utc().date(),
    };

    let mut exceptions = Vec::new();
    let mut drift = Vec::new();
    if let Some(spec) = &target.spec {
        let null_rows = crate::apply::null_tenant_rows(conn, spec, &snapshot.state)
            .await
            .map_err(db("counting rows without a tenant"))?;
        let (narrowed, waiting) = crate::apply::convergeable_now(spec, &snapshot.state, &null_rows);
        let spec = &crate::children::cover_children(&narrowed, &snapshot.state);
        crate::references::check(spec, &snapshot)?;
        let desired = desired_state(spec);
        let read_only = server_is_read_only(conn)
            .await
            .map_err(db("asking whether the server is read-only"))?;
        let normalized = normalize(
            conn,
            &desired,
            &snapshot.state,
            &spec.tenancy.column,
            read_only,
        )
        .await?;
        let mut changes = diff(
            &desired,
            &snapshot.state,
            &normalized.forms,
            &spec.tenancy.column,
            Options::default(),
        );
        changes.notices.extend(waiting);
        let statements = render(&changes.changes, &Passwords::Masked).unwrap_or_default();
        drift = checks::drift::findings(&changes, &statements);
        exceptions = spec_exceptions(spec);
    }

    let mut findings = super::run(&ctx, &exceptions);
    findings.extend(drift);
    if let Some(spec) = &target.spec {
        findings.extend(checks::maintenance::findings(&ctx, spec));
    }
    findings.extend(checks::backup::findings(&ctx, target.spec.as_ref()));
    if let Some(spec) = &target.spec {
        checks::bypass::accept_declared(&ctx, spec, &mut findings);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(b.id))
            .then(a.object.cmp(&b.object))
    });

    let tables: Vec<TableState> = ctx
        .tenant_tables()
        .map(|(t, column)| TableState {
            table: t.name.to_string(),
            rls_enabled: t.rls_enabled,
            rls_forced: t.rls_forced,
            policies: t.policies.keys().cloned().collect(),
            tenant_index: t
                .indexes
                .iter()
                .find(|i| i.valid && i.columns.first().map(String::as_str) == Some(column))
                .map(|i| i.name.clone()),
            owner: t.owner.clone(),
        })
        .collect();
    let roles = target
        .roles
        .iter()
        .filter_map(|name| snapshot.state.roles.get(name))
        .map(|r| RoleState {
            role: r.name.clone(),
            login: r.login,
            superuser: r.superuser,
            bypass_rls: r.bypass_rls,
            member_of: posture
                .memberships
                .get(&r.name)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        })
        .collect();
    let history = crate::history::recent(conn, 100)
        .await
        .map_err(db("reading the apply history"))?;

    Ok(Report {
        schema_version: super::report::SCHEMA_VERSION,
        generated_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        server_version: snapshot.server_version.clone(),
        database: snapshot.database.clone(),
        connected_as: snapshot.current_user.clone(),
        spec_hash: target.spec.as_ref().map(|s| s.hash.clone()),
        runtime_roles: target.roles.clone(),
        summary: Summary::of(&findings, tables.len()),
        findings,
        tables,
        roles,
        history,
        catalog_queries: snapshot.queries + posture.queries + 1,
    })
}

/// Without a spec, when no table has the tenant column given: the tables
/// whose RLS policies compare a column with a tenant context (a setting, a
/// zero-argument function), with that column (the one most of its policy
/// clauses compare, when they differ).
fn tenant_tables_from_policies(
    snapshot: &crate::catalog::Snapshot,
) -> BTreeMap<QualifiedName, String> {
    let mut out = BTreeMap::new();
    let mut read: std::collections::HashMap<&str, BTreeSet<String>> =
        std::collections::HashMap::new();
    for table in snapshot.state.tables.values() {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for policy in table.policies.values().filter(|p| p.permissive) {
            for text in policy.using.iter().chain(policy.with_check.iter()) {
                let columns = read.entry(text.as_str()).or_insert_with(|| {
                    super::expression_tree::columns_compared_with_context(text.as_str())
                });
                for column in columns.iter().cloned() {
                    if table.columns.contains_key(&column) {
                        *counts.entry(column).or_default() += 1;
                    }
                }
            }
        }
        if let Some((column, _)) = counts.into_iter().max_by_key(|(_, n)| *n) {
            out.insert(table.name.clone(), column);
        }
    }
    out
}

/// Without a spec, the context function and settings given (or defaulted)
/// on the command line may not be the ones this database uses: when no
/// tenant-table policy calls the given function, the function and settings
/// the policies compare with the tenant column are used instead (the
/// function most policies use, when they differ).
fn infer_tenant_context(
    snapshot: &crate::catalog::Snapshot,
    posture: &crate::catalog::Posture,
    tenant_tables: &BTreeMap<QualifiedName, String>,
    target: &Target,
) -> (QualifiedName, Vec<String>) {
    let given = &target.context_function;
    let called = posture
        .policy_calls
        .iter()
        .any(|((table, _), calls)| tenant_tables.contains_key(table) && calls.contains(given));
    let mut functions: BTreeMap<QualifiedName, usize> = BTreeMap::new();
    let mut settings: BTreeSet<String> = BTreeSet::new();
    // The generated policy text repeats on every table: read each once.
    let mut read: std::collections::HashMap<(&str, &str), _> = std::collections::HashMap::new();
    for (name, column) in tenant_tables {
        let Some(table) = snapshot.state.tables.get(name) else {
            continue;
        };
        for policy in table.policies.values() {
            let called = posture
                .policy_calls
                .get(&(name.clone(), policy.name.clone()));
            for text in policy.using.iter().chain(policy.with_check.iter()) {
                let (found_settings, found_functions) = read
                    .entry((text.as_str(), column.as_str()))
                    .or_insert_with(|| {
                        super::expression_tree::tenant_sources(text.as_str(), column)
                    })
                    .clone();
                settings.extend(found_settings);
                // Match the written name (maybe unqualified) to a called function.
                for written in found_functions {
                    let matched = called.into_iter().flatten().find(|f| {
                        written.last() == Some(&f.name)
                            && (written.len() == 1 || written.first() == Some(&f.schema))
                    });
                    if let Some(f) = matched {
                        *functions.entry(f.clone()).or_default() += 1;
                    }
                }
            }
        }
    }
    let function = if called {
        given.clone()
    } else {
        functions
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(f, _)| f)
            .unwrap_or_else(|| given.clone())
    };
    let mut all_settings = target.tenant_settings.clone();
    all_settings.extend(
        settings
            .into_iter()
            .filter(|s| !target.tenant_settings.contains(s)),
    );
    (function, all_settings)
}

/// Exceptions the spec declares: its own `exceptions:` and the cross-tenant
/// predicates, whose policies by design do not filter on the tenant.
fn spec_exceptions(spec: &Spec) -> Vec<Exception> {
    let mut out: Vec<Exception> = spec
        .exceptions
        .iter()
        .map(|e| Exception {
            id: e.finding.clone(),
            object: e.object.clone(),
            reason: e.reason.clone(),
        })
        .collect();
    // A declared resolver is a SECURITY DEFINER function that reads a
    // tenant table on purpose; its definition and callers are checked as drift.
    for resolver in &spec.resolvers {
        out.push(Exception {
            id: checks::paths::SECURITY_DEFINER_FUNCTION.info.id.to_string(),
            object: format!(
                "function {}({})",
                resolver.name,
                resolver.key_type.sql_name()
            ),
            reason: format!(
                "declared tenant resolver: returns the one tenant of a {} in {}, callable only by {}",
                resolver.key,
                resolver.table,
                resolver.roles.join(", ")
            ),
        });
    }
    for predicate in &spec.cross_tenant {
        for table in &spec.tables {
            let object = format!(
                "policy {}{} on {}",
                crate::spec::CROSS_TENANT_PREFIX,
                predicate.name,
                table.name
            );
            let mut ids = vec![checks::policies::WITHOUT_TENANT_FILTER.info.id];
            if predicate.access == Access::ReadWrite {
                ids.push(checks::policies::WRITE_WITHOUT_TENANT_CHECK.info.id);
            }
            for id in ids {
                out.push(Exception {
                    id: id.to_string(),
                    object: object.clone(),
                    reason: predicate.reason.clone(),
                });
            }
        }
    }
    out
}
