//! Proof of isolation: act as the runtime role and watch the database refuse.
//!
//! For every tenant table, two made-up tenants A and B get probe rows (see
//! [`rows`]); then, with A bound exactly as the application binds it and the
//! session switched to the runtime role with `SET LOCAL ROLE`, each probe tries
//! to read, change, delete, insert or move B's data (see [`probes`]). Every
//! table's probes run in one transaction that is always rolled back, each probe
//! in a savepoint: verify leaves no row and no catalog change behind.
//!
//! Each cell of the result is PROVEN (the database refused, with evidence),
//! LEAK (with the key of the row that crossed tenants), or NOT PROVEN (why
//! the probe could not be run): never a silent pass.

mod admin;
mod probes;
pub mod report;
mod rows;

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::catalog::{self, Scope};
use crate::errors::database_message;
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Spec, TenantSource, WhenUnbound};

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
}

impl Probe {
    pub const ALL: [Probe; 7] = [
        Probe::Read,
        Probe::Update,
        Probe::Delete,
        Probe::Insert,
        Probe::Move,
        Probe::UnboundRead,
        Probe::UnboundWrite,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Proven,
    NotProven,
    Leak,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Proven => "PROVEN",
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
        Cell {
            verdict: worst,
            detail: chosen
                .iter()
                .map(|c| c.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            key: chosen.iter().find_map(|c| c.key.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    View,
    Partition,
    /// The pooled-connection probe: not an object, a property of the binding.
    Connection,
}

/// One row of the matrix: one object probed as one runtime role.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    pub role: String,
    pub object: String,
    pub kind: ObjectKind,
    pub cells: BTreeMap<Probe, Cell>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub proven: usize,
    pub leaks: usize,
    pub not_proven: usize,
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
}

impl Matrix {
    fn count(&mut self) {
        let mut summary = Summary::default();
        for cell in self.objects.iter().flat_map(|o| o.cells.values()) {
            match cell.verdict {
                Verdict::Proven => summary.proven += 1,
                Verdict::Leak => summary.leaks += 1,
                Verdict::NotProven => summary.not_proven += 1,
            }
        }
        self.summary = summary;
    }
}

/// How the application tells the database its tenant: always transaction-local.
#[derive(Debug, Clone)]
pub struct Binding {
    pub source: TenantSource,
}

impl Binding {
    /// The setting that carries the tenant.
    pub fn setting(&self) -> &str {
        match &self.source {
            TenantSource::Setting(name) => name,
            TenantSource::JwtClaim { claims_setting, .. } => claims_setting,
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
            (TenantSource::Setting(_), Some(t)) => t.value.clone(),
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
}

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
}

impl Target {
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
/// after the admin granted itself `$role` there if it needs to.
macro_rules! rolled_back {
    ($conn:expr, $admin:expr, $role:expr, $tx:ident => $work:expr) => {{
        let mut $tx = $conn.begin().await.map_err(db("starting a transaction"))?;
        let result = match $admin.grant_inside(&mut $tx, $role).await {
            Ok(()) => $work,
            Err(error) => Err(error),
        };
        $tx.rollback().await.map_err(db("rolling back"))?;
        result?
    }};
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
    let scope = Scope {
        function: None,
        roles: target.roles.clone(),
    };
    let snapshot = catalog::read(conn, &scope)
        .await
        .map_err(db("reading the catalog"))?;
    let posture = catalog::read_posture(conn, snapshot.connecting.server_version_num)
        .await
        .map_err(db("reading the catalog"))?;
    let columns = catalog::read_columns(conn)
        .await
        .map_err(db("reading the catalog"))?;

    if target.roles.is_empty() {
        return Err(VerifyError::Setup(
            "no runtime role to act as: declare one in the spec or pass --role".into(),
        ));
    }
    for role in &target.roles {
        if !snapshot.state.roles.contains_key(role) {
            return Err(VerifyError::Setup(format!(
                "runtime role {role} does not exist{} (run `rlsctl apply` first)",
                crate::suggest::did_you_mean(role, snapshot.state.roles.keys())
            )));
        }
    }
    let admin = admin::Admin::assess(conn, &target.roles).await?;
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

    let (a, b, token) = made_up_tenants(conn, &tables, &columns).await?;
    let layout = rows::Layout {
        columns: &columns,
        foreign_keys: &posture.foreign_keys,
        unique_keys: &posture.unique_keys,
        tenant_columns: &tenant_columns,
    };

    // Views and children that reach the probed tables.
    let views: Vec<&catalog::View> = posture
        .views
        .iter()
        .filter(|v| v.reads.iter().any(|r| tenant_columns.contains_key(r)))
        .collect();
    let children: Vec<(&QualifiedName, &QualifiedName)> = posture
        .children
        .iter()
        .filter(|(_, parent)| tables.contains_key(parent))
        .map(|(c, p)| (c, p))
        .collect();

    let total = target.roles.len() * (tables.len() + views.len() + children.len() + 1);
    let mut done = 0;
    let mut objects = Vec::new();
    for role in &target.roles {
        let reach = posture.reach(role);
        let mut probing = probes::Probing {
            role,
            binding: &target.binding,
            when_unbound: target.when_unbound,
            a: &a,
            b: &b,
            layout: &layout,
            admin: &admin,
            factory: rows::RowFactory::new(&layout, &target.binding, token, &admin),
        };
        for (table, column) in &tables {
            progress(done, total, &table.to_string());
            let cells =
                rolled_back!(conn, admin, role, tx => probing.table(&mut tx, table, column).await);
            probing.factory.reset();
            objects.push(ObjectResult {
                role: role.clone(),
                object: table.to_string(),
                kind: ObjectKind::Table,
                cells,
            });
            done += 1;
        }
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
                cell
            };
            objects.push(ObjectResult {
                role: role.clone(),
                object: view.name.to_string(),
                kind: ObjectKind::View,
                cells: BTreeMap::from([(Probe::Read, cell)]),
            });
            done += 1;
        }
        for (child, parent) in &children {
            progress(done, total, &child.to_string());
            let column = &tables[*parent];
            let cell = rolled_back!(conn, admin, role, tx => probing.child(&mut tx, child, parent, column).await);
            probing.factory.reset();
            objects.push(ObjectResult {
                role: role.clone(),
                object: child.to_string(),
                kind: ObjectKind::Partition,
                cells: BTreeMap::from([(Probe::Read, cell)]),
            });
            done += 1;
        }
        progress(done, total, "pooled connection");
        let cell = probing
            .pooled_connection(conn, &posture.settings, &snapshot.database)
            .await?;
        objects.push(ObjectResult {
            role: role.clone(),
            object: "pooled connection (next transaction)".into(),
            kind: ObjectKind::Connection,
            cells: BTreeMap::from([(Probe::UnboundRead, cell)]),
        });
        done += 1;
    }
    progress(done, total, "");

    let mut matrix = Matrix {
        schema_version: 1,
        database: snapshot.database,
        tenant_a: a.value,
        tenant_b: b.value,
        objects,
        summary: Summary::default(),
    };
    matrix.count();
    Ok(matrix)
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

/// Two tenant ids nobody uses, of the tenant column's type, and a token that
/// keeps the run's other made-up values unique.
async fn made_up_tenants(
    conn: &mut PgConnection,
    tables: &BTreeMap<QualifiedName, String>,
    columns: &BTreeMap<QualifiedName, Vec<catalog::Column>>,
) -> Result<(Tenant, Tenant, u32), VerifyError> {
    let (a, b): (String, String) =
        sqlx::query_as("SELECT gen_random_uuid()::text, gen_random_uuid()::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("making up tenant ids"))?;
    let token = u32::from_str_radix(&a[..8], 16).unwrap_or(1);
    let tenant_type = tables
        .iter()
        .find_map(|(t, column)| columns.get(t)?.iter().find(|c| &c.name == column))
        .map(|c| c.base_type.as_str())
        .unwrap_or("uuid");
    let numeric =
        |low: i64, span: i64, salt: u32| -(low + (token.wrapping_add(salt) as i64 % span));
    let (a, b) = match tenant_type {
        "uuid" => (a, b),
        "text" | "character varying" => (
            format!("rlsctl-verify-a-{}", &a[..8]),
            format!("rlsctl-verify-b-{}", &b[..8]),
        ),
        "bigint" | "integer" => (
            numeric(1_000_000_000, 500_000_000, 0).to_string(),
            numeric(1_500_000_000, 500_000_000, 7).to_string(),
        ),
        other => {
            return Err(VerifyError::Setup(format!(
                "cannot make up tenant ids of type {other}"
            )));
        }
    };
    Ok((
        Tenant {
            label: "A",
            value: a,
        },
        Tenant {
            label: "B",
            value: b,
        },
        token,
    ))
}

/// `SET LOCAL ROLE role`: from here the session is subject to the role's rights
/// and policies, as the application's connection is.
pub(crate) fn set_role(role: &str) -> Sql {
    Sql::new("SET LOCAL ROLE ").ident(role)
}
