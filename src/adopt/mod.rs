//! `rlsctl init --from-db`: a spec that describes a live database as it is.
//!
//! The live state (`catalog::read`) goes in, a [`Discovered`] spec comes out,
//! and `render` writes it as YAML. Discovery is pure, so every rule is unit
//! tested on hand-made states:
//!
//! - `comparison`: the tenant comparison inside a policy expression tree;
//! - `tables`: which tables are tenant tables, their tenant policy, column,
//!   policy name pattern, commands and the policies that are not the tenant's;
//! - `roles`: runtime roles and cross-tenant roles;
//! - `source`: where the tenant comes from (setting, JWT claim, function);
//! - `render`: the YAML, with a `# TODO:` for what the spec cannot say.
//!
//! The aim is a spec whose `plan` against the same database is empty: every
//! name and expression is the database's own, and whatever would still
//! change on apply is announced as a TODO instead of being dropped.

pub mod comparison;
mod grants;
mod render;
mod roles;
mod source;
mod tables;

use std::collections::{BTreeMap, BTreeSet};

pub use render::render;
pub use source::FunctionBody;

use crate::model::State;
use crate::quote::QualifiedName;
use crate::spec::{Access, Command, TenantSource, TenantType};

/// The spec discovered in a database, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub tenancy: DiscoveredTenancy,
    pub roles: Vec<DiscoveredRole>,
    pub tables: Vec<DiscoveredTable>,
    pub policies: Vec<DiscoveredPolicy>,
    /// What the spec cannot say, or what apply would still change.
    pub todos: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredTenancy {
    pub column: String,
    pub column_type: Option<TenantType>,
    /// `None` when nothing says which setting carries the tenant.
    pub source: Option<TenantSource>,
    pub context: Context,
    pub policy_name: String,
    /// The tenant policies are `TO PUBLIC`.
    pub policy_to_public: bool,
}

/// How the tenant policies learn the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// `(SELECT f())`: the database's own function, adopted (`managed: false`).
    Function(QualifiedName),
    /// `(SELECT f())` in policies rlsctl made (they carry its marker): its own
    /// generated function, managed as before; `error` for its raising form.
    Generated { name: QualifiedName, error: bool },
    /// The value written into each policy, e.g. `current_setting('app.org', true)::uuid`.
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredRole {
    pub name: String,
    pub login: bool,
    pub cross_tenant: Option<Access>,
    /// For a cross-tenant role: which policy showed it.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTable {
    pub name: QualifiedName,
    /// Only when it differs from the tenancy's column.
    pub column: Option<String>,
    /// Only when not all four.
    pub commands: Option<BTreeSet<Command>>,
    /// Only when the tenancy's pattern does not give this table's name.
    pub policy_name: Option<String>,
    /// Written as comments above the entry.
    pub todos: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPolicy {
    pub name: String,
    pub tables: Vec<QualifiedName>,
    pub command: Command,
    pub permissive: bool,
    /// `None`: exactly the runtime roles (the spec's default).
    pub roles: Option<Vec<String>>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// The functions without arguments the tenant comparisons call, as written
/// (`["app", "current_org"]` or `["current_org"]`): their bodies tell which
/// setting carries the tenant, so the caller reads them before [`discover`].
pub fn functions_called(live: &State) -> BTreeSet<Vec<String>> {
    tables::candidates(live)
        .into_values()
        .flat_map(|c| {
            c.into_iter()
                .flat_map(|(comparison, _)| comparison.functions)
        })
        .collect()
}

/// Why discovery cannot produce a spec at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "no tenant table found: no policy compares a column with a session setting (current_setting(…)), a JWT claim or a function of them. rlsctl init --from-db describes a database whose tenant policies exist already; for a new one, write policies/*.yaml by hand (see the README)"
    )]
    NoTenantTable,
    #[error(
        "no runtime role found: the tenant policies are TO PUBLIC and no role other than the tables' owners, superusers and BYPASSRLS roles holds a privilege on the tenant tables. Grant the role your application connects as its privileges first, or write `roles:` by hand"
    )]
    NoRuntimeRole,
}

