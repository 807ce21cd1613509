//! Checks the spec against the live catalog before anything is planned: every
//! table, column and role it names must exist, pointing back at the spec line.

use crate::catalog::Snapshot;
use crate::spec::{Spec, SpecError};

pub fn check(spec: &Spec, live: &Snapshot) -> Result<(), SpecError> {
    let tables = &live.state.tables;
    for table in &spec.tables {
        let Some(found) = tables.get(&table.name) else {
            return Err(SpecError::at(
                &table.origin,
                format!(
                    "table {} does not exist in database {} (after running migrations){}",
                    table.name,
                    live.database,
                    crate::suggest::did_you_mean(
                        &table.name.to_string(),
                        &tables.keys().map(|t| t.to_string()).collect::<Vec<_>>()
                    )
                ),
            ));
        };
        let Some(column_type) = found.columns.get(&table.column) else {
            return Err(SpecError::at(
                &table.origin,
                format!(
                    "table {} has no tenant column `{}`",
                    table.name, table.column
                ),
            ));
        };
        let expected = spec.tenancy.column_type.sql_name();
        if column_type != expected {
            return Err(SpecError::at(
                &table.origin,
                format!(
                    "tenant column {}.{} is {column_type}, but the spec's tenancy type is {expected}",
                    table.name, table.column
                ),
            ));
        }
        for column in &table.index_columns {
            if !found.columns.contains_key(column) {
                return Err(SpecError::at(
                    &table.origin,
                    format!(
                        "index column `{column}` does not exist on table {}",
                        table.name
                    ),
                ));
            }
        }
    }
    for policy in &spec.policies {
        for role in &policy.roles {
            let declared = spec.roles.iter().any(|r| &r.name == role);
            if !declared && role != "PUBLIC" && !live.state.roles.contains_key(role) {
                return Err(SpecError::at(
                    &policy.origin,
                    format!(
                        "policy `{}` names role `{role}`, which is neither declared under `roles:` nor exists{}",
                        policy.name,
                        crate::suggest::did_you_mean(
                            role,
                            spec.roles
                                .iter()
                                .map(|r| &r.name)
                                .chain(live.state.roles.keys())
                        )
                    ),
                ));
            }
        }
    }
    for maintenance in &spec.maintenance {
        if !live.state.roles.contains_key(&maintenance.role) {
            return Err(SpecError::at(
                &maintenance.origin,
                format!(
                    "maintenance role `{}` does not exist{}: it is an existing admin role (often the one rlsctl connects as, here `{}`), which rlsctl neither creates nor alters",
                    maintenance.role,
                    crate::suggest::did_you_mean(&maintenance.role, live.state.roles.keys()),
                    live.current_user
                ),
            ));
        }
    }
    check_grants(spec, live)?;
    for role in &spec.roles {
        if role.name == live.current_user {
            return Err(SpecError::at(
                &role.origin,
                format!(
                    "role `{}` is the role rlsctl is connected as: the runtime role must be a separate, unprivileged role",
                    role.name
                ),
            ));
        }
    }
    Ok(())
}

/// Every object `grants:` names exists (after migrations), and every role it
/// names is declared or exists: refused before anything is planned.
fn check_grants(spec: &Spec, live: &Snapshot) -> Result<(), SpecError> {
    for grant in &spec.grants {
        if !live.state.object_grants.contains_key(&grant.target) {
            let hint = match grant.target.kind {
                crate::grants::GrantKind::Table => crate::suggest::did_you_mean(
                    &grant.target.name.to_string(),
                    &live
                        .state
                        .tables
                        .keys()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>(),
                ),
                crate::grants::GrantKind::Schema => {
                    crate::suggest::did_you_mean(&grant.target.name.name, live.state.schemas.iter())
                }
                _ => String::new(),
            };
            return Err(SpecError::at(
                &grant.origin,
                format!(
                    "{} (under `grants:`) does not exist in database {} (after running migrations){hint}",
                    grant.target, live.database
                ),
            ));
        }
        for (role, origin) in grant.roles.iter().zip(&grant.role_origins) {
            let declared = spec.roles.iter().any(|r| &r.name == role);
            if !declared && !live.state.roles.contains_key(role) {
                return Err(SpecError::at(
                    origin,
                    format!(
                        "the grant on {} names role `{role}`, which is neither declared under `roles:` nor exists{}",
                        grant.target,
                        crate::suggest::did_you_mean(
                            role,
                            spec.roles
                                .iter()
                                .map(|r| &r.name)
                                .chain(live.state.roles.keys())
                        )
                    ),
                ));
            }
        }
    }
    Ok(())
}
