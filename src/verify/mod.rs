//! Proof of isolation: act as the runtime role and watch the database refuse.
//!
//! For every tenant table, two made-up tenants A and B get probe rows (see
//! [`rows`]); then, with A bound exactly as the application binds it and the
//! session switched to the runtime role with `SET LOCAL ROLE`, each probe tries
//! to read, change, delete, insert or move B's data (see [`probes`]). Every
//! table's probes run in one transaction that is always rolled back, each probe
//! in a savepoint: verify leaves no row and no catalog change behind.
//!
//! The same table probes run as each declared cross-tenant role (what it
//! declares, no more) and as every role a runtime role may `SET ROLE` to;
//! views, partitions and inheritance children get the read probe, and the
//! connection the pooled-connection probe. The fresh-session unbound probes
//! run before anything else, while the setting is still undefined.
//!
//! Each cell of the result is PROVEN (the database refused, with evidence),
//! LEAK (with the key of the row that crossed tenants), or NOT PROVEN (why
//! the probe could not be run, or why the object failed): never a silent pass.

mod admin;
mod probes;
pub mod report;
mod role_tenants;
mod rows;
pub mod runtime_connection;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::catalog::{self, Scope};
use crate::errors::database_message;
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Access, Command, PolicySpec, ProbeValue, Spec, TenantSource, WhenUnbound};
use role_tenants::RoleTenants;

/// The columns of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    Read,
    Update,
    Delete,
    Insert,
    Move,
    UnboundRead,
    UnboundWrite,
    NullTenant,
    Existence,
    /// What the spec withholds (`commands:`) is refused on the tenant's own rows.
    Declared,
    /// Each extra policy the spec declares (`policies:`) has its declared
    /// effect, as the role it applies to.
    Policies,
    /// `--runtime-url`: the application's login is a proved runtime role
    /// that row-level security applies to.
    RuntimeRole,
}

impl Probe {
    /// The probes every tenant table gets.
    pub const EVERY_TABLE: [Probe; 9] = [
        Probe::Read,
        Probe::Update,
        Probe::Delete,
        Probe::Insert,
        Probe::Move,
        Probe::UnboundRead,
        Probe::UnboundWrite,
        Probe::NullTenant,
        Probe::Existence,
    ];

    /// Every column of the matrix; `declared` only where the spec withholds a
    /// write, `policies` only where it declares extra policies.
    pub const ALL: [Probe; 12] = [
        Probe::Read,
        Probe::Update,
        Probe::Delete,
        Probe::Insert,
        Probe::Move,
        Probe::UnboundRead,
        Probe::UnboundWrite,
        Probe::NullTenant,
        Probe::Existence,
        Probe::Declared,
        Probe::Policies,
        Probe::RuntimeRole,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Probe::Read => "read",
            Probe::Update => "update",
            Probe::Delete => "delete",
            Probe::Insert => "insert",
            Probe::Move => "move",
            Probe::UnboundRead => "unbound-read",
            Probe::UnboundWrite => "unbound-write",
            Probe::NullTenant => "null-tenant",
            Probe::Existence => "existence",
            Probe::Declared => "declared",
            Probe::Policies => "policies",
            Probe::RuntimeRole => "runtime-role",
        }
    }

    /// Two letters: the column heading of the 80-column matrix.
    pub fn short(self) -> &'static str {
        match self {
            Probe::Read => "rd",
            Probe::Update => "up",
            Probe::Delete => "dl",
            Probe::Insert => "in",
            Probe::Move => "mv",
            Probe::UnboundRead => "ur",
            Probe::UnboundWrite => "uw",
            Probe::NullTenant => "nt",
            Probe::Existence => "ex",
            Probe::Declared => "dc",
            Probe::Policies => "pl",
            Probe::RuntimeRole => "rr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Proven,
    /// A LEAK the spec accepts as a declared exception, with its reason.
    Accepted,
    NotProven,
    Leak,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Proven => "PROVEN",
            Verdict::Accepted => "ACCEPTED",
            Verdict::NotProven => "NOT PROVEN",
            Verdict::Leak => "LEAK",
        }
    }
}

/// One probe's result on one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub verdict: Verdict,
    /// What was tried and what happened, or why it could not be tried.
    pub detail: String,
    /// The key of the row that crossed tenants (LEAK only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
}

impl Cell {
    pub fn proven(detail: impl Into<String>) -> Cell {
        Cell {
            verdict: Verdict::Proven,
            detail: detail.into(),
            key: None,
        }
    }

    pub fn not_proven(detail: impl Into<String>) -> Cell {
        Cell {
            verdict: Verdict::NotProven,
            detail: detail.into(),
            key: None,
        }
    }

