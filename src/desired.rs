//! Spec → the state the database should have.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::grants::{GrantTarget, ObjectGrants};
use crate::model::{ContextFunction, Index, Policy, Privilege, Role, State, Table, Volatility};
use crate::quote::{QualifiedName, ident, literal};
use crate::spec::{
    Access, Command, Expression, PolicyKind, PolicySpec, PolicyTo, Spec, Tenancy, TenantSource,
    WhenUnbound,
};
pub use crate::spec::{CROSS_TENANT_PREFIX, TENANT_POLICY};
const MAX_NAME_BYTES: usize = 63;

pub fn desired_state(spec: &Spec) -> State {
    let runtime: BTreeSet<String> = spec.runtime_roles().map(|r| r.name.clone()).collect();
    let mut state = State::default();
    // Each table's extra policies, found once: asking every policy about every
    // table was quadratic when a policy lists many tables.
    let mut extra_policies: BTreeMap<&QualifiedName, Vec<&PolicySpec>> = BTreeMap::new();
    for policy in &spec.policies {
        for table in &policy.tables {
            extra_policies.entry(table).or_default().push(policy);
        }
    }

    for role in &spec.roles {
        state.roles.insert(
            role.name.clone(),
            Role {
                name: role.name.clone(),
                login: role.login,
                superuser: false,
                bypass_rls: false,
                password_env: role.password_env.clone(),
            },
        );
    }

    // An adopted function (`managed: false`) is the database's own: rlsctl
    // neither creates it nor grants anything on it or its schema.
    // Nor is there one to make when the policies compare the column inline.
    let function = (spec.tenancy.function_managed && spec.tenancy.inline.is_none())
        .then(|| context_function(&spec.tenancy, &runtime));
    let tenant_policy_roles = match spec.tenancy.policy_to {
        PolicyTo::RuntimeRoles => runtime.clone(),
        PolicyTo::Public => BTreeSet::from(["PUBLIC".to_string()]),
    };
    if let Some(function) = &function {
        state.schemas.insert(function.name.schema.clone());
        for role in &runtime {
            state
                .schema_usage
                .insert((role.clone(), function.name.schema.clone()));
        }
    }

    for table_spec in &spec.tables {
        let name = table_spec.name.clone();
        state.schemas.insert(name.schema.clone());
        let mut table = Table {
            name: name.clone(),
            rls_enabled: true,
            rls_forced: true,
            ..Table::default()
        };

        let tenant_check = tenant_predicate(&table_spec.column, &spec.tenancy);
        let tenant_policy = table_spec.tenant_policy();
        add_policy(
            &mut table,
            &tenant_policy,
            Command::All,
            true,
            tenant_policy_roles.clone(),
            Some(tenant_check.clone()),
            Some(tenant_check),
        );
        table.tenant_policy = Some(tenant_policy);
        if table_spec.default_from_context == Some(true) {
            table.context_default =
                Some((table_spec.column.clone(), spec.tenancy.function.clone()));
        }

        // A runtime role gets the table's commands, narrowed by its own scope.
        for role in spec.roles.iter().filter(|r| r.cross_tenant.is_none()) {
            if !role.scope.covers(&name) {
                continue;
            }
            let privileges = privileges_for(&role.scope.narrow(&table_spec.commands));
            if !privileges.is_empty() {
                table.grants.insert(role.name.clone(), privileges);
            }
        }

        for role in spec.roles.iter() {
            let Some(access) = role.cross_tenant else {
                continue;
            };
            if !role.scope.covers(&name) {
                continue;
            }
            let everything = Expression::trusted("true".into());
            let (command, check) = access_shape(access, &everything);
            add_policy(
                &mut table,
                &format!("{CROSS_TENANT_PREFIX}{}", role.name),
                command,
                true,
                BTreeSet::from([role.name.clone()]),
                Some(everything.clone()),
                check,
            );
            let reach = match access {
                Access::Read => BTreeSet::from([Command::Select]),
                Access::ReadWrite => crate::spec::every_command(),
            };
            table.grants.insert(
                role.name.clone(),
                privileges_for(&role.scope.narrow(&reach)),
            );
        }

        // The admin's declared access: a policy and nothing else. The role
        // is the admin's own, so rlsctl neither creates it nor grants it more.
        for maintenance in &spec.maintenance {
            let everything = Expression::trusted("true".into());
            let (command, check) = access_shape(maintenance.access, &everything);
            add_policy(
                &mut table,
                &maintenance.policy(),
                command,
                true,
                BTreeSet::from([maintenance.role.clone()]),
                Some(everything.clone()),
                check,
            );
        }

        for predicate in spec.cross_tenant.iter().filter(|p| p.scope.covers(&name)) {
            // Wrapped in a sub-select so it runs once per statement, not per row.
            let once = Expression::trusted(format!("(SELECT ({}))", predicate.when));
            let (command, check) = access_shape(predicate.access, &once);
            add_policy(
                &mut table,
                &format!("{CROSS_TENANT_PREFIX}{}", predicate.name),
                command,
                true,
                runtime.clone(),
                Some(once.clone()),
                check,
            );
        }

        for policy in extra_policies.remove(&name).unwrap_or_default() {
            let roles = if policy.roles.is_empty() {
                runtime.clone()
            } else {
                policy.roles.iter().cloned().collect()
            };
            add_policy(
                &mut table,
                &policy.name,
                policy.command,
                policy.kind == PolicyKind::Permissive,
                roles,
                policy.using.clone(),
                policy.with_check.clone(),
            );
        }

        // No columns: the table's index comes from elsewhere (a partition
        // gets its partitioned parent's).
        if !table_spec.index_columns.is_empty() {
            table.indexes.push(Index {
                name: index_name(&name.name, &table_spec.index_columns),
                columns: table_spec.index_columns.clone(),
                valid: true,
            });
        }
        for role in spec.roles.iter().map(|r| &r.name) {
            state
                .schema_usage
                .insert((role.clone(), name.schema.clone()));
        }
        state.tables.insert(name, table);
    }
    state.function = function;
    state.object_grants = object_grants(spec);
    for resolver in &spec.resolvers {
        state.schemas.insert(resolver.name.schema.clone());
        for role in &resolver.roles {
            state
                .schema_usage
                .insert((role.clone(), resolver.name.schema.clone()));
        }
        state.resolvers.insert(
            resolver.name.clone(),
            crate::resolver::Resolver::from_spec(resolver, spec.tenancy.column_type.sql_name()),
        );
    }
    state
}

