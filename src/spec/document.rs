//! The YAML shapes of `policies/*.yaml`, exactly as written. Every map rejects
//! unknown keys, and names are `Spanned` so later checks can point at them.
//! [`super::load`] turns these into the validated [`super::Spec`].

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// How a row's tenant is stored and bound; every key has a default.
    #[schemars(with = "Option<TenancyDoc>")]
    pub tenancy: Option<Spanned<TenancyDoc>>,
    /// Runtime roles (tenant-isolated) and declared cross-tenant roles.
    #[serde(default)]
    #[schemars(with = "Vec<RoleDoc>")]
    pub roles: Vec<Spanned<RoleDoc>>,
    /// Tenant tables: each gets ENABLE and FORCE ROW LEVEL SECURITY, the tenant policy and index.
    #[serde(default)]
    #[schemars(with = "Vec<TableDoc>")]
    pub tables: Vec<Spanned<TableDoc>>,
    /// Extra policies beside the tenant policy (restrictive or permissive).
    #[serde(default)]
    #[schemars(with = "Vec<PolicyDoc>")]
    pub policies: Vec<Spanned<PolicyDoc>>,
    /// Rows every tenant may see (or write), by a predicate, with the reason on record.
    #[serde(default)]
    #[schemars(with = "Vec<CrossTenantDoc>")]
    pub cross_tenant: Vec<Spanned<CrossTenantDoc>>,
    /// Audit findings accepted on purpose: shown as accepted, not hidden.
    #[serde(default)]
    #[schemars(with = "Vec<ExceptionDoc>")]
    pub exceptions: Vec<Spanned<ExceptionDoc>>,
    /// Existing roles (the admin) that read or write every tenant's rows.
    #[serde(default)]
    #[schemars(with = "Vec<MaintenanceDoc>")]
    pub maintenance: Vec<Spanned<MaintenanceDoc>>,
    /// Existing roles that must reach no tenant's rows (Supabase's `anon`):
    /// audit reports every privilege they hold on a tenant table.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub no_tenant_access: Vec<Spanned<String>>,
    /// Existing roles that take backups (pg_dump): audit reports each one
    /// that is subject to row-level security, since its dumps fail or miss rows.
    #[serde(default)]
    #[schemars(with = "Vec<BackupRoleDoc>")]
    pub backup_roles: Vec<Spanned<BackupRoleDoc>>,
    /// Tenant lookups for workers that hold a key (a session id), not a tenant.
    #[serde(default)]
    #[schemars(with = "Vec<ResolverDoc>")]
    pub resolvers: Vec<Spanned<ResolverDoc>>,
    /// Existing roles that bypass row-level security on purpose (Supabase's
    /// `service_role`, a backup role): apply leaves them alone and audit shows
    /// the findings they alone cause as accepted, with the reason.
    #[serde(default)]
    #[schemars(with = "Vec<BypassRoleDoc>")]
    pub bypass_roles: Vec<Spanned<BypassRoleDoc>>,
    /// Privileges on objects that are not tenant tables (a staging or lookup
    /// table, a function, a sequence, a schema), converged like the rest.
    #[serde(default)]
    #[schemars(with = "Vec<GrantDoc>")]
    pub grants: Vec<Spanned<GrantDoc>>,
}

/// Privileges on one object that is not a tenant table: exactly one of
/// `table`, `sequence`, `function`, `schema` names it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDoc {
    /// A table or view that is not a tenant table: `schema.name` or `name` (schema public).
    #[schemars(with = "Option<String>")]
    pub table: Option<Spanned<String>>,
    /// A sequence: `schema.name` or `name`.
    #[schemars(with = "Option<String>")]
    pub sequence: Option<Spanned<String>>,
    /// A function with its argument types: `app.normalize_phone(text)`, `app.refresh()`.
    #[schemars(with = "Option<String>")]
    pub function: Option<Spanned<String>>,
    /// A schema, by name.
    #[schemars(with = "Option<String>")]
    pub schema: Option<Spanned<String>>,
    /// The roles that get them: declared under `roles:` or existing.
    #[schemars(with = "Vec<String>")]
    pub roles: Vec<Spanned<String>>,
    /// table: select, insert, update, delete, truncate, references, trigger;
    /// sequence: usage, select, update; function: execute; schema: usage, create.
    #[schemars(with = "Vec<String>")]
    pub privileges: Vec<Spanned<String>>,
}