    pub fn leak(detail: impl Into<String>, key: serde_json::Value) -> Cell {
        Cell {
            verdict: Verdict::Leak,
            detail: detail.into(),
            key: Some(key),
        }
    }

    /// Several attempts make one cell: the worst verdict wins.
    pub fn combine(cells: Vec<Cell>) -> Cell {
        let worst = cells
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::NotProven);
        let chosen: Vec<&Cell> = cells.iter().filter(|c| c.verdict == worst).collect();
        let mut details: Vec<&str> = Vec::new();
        for cell in &chosen {
            if !details.contains(&cell.detail.as_str()) {
                details.push(&cell.detail);
            }
        }
        Cell {
            verdict: worst,
            detail: details.join("; "),
            key: chosen.iter().find_map(|c| c.key.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    View,
    /// A SECURITY DEFINER function callable with no argument.
    Function,
    /// A SECURITY DEFINER trigger, fired by an insert.
    Trigger,
    Partition,
    /// A child by table inheritance (`INHERITS`), not a partition.
    InheritanceChild,
    /// The pooled-connection probe: not an object, a property of the binding.
    Connection,
}

impl ObjectKind {
    /// What the text matrix adds after the object's name, if anything.
    pub fn label(self) -> Option<&'static str> {
        match self {
            ObjectKind::Table | ObjectKind::Connection => None,
            ObjectKind::View => Some("view"),
            ObjectKind::Function => Some("SECURITY DEFINER function"),
            ObjectKind::Trigger => Some("SECURITY DEFINER trigger"),
            ObjectKind::Partition => Some("partition"),
            ObjectKind::InheritanceChild => Some("inheritance child"),
        }
    }
}

/// One row of the matrix: one object probed as one runtime role.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    pub role: String,
    /// The runtime role that reached `role` by `SET ROLE` (absent when `role`
    /// is a runtime or declared cross-tenant role itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub object: String,
    pub kind: ObjectKind,
    pub cells: BTreeMap<Probe, Cell>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub proven: usize,
    pub leaks: usize,
    pub not_proven: usize,
    /// Leaks the spec accepts as exceptions (not counted in `leaks`).
    pub accepted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub schema_version: u32,
    pub database: String,
    /// The made-up tenant ids: A is bound, B is the one that must stay hidden.
    pub tenant_a: String,
    pub tenant_b: String,
    pub objects: Vec<ObjectResult>,
    pub summary: Summary,
    /// The tenant tables probed, with their tenant column.
    #[serde(skip)]
    pub tables: Vec<(QualifiedName, String)>,
}

impl Matrix {
    fn count(&mut self) {
        let mut summary = Summary::default();
        for cell in self.objects.iter().flat_map(|o| o.cells.values()) {
            match cell.verdict {
                Verdict::Proven => summary.proven += 1,
                Verdict::Accepted => summary.accepted += 1,
                Verdict::Leak => summary.leaks += 1,
                Verdict::NotProven => summary.not_proven += 1,
            }
        }
        self.summary = summary;
    }
}

/// An existence LEAK on a table whose global unique key the spec accepts
/// (a phone number one account only may hold) becomes ACCEPTED, its reason
/// beside what the probe saw: shown, not hidden.
fn accept_declared_oracles(
    objects: &mut [ObjectResult],
    accepted: &BTreeMap<QualifiedName, String>,
) {
    for object in objects.iter_mut() {
        let Some(reason) = accepted
            .iter()
            .find(|(table, _)| table.to_string() == object.object)
            .map(|(_, reason)| reason)
        else {
            continue;
        };
        if let Some(cell) = object.cells.get_mut(&Probe::Existence)
            && cell.verdict == Verdict::Leak
        {
            cell.verdict = Verdict::Accepted;
            cell.detail = format!("accepted in the spec ({reason}): {}", cell.detail);
        }
    }
}

/// How the application tells the database its tenant: always transaction-local.
#[derive(Debug, Clone)]
pub struct Binding {
    pub source: TenantSource,
}

impl Binding {
    /// The setting that carries the tenant (verify's own, never read by a
    /// policy, when tenants are roles).
    pub fn setting(&self) -> &str {
        match &self.source {
            TenantSource::Setting(name) => name,
            TenantSource::JwtClaim { claims_setting, .. } => claims_setting,
            TenantSource::Role(_) => ROLE_TENANT_SETTING,
        }
    }