/// The declared objects that are not tenant tables, with what every role
/// the spec names (under `roles:` or `grants:`) should hold on each: entries
/// on the same object add up, and a role no entry gives it should hold nothing.
fn object_grants(spec: &Spec) -> BTreeMap<GrantTarget, ObjectGrants> {
    let roles = crate::grants::declared_roles(spec);
    let mut out: BTreeMap<GrantTarget, ObjectGrants> = BTreeMap::new();
    for grant in &spec.grants {
        let entry = out
            .entry(grant.target.clone())
            .or_insert_with(|| ObjectGrants {
                argument_types: Vec::new(),
                owner: None,
                privileges: roles.iter().map(|r| (r.clone(), BTreeSet::new())).collect(),
                grantable: BTreeMap::new(),
            });
        for role in &grant.roles {
            entry
                .privileges
                .entry(role.clone())
                .or_default()
                .extend(grant.privileges.iter().copied());
        }
    }
    out
}

fn privileges_for(commands: &BTreeSet<Command>) -> BTreeSet<Privilege> {
    commands
        .iter()
        .flat_map(|c| Privilege::for_command(*c))
        .collect()
}

/// Read access is a SELECT policy; read-write is FOR ALL with the same check.
fn access_shape(access: Access, expression: &Expression) -> (Command, Option<Expression>) {
    match access {
        Access::Read => (Command::Select, None),
        Access::ReadWrite => (Command::All, Some(expression.clone())),
    }
}

fn add_policy(
    table: &mut Table,
    name: &str,
    command: Command,
    permissive: bool,
    roles: BTreeSet<String>,
    using: Option<Expression>,
    with_check: Option<Expression>,
) {
    table.policies.insert(
        name.to_string(),
        Policy {
            name: name.to_string(),
            command,
            permissive,
            roles,
            using,
            with_check,
            managed: true,
        },
    );
}

/// `tenant_id = (SELECT rls.current_tenant_id())`: the sub-select makes the
/// planner evaluate the function once per statement as an InitPlan, so the
/// comparison is an index condition instead of a per-row call.
pub fn tenant_predicate(column: &str, tenancy: &Tenancy) -> Expression {
    if let Some(inline) = &tenancy.inline {
        // Parsed as exactly one expression when the spec was read.
        return Expression::trusted(format!("{} = ({inline})", ident(column)));
    }
    Expression::trusted(format!(
        "{} = (SELECT {}())",
        ident(column),
        tenancy.function.quoted()
    ))
}

