//! A context function the database already has (`tenancy.function: { name,
//! managed: false }`). rlsctl does not create, replace or grant it, so before
//! every policy is made to trust it, `plan` and `apply` check that it can be
//! trusted: it exists, it is STABLE, a SECURITY DEFINER one has a pinned
//! search_path, no declared role can redefine it, every runtime role can call
//! it, and called with no tenant bound it returns NULL or raises.

use std::fmt;

use sqlx::{Connection, PgConnection};

use crate::model::Volatility;
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Spec, TenantSource};

/// Why an adopted context function is refused.
#[derive(Debug, thiserror::Error)]
pub struct Refused {
    pub function: QualifiedName,
    pub problems: Vec<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the context function {}() is the database's own (`managed: false`), and rlsctl will not make the policies trust it:",
            self.function
        )?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        write!(f, "\nNothing was changed.")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdoptedFunctionError {
    #[error("{0}")]
    Refused(#[from] Refused),
    #[error(
        "checking the context function {function}(): {}",
        crate::errors::database_message(source)
    )]
    Database {
        function: QualifiedName,
        source: sqlx::Error,
    },
}

/// What the catalog says about the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub volatility: Volatility,
    pub security_definer: bool,
    /// `SET search_path = …` is part of its definition.
    pub search_path_pinned: bool,
    pub owner: String,
    /// Declared roles that are its owner or can become it (membership).
    pub owning_roles: Vec<String>,
    /// Runtime roles lacking EXECUTE on it or USAGE on its schema.
    pub cannot_call: Vec<String>,
}

/// Checks the adopted function of `spec`; does nothing for a managed one.
/// Runs inside the caller's transaction and leaves nothing behind.
pub async fn check(conn: &mut PgConnection, spec: &Spec) -> Result<(), AdoptedFunctionError> {
    if spec.tenancy.function_managed {
        return Ok(());
    }
    let function = &spec.tenancy.function;
    let db = |source| AdoptedFunctionError::Database {
        function: function.clone(),
        source,
    };
    let declared: Vec<String> = spec.roles.iter().map(|r| r.name.clone()).collect();
    let runtime: Vec<String> = spec.runtime_roles().map(|r| r.name.clone()).collect();
    let found = read(conn, function, &declared, &runtime)
        .await
        .map_err(db)?;
    let mut problems = match &found {
        None => vec![format!(
            "it does not exist (a function {function}() without arguments). With `managed: false` rlsctl does not create it: create it in a migration, or drop `managed: false` to let rlsctl generate it"
        )],
        Some(found) => definition_problems(function, found),
    };
    // Only a STABLE function is called: it cannot write, so the call is safe
    // to make, and it is rolled back anyway.
    if problems.is_empty() {
        for (unbound, value) in unbound_bindings(&spec.tenancy.source) {
            if let Some(tenant) = call_unbound(conn, function, value.as_ref())
                .await
                .map_err(db)?
            {
                problems.push(format!(
                    "with no tenant bound ({unbound}) it returns '{tenant}' rather than NULL or an error: every connection that forgets to bind a tenant would see that tenant's rows. Make it return NULL (e.g. nullif(current_setting(name, true), '')::<type>) or raise"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refused {
            function: function.clone(),
            problems,
        }
        .into())
    }
}

async fn read(
    conn: &mut PgConnection,
    function: &QualifiedName,
    declared: &[String],
    runtime: &[String],
) -> Result<Option<Found>, sqlx::Error> {
    type Row = (String, bool, bool, String, Vec<String>, Vec<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT p.provolatile::text, p.prosecdef,
                coalesce(EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%'), false),
                pg_catalog.pg_get_userbyid(p.proowner)::text,
                ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
                       WHERE r.rolname = ANY($3)
                         AND pg_catalog.pg_has_role(r.oid, p.proowner, 'MEMBER')
                       ORDER BY 1),
                ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
                       WHERE r.rolname = ANY($4)
                         AND NOT (pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
                                  AND pg_catalog.has_schema_privilege(r.oid, p.pronamespace, 'USAGE'))
                       ORDER BY 1)
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0",
    )
    .bind(&function.schema)
    .bind(&function.name)
    .bind(declared)
    .bind(runtime)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(volatility, security_definer, search_path_pinned, owner, owning_roles, cannot_call)| {
            Found {
                volatility: Volatility::from_catalog(volatility.as_str()),
                security_definer,
                search_path_pinned,
                owner,
                owning_roles,
                cannot_call,
            }
        },
    ))
}