    /// `set_config(setting, value, true)`, as the spec tells applications to do;
    /// `None` binds nothing (`''`, what a setting reads after a transaction ends).
    pub async fn bind(
        &self,
        conn: &mut PgConnection,
        tenant: Option<&Tenant>,
    ) -> Result<(), sqlx::Error> {
        let value = match (&self.source, tenant) {
            (_, None) => String::new(),
            (TenantSource::Setting(_) | TenantSource::Role(_), Some(t)) => t.value.clone(),
            (TenantSource::JwtClaim { claim, .. }, Some(t)) => {
                serde_json::json!({ claim: t.value }).to_string()
            }
        };
        sqlx::query("SELECT pg_catalog.set_config($1, $2, true)")
            .bind(self.setting())
            .bind(value)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// `RESET setting`: back to the session's default (a role or database
    /// default, postgresql.conf), or `''` when there is none. `set_config`
    /// with a NULL value is that RESET, with the name as a bound parameter.
    pub async fn reset(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_catalog.set_config($1, NULL, false)")
            .bind(self.setting())
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Where verify notes the bound tenant when tenants are roles: the role
/// switch is the binding (see [`role_tenants`]).
const ROLE_TENANT_SETTING: &str = "rlsctl_verify.tenant_role";

/// A made-up tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub label: &'static str,
    pub value: String,
}

/// What to verify: from a spec, or from flags for a database rlsctl did not build.
#[derive(Debug, Clone)]
pub struct Target {
    pub roles: Vec<String>,
    /// Tenant tables to probe, with their tenant column; empty: every table
    /// that has `tenant_column`.
    pub tables: BTreeMap<QualifiedName, String>,
    /// Only these tables (`schema.table` or `table`); empty: all.
    pub only: Vec<String>,
    /// The tenant column of tables outside `tables` (parents, undeclared tables).
    pub tenant_column: String,
    pub binding: Binding,
    pub when_unbound: WhenUnbound,
    /// Declared cross-tenant roles: each gets its own rows in the matrix.
    pub cross_tenant: Vec<(String, Access)>,
    /// What the spec lets runtime roles do, per declared table.
    pub commands: BTreeMap<QualifiedName, BTreeSet<Command>>,
    /// Roles the spec narrows to some tables (`tables:`): probed only there.
    pub scopes: BTreeMap<String, crate::spec::Scope>,
    /// Tables whose unique key across tenants the spec accepts as an
    /// exception (`UNIQUE_NOT_SCOPED_BY_TENANT`), with the reason: the
    /// existence probe's LEAK there is shown as ACCEPTED.
    pub accepted_oracles: BTreeMap<QualifiedName, String>,
    /// Explicit probe values per table, from the spec.
    pub probe_values: BTreeMap<QualifiedName, Vec<ProbeValue>>,
    /// The spec's extra policies, each proved to have its declared effect.
    pub policies: Vec<PolicySpec>,
}

impl Target {
    /// Whether the spec gives `role` the table at all.
    fn reaches(&self, role: &str, table: &QualifiedName) -> bool {
        self.scopes.get(role).is_none_or(|s| s.covers(table))
    }

    pub fn from_spec(spec: &Spec) -> Target {
        Target {
            roles: spec.runtime_roles().map(|r| r.name.clone()).collect(),
            tables: spec
                .tables
                .iter()
                .map(|t| (t.name.clone(), t.column.clone()))
                .collect(),
            only: Vec::new(),
            tenant_column: spec.tenancy.column.clone(),
            binding: Binding {
                source: spec.tenancy.source.clone(),
            },
            when_unbound: spec.tenancy.when_unbound,
            cross_tenant: spec
                .roles
                .iter()
                .filter_map(|r| Some((r.name.clone(), r.cross_tenant?)))
                .collect(),
            commands: spec
                .tables
                .iter()
                .map(|t| (t.name.clone(), t.commands.clone()))
                .collect(),
            scopes: spec
                .roles
                .iter()
                .filter(|r| r.scope.tables.is_some())
                .map(|r| (r.name.clone(), r.scope.clone()))
                .collect(),
            accepted_oracles: spec
                .tables
                .iter()
                .filter_map(|t| {
                    let on = format!(" on {}", t.name);
                    spec.exceptions
                        .iter()
                        .find(|e| {
                            e.finding == "UNIQUE_NOT_SCOPED_BY_TENANT" && e.object.ends_with(&on)
                        })
                        .map(|e| (t.name.clone(), e.reason.clone()))
                })
                .collect(),
            probe_values: spec
                .tables
                .iter()
                .filter(|t| !t.probe_values.is_empty())
                .map(|t| (t.name.clone(), t.probe_values.clone()))
                .collect(),
            policies: spec.policies.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {}", database_message(source))]
    Database {
        context: String,
        source: sqlx::Error,
    },
}

pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> VerifyError {
    let context = context.into();
    move |source| VerifyError::Database { context, source }
}

/// Runs `$work` in a transaction `$tx` that is rolled back whatever happens,
/// after the admin granted itself `$role` there if it needs to. Evaluates to
/// the work's own result: an error there concerns one object (see
/// [`broken`]), while failing to open, grant or roll back stops the run.
macro_rules! rolled_back {
    ($conn:expr, $admin:expr, $role:expr, $tx:ident => $work:expr) => {{
        let mut $tx = $conn.begin().await.map_err(db("starting a transaction"))?;
        let result = match $admin.grant_inside(&mut $tx, $role).await {
            Ok(()) => Ok(match &$admin.tenant_roles {
                Some(roles) => match roles.create(&mut $tx).await {
                    Ok(()) => $work,
                    Err(error) => Err(error),
                },
                None => $work,
            }),
            Err(error) => Err(error),
        };
        $tx.rollback().await.map_err(db("rolling back"))?;
        result?
    }};
}

/// The cell of a probe whose object failed in a way no probe expected (a view
/// whose rules recurse, a policy calling a broken function): NOT PROVEN with
/// the database's reason, so one broken object never hides the others' results.
fn broken(error: &VerifyError) -> Cell {
    Cell::not_proven(format!(
        "probing this object failed, so nothing is proven for it: {error}"
    ))
}

/// Progress for long runs: objects done, objects in all, the one being probed.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// Runs every probe. Needs an admin connection that is a superuser, or may
/// act as the runtime roles, or may grant itself them (see [`admin`]).
pub async fn verify(
    conn: &mut PgConnection,
    target: &Target,
    progress: Progress<'_>,
) -> Result<Matrix, VerifyError> {
    // Runtime roles, then the declared cross-tenant ones.
    let acting: Vec<String> = target
        .roles
        .iter()
        .cloned()
        .chain(target.cross_tenant.iter().map(|(r, _)| r.clone()))
        .collect();
    let scope = Scope {
        function: None,
        roles: acting.clone(),
        resolvers: Vec::new(),
    };
    let snapshot = catalog::read(conn, &scope)
        .await
        .map_err(db("reading the catalog"))?;
    let posture = catalog::read_posture(conn, &snapshot)
        .await
        .map_err(db("reading the catalog"))?;
    let columns = catalog::read_columns(conn)
        .await
        .map_err(db("reading the catalog"))?;
    let rules = catalog::read_value_rules(conn)
        .await
        .map_err(db("reading the catalog"))?;

    if target.roles.is_empty() {
        return Err(VerifyError::Setup(
            "no runtime role to act as: declare one in the spec or pass --role".into(),
        ));
    }
    for role in &acting {
        if !snapshot.state.roles.contains_key(role) {
            return Err(VerifyError::Setup(format!(
                "runtime role {role} does not exist{} (run `rlsctl apply` first)",
                crate::suggest::did_you_mean(role, snapshot.state.roles.keys())
            )));
        }
    }
    let mut admin = admin::Admin::assess(conn, &acting).await?;
    for table in target.tables.keys() {
        if !columns.contains_key(table) {
            return Err(VerifyError::Setup(format!(
                "table {table} does not exist{} (run `rlsctl apply` first)",
                crate::suggest::did_you_mean(
                    &table.to_string(),
                    &columns.keys().map(|t| t.to_string()).collect::<Vec<_>>()
                )
            )));
        }
    }

    // Every table with the tenant column holds tenant rows (parents included).
    let mut tenant_columns: BTreeMap<QualifiedName, String> = columns
        .iter()
        .filter(|(_, cols)| cols.iter().any(|c| c.name == target.tenant_column))
        .map(|(t, _)| (t.clone(), target.tenant_column.clone()))
        .collect();
    tenant_columns.extend(target.tables.clone());
    let tables = chosen_tables(target, &tenant_columns)?;

    let probe_values = explicit_values(target, &columns)?;
    let tenants = made_up_tenants(conn, &tables, &columns, &rules, &target.binding).await?;
    let (a, b, token) = (&tenants.a, &tenants.b, tenants.token);
    if let TenantSource::Role(function) = target.binding.source {
        admin.tenant_roles = Some(RoleTenants {
            function,
            names: [a.value.clone(), b.value.clone()],
            members_of: target.roles.clone(),
            superuser: admin.superuser,
            bypasses_rls: admin.bypasses_rls,
        });
    }
    let admin = admin;
    let layout = rows::Layout {
        columns: &columns,
        foreign_keys: &posture.foreign_keys,
        unique_keys: &posture.unique_keys,
        tenant_columns: &tenant_columns,
        rules: &rules,
        probe_values: &probe_values,
    };

    // Views and children that reach the probed tables (with `--table`, only
    // those reading a chosen table: a way around one broken view).
    let views: Vec<&catalog::View> = posture
        .views
        .iter()
        .filter(|v| {
            v.reads.iter().any(|r| {
                tenant_columns.contains_key(r) && (target.only.is_empty() || tables.contains_key(r))
            })
        })
        .collect();
    // SECURITY DEFINER functions callable with no argument that read the
    // probed tables (with `--table`, a chosen one).
    let functions = probes::callable_definer_functions(
        conn,
        &posture.functions,
        &posture.views,
        |t| tenant_columns.contains_key(t) && (target.only.is_empty() || tables.contains_key(t)),
        tenant_columns.keys(),
    )
    .await?;
    // SECURITY DEFINER triggers on the probed tables whose function reads
    // tenant tables.
    let triggers = probes::definer_triggers(
        conn,
        &posture.triggers,
        |t| tables.contains_key(t),
        |t| tenant_columns.contains_key(t),
        columns.keys(),
    )
    .await?;
    // A child that is itself a chosen table already has all its probes.
    let children: Vec<(&QualifiedName, &QualifiedName)> = posture
        .children
        .iter()
        .filter(|(child, parent)| tables.contains_key(parent) && !tables.contains_key(child))
        .map(|(c, p)| (c, p))
        .collect();

    // Tenants that are roles have no setting a session could leave undefined
    // or carry into a pooled connection's next transaction.
    let keyed_on_setting = !matches!(target.binding.source, TenantSource::Role(_));
    let total = target.roles.len()
        * (tables.len()
            + views.len()
            + functions.len()
            + triggers.len()
            + children.len()
            + usize::from(keyed_on_setting))
        + target.cross_tenant.len() * tables.len();

    // A session that never defined the tenant setting exists only until
    // something in it binds the setting, so its probes go first, planting and
    // checking their rows with a setting of verify's own.
    let own = Binding {
        source: TenantSource::Setting(FRESH_SESSION_PLANTING.into()),
    };
    let shared = probes::Shared {
        when_unbound: target.when_unbound,
        a,
        b,
        layout: &layout,
        admin: &admin,
        token,
        commands: &target.commands,
        policies: &target.policies,
    };
    let fresh_reason = fresh_session_unavailable(conn, &target.binding, &admin).await?;
    let mut fresh = BTreeMap::new();
    if fresh_reason.is_none() && keyed_on_setting {
        for role in &target.roles {
            let mut probing = shared.probing(role, &own, probes::Unbound::Fresh, None);
            for (table, column) in tables.iter().filter(|(t, _)| target.reaches(role, t)) {
                progress(0, total, &format!("{table} (fresh session)"));
                (probing.a, probing.b) = tenants.of(table);
                let cells = rolled_back!(conn, admin, role, tx => probing.fresh_session(&mut tx, table, column).await)
                    .unwrap_or_else(|error| Ok((broken(&error), broken(&error))));
                probing.factory.reset();
                fresh.insert((role.clone(), table.clone()), cells);
            }
        }
    }
    let mut done = 0;
    let mut objects = Vec::new();
    for role in &target.roles {
        let reach = posture.reach(role);
        let mut probing = shared.probing(role, &target.binding, probes::Unbound::Ended, None);
        for (table, column) in tables.iter().filter(|(t, _)| target.reaches(role, t)) {
            progress(done, total, &table.to_string());
            (probing.a, probing.b) = tenants.of(table);
            let mut cells = match rolled_back!(conn, admin, role, tx => probing.table(&mut tx, table, column).await)
            {
                Ok(cells) => cells,
                Err(error) => Probe::EVERY_TABLE
                    .iter()
                    .map(|p| (*p, broken(&error)))
                    .collect(),
            };
            probing.factory.reset();
            let fresh = match &fresh_reason {
                _ if !keyed_on_setting => None,
                None => fresh.remove(&(role.clone(), table.clone())),
                Some(why) => Some(Err(why.clone())),
            };
            if let Some(fresh) = fresh {
                add_fresh_session(&mut cells, fresh);
            }
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                object: table.to_string(),
                kind: ObjectKind::Table,
                cells,
            });
            done += 1;
        }
        (probing.a, probing.b) = (a, b);
        for view in &views {
            progress(done, total, &view.name.to_string());
            let cell = if !view.readable_by(&reach) {
                Cell::proven(format!("{role} may not read this view"))
            } else if !view.materialized
                && !view.security_invoker
                && admin.widens_rights_of(conn, &view.owner, role).await?
            {
                Cell::not_proven(format!(
                    "the view runs with the rights of its owner {}, which verify widened by granting {} the role {role} for the probes; run verify as a superuser (or as a role that already is a member of {role}) to prove this view",
                    view.owner, admin.name
                ))
            } else {
                let cell = rolled_back!(conn, admin, role, tx => probing.view(&mut tx, view).await);
                probing.factory.reset();
                cell.unwrap_or_else(|error| broken(&error))
            };
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                object: view.name.to_string(),
                kind: ObjectKind::View,
                cells: BTreeMap::from([(Probe::Read, cell)]),
            });
            done += 1;
        }
        for function in &functions {
            progress(done, total, &function.name.to_string());
            let cell = if !function.callable_by(&reach) {
                Cell::proven(format!("{role} may not call this function"))
            } else if !function.callable_by(&posture.inherits(role)) {
                Cell::not_proven(format!(
                    "only a role {role} may SET ROLE to can call it, and verify calls functions as {role} itself"
                ))
            } else if function.volatile {
                Cell::not_proven(
                    "it is VOLATILE: calling it could change what a rollback does not undo (a sequence, a message to another system), so verify does not; declare it STABLE if it only reads",
                )
            } else if admin.widens_rights_of(conn, &function.owner, role).await? {
                Cell::not_proven(format!(
                    "the function runs with the rights of its owner {}, which verify widened by granting {} the role {role} for the probes; run verify as a superuser (or as a role that already is a member of {role}) to prove this function",
                    function.owner, admin.name
                ))
            } else {
                let cell = rolled_back!(conn, admin, role, tx => probing.definer_function(&mut tx, function).await);
                probing.factory.reset();
                cell.unwrap_or_else(|error| broken(&error))
            };
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                // By signature: overloads stay apart.
                object: format!("{}({})", function.name, function.arguments),
                kind: ObjectKind::Function,
                cells: BTreeMap::from([(Probe::Read, cell)]),
            });
            done += 1;
        }
        for trigger in &triggers {
            let object = format!("{} trigger {}", trigger.table, trigger.name);
            progress(done, total, &object);
            let cell = if !target.reaches(role, &trigger.table) {
                Cell::proven(format!("{role} does not write {}", trigger.table))
            } else if admin.widens_rights_of(conn, &trigger.owner, role).await? {
                Cell::not_proven(format!(
                    "the trigger's function runs with the rights of its owner {}, which verify widened by granting {} the role {role} for the probes; run verify as a superuser (or as a role that already is a member of {role}) to prove this trigger",
                    trigger.owner, admin.name
                ))
            } else {
                (probing.a, probing.b) = tenants.of(&trigger.table);
                let cell = rolled_back!(conn, admin, role, tx => probing.definer_trigger(&mut tx, trigger).await);
                probing.factory.reset();
                cell.unwrap_or_else(|error| broken(&error))
            };
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                object,
                kind: ObjectKind::Trigger,
                cells: BTreeMap::from([(Probe::Insert, cell)]),
            });
            done += 1;
        }
        for (child, parent) in &children {
            progress(done, total, &child.to_string());
            let column = &tables[*parent];
            (probing.a, probing.b) = tenants.of(parent);
            probing.factory.focus(Some((*child).clone()));
            let partition = posture.partitions.contains(*child);
            let cell = rolled_back!(conn, admin, role, tx => probing.child(&mut tx, child, parent, column, partition).await)
                .unwrap_or_else(|error| broken(&error));
            probing.factory.focus(None);
            probing.factory.reset();
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                object: child.to_string(),
                kind: if partition {
                    ObjectKind::Partition
                } else {
                    ObjectKind::InheritanceChild
                },
                cells: BTreeMap::from([(Probe::Read, cell)]),
            });
            done += 1;
        }
        (probing.a, probing.b) = (a, b);
        if !keyed_on_setting {
            continue;
        }
        progress(done, total, "pooled connection");
        let cell = probing
            .pooled_connection(conn, &posture.settings, &snapshot.database)
            .await?;
        objects.push(ObjectResult {
            role: role.clone(),
            via: None,
            object: "pooled connection (next transaction)".into(),
            kind: ObjectKind::Connection,
            cells: BTreeMap::from([(Probe::UnboundRead, cell)]),
        });
        done += 1;
    }
    for (role, access) in &target.cross_tenant {
        let mut probing = shared.probing(role, &target.binding, probes::Unbound::Ended, None);
        for (table, column) in tables.iter().filter(|(t, _)| target.reaches(role, t)) {
            progress(done, total, &format!("{table} as {role}"));
            (probing.a, probing.b) = tenants.of(table);
            let cells = match rolled_back!(conn, admin, role, tx => probing.cross_tenant(&mut tx, table, column, *access).await)
            {
                Ok(cells) => cells,
                Err(error) => BTreeMap::from([(Probe::Read, broken(&error))]),
            };
            probing.factory.reset();
            objects.push(ObjectResult {
                role: role.clone(),
                via: None,
                object: table.to_string(),
                kind: ObjectKind::Table,
                cells,
            });
            done += 1;
        }
    }
    // Any role a runtime role may SET ROLE to is a role the application's
    // connection can act as: the table probes again, as that role.
    let become_roles: Vec<(&String, String)> = target
        .roles
        .iter()
        .flat_map(|runtime| {
            posture
                .can_set_role(runtime)
                .into_iter()
                .filter(|r| !acting.contains(r))
                .map(move |r| (runtime, r))
        })
        .collect();
    let total = total + become_roles.len() * tables.len();
    for (runtime, role) in &become_roles {
        let mut probing =
            shared.probing(role, &target.binding, probes::Unbound::Ended, Some(runtime));
        for (table, column) in &tables {
            progress(done, total, &format!("{table} as {role}"));
            (probing.a, probing.b) = tenants.of(table);
            let cells = match rolled_back!(conn, admin, runtime, tx => probing.table(&mut tx, table, column).await)
            {
                Ok(cells) => cells,
                Err(error) => Probe::EVERY_TABLE
                    .iter()
                    .map(|p| (*p, broken(&error)))
                    .collect(),
            };
            probing.factory.reset();
            objects.push(ObjectResult {
                role: role.clone(),
                via: Some(runtime.to_string()),
                kind: ObjectKind::Table,
                object: table.to_string(),
                cells,
            });
            done += 1;
        }
    }
    progress(done, total, "");

    accept_declared_oracles(&mut objects, &target.accepted_oracles);
    let mut matrix = Matrix {
        schema_version: 2,
        database: snapshot.database,
        tenant_a: a.value.clone(),
        tenant_b: b.value.clone(),
        objects,
        summary: Summary::default(),
        tables: tables.into_iter().collect(),
    };
    matrix.count();
    Ok(matrix)
}