/// The context function. `current_setting(name, true)` returns NULL when the
/// setting was never set, but `''` after a `SET LOCAL` ended or a `RESET`, and
/// `''::uuid` raises: `nullif(…, '')` makes both mean "no tenant", which the
/// policies turn into no rows and rejected writes.
pub fn context_function(tenancy: &Tenancy, executors: &BTreeSet<String>) -> ContextFunction {
    let cast = tenancy.column_type.sql_name();
    let raw = match &tenancy.source {
        TenantSource::Setting(name) => {
            format!("pg_catalog.current_setting({}, true)", literal(name))
        }
        TenantSource::JwtClaim {
            claims_setting,
            claim,
        } => format!(
            "nullif(pg_catalog.current_setting({}, true), '')::jsonb ->> {}",
            literal(claims_setting),
            literal(claim)
        ),
        // Not reached from a spec (it makes no function for such tenants).
        TenantSource::Role(role) => format!("{}::text", role.sql()),
    };
    let (language, body) = match tenancy.when_unbound {
        WhenUnbound::Deny => ("sql", format!("\nSELECT nullif({raw}, '')::{cast}\n")),
        WhenUnbound::Error => (
            "plpgsql",
            format!(
                "\nDECLARE\n  tenant text := nullif({raw}, '');\nBEGIN\n  IF tenant IS NULL THEN\n    RAISE EXCEPTION 'rlsctl: no tenant is bound in this transaction'\n      USING ERRCODE = 'insufficient_privilege',\n            HINT = {};\n  END IF;\n  RETURN tenant::{cast};\nEND\n",
                literal(&binding_hint(&tenancy.source))
            ),
        ),
    };
    ContextFunction {
        name: tenancy.function.clone(),
        returns: cast.to_string(),
        language: language.to_string(),
        volatility: Volatility::Stable,
        // It reads only settings, which parallel workers inherit.
        parallel_safe: true,
        body,
        executors: executors.clone(),
    }
}

fn binding_hint(source: &TenantSource) -> String {
    match source {
        TenantSource::Setting(name) => {
            format!("call set_config('{name}', <tenant id>, true) at the start of each transaction")
        }
        TenantSource::JwtClaim { claim, .. } => {
            format!("the request's JWT has no `{claim}` claim")
        }
        TenantSource::Role(_) => "connect as the tenant's own role".to_string(),
    }
}

/// `<table>_<columns>_idx`, like PostgreSQL's own default.
pub fn index_name(table: &str, columns: &[String]) -> String {
    fitted_name(&format!("{table}_{}", columns.join("_")), "_idx")
}

