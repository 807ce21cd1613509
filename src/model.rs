//! The state of a database as far as tenant isolation goes.
//!
//! `desired` builds one of these from the spec and `catalog` reads one from
//! the server; because both are the same types, `diff` is a pure function.

use std::collections::{BTreeMap, BTreeSet};

use crate::quote::QualifiedName;
use crate::spec::{Command, Expression};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub roles: BTreeMap<String, Role>,
    pub schemas: BTreeSet<String>,
    /// (role, schema) pairs where the role has USAGE, by grant or through PUBLIC.
    pub schema_usage: BTreeSet<(String, String)>,
    pub function: Option<ContextFunction>,
    /// Live only, when the context function does not exist: the roles that
    /// may execute it once the connecting role creates it, as its default
    /// privileges (`ALTER DEFAULT PRIVILEGES … ON FUNCTIONS`) decide. `None`
    /// is PostgreSQL's built-in default: PUBLIC.
    pub new_function_executors: Option<BTreeSet<String>>,
    pub tables: BTreeMap<QualifiedName, Table>,
    /// Declared tenant resolvers (desired), or the live functions of those names.
    pub resolvers: BTreeMap<QualifiedName, crate::resolver::Resolver>,
    /// Live only: for a schema that will get a new resolver, who may execute
    /// a function created there (as `new_function_executors`).
    pub new_resolver_executors: BTreeMap<String, BTreeSet<String>>,
    /// Objects that are not tenant tables, declared under `grants:`, with
    /// the declared roles' privileges on them. Live: the ones that exist.
    pub object_grants: BTreeMap<crate::grants::GrantTarget, crate::grants::ObjectGrants>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub login: bool,
    pub superuser: bool,
    pub bypass_rls: bool,
    /// Desired side only: where the password comes from when the role is created.
    pub password_env: Option<String>,
}

impl Role {
    /// The attributes rlsctl converges (a password is set only at creation), in statement order.
    pub fn attributes(&self) -> [RoleAttribute; 3] {
        [
            RoleAttribute::Login(self.login),
            RoleAttribute::Superuser(self.superuser),
            RoleAttribute::BypassRls(self.bypass_rls),
        ]
    }

    /// The attributes of `self` whose value `live` does not have yet. Only
    /// these go into `ALTER ROLE`: PostgreSQL refuses a SUPERUSER or BYPASSRLS
    /// clause from a non-superuser even when it would change nothing.
    pub fn changed_from(&self, live: &Role) -> Vec<RoleAttribute> {
        self.attributes()
            .into_iter()
            .zip(live.attributes())
            .filter(|(want, have)| want != have)
            .map(|(want, _)| want)
            .collect()
    }
}

/// One role attribute with the value it should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAttribute {
    Login(bool),
    Superuser(bool),
    BypassRls(bool),
}