/// A role that bypasses row-level security on purpose, with why.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassRoleDoc {
    #[schemars(with = "String")]
    pub role: Spanned<String>,
    pub reason: Option<String>,
}

/// A tenant resolver: look a value (a provider session id, an API key) up
/// in one table and return its tenant (see `crate::resolver`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolverDoc {
    /// The function's name, `schema.name` (default schema: the context function's).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The lookup table, `schema.table` or `table`.
    #[schemars(with = "String")]
    pub table: Spanned<String>,
    /// The column the argument is compared to.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    /// The argument's type (default text).
    pub key_type: Option<TenantType>,
    /// The lookup table's tenant column (default: the tenancy's column).
    #[schemars(with = "Option<String>")]
    pub tenant_column: Option<Spanned<String>>,
    /// The declared roles that may call it.
    #[schemars(with = "Vec<String>")]
    pub roles: Vec<Spanned<String>>,
}

/// An existing admin or maintenance role's declared access to every tenant's
/// rows (data migrations, backfills), with the reason on record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceDoc {
    #[schemars(with = "String")]
    pub role: Spanned<String>,
    pub access: Access,
    pub reason: Option<String>,
}

/// A role that takes backups, with what it is for.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRoleDoc {
    #[schemars(with = "String")]
    pub role: Spanned<String>,
    pub reason: Option<String>,
}

/// An audit finding the team accepts, with the reason on record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionDoc {
    pub finding: String,
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenancyDoc {
    /// The tenant column of every tenant table (default `tenant_id`).
    #[schemars(with = "Option<String>")]
    pub column: Option<Spanned<String>>,
    /// The tenant column's type (default `uuid`).
    #[serde(rename = "type")]
    pub column_type: Option<TenantType>,
    /// Where the application binds the tenant (default: the setting `app.current_tenant_id`).
    #[schemars(with = "Option<SourceDoc>")]
    pub source: Option<Spanned<SourceDoc>>,
    #[schemars(with = "Option<FunctionDoc>")]
    pub function: Option<Spanned<FunctionDoc>>,
    /// What a query with no tenant bound gets: no rows (`deny`, default) or an error.
    pub when_unbound: Option<WhenUnbound>,
    /// The tenant policy's name; `{table}` stands for each table's name.
    #[schemars(with = "Option<String>")]
    pub policy_name: Option<Spanned<String>>,
    /// Tenant columns default to the bound tenant (the context function).
    pub default_from_context: Option<bool>,
    /// No context function: each tenant policy compares the tenant column
    /// with this expression as written (`current_setting('app.org', true)::uuid`).
    #[schemars(with = "Option<String>")]
    pub inline: Option<Spanned<String>>,
    /// Who the tenant policies apply to: the runtime roles, or PUBLIC.
    pub policy_to: Option<PolicyTo>,
}

/// The roles a tenant policy is `TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyTo {
    /// The declared runtime roles (the default).
    #[default]
    RuntimeRoles,
    /// PUBLIC, as many hand-built and ORM-made setups have it.
    Public,
}

/// The context function: just its name (`rls.current_tenant_id`), or a map
/// `{ name: app.current_tenant, managed: false }` for a function the
/// database already has and rlsctl only checks.
#[derive(Debug)]
pub struct FunctionDoc {
    /// The map form's `name`, with its own position.
    pub name: Option<Spanned<String>>,
    /// The plain form: the position is the whole value's.
    pub bare_name: Option<String>,
    pub managed: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FunctionMap {
    #[schemars(with = "String")]
    name: Spanned<String>,
    managed: Option<bool>,
}

impl JsonSchema for FunctionDoc {
    fn schema_name() -> Cow<'static, str> {
        "FunctionDoc".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The tenant context function: its schema-qualified name (default `rls.current_tenant_id`), or a map; `managed: false` adopts a function the database already has, which rlsctl then checks instead of creating.",
            "anyOf": [
                { "type": "string" },
                generator.subschema_for::<FunctionMap>(),
            ]
        })
    }
}

