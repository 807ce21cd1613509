//! Privileges the discovered roles hold on tables that are not tenant data
//! (a staging table, a lookup table): written as a TODO with the `grants:`
//! entry that declares them, so the author decides whether apply should
//! keep them so. Not written as an entry: a grant the author never read
//! would then be converged, and revoked beyond it with `--prune`.

use std::collections::BTreeSet;

use super::DiscoveredRole;
use super::tables::Found;
use crate::grants::{GrantKind, ObjectPrivilege};
use crate::model::State;

pub(super) fn todos(
    live: &State,
    found: &Found,
    roles: &[DiscoveredRole],
    todos: &mut Vec<String>,
) {
    let names: BTreeSet<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    for (name, table) in &live.tables {
        // Tenant tables, their children and tables that look like tenant
        // data (the tenant column, policies) are the rest of init's business.
        if found.tables.contains_key(name)
            || table.parent.is_some()
            || table.columns.contains_key(&found.column)
            || !table.policies.is_empty()
        {
            continue;
        }
        for (role, privileges) in &table.grants {
            if !names.contains(role.as_str()) || *role == table.owner {
                continue;
            }
            // What `grants:` can say (MAINTAIN, 17+ only, it cannot).
            let words: Vec<String> = privileges
                .iter()
                .filter_map(|p| ObjectPrivilege::from_keyword(p.keyword()))
                .filter(|p| GrantKind::Table.privileges().contains(p))
                .map(|p| p.spec_name())
                .collect();
            if words.is_empty() {
                continue;
            }
            todos.push(format!(
                "{role} holds {} on {name}, which is not a tenant table. To have apply keep exactly that (and audit watch it), declare it:\ngrants:\n  - table: {name}\n    roles: [{role}]\n    privileges: [{}]",
                words.join(", ").to_uppercase(),
                words.join(", ")
            ));
        }
    }
}
