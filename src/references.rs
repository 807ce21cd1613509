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
