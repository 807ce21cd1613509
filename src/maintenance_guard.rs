//! Refuses a spec whose maintenance policies the application could reach.
//!
//! A maintenance policy (`maintenance:`) admits its role to every tenant's
//! rows. That is safe only while no runtime role can act as that role: a
//! runtime role that is a member of it, directly or through other roles,
//! inherits the policy (or may `SET ROLE` to it) and crosses tenants. plan and
//! apply stop before changing anything; audit reports the same as an error.

use sqlx::PgConnection;

use crate::apply::ApplyError;
use crate::quote::ident;
use crate::spec::{Spec, SpecError};

pub async fn check(conn: &mut PgConnection, spec: &Spec) -> Result<(), ApplyError> {
    if spec.maintenance.is_empty() {
        return Ok(());
    }
    let runtime: Vec<String> = spec.runtime_roles().map(|r| r.name.clone()).collect();
    let maintenance: Vec<String> = spec.maintenance.iter().map(|m| m.role.clone()).collect();
    let members = crate::catalog::row_security::runtime_members_of(conn, &runtime, &maintenance)
        .await
        .map_err(|source| ApplyError::Database {
            context: "reading the memberships of the maintenance roles",
            source,
        })?;
    Ok(refuse(spec, &members)?)
}

/// The refusal for the first (runtime role, maintenance role) membership.
pub fn refuse(spec: &Spec, members: &[(String, String)]) -> Result<(), SpecError> {
    let Some((runtime, role)) = members.first() else {
        return Ok(());
    };
    let origin = spec
        .maintenance
        .iter()
        .find(|m| &m.role == role)
        .map(|m| &m.origin);
    let message = format!(
        "runtime role `{runtime}` is a member of maintenance role `{role}` (directly or through other roles), so the policy {}{role} would admit the application to every tenant's rows. A superuser or the role's admin must run `REVOKE {} FROM {}` (or the membership that leads there) first; nothing was changed",
        crate::spec::MAINTENANCE_PREFIX,
        ident(role),
        ident(runtime),
    );
    Err(match origin {
        Some(origin) => SpecError::at(origin, message),
        None => SpecError::general(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;
    use std::path::Path;

    #[test]
    fn a_runtime_role_that_is_a_member_of_a_maintenance_role_is_refused_at_the_maintenance_entry() {
        let spec = load_str(
            Path::new("p.yaml"),
            "roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: read_write\n    reason: backfills\n",
        )
        .unwrap();
        assert_eq!(refuse(&spec, &[]), Ok(()));
        let message = refuse(&spec, &[("app".into(), "admin".into())])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "p.yaml:4:11: runtime role `app` is a member of maintenance role `admin`"
            ) && message.contains(r#"`REVOKE "admin" FROM "app"`"#),
            "{message}"
        );
    }
}
