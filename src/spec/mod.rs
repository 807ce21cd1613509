//! The declared isolation: what `policies/*.yaml` says, validated.
//!
//! `load` reads every `*.yaml` of the config folder, rejects anything it does
//! not understand at `file:line:column`, and returns a [`Spec`] that the
//! `desired` stage turns into the state the database should have.

mod document;
mod error;
mod expression;
mod files;
pub(crate) mod lines;
mod load;
mod schema;
mod scope;

use std::collections::BTreeSet;

pub use document::{Access, Command, PolicyKind, PolicyTo, TenantType, WhenUnbound};
pub use error::{Origin, SpecError};
pub use expression::Expression;
pub use load::{CROSS_TENANT_PREFIX, MAINTENANCE_PREFIX, TENANT_POLICY, load, load_str};
pub use schema::{PUBLISHED as PUBLISHED_SCHEMA, json_schema};
pub use scope::{Scope, every_command};

use crate::quote::QualifiedName;

#[derive(Debug, Clone)]
pub struct Spec {
    pub tenancy: Tenancy,
    pub roles: Vec<RoleSpec>,
    pub tables: Vec<TableSpec>,
    pub policies: Vec<PolicySpec>,
    pub cross_tenant: Vec<CrossTenantPredicate>,
    /// Audit findings accepted on purpose.
    pub exceptions: Vec<AcceptedFinding>,
    /// Existing roles (the admin) that read or write every tenant's rows.
    pub maintenance: Vec<MaintenanceAccess>,
    /// Tenant resolvers (SECURITY DEFINER lookups) for workers without a tenant.
    pub resolvers: Vec<ResolverSpec>,
    /// Existing roles that must reach no tenant's rows; audit-only, apply
    /// neither creates nor changes them.
    pub no_tenant_access: Vec<NoTenantAccess>,
    /// Existing roles that take backups; audit-only, apply neither creates
    /// nor changes them.
    pub backup_roles: Vec<BackupRole>,
    /// Existing roles that bypass RLS on purpose; audit-only, apply neither
    /// creates nor changes them.
    pub bypass_roles: Vec<BypassRole>,
    /// Privileges on objects that are not tenant tables (`grants:`).
    pub grants: Vec<GrantSpec>,
    /// sha256 of every spec file's name and content: recorded with each apply.
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct Tenancy {
    pub column: String,
    pub column_type: TenantType,
    pub source: TenantSource,
    pub function: QualifiedName,
    /// False for a context function the database already has: rlsctl then
    /// checks it instead of creating, replacing or granting it.
    pub function_managed: bool,
    pub when_unbound: WhenUnbound,
    /// The tenant policy's name; `{table}` stands for each table's name.
    pub policy_name: String,
    /// Tenant columns default to the context function (`default_from_context`).
    pub default_from_context: bool,
    /// Set when the policies compare the tenant column with this expression
    /// instead of calling a context function: no function is created or checked.
    pub inline: Option<Expression>,
    pub policy_to: PolicyTo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    Setting(String),
    JwtClaim {
        claims_setting: String,
        claim: String,
    },
    /// The tenant is the role itself: the tenant column holds the name
    /// this function returns (`owner = current_user`).
    Role(SessionRole),
}

/// The SQL functions that name the acting role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRole {
    /// `current_user` (`current_role` is the same): changed by `SET ROLE`.
    CurrentUser,
    /// `session_user`: the role that logged in; `SET ROLE` leaves it.
    SessionUser,
}