/// The setting the fresh-session probes bind while planting and checking
/// their rows, so the tenant setting itself stays undefined in the session.
const FRESH_SESSION_PLANTING: &str = "rlsctl_verify.planting";

/// Why the fresh-session probes cannot run on this connection, if they cannot.
async fn fresh_session_unavailable(
    conn: &mut PgConnection,
    binding: &Binding,
    admin: &admin::Admin,
) -> Result<Option<String>, VerifyError> {
    let setting = binding.setting();
    if !admin.bypasses_rls {
        return Ok(Some(format!(
            "{} is subject to row-level security, so it can plant probe rows only by binding {setting}, after which the session is no longer fresh; verify as a superuser or BYPASSRLS role to run it",
            admin.name
        )));
    }
    let defined: bool =
        sqlx::query_scalar("SELECT pg_catalog.current_setting($1, true) IS NOT NULL")
            .bind(setting)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("reading the tenant setting"))?;
    Ok(defined.then(|| {
        format!(
            "this connection had defined {setting} before verify began (an earlier step of the same run, or a server, database or role default), so a session that never defined it cannot be shown here; run `rlsctl verify` on its own"
        )
    }))
}

/// Folds the fresh-session cells (or why they were not run) into a table's
/// unbound-read and unbound-write cells: a form not run is said, never
/// passed over.
fn add_fresh_session(cells: &mut BTreeMap<Probe, Cell>, fresh: Result<(Cell, Cell), String>) {
    match fresh {
        Ok((read, write)) => {
            for (probe, cell) in [(Probe::UnboundRead, read), (Probe::UnboundWrite, write)] {
                let combined = match cells.remove(&probe) {
                    Some(other) => Cell::combine(vec![cell, other]),
                    None => cell,
                };
                cells.insert(probe, combined);
            }
        }
        Err(why) => {
            for probe in [Probe::UnboundRead, Probe::UnboundWrite] {
                // A cell NOT PROVEN already says why nothing could be tried.
                if let Some(cell) = cells
                    .get_mut(&probe)
                    .filter(|c| c.verdict != Verdict::NotProven)
                {
                    cell.detail.push_str(&format!(
                        "; {}: not run: {why}",
                        probes::Unbound::Fresh.label()
                    ));
                }
            }
        }
    }
}