/// What is wrong with the function's definition and rights, in words.
pub fn definition_problems(function: &QualifiedName, found: &Found) -> Vec<String> {
    let mut problems = Vec::new();
    match found.volatility {
        Volatility::Stable => {}
        Volatility::Volatile => problems.push(
            "it is VOLATILE: the planner calls it for every row instead of once per statement, and the tenant comparison cannot use the tenant index. Declare it STABLE".to_string(),
        ),
        Volatility::Immutable => problems.push(
            "it is IMMUTABLE: the planner may fold it into a constant when a statement is planned, so a cached plan keeps one transaction's tenant for the next. Declare it STABLE".to_string(),
        ),
    }
    if found.security_definer && !found.search_path_pinned {
        problems.push(format!(
            "it is SECURITY DEFINER without a pinned search_path: it runs with the rights of its owner, {}, and resolves names on the caller's search_path, so a caller who can create objects can make it run theirs. ALTER FUNCTION {}() SET search_path = pg_catalog, pg_temp (or make it SECURITY INVOKER)",
            found.owner,
            function.quoted()
        ));
    }
    for role in &found.owning_roles {
        let owner = if *role == found.owner {
            format!("it is owned by {role}, a role the spec declares")
        } else {
            format!(
                "it is owned by {}, and {role}, a role the spec declares, is a member of it",
                found.owner
            )
        };
        problems.push(format!(
            "{owner}: {role} could CREATE OR REPLACE it to return any tenant. ALTER FUNCTION {}() OWNER TO <an admin role the application does not use>",
            function.quoted()
        ));
    }
    for role in &found.cannot_call {
        problems.push(format!(
            "runtime role {role} may not call it (it needs EXECUTE on it and USAGE on schema {}), so every query on a tenant table would fail. GRANT EXECUTE ON FUNCTION {}() TO {}; GRANT USAGE ON SCHEMA {} TO {}",
            function.schema,
            function.quoted(),
            crate::quote::ident(role),
            crate::quote::ident(&function.schema),
            crate::quote::ident(role),
        ));
    }
    problems
}

/// The ways a transaction can have no tenant: the setting never set (as in
/// this session), and reset to `''` (after a `SET LOCAL` ended); for a JWT
/// source, also claims without the claim.
fn unbound_bindings(source: &TenantSource) -> Vec<(String, Option<(String, String)>)> {
    let setting = match source {
        TenantSource::Setting(name) => name,
        TenantSource::JwtClaim { claims_setting, .. } => claims_setting,
        // No function is adopted when tenants are roles (the spec refuses both).
        TenantSource::Role(_) => return Vec::new(),
    };
    let mut out = vec![
        (format!("{setting} never set"), None),
        (
            format!("{setting} = ''"),
            Some((setting.clone(), String::new())),
        ),
    ];
    if let TenantSource::JwtClaim { claim, .. } = source {
        out.push((
            format!("{setting} without `{claim}`"),
            Some((setting.clone(), "{}".to_string())),
        ));
    }
    out
}

/// Calls the function in a savepoint that is rolled back, with `binding`
/// (setting, value) made transaction-local first. `Some` is what it returned;
/// `None` is NULL or an error, which both fail closed.
async fn call_unbound(
    conn: &mut PgConnection,
    function: &QualifiedName,
    binding: Option<&(String, String)>,
) -> Result<Option<String>, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    // Inside the savepoint: rolled back with it.
    sqlx::query("SELECT set_config('statement_timeout', '5s', true)")
        .execute(&mut *savepoint)
        .await?;
    if let Some((setting, value)) = binding {
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(setting)
            .bind(value)
            .execute(&mut *savepoint)
            .await?;
    }
    let call = Sql::new("SELECT ").qname(function).push("()::text");
    let result: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(call.to_query())
        .persistent(false)
        .fetch_one(&mut *savepoint)
        .await;
    savepoint.rollback().await?;
    Ok(result.unwrap_or(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe() -> Found {
        Found {
            volatility: Volatility::Stable,
            security_definer: false,
            search_path_pinned: false,
            owner: "admin".into(),
            owning_roles: Vec::new(),
            cannot_call: Vec::new(),
        }
    }

    #[test]
    fn a_stable_invoker_function_owned_by_the_admin_and_callable_is_accepted() {
        let f = QualifiedName::new("app", "tenant");
        assert!(definition_problems(&f, &safe()).is_empty());
        let pinned = Found {
            security_definer: true,
            search_path_pinned: true,
            ..safe()
        };
        assert!(definition_problems(&f, &pinned).is_empty());
    }

    #[test]
    fn each_unsafe_trait_is_named() {
        let f = QualifiedName::new("app", "tenant");
        let cases = [
            (
                Found {
                    volatility: Volatility::Immutable,
                    ..safe()
                },
                "IMMUTABLE",
            ),
            (
                Found {
                    volatility: Volatility::Volatile,
                    ..safe()
                },
                "VOLATILE",
            ),
            (
                Found {
                    security_definer: true,
                    ..safe()
                },
                "SECURITY DEFINER without a pinned search_path",
            ),
            (
                Found {
                    owner: "app".into(),
                    owning_roles: vec!["app".into()],
                    ..safe()
                },
                "it is owned by app, a role the spec declares",
            ),
            (
                Found {
                    owner: "owners".into(),
                    owning_roles: vec!["app".into()],
                    ..safe()
                },
                "owned by owners, and app, a role the spec declares, is a member of it",
            ),
            (
                Found {
                    cannot_call: vec!["app".into()],
                    ..safe()
                },
                "runtime role app may not call it",
            ),
        ];
        for (found, expected) in cases {
            let problems = definition_problems(&f, &found);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains(expected), "{problems:?}");
        }
    }
}