impl SessionRole {
    pub fn sql(self) -> &'static str {
        match self {
            SessionRole::CurrentUser => "current_user",
            SessionRole::SessionUser => "session_user",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NoTenantAccess {
    pub role: String,
    pub origin: Origin,
}

/// A role declared under `backup_roles:`: its dumps must hold every row.
#[derive(Debug, Clone)]
pub struct BackupRole {
    pub role: String,
    pub reason: String,
    pub origin: Origin,
}

/// One `grants:` entry: privileges on one object for some roles.
#[derive(Debug, Clone)]
pub struct GrantSpec {
    pub target: crate::grants::GrantTarget,
    pub roles: Vec<String>,
    pub privileges: BTreeSet<crate::grants::ObjectPrivilege>,
    /// Where the object is named: a missing object is reported here.
    pub origin: Origin,
    /// Where each role is named.
    pub role_origins: Vec<Origin>,
}

/// A role declared under `bypass_roles:`: SUPERUSER or BYPASSRLS by design.
#[derive(Debug, Clone)]
pub struct BypassRole {
    pub role: String,
    pub reason: String,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub name: String,
    pub login: bool,
    /// The environment variable holding the password, read only at apply time.
    pub password_env: Option<String>,
    /// `None` for a runtime role (tenant-isolated); `Some` for a declared exception.
    pub cross_tenant: Option<Access>,
    pub reason: Option<String>,
    /// The tables and commands this role gets (`tables:` / `commands:`).
    pub scope: Scope,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: QualifiedName,
    pub column: String,
    /// What the runtime roles may do on the table.
    pub commands: BTreeSet<Command>,
    /// The tenant index's columns: the tenant column, then the extra ones.
    pub index_columns: Vec<String>,
    /// How `migrate-existing` fills the tenant column of existing rows.
    pub backfill: Option<Backfill>,
    /// The tenant policy's name, `{table}` standing for the table's name:
    /// the table's own `policy_name`, else the tenancy's.
    pub policy_name: String,
    /// The tenant column defaults to the context function: the table's own
    /// `default_from_context`, else the tenancy's.
    pub default_from_context: Option<bool>,
    /// Values `verify` gives columns of its probe rows where it cannot derive one.
    pub probe_values: Vec<ProbeValue>,
    pub origin: Origin,
}

/// One `probe_values` entry: a column and the text of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeValue {
    pub column: String,
    pub value: String,
    /// Where the column is named: a column the table lacks is reported here.
    pub origin: Origin,
}

impl TableSpec {
    /// The name of this table's tenant policy.
    pub fn tenant_policy(&self) -> String {
        policy_name_for(&self.policy_name, &self.name.name)
    }
}

/// `pattern` with `{table}` replaced by `table`.
pub fn policy_name_for(pattern: &str, table: &str) -> String {
    pattern.replace(TABLE_PLACEHOLDER, table)
}

const TABLE_PLACEHOLDER: &str = "{table}";

/// How existing rows get their tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backfill {
    /// Follow these foreign keys (each named by a column of it, or by its
    /// constraint name), table by table, to a tenant column.
    Via {
        keys: Vec<String>,
        /// Replace the first key with one that includes the tenant column
        /// (`scope_foreign_key`, default true).
        scope_foreign_key: bool,
    },
    Constant(String),
    /// A SQL expression over the row, which is aliased `x`.
    Expression(Expression),
}

#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub name: String,
    pub tables: Vec<QualifiedName>,
    pub command: Command,
    pub kind: PolicyKind,
    /// Empty means the runtime roles.
    pub roles: Vec<String>,
    pub using: Option<Expression>,
    pub with_check: Option<Expression>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct CrossTenantPredicate {
    pub name: String,
    pub when: Expression,
    pub access: Access,
    pub reason: String,
    /// The tables the predicate applies to (`tables:`; default all).
    pub scope: Scope,
    pub origin: Origin,
}

/// A declared tenant resolver (see `crate::resolver`).
#[derive(Debug, Clone)]
pub struct ResolverSpec {
    pub name: QualifiedName,
    pub table: QualifiedName,
    pub key: String,
    pub key_type: TenantType,
    pub tenant_column: String,
    pub roles: Vec<String>,
    pub origin: Origin,
}

/// An existing role, typically the admin rlsctl connects as, that gets a
/// policy admitting it to every tenant's rows: on managed PostgreSQL the admin
/// is subject to the FORCEd policies and would otherwise see no row. rlsctl
/// neither creates nor alters it, and grants it nothing beyond the policy.
#[derive(Debug, Clone)]
pub struct MaintenanceAccess {
    pub role: String,
    pub access: Access,
    pub reason: String,
    pub origin: Origin,
}

impl MaintenanceAccess {
    /// The name of its policy on each tenant table.
    pub fn policy(&self) -> String {
        format!("{MAINTENANCE_PREFIX}{}", self.role)
    }
}

#[derive(Debug, Clone)]
pub struct AcceptedFinding {
    /// A finding id, e.g. `UNIQUE_NOT_SCOPED_BY_TENANT`.
    pub finding: String,
    /// The finding's object exactly as audit prints it, e.g. `constraint users_email_key on public.users`.
    pub object: String,
    pub reason: String,
    pub origin: Origin,
}

impl Spec {
    pub fn runtime_roles(&self) -> impl Iterator<Item = &RoleSpec> {
        self.roles.iter().filter(|r| r.cross_tenant.is_none())
    }

    pub fn table(&self, name: &QualifiedName) -> Option<&TableSpec> {
        self.tables.iter().find(|t| &t.name == name)
    }

    /// The spec without `tables` (and without their part of any extra policy):
    /// what apply converges while `migrate-existing` has yet to add their column.
    pub fn without(&self, tables: &BTreeSet<QualifiedName>) -> Spec {
        let mut narrowed = self.clone();
        narrowed.tables.retain(|t| !tables.contains(&t.name));
        for policy in &mut narrowed.policies {
            policy.tables.retain(|t| !tables.contains(t));
        }
        narrowed.policies.retain(|p| !p.tables.is_empty());
        narrowed
    }
}