/// `stem` + `suffix` as a name PostgreSQL keeps whole: past 63 bytes it would
/// silently truncate it, so two long names could become one. Instead the stem
/// is cut on a char boundary and a hash of the full name keeps it distinct.
pub fn fitted_name(stem: &str, suffix: &str) -> String {
    let full = format!("{stem}{suffix}");
    if full.len() <= MAX_NAME_BYTES {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    let tail = format!("_{}{suffix}", &digest[..8]);
    let mut keep = MAX_NAME_BYTES - tail.len();
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tail}", &full[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;
    use std::path::Path;

    fn state(yaml: &str) -> State {
        desired_state(&load_str(Path::new("p.yaml"), yaml).unwrap())
    }

    #[test]
    fn every_table_gets_forced_rls_a_tenant_policy_for_its_roles_and_an_index() {
        let s = state("roles:\n  - name: app\n  - name: worker\ntables:\n  - projects\n");
        let t = &s.tables[&QualifiedName::new("public", "projects")];
        assert!(t.rls_enabled && t.rls_forced);
        let p = &t.policies[TENANT_POLICY];
        assert_eq!(p.command, Command::All);
        assert_eq!(p.roles, BTreeSet::from(["app".into(), "worker".into()]));
        let expected = r#""tenant_id" = (SELECT "rls"."current_tenant_id"())"#;
        assert_eq!(p.using.as_ref().unwrap().as_str(), expected);
        assert_eq!(p.with_check.as_ref().unwrap().as_str(), expected);
        assert_eq!(t.indexes[0].columns, vec!["tenant_id"]);
        assert_eq!(t.grants["app"].len(), 4);
    }

    #[test]
    fn the_context_function_treats_empty_as_unbound_and_is_stable_and_parallel_safe() {
        let s = state("roles:\n  - name: app\n");
        let f = s.function.unwrap();
        assert_eq!(f.volatility, Volatility::Stable);
        assert!(f.parallel_safe);
        assert_eq!(f.language, "sql");
        assert!(
            f.body.contains(
                "nullif(pg_catalog.current_setting('app.current_tenant_id', true), '')::uuid"
            ),
            "{}",
            f.body
        );
    }

    #[test]
    fn a_read_only_cross_tenant_role_gets_a_select_policy_and_select_only() {
        let s = state(
            "roles:\n  - name: app\n  - name: bi\n    cross_tenant: read\n    reason: dashboards\ntables:\n  - projects\n",
        );
        let t = &s.tables[&QualifiedName::new("public", "projects")];
        let p = &t.policies["cross_tenant_bi"];
        assert_eq!(p.command, Command::Select);
        assert!(p.with_check.is_none());
        assert_eq!(t.grants["bi"], BTreeSet::from([Privilege::Select]));
        assert!(!t.policies[TENANT_POLICY].roles.contains("bi"));
    }

    #[test]
    fn a_maintenance_role_gets_an_open_policy_on_every_table_and_no_grant() {
        let s = state(
            "roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: read_write\n    reason: backfills\n  - role: auditor\n    access: read\n    reason: checks\ntables:\n  - projects\n  - tasks\n",
        );
        for t in s.tables.values() {
            let p = &t.policies["maintenance_admin"];
            assert_eq!(p.command, Command::All);
            assert_eq!(p.roles, BTreeSet::from(["admin".into()]));
            assert_eq!(p.using.as_ref().unwrap().as_str(), "true");
            assert_eq!(p.with_check.as_ref().unwrap().as_str(), "true");
            let p = &t.policies["maintenance_auditor"];
            assert_eq!(p.command, Command::Select);
            assert!(p.with_check.is_none());
            assert!(!t.grants.contains_key("admin") && !t.grants.contains_key("auditor"));
        }
        assert!(!s.roles.contains_key("admin"));
        assert!(!s.schema_usage.iter().any(|(role, _)| role == "admin"));
    }

    #[test]
    fn an_extra_policy_is_on_exactly_the_tables_it_lists() {
        let s = state(
            "roles:\n  - name: app\ntables:\n  - projects\n  - tasks\n  - invoices\npolicies:\n  - name: hide_archived\n    tables: [projects, invoices]\n    command: select\n    using: NOT archived\n  - name: own_tasks\n    tables: [tasks]\n    using: \"true\"\n",
        );
        let extras = |table: &str| -> Vec<&str> {
            s.tables[&QualifiedName::new("public", table)]
                .policies
                .keys()
                .map(String::as_str)
                .filter(|name| *name != TENANT_POLICY)
                .collect()
        };
        assert_eq!(extras("projects"), ["hide_archived"]);
        assert_eq!(extras("invoices"), ["hide_archived"]);
        assert_eq!(extras("tasks"), ["own_tasks"]);
    }

    #[test]
    fn an_inline_tenancy_compares_the_column_with_its_expression_and_makes_no_function() {
        let s = state(
            "tenancy:\n  column: org_id\n  source: { setting: app.org }\n  inline: \"current_setting('app.org', true)::uuid\"\n  policy_to: public\nroles:\n  - name: app\ntables:\n  - projects\n",
        );
        assert!(s.function.is_none());
        assert!(!s.schemas.contains("rls"));
        let p = &s.tables[&QualifiedName::new("public", "projects")].policies[TENANT_POLICY];
        assert_eq!(
            p.using.as_ref().unwrap().as_str(),
            r#""org_id" = (current_setting('app.org', true)::uuid)"#
        );
        assert_eq!(p.with_check, p.using);
        assert_eq!(p.roles, BTreeSet::from(["PUBLIC".to_string()]));
    }

    #[test]
    fn long_index_names_are_shortened_on_a_char_boundary() {
        let name = index_name(&"é".repeat(40), &["tenant_id".into()]);
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("_idx"));
        assert_ne!(name, index_name(&"é".repeat(41), &["tenant_id".into()]));
    }
}