/// The declared tables (or, without a spec, every table with the tenant
/// column), narrowed to `--table` names.
fn chosen_tables(
    target: &Target,
    tenant_columns: &BTreeMap<QualifiedName, String>,
) -> Result<BTreeMap<QualifiedName, String>, VerifyError> {
    let all = if target.tables.is_empty() {
        tenant_columns.clone()
    } else {
        target.tables.clone()
    };
    if all.is_empty() {
        return Err(VerifyError::Setup(format!(
            "no tenant table: no table has the column {}",
            target.tenant_column
        )));
    }
    if target.only.is_empty() {
        return Ok(all);
    }
    let mut kept = BTreeMap::new();
    for wanted in &target.only {
        let before = kept.len();
        kept.extend(
            all.iter()
                .filter(|(t, _)| t.to_string() == *wanted || t.name == *wanted)
                .map(|(t, c)| (t.clone(), c.clone())),
        );
        if kept.len() == before {
            let names: Vec<String> = all
                .keys()
                .flat_map(|t| [t.to_string(), t.name.clone()])
                .collect();
            return Err(VerifyError::Setup(format!(
                "--table {wanted}: not a tenant table here{}",
                crate::suggest::did_you_mean(wanted, &names)
            )));
        }
    }
    Ok(kept)
}

