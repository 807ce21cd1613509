//! The YAML shapes of `policies/*.yaml`, exactly as written. Every map rejects
//! unknown keys, and names are `Spanned` so later checks can point at them.
//! [`super::load`] turns these into the validated [`super::Spec`].

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub tenancy: Option<Spanned<TenancyDoc>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RoleDoc>>,
    #[serde(default)]
    pub tables: Vec<Spanned<TableDoc>>,
    #[serde(default)]
    pub policies: Vec<Spanned<PolicyDoc>>,
    #[serde(default)]
    pub cross_tenant: Vec<Spanned<CrossTenantDoc>>,
    #[serde(default)]
    pub exceptions: Vec<Spanned<ExceptionDoc>>,
    #[serde(default)]
    pub maintenance: Vec<Spanned<MaintenanceDoc>>,
    /// Existing roles that must reach no tenant's rows (Supabase's `anon`):
    /// audit reports every privilege they hold on a tenant table.
    #[serde(default)]
    pub no_tenant_access: Vec<Spanned<String>>,
}

/// An existing admin or maintenance role's declared access to every tenant's
/// rows (data migrations, backfills), with the reason on record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceDoc {
    pub role: Spanned<String>,
    pub access: Access,
    pub reason: Option<String>,
}

/// An audit finding the team accepts, with the reason on record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionDoc {
    pub finding: String,
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenancyDoc {
    pub column: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub column_type: Option<TenantType>,
    pub source: Option<Spanned<SourceDoc>>,
    pub function: Option<Spanned<FunctionDoc>>,
    pub when_unbound: Option<WhenUnbound>,
    /// The tenant policy's name; `{table}` stands for each table's name.
    pub policy_name: Option<Spanned<String>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionMap {
    name: Spanned<String>,
    managed: Option<bool>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantType {
    Uuid,
    Text,
    Bigint,
    Integer,
}

impl TenantType {
    /// The name `format_type` reports for a column of this type.
    pub fn sql_name(self) -> &'static str {
        match self {
            TenantType::Uuid => "uuid",
            TenantType::Text => "text",
            TenantType::Bigint => "bigint",
            TenantType::Integer => "integer",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    /// A custom setting bound per transaction with `set_config(name, value, true)`.
    pub setting: Option<Spanned<String>>,
    /// A claim of the JWT PostgREST/Supabase expose as `request.jwt.claims`.
    pub jwt_claim: Option<Spanned<String>>,
    /// The setting holding the JWT claims (default `request.jwt.claims`).
    pub claims_setting: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnbound {
    Deny,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    ReadWrite,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    pub name: Spanned<String>,
    #[serde(default)]
    pub login: bool,
    pub password_env: Option<Spanned<String>>,
    pub cross_tenant: Option<Access>,
    pub reason: Option<String>,
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
}

/// How `migrate-existing` derives the tenant of rows that predate the column.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillDoc {
    /// Foreign-key columns to follow, e.g. `[task_id, project_id]`.
    pub via: Option<Vec<Spanned<String>>>,
    /// One tenant for every existing row (legacy single-customer data).
    pub constant: Option<Spanned<String>>,
    /// A SQL expression over the row (alias `x`).
    pub expression: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableMap {
    name: Spanned<String>,
    schema: Option<Spanned<String>>,
    column: Option<Spanned<String>>,
    commands: Option<Vec<Command>>,
    #[serde(default)]
    index: Vec<Spanned<String>>,
    backfill: Option<Spanned<BackfillDoc>>,
    policy_name: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for TableDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = TableDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table name, or a map with `name` and optional `schema`, `column`, `commands`, `index`, `backfill`, `policy_name`")
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
                })
            }
        }
        deserializer.deserialize_any(TableVisitor)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Permissive,
    Restrictive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: Spanned<String>,
    pub tables: Vec<Spanned<String>>,
    #[serde(default = "default_command")]
    pub command: Command,
    #[serde(default = "default_kind")]
    pub kind: PolicyKind,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    pub using: Option<Spanned<String>>,
    pub with_check: Option<Spanned<String>>,
}

fn default_command() -> Command {
    Command::All
}

fn default_kind() -> PolicyKind {
    PolicyKind::Permissive
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossTenantDoc {
    pub name: Spanned<String>,
    pub when: Spanned<String>,
    pub access: Access,
    pub reason: Option<String>,
}