impl<'de> Deserialize<'de> for FunctionDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FunctionVisitor;
        impl<'de> Visitor<'de> for FunctionVisitor {
            type Value = FunctionDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a function name such as `rls.current_tenant_id`, or a map with `name` and optional `managed`")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FunctionDoc, E> {
                Ok(FunctionDoc {
                    name: None,
                    bare_name: Some(name.to_string()),
                    managed: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FunctionDoc, A::Error> {
                let m = FunctionMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FunctionDoc {
                    name: Some(m.name),
                    bare_name: None,
                    managed: m.managed,
                })
            }
        }
        deserializer.deserialize_any(FunctionVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantType {
    Uuid,
    Text,
    Bigint,
    Integer,
    // PostgreSQL's `name`, the type of `current_user`: tenants that are roles.
    Name,
}

impl TenantType {
    /// The name `format_type` reports for a column of this type.
    pub fn sql_name(self) -> &'static str {
        match self {
            TenantType::Uuid => "uuid",
            TenantType::Text => "text",
            TenantType::Bigint => "bigint",
            TenantType::Integer => "integer",
            TenantType::Name => "name",
        }
    }
}

/// Where the tenant comes from: a map naming a setting or a JWT claim, or
/// the word `current_user` (also `current_role`, `session_user`) when the
/// tenant is the role itself.
#[derive(Debug, Default)]
pub struct SourceDoc {
    pub setting: Option<Spanned<String>>,
    pub jwt_claim: Option<Spanned<String>>,
    pub claims_setting: Option<Spanned<String>>,
    /// The plain form: the position is the whole value's.
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SourceMap {
    /// A custom setting bound per transaction with `set_config(name, value, true)`.
    #[schemars(with = "Option<String>")]
    setting: Option<Spanned<String>>,
    /// A claim of the JWT PostgREST/Supabase expose as `request.jwt.claims`.
    #[schemars(with = "Option<String>")]
    jwt_claim: Option<Spanned<String>>,
    /// The setting holding the JWT claims (default `request.jwt.claims`).
    #[schemars(with = "Option<String>")]
    claims_setting: Option<Spanned<String>>,
}

impl JsonSchema for SourceDoc {
    fn schema_name() -> Cow<'static, str> {
        "SourceDoc".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where the application binds the tenant: a map with `setting` (or `jwt_claim`), or `current_user` when each tenant is a database role and the tenant column holds its name.",
            "anyOf": [
                { "type": "string", "enum": ["current_user", "current_role", "session_user"] },
                generator.subschema_for::<SourceMap>(),
            ]
        })
    }
}