/// The made-up tenants of a run: A and B, and for a table whose tenant
/// column takes neither (an inet beside uuids), a pair of its own.
struct Tenants {
    a: Tenant,
    b: Tenant,
    per_table: BTreeMap<QualifiedName, (Tenant, Tenant)>,
    /// Keeps the run's other made-up values unique.
    token: u32,
}

impl Tenants {
    fn of(&self, table: &QualifiedName) -> (&Tenant, &Tenant) {
        match self.per_table.get(table) {
            Some((a, b)) => (a, b),
            None => (&self.a, &self.b),
        }
    }
}

/// Two tenant ids nobody uses that every probed tenant column accepts, or
/// per table where no pair suits them all (see [`values::tenant_ids`]).
async fn made_up_tenants(
    conn: &mut PgConnection,
    tables: &BTreeMap<QualifiedName, String>,
    columns: &BTreeMap<QualifiedName, Vec<catalog::Column>>,
    rules: &catalog::ValueRules,
    binding: &Binding,
) -> Result<Tenants, VerifyError> {
    let (a, b): (String, String) =
        sqlx::query_as("SELECT gen_random_uuid()::text, gen_random_uuid()::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("making up tenant ids"))?;
    let token = u32::from_str_radix(&a[..8], 16).unwrap_or(1);
    let chosen = if let TenantSource::Role(_) = binding.source {
        let [a, b] = RoleTenants::names(&a[..8]);
        values::tenant_ids::Chosen {
            pair: (a, b),
            per_table: BTreeMap::new(),
        }
    } else {
        let mut constraints = values::Constraints::new(rules);
        values::tenant_ids::choose(conn, tables, columns, &mut constraints, &a, &b, token)
            .await
            .map_err(db("making up tenant ids"))?
    };
    let pair = |(a, b): (String, String)| {
        (
            Tenant {
                label: "A",
                value: a,
            },
            Tenant {
                label: "B",
                value: b,
            },
        )
    };
    let (a, b) = pair(chosen.pair);
    Ok(Tenants {
        a,
        b,
        per_table: chosen
            .per_table
            .into_iter()
            .map(|(table, ids)| (table, pair(ids)))
            .collect(),
        token,
    })
}

/// The spec's `probe_values`, checked against the tables' columns: a column
/// the table does not have is an error at the spec line that names it.
fn explicit_values(
    target: &Target,
    columns: &BTreeMap<QualifiedName, Vec<catalog::Column>>,
) -> Result<BTreeMap<QualifiedName, serde_json::Map<String, serde_json::Value>>, VerifyError> {
    let mut out: BTreeMap<QualifiedName, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    for (table, given) in &target.probe_values {
        for value in given {
            let known = columns
                .get(table)
                .is_some_and(|cs| cs.iter().any(|c| c.name == value.column));
            if !known {
                return Err(VerifyError::Setup(
                    crate::spec::SpecError::at(
                        &value.origin,
                        format!(
                            "`probe_values`: table {table} has no column {}",
                            value.column
                        ),
                    )
                    .to_string(),
                ));
            }
            out.entry(table.clone()).or_default().insert(
                value.column.clone(),
                serde_json::Value::String(value.value.clone()),
            );
        }
    }
    Ok(out)
}

/// `SET LOCAL ROLE role`: from here the session is subject to the role's rights
/// and policies, as the application's connection is.
pub(crate) fn set_role(role: &str) -> Sql {
    Sql::new("SET LOCAL ROLE ").ident(role)
}

#[cfg(test)]
mod tests {
    use super::{Cell, Verdict};

    #[test]
    fn combining_attempts_keeps_the_worst_verdict_and_each_detail_once() {
        let cell = Cell::combine(vec![
            Cell::proven("refused"),
            Cell::not_proven("no probe rows: x"),
            Cell::not_proven("no probe rows: x"),
            Cell::not_proven("no column to set"),
        ]);
        assert_eq!(cell.verdict, Verdict::NotProven);
        assert_eq!(cell.detail, "no probe rows: x; no column to set");

        let cell = Cell::combine(vec![
            Cell::not_proven("no column to set"),
            Cell::leak("a row crossed", serde_json::json!({"id": 1})),
        ]);
        assert_eq!(cell.verdict, Verdict::Leak);
        assert_eq!(cell.detail, "a row crossed");
        assert_eq!(cell.key, Some(serde_json::json!({"id": 1})));
    }
}
