//! Runtime roles and cross-tenant roles.
//!
//! Runtime roles are the roles the tenant policies are `TO`; when they are
//! `TO PUBLIC`, the roles that hold privileges on the tenant tables (login
//! roles first), leaving out owners, superusers, BYPASSRLS roles and the
//! connecting role. A cross-tenant role is one that every tenant table opens
//! to with a policy rlsctl would generate for it: `cross_tenant_<role>`,
//! permissive, `USING (true)`, FOR SELECT (read) or FOR ALL (read_write).

use std::collections::{BTreeMap, BTreeSet};

use super::tables::Found;
use super::{DiscoveredRole, DiscoveryError};
use crate::model::{Policy, Privilege, State};
use crate::spec::{Access, CROSS_TENANT_PREFIX, Command};

pub(super) fn discover(
    live: &State,
    found: &Found,
    current_user: &str,
    todos: &mut Vec<String>,
) -> Result<Vec<DiscoveredRole>, DiscoveryError> {
    let cross = cross_tenant_roles(live, found);
    let mut runtime: BTreeSet<String> = if found.to_public {
        granted_roles(live, found, &cross)
    } else {
        found
            .tables
            .values()
            .flat_map(|t| t.policy.roles.iter().cloned())
            .filter(|r| r != "PUBLIC" && !cross.contains_key(r))
            .collect()
    };
    if runtime.remove(current_user) {
        todos.push(format!(
            "{current_user}, the role rlsctl connected as, is a runtime role here; rlsctl refuses to manage the role it connects as, so it is left out of `roles:`. Connect as an admin role instead"
        ));
    }
    if runtime.is_empty() {
        return Err(DiscoveryError::NoRuntimeRole);
    }
    for (role, tables) in bypassing_grantees(live, found) {
        todos.push(format!(
            "{role} bypasses row-level security (SUPERUSER or BYPASSRLS) and holds privileges on {}: it reads every tenant's rows past every policy. If that is intended, declare it with the reason:\nbypass_roles: [{{role: {role}, reason: …}}]\nuntil then audit reports it as BYPASS_ROLE_UNDECLARED",
            tables.join(", ")
        ));
    }
    let mut roles = Vec::new();
    for name in runtime {
        let live_role = live.roles.get(&name);
        if live_role.is_some_and(|r| r.superuser || r.bypass_rls) {
            todos.push(format!(
                "runtime role {name} is a superuser or has BYPASSRLS, so no policy applies to it: plan and apply refuse it until a superuser runs ALTER ROLE {name} NOSUPERUSER NOBYPASSRLS"
            ));
        }
        roles.push(DiscoveredRole {
            login: live_role.is_some_and(|r| r.login),
            name,
            cross_tenant: None,
            reason: None,
        });
    }
    for (name, access) in cross {
        roles.push(DiscoveredRole {
            login: live.roles.get(&name).is_some_and(|r| r.login),
            reason: Some(format!(
                "Found by rlsctl init: policy {CROSS_TENANT_PREFIX}{name} opens every tenant table to it. Say why."
            )),
            name,
            cross_tenant: Some(access),
        });
    }
    Ok(roles)
}

/// The access a policy rlsctl would generate for a cross-tenant role grants.
fn cross_tenant_access(policy: &Policy) -> Option<(String, Access)> {
    let [role] = policy.roles.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let open = |e: &Option<crate::spec::Expression>| e.as_ref().map(|e| e.as_str()) == Some("true");
    if role == "PUBLIC"
        || !policy.permissive
        || policy.name != format!("{CROSS_TENANT_PREFIX}{role}")
        || !open(&policy.using)
    {
        return None;
    }
    match (policy.command, &policy.with_check) {
        (Command::Select, None) => Some((role.clone(), Access::Read)),
        (Command::All, check) if check.is_none() || open(check) => {
            Some((role.clone(), Access::ReadWrite))
        }
        _ => None,
    }
}

/// Roles with the same cross-tenant policy on every declared table.
fn cross_tenant_roles(live: &State, found: &Found) -> BTreeMap<String, Access> {
    let mut seen: BTreeMap<(String, Access), usize> = BTreeMap::new();
    for name in found.tables.keys() {
        let Some(table) = live.tables.get(name) else {
            continue;
        };
        for found in table.policies.values().filter_map(cross_tenant_access) {
            *seen.entry(found).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n == found.tables.len())
        .map(|(key, _)| key)
        .collect()
}

/// Roles that ignore every policy and yet are granted tenant tables.
fn bypassing_grantees(live: &State, found: &Found) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in found.tables.keys() {
        let Some(table) = live.tables.get(name) else {
            continue;
        };
        for grantee in table.grants.keys() {
            let bypasses = live
                .roles
                .get(grantee)
                .is_some_and(|r| r.superuser || r.bypass_rls);
            if bypasses && *grantee != table.owner {
                out.entry(grantee.clone())
                    .or_default()
                    .push(name.to_string());
            }
        }
    }
    out
}

/// With `TO PUBLIC` policies: who holds privileges on the tenant tables.
fn granted_roles(
    live: &State,
    found: &Found,
    cross: &BTreeMap<String, Access>,
) -> BTreeSet<String> {
    let data = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];
    let mut holders = BTreeSet::new();
    for name in found.tables.keys() {
        let Some(table) = live.tables.get(name) else {
            continue;
        };
        for (grantee, privileges) in &table.grants {
            let privileged = live
                .roles
                .get(grantee)
                .is_none_or(|r| r.superuser || r.bypass_rls);
            if grantee == "PUBLIC"
                || *grantee == table.owner
                || privileged
                || cross.contains_key(grantee)
                || !data.iter().any(|p| privileges.contains(p))
            {
                continue;
            }
            holders.insert(grantee.clone());
        }
    }
    let login: BTreeSet<String> = holders
        .iter()
        .filter(|r| live.roles.get(*r).is_some_and(|r| r.login))
        .cloned()
        .collect();
    if login.is_empty() { holders } else { login }
}