/// The spec that describes `live` as it is. `current_user` (the connecting
/// role) is never proposed as a runtime role; `functions` are the bodies of
/// [`functions_called`], keyed as written.
pub fn discover(
    live: &State,
    current_user: &str,
    functions: &BTreeMap<Vec<String>, FunctionBody>,
) -> Result<Discovered, DiscoveryError> {
    let mut todos = Vec::new();
    let found = tables::tenant_tables(live, &mut todos).ok_or(DiscoveryError::NoTenantTable)?;
    let roles = roles::discover(live, &found, current_user, &mut todos)?;
    grants::todos(live, &found, &roles, &mut todos);
    let made_by_rlsctl = found.tables.values().all(|t| t.policy.managed);
    let (context, source) =
        source::discover(&found.comparison, functions, made_by_rlsctl, &mut todos);
    let column_type = tables::column_type(live, &found, &mut todos);
    let runtime: BTreeSet<String> = roles
        .iter()
        .filter(|r| r.cross_tenant.is_none())
        .map(|r| r.name.clone())
        .collect();
    let cross_tenant: BTreeSet<String> = roles
        .iter()
        .filter(|r| r.cross_tenant.is_some())
        .map(|r| r.name.clone())
        .collect();
    let (declared, policies) = tables::declare(live, &found, &runtime, &cross_tenant, &mut todos);
    Ok(Discovered {
        tenancy: DiscoveredTenancy {
            column: found.column.clone(),
            column_type,
            source,
            context,
            policy_name: found.pattern.clone(),
            policy_to_public: found.to_public,
        },
        roles,
        tables: declared,
        policies,
        todos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Index, Policy, Privilege, Role, Table};
    use crate::spec::Expression;

    fn tenant_table(name: &str, column: &str, policy: &str, setting: &str) -> Table {
        let using = format!("({column} = (current_setting('{setting}'::text, true))::uuid)");
        let policy = Policy {
            name: policy.into(),
            command: Command::All,
            permissive: true,
            roles: BTreeSet::from(["app".to_string()]),
            using: Some(Expression::trusted(using.clone())),
            with_check: Some(Expression::trusted(using)),
            managed: false,
        };
        Table {
            name: QualifiedName::new("public", name),
            rls_enabled: true,
            rls_forced: true,
            policies: BTreeMap::from([(policy.name.clone(), policy)]),
            indexes: vec![Index {
                name: format!("{name}_idx"),
                columns: vec![column.into()],
                valid: true,
            }],
            grants: BTreeMap::from([(
                "app".to_string(),
                BTreeSet::from([
                    Privilege::Select,
                    Privilege::Insert,
                    Privilege::Update,
                    Privilege::Delete,
                ]),
            )]),
            columns: BTreeMap::from([(column.to_string(), "uuid".to_string())]),
            owner: "owner".into(),
            ..Table::default()
        }
    }

    fn live(tables: Vec<Table>) -> State {
        let mut state = State::default();
        state.roles.insert(
            "app".into(),
            Role {
                name: "app".into(),
                login: true,
                superuser: false,
                bypass_rls: false,
                password_env: None,
            },
        );
        for t in tables {
            state.tables.insert(t.name.clone(), t);
        }
        state
    }

    #[test]
    fn what_most_tables_share_is_the_tenancy_and_the_rest_is_said_per_table() {
        let state = live(vec![
            tenant_table("orders", "org_id", "orders_isolation", "app.org"),
            tenant_table("invoices", "org_id", "invoices_isolation", "app.org"),
            tenant_table("legacy", "account_id", "old_policy", "app.org"),
            tenant_table("imports", "org_id", "imports_isolation", "app.other"),
        ]);
        let found = discover(&state, "admin", &BTreeMap::new()).unwrap();
        assert_eq!(found.tenancy.column, "org_id");
        assert_eq!(found.tenancy.policy_name, "{table}_isolation");
        assert_eq!(
            found.tenancy.source,
            Some(TenantSource::Setting("app.org".into()))
        );
        assert!(!found.tenancy.policy_to_public);
        let names: Vec<&str> = found.tables.iter().map(|t| t.name.name.as_str()).collect();
        assert_eq!(names, ["invoices", "legacy", "orders"]);
        let legacy = &found.tables[1];
        assert_eq!(legacy.column.as_deref(), Some("account_id"));
        assert_eq!(legacy.policy_name.as_deref(), Some("old_policy"));
        assert_eq!(found.tables[0].column, None);
        assert_eq!(found.tables[0].policy_name, None);
        // Another tenant value is another spec: named, not declared.
        assert!(
            found
                .todos
                .iter()
                .any(|t| t.starts_with("table public.imports is not declared")),
            "{:?}",
            found.todos
        );
        let roles: Vec<&str> = found.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(roles, ["app"]);
        // And what is rendered loads as the spec it describes.
        let spec = crate::spec::load_str(std::path::Path::new("p.yaml"), &render(&found)).unwrap();
        assert_eq!(spec.tables[1].tenant_policy(), "old_policy");
        assert_eq!(spec.tables[2].tenant_policy(), "orders_isolation");
    }

    #[test]
    fn the_connecting_role_is_never_proposed_as_a_runtime_role() {
        let state = live(vec![tenant_table("orders", "org_id", "iso", "app.org")]);
        assert!(matches!(
            discover(&state, "app", &BTreeMap::new()),
            Err(DiscoveryError::NoRuntimeRole)
        ));
    }
}