impl<'de> Deserialize<'de> for SourceDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SourceDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`current_user`, or a map with `setting` or `jwt_claim`")
            }
            fn visit_str<E: de::Error>(self, role: &str) -> Result<SourceDoc, E> {
                Ok(SourceDoc {
                    role: Some(role.to_string()),
                    ..SourceDoc::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SourceDoc, A::Error> {
                let m = SourceMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SourceDoc {
                    setting: m.setting,
                    jwt_claim: m.jwt_claim,
                    claims_setting: m.claims_setting,
                    role: None,
                })
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnbound {
    Deny,
    Error,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    ReadWrite,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub login: bool,
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    pub cross_tenant: Option<Access>,
    pub reason: Option<String>,
    /// Only these of the declared tables (default: all of them).
    #[schemars(with = "Option<Vec<String>>")]
    pub tables: Option<Vec<Spanned<String>>>,
    /// Only these commands (default: what each table allows, or the cross-tenant access).
    #[schemars(with = "Option<Vec<Command>>")]
    pub commands: Option<Spanned<Vec<Command>>>,
}

/// A table entry: either just its name (`projects`, `app.projects`) or a map.
#[derive(Debug, Default)]
pub struct TableDoc {
    pub name: Option<Spanned<String>>,
    pub bare_name: Option<String>,
    pub schema: Option<Spanned<String>>,
    pub column: Option<Spanned<String>>,
    pub commands: Option<Vec<Command>>,
    pub index: Vec<Spanned<String>>,
    pub backfill: Option<Spanned<BackfillDoc>>,
    pub policy_name: Option<Spanned<String>>,
    pub default_from_context: Option<bool>,
    pub probe_values: Vec<(Spanned<String>, Spanned<String>)>,
}

/// How `migrate-existing` derives the tenant of rows that predate the column.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillDoc {
    /// Foreign keys to follow, each named by one of its columns (or by its
    /// constraint name), e.g. `[task_id, project_id]`. Composite keys are
    /// joined on all their columns.
    #[schemars(with = "Option<Vec<String>>")]
    pub via: Option<Vec<Spanned<String>>>,
    /// With `via`: after the backfill, replace the first key with one that
    /// includes the tenant column on both sides, built without long locks
    /// (default true).
    #[schemars(with = "Option<bool>")]
    pub scope_foreign_key: Option<Spanned<bool>>,
    /// One tenant for every existing row (legacy single-customer data).
    #[schemars(with = "Option<String>")]
    pub constant: Option<Spanned<String>>,
    /// A SQL expression over the row (alias `x`).
    #[schemars(with = "Option<String>")]
    pub expression: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TableMap {
    #[schemars(with = "String")]
    name: Spanned<String>,
    #[schemars(with = "Option<String>")]
    schema: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    column: Option<Spanned<String>>,
    commands: Option<Vec<Command>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    index: Vec<Spanned<String>>,
    #[schemars(with = "Option<BackfillDoc>")]
    backfill: Option<Spanned<BackfillDoc>>,
    #[schemars(with = "Option<String>")]
    policy_name: Option<Spanned<String>>,
    default_from_context: Option<bool>,
    /// Values `verify` gives these columns in its probe rows, written as the
    /// column type's text input.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    probe_values: std::collections::HashMap<Spanned<String>, Spanned<String>>,
}

impl JsonSchema for TableDoc {
    fn schema_name() -> Cow<'static, str> {
        "TableDoc".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A tenant table: its name (`projects`, `app.projects`), or a map.",
            "anyOf": [
                { "type": "string" },
                generator.subschema_for::<TableMap>(),
            ]
        })
    }
}

impl<'de> Deserialize<'de> for TableDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = TableDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table name, or a map with `name` and optional `schema`, `column`, `commands`, `index`, `backfill`, `policy_name`, `default_from_context`, `probe_values`")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<TableDoc, E> {
                Ok(TableDoc {
                    bare_name: Some(name.to_string()),
                    ..TableDoc::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TableDoc, A::Error> {
                let m = TableMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TableDoc {
                    name: Some(m.name),
                    bare_name: None,
                    schema: m.schema,
                    column: m.column,
                    commands: m.commands,
                    index: m.index,
                    backfill: m.backfill,
                    policy_name: m.policy_name,
                    default_from_context: m.default_from_context,
                    probe_values: m.probe_values.into_iter().collect(),
                })
            }
        }
        deserializer.deserialize_any(TableVisitor)
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Permissive,
    Restrictive,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Vec<String>")]
    pub tables: Vec<Spanned<String>>,
    /// The command it applies to (default `all`).
    #[serde(default = "default_command")]
    pub command: Command,
    /// `permissive` (default: OR-ed with the others) or `restrictive` (AND-ed).
    #[serde(default = "default_kind")]
    pub kind: PolicyKind,
    /// The roles it applies to (default: the runtime roles).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub roles: Vec<Spanned<String>>,
    /// A SQL expression: which existing rows the command sees.
    #[schemars(with = "Option<String>")]
    pub using: Option<Spanned<String>>,
    /// A SQL expression: which new rows the command may write.
    #[schemars(with = "Option<String>")]
    pub with_check: Option<Spanned<String>>,
}

fn default_command() -> Command {
    Command::All
}

fn default_kind() -> PolicyKind {
    PolicyKind::Permissive
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrossTenantDoc {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    pub access: Access,
    pub reason: Option<String>,
    /// Only these of the declared tables (default: all of them).
    #[schemars(with = "Option<Vec<String>>")]
    pub tables: Option<Vec<Spanned<String>>>,
}