impl RoleAttribute {
    pub fn keyword(self) -> &'static str {
        match self {
            RoleAttribute::Login(true) => "LOGIN",
            RoleAttribute::Login(false) => "NOLOGIN",
            RoleAttribute::Superuser(true) => "SUPERUSER",
            RoleAttribute::Superuser(false) => "NOSUPERUSER",
            RoleAttribute::BypassRls(true) => "BYPASSRLS",
            RoleAttribute::BypassRls(false) => "NOBYPASSRLS",
        }
    }

    /// SUPERUSER and BYPASSRLS: only a superuser may set or clear them.
    pub fn is_privilege(self) -> bool {
        !matches!(self, RoleAttribute::Login(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    /// From `pg_proc.provolatile` (`i`, `s`, `v`).
    pub fn from_catalog(code: &str) -> Volatility {
        match code {
            "i" => Volatility::Immutable,
            "s" => Volatility::Stable,
            _ => Volatility::Volatile,
        }
    }
}

/// The function policies call to learn the transaction's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFunction {
    pub name: QualifiedName,
    /// As `format_type` prints it: `uuid`, `text`, `bigint`, `integer`.
    pub returns: String,
    pub language: String,
    pub volatility: Volatility,
    /// PARALLEL SAFE: a PARALLEL UNSAFE function anywhere in a query (and a
    /// policy's functions are in every query on its table) keeps PostgreSQL
    /// from planning parallel workers for it.
    pub parallel_safe: bool,
    /// The body exactly as stored in `pg_proc.prosrc`.
    pub body: String,
    /// Roles that may EXECUTE it besides its owner; `PUBLIC` included by name.
    pub executors: BTreeSet<String>,
}

impl ContextFunction {
    pub fn same_definition(&self, other: &ContextFunction) -> bool {
        self.returns == other.returns
            && self.language == other.language
            && self.volatility == other.volatility
            && self.parallel_safe == other.parallel_safe
            && self.body == other.body
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    References,
    Trigger,
    /// PostgreSQL 17+: VACUUM, ANALYZE, CLUSTER, REFRESH MATERIALIZED VIEW,
    /// REINDEX and LOCK TABLE. Only ever read from a 17+ catalog (rlsctl never
    /// grants it), so a statement naming it only reaches a server that knows it.
    Maintain,
}

impl Privilege {
    pub const ALL: [Privilege; 8] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Truncate,
        Privilege::References,
        Privilege::Trigger,
        Privilege::Maintain,
    ];

    pub fn from_catalog(name: &str) -> Option<Privilege> {
        Some(match name {
            "SELECT" => Privilege::Select,
            "INSERT" => Privilege::Insert,
            "UPDATE" => Privilege::Update,
            "DELETE" => Privilege::Delete,
            "TRUNCATE" => Privilege::Truncate,
            "REFERENCES" => Privilege::References,
            "TRIGGER" => Privilege::Trigger,
            "MAINTAIN" => Privilege::Maintain,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
            Privilege::References => "REFERENCES",
            Privilege::Trigger => "TRIGGER",
            Privilege::Maintain => "MAINTAIN",
        }
    }

    pub fn for_command(command: Command) -> Vec<Privilege> {
        match command {
            Command::All => vec![
                Privilege::Select,
                Privilege::Insert,
                Privilege::Update,
                Privilege::Delete,
            ],
            Command::Select => vec![Privilege::Select],
            Command::Insert => vec![Privilege::Insert],
            Command::Update => vec![Privilege::Update],
            Command::Delete => vec![Privilege::Delete],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub name: QualifiedName,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub policies: BTreeMap<String, Policy>,
    /// Desired only: which of `policies` is the generated tenant policy
    /// (its name comes from the spec's `policy_name`).
    pub tenant_policy: Option<String>,
    pub indexes: Vec<Index>,
    /// Table privileges by grantee. Desired: only the spec's roles.
    pub grants: BTreeMap<String, BTreeSet<Privilege>>,
    /// Live only: column name → type as `format_type` prints it.
    pub columns: BTreeMap<String, String>,
    /// Live only: the columns declared NOT NULL.
    pub not_null: BTreeSet<String>,
    /// Live only: the table holds data, so a new index must be built CONCURRENTLY.
    pub has_rows: bool,
    /// Live only: a partitioned table, whose indexes cannot be built CONCURRENTLY.
    pub partitioned: bool,
    /// Live only: the table this one is a partition or inheritance child of.
    pub parent: Option<QualifiedName>,
    pub owner: String,
    /// Desired only: the tenant column that defaults to the context function.
    pub context_default: Option<(String, QualifiedName)>,
    /// Live only: columns whose default calls the context function.
    pub context_defaults: BTreeSet<String>,
    /// Live only: sequences owned by the table's columns (serial, bigserial),
    /// with the roles that may use them. Inserting needs USAGE on them.
    pub sequences: BTreeMap<QualifiedName, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub command: Command,
    pub permissive: bool,
    /// Role names; `PUBLIC` by name when the policy applies to everyone.
    pub roles: BTreeSet<String>,
    pub using: Option<Expression>,
    pub with_check: Option<Expression>,
    /// Carries rlsctl's marker comment: created by rlsctl.
    pub managed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    /// `pg_index.indisvalid`: false for the leftover of a failed CONCURRENTLY build.
    pub valid: bool,
}

impl Index {
    /// An index serves a requirement when its leading key columns are the
    /// required ones (a longer index on the same prefix serves too).
    pub fn serves(&self, required: &[String]) -> bool {
        self.columns.len() >= required.len() && self.columns[..required.len()] == *required
    }
}

/// The comment rlsctl puts on the policies it creates, so `--prune` can tell
/// its own policies on tables that left the spec from a colleague's.
pub const MANAGED_MARKER: &str = "managed by rlsctl";
