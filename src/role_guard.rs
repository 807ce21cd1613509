//! Refuses a declared role that already exists as a superuser or with
//! BYPASSRLS, before plan or apply does anything.
//!
//! Such a role ignores every policy, so it can be neither a runtime role nor a
//! cross-tenant one. rlsctl could demote it, but the role was made privileged
//! by someone else, for reasons rlsctl cannot see (it may be the very role a
//! migration tool or a colleague connects as), and a non-superuser admin could
//! not demote it anyway: a superuser decides, and runs the statement named here.
//! Reads the live roles only; audit reports the same as findings instead.

use std::collections::BTreeMap;

use crate::model::{Role, RoleAttribute};
use crate::plan::alter_role;
use crate::spec::{Spec, SpecError};

pub fn check(
    spec: &Spec,
    live: &BTreeMap<String, Role>,
    bootstrap_superuser: &str,
) -> Result<(), SpecError> {
    for declared in &spec.roles {
        let Some(role) = live.get(&declared.name) else {
            continue;
        };
        let kind = if declared.cross_tenant.is_some() {
            "cross-tenant role"
        } else {
            "runtime role"
        };
        if role.name == bootstrap_superuser {
            return Err(SpecError::at(
                &declared.origin,
                format!(
                    "role `{}` is the bootstrap superuser (the role initdb made, oid 10), which is always a superuser and ignores every policy: it cannot be a {kind}. Declare a separate role; nothing was changed",
                    role.name
                ),
            ));
        }
        let mut privileges = Vec::new();
        let mut what = Vec::new();
        if role.superuser {
            privileges.push(RoleAttribute::Superuser(false));
            what.push("is a superuser");
        }
        if role.bypass_rls {
            privileges.push(RoleAttribute::BypassRls(false));
            what.push("has BYPASSRLS");
        }
        if privileges.is_empty() {
            continue;
        }
        return Err(SpecError::at(
            &declared.origin,
            format!(
                "role `{}` exists and {}, so it ignores every policy and cannot be a {kind}. Making it one would take `{}`; rlsctl does not take privileges away from existing roles it did not create, so a superuser must run that first (or declare a different role). Nothing was changed",
                role.name,
                what.join(" and "),
                alter_role(&role.name, &privileges)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;
    use std::path::Path;

    const SPEC: &str = "roles:\n  - name: app\n  - name: bi\n    cross_tenant: read\n    reason: dashboards\ntables:\n  - projects\n";

    fn live(name: &str, superuser: bool, bypass_rls: bool) -> BTreeMap<String, Role> {
        let role = Role {
            name: name.into(),
            login: false,
            superuser,
            bypass_rls,
            password_env: None,
        };
        BTreeMap::from([(name.to_string(), role)])
    }

    fn refusal(roles: BTreeMap<String, Role>) -> String {
        let spec = load_str(Path::new("p.yaml"), SPEC).unwrap();
        check(&spec, &roles, "postgres").unwrap_err().to_string()
    }

    #[test]
    fn a_superuser_runtime_role_is_refused_with_the_statement_a_superuser_must_run() {
        let message = refusal(live("app", true, true));
        assert!(message.starts_with("p.yaml:2:"), "{message}");
        assert!(
            message.contains("is a superuser and has BYPASSRLS")
                && message.contains(r#"`ALTER ROLE "app" NOSUPERUSER NOBYPASSRLS`"#)
                && message.contains("a superuser must run that first"),
            "{message}"
        );
    }

    #[test]
    fn a_bypassrls_cross_tenant_role_is_refused() {
        let message = refusal(live("bi", false, true));
        assert!(
            message.contains("cross-tenant role")
                && message.contains(r#"`ALTER ROLE "bi" NOBYPASSRLS`"#),
            "{message}"
        );
    }

    #[test]
    fn the_bootstrap_superuser_is_refused_as_such() {
        let spec = load_str(
            Path::new("p.yaml"),
            "roles:\n  - name: postgres\ntables:\n  - projects\n",
        )
        .unwrap();
        let message = check(&spec, &live("postgres", true, true), "postgres")
            .unwrap_err()
            .to_string();
        assert!(message.contains("bootstrap superuser"), "{message}");
    }

    #[test]
    fn unprivileged_and_missing_roles_pass() {
        let spec = load_str(Path::new("p.yaml"), SPEC).unwrap();
        assert_eq!(check(&spec, &live("app", false, false), "postgres"), Ok(()));
        assert_eq!(check(&spec, &BTreeMap::new(), "postgres"), Ok(()));
    }
}
