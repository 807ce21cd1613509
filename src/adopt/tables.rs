//! Which tables are tenant tables, and how each is declared.
//!
//! A tenant policy the spec can declare is permissive, `FOR ALL`, and its
//! USING (and WITH CHECK, when it has one) is exactly one tenant comparison.
//! The value most of them compare with becomes the tenancy's; a table whose
//! policies compare with the tenant in any other way is left out and named
//! in a TODO, since declaring it would add a second, broader policy.

use std::collections::{BTreeMap, BTreeSet};

use super::comparison::{self, TenantComparison};
use super::{DiscoveredPolicy, DiscoveredTable};
use crate::desired::index_name;
use crate::model::{Policy, Privilege, State};
use crate::quote::QualifiedName;
use crate::spec::{CROSS_TENANT_PREFIX, Command, TenantType, policy_name_for};

/// The tenant tables found, and what most of them share.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// The comparison most tenant policies make (its value is the tenancy's).
    pub comparison: TenantComparison,
    /// The tenant column most tables use.
    pub column: String,
    /// The tenant policy name most tables follow, `{table}` for the table.
    pub pattern: String,
    /// Most tenant policies are `TO PUBLIC`.
    pub to_public: bool,
    /// Declared tables (no declared ancestor) and their tenant policy.
    pub tables: BTreeMap<QualifiedName, Tenant>,
}

#[derive(Debug, Clone)]
pub(super) struct Tenant {
    pub policy: Policy,
    pub comparison: TenantComparison,
}

/// An extra policy as the spec would declare it, tables aside: (name,
/// command, permissive, roles unless the runtime ones, USING, WITH CHECK).
type PolicyShape = (
    String,
    String,
    bool,
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
);

const ALL_COMMANDS: [Command; 4] = [
    Command::Select,
    Command::Insert,
    Command::Update,
    Command::Delete,
];

/// Per table, its policies in the shape of a tenant policy, by name.
pub(super) fn candidates(
    live: &State,
) -> BTreeMap<QualifiedName, Vec<(TenantComparison, &Policy)>> {
    let mut out: BTreeMap<QualifiedName, Vec<(TenantComparison, &Policy)>> = BTreeMap::new();
    // Hand-built and generated policies repeat one text on every table: each
    // distinct text is parsed once.
    let mut parsed: std::collections::HashMap<&str, Option<TenantComparison>> =
        std::collections::HashMap::new();
    for table in live.tables.values() {
        for policy in table.policies.values() {
            if !policy.permissive || policy.command != Command::All {
                continue;
            }
            let Some(using) = &policy.using else { continue };
            if policy.with_check.as_ref().is_some_and(|w| w != using) {
                continue;
            }
            let found = parsed
                .entry(using.as_str())
                .or_insert_with(|| comparison::whole(using.as_str()));
            if let Some(found) = found.clone() {
                out.entry(table.name.clone())
                    .or_default()
                    .push((found, policy));
            }
        }
    }
    out
}

/// The most frequent item; ties go to the smallest, so output is stable.
fn most_common<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(t, _)| t)
}

pub(super) fn tenant_tables(live: &State, todos: &mut Vec<String>) -> Option<Found> {
    let candidates = candidates(live);
    let value = most_common(
        candidates
            .values()
            .flat_map(|c| c.iter().map(|(comparison, _)| comparison.value.clone())),
    )?;
    let mut chosen: BTreeMap<QualifiedName, Tenant> = BTreeMap::new();
    for (table, found) in &candidates {
        match found.iter().find(|(c, _)| c.value == value) {
            Some((comparison, policy)) => {
                chosen.insert(
                    table.clone(),
                    Tenant {
                        policy: (*policy).clone(),
                        comparison: comparison.clone(),
                    },
                );
            }
            None => todos.push(format!(
                "table {table} is not declared: its tenant policy {} compares {} with `{}`, where the other tables compare with `{value}`; one spec has one tenant value",
                found[0].1.name, found[0].0.column, found[0].0.value
            )),
        }
    }
    for table in live.tables.values() {
        if candidates.contains_key(&table.name) {
            continue;
        }
        let partial: Vec<&str> = table
            .policies
            .values()
            .filter(|p| {
                [&p.using, &p.with_check]
                    .into_iter()
                    .flatten()
                    .any(|e| comparison::anywhere(e.as_str()).is_some())
            })
            .map(|p| p.name.as_str())
            .collect();
        if !partial.is_empty() {
            todos.push(format!(
                "table {} is not declared: its policies {} compare a column with the tenant, but none is one permissive FOR ALL policy `column = tenant` that the spec can declare (declaring the table would add one beside them, broader than they are). Kept as it is; isolation there is yours to check",
                table.name,
                partial.join(", ")
            ));
        }
    }
    // A partition or inheritance child is covered by its declared ancestor.
    let roots: BTreeMap<QualifiedName, Tenant> = chosen
        .iter()
        .filter(|(name, _)| declared_ancestor(name, live, &chosen).is_none())
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let column = most_common(roots.values().map(|t| t.comparison.column.clone()))?;
    let pattern = most_common(
        roots
            .iter()
            .map(|(name, t)| pattern_of(&t.policy.name, &name.name)),
    )?;
    let to_public =
        most_common(roots.values().map(|t| is_public(&t.policy.roles))).unwrap_or(false);
    let comparison = roots
        .values()
        .map(|t| t.comparison.clone())
        .find(|c| c.column == column)?;
    Some(Found {
        comparison,
        column,
        pattern,
        to_public,
        tables: roots,
    })
}

fn is_public(roles: &BTreeSet<String>) -> bool {
    roles.len() == 1 && roles.contains("PUBLIC")
}

/// `orders_tenant_isolation` on `orders` is `{table}_tenant_isolation`.
fn pattern_of(policy: &str, table: &str) -> String {
    if policy.contains(table) {
        policy.replacen(table, "{table}", 1)
    } else {
        policy.to_string()
    }
}

fn declared_ancestor<'a>(
    table: &QualifiedName,
    live: &'a State,
    declared: &BTreeMap<QualifiedName, Tenant>,
) -> Option<&'a QualifiedName> {
    let mut current = live.tables.get(table)?.parent.as_ref();
    for _ in 0..live.tables.len() {
        let parent = current?;
        if declared.contains_key(parent) {
            return Some(parent);
        }
        current = live.tables.get(parent)?.parent.as_ref();
    }
    None
}

pub(super) fn column_type(
    live: &State,
    found: &Found,
    todos: &mut Vec<String>,
) -> Option<TenantType> {
    let type_name = found
        .tables
        .keys()
        .find_map(|t| live.tables.get(t)?.columns.get(&found.column))?;
    let known = match type_name.as_str() {
        "uuid" => TenantType::Uuid,
        "text" => TenantType::Text,
        "bigint" => TenantType::Bigint,
        "integer" => TenantType::Integer,
        "name" => TenantType::Name,
        other => {
            todos.push(format!(
                "the tenant column {} is of type {other}, which `tenancy.type` cannot name (uuid, text, bigint, integer, name): left at the default",
                found.column
            ));
            return None;
        }
    };
    Some(known)
}

/// The table entries and the policies that are not the tenant's.
pub(super) fn declare(
    live: &State,
    found: &Found,
    runtime: &BTreeSet<String>,
    cross_tenant: &BTreeSet<String>,
    todos: &mut Vec<String>,
) -> (Vec<DiscoveredTable>, Vec<DiscoveredPolicy>) {
    let generated: BTreeSet<String> = cross_tenant
        .iter()
        .map(|r| format!("{CROSS_TENANT_PREFIX}{r}"))
        .collect();
    let tenant_roles = if found.to_public {
        BTreeSet::from(["PUBLIC".to_string()])
    } else {
        runtime.clone()
    };
    let mut tables = Vec::new();
    let mut extras: BTreeMap<PolicyShape, Vec<QualifiedName>> = BTreeMap::new();
    // Each child under its declared ancestor, found once: asking every
    // table about every other would be quadratic in the tables.
    let mut children: BTreeMap<&QualifiedName, Vec<&crate::model::Table>> = BTreeMap::new();
    for child in live.tables.values() {
        if let Some(ancestor) = declared_ancestor(&child.name, live, &found.tables) {
            children.entry(ancestor).or_default().push(child);
        }
    }
    for (name, tenant) in &found.tables {
        let Some(table) = live.tables.get(name) else {
            continue;
        };
        let mut notes = Vec::new();
        let column = &tenant.comparison.column;
        let policy_name = (policy_name_for(&found.pattern, &name.name) != tenant.policy.name)
            .then(|| tenant.policy.name.clone());
        for (on, flag) in [(table.rls_enabled, "ENABLE"), (table.rls_forced, "FORCE")] {
            if !on {
                notes.push(format!("apply will {flag} ROW LEVEL SECURITY here"));
            }
        }
        if tenant.comparison.reversed {
            notes.push(format!(
                "apply will rewrite policy {} as `{column} = …` (the same comparison, the spec's order)",
                tenant.policy.name
            ));
        }
        if tenant.policy.roles != tenant_roles {
            notes.push(format!(
                "policy {} is TO {}; apply will make it TO {}",
                tenant.policy.name,
                list(&tenant.policy.roles),
                list(&tenant_roles)
            ));
        }
        let commands = commands(name, table, runtime, &mut notes);
        let served = table
            .indexes
            .iter()
            .any(|i| i.valid && i.columns.first() == Some(column));
        if !served {
            notes.push(format!(
                "no index leads with {column}: apply will create {}",
                index_name(&name.name, std::slice::from_ref(column))
            ));
        }
        let pattern = policy_name.clone().unwrap_or_else(|| found.pattern.clone());
        let own_children = children.get(name).map(Vec::as_slice).unwrap_or_default();
        notes.extend(children_notes(name, own_children, &pattern));
        for policy in table.policies.values() {
            if policy.name == tenant.policy.name || generated.contains(&policy.name) {
                continue;
            }
            let open = policy.using.as_ref().is_some_and(|u| u.as_str() == "true");
            if open && policy.permissive {
                notes.push(format!(
                    "policy {} opens every tenant's rows to {}: kept as an extra policy. A role that should see every tenant can be declared `cross_tenant:` (its policy is then named {CROSS_TENANT_PREFIX}<role>)",
                    policy.name,
                    list(&policy.roles)
                ));
            }
            let roles = (policy.roles != *runtime).then(|| policy.roles.iter().cloned().collect());
            let key = (
                policy.name.clone(),
                format!("{:?}", policy.command),
                policy.permissive,
                roles,
                policy.using.as_ref().map(|e| e.as_str().to_string()),
                policy.with_check.as_ref().map(|e| e.as_str().to_string()),
            );
            extras.entry(key).or_default().push(name.clone());
        }
        tables.push(DiscoveredTable {
            name: name.clone(),
            column: (*column != found.column).then(|| column.clone()),
            commands,
            policy_name,
            todos: notes,
        });
    }
    let policies = extras
        .into_iter()
        .map(
            |((name, _, permissive, roles, using, with_check), tables)| {
                let command = live.tables[&tables[0]].policies[&name].command;
                DiscoveredPolicy {
                    name,
                    tables,
                    command,
                    permissive,
                    roles,
                    using,
                    with_check,
                }
            },
        )
        .collect();
    for table in live.tables.values() {
        let covered = found.tables.contains_key(&table.name)
            || declared_ancestor(&table.name, live, &found.tables).is_some();
        if covered || table.policies.is_empty() {
            continue;
        }
        if table.policies.values().all(|p| {
            [&p.using, &p.with_check]
                .into_iter()
                .flatten()
                .all(|e| comparison::anywhere(e.as_str()).is_none())
        }) {
            let names: Vec<&str> = table.policies.keys().map(String::as_str).collect();
            todos.push(format!(
                "policies {} on {} are kept as they are: {} is not a tenant table, and the spec declares policies on tenant tables only",
                names.join(", "),
                table.name,
                table.name
            ));
        }
    }
    for table in live.tables.values() {
        let declared = found.tables.contains_key(&table.name)
            || declared_ancestor(&table.name, live, &found.tables).is_some();
        if !declared && table.policies.is_empty() && table.columns.contains_key(&found.column) {
            todos.push(format!(
                "table {} has a {} column and no policy: not declared (plan reports it as uncovered). Add it under `tables:` to put it under the tenant policy",
                table.name, found.column
            ));
        }
    }
    (tables, policies)
}

fn list(roles: &BTreeSet<String>) -> String {
    roles.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The commands the runtime roles hold on `table`; `None` for all four.
fn commands(
    name: &QualifiedName,
    table: &crate::model::Table,
    runtime: &BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Option<BTreeSet<Command>> {
    let mut per_role: BTreeMap<&String, BTreeSet<Command>> = BTreeMap::new();
    for role in runtime {
        let held = table.grants.get(role).cloned().unwrap_or_default();
        let commands: BTreeSet<Command> = ALL_COMMANDS
            .into_iter()
            .filter(|c| held.contains(&Privilege::for_command(*c)[0]))
            .collect();
        let extra: Vec<&str> = held
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    Privilege::Truncate
                        | Privilege::References
                        | Privilege::Trigger
                        | Privilege::Maintain
                )
            })
            .map(|p| p.keyword())
            .collect();
        if !extra.is_empty() {
            notes.push(format!(
                "{role} holds {} on {name}, which the spec does not grant: apply will revoke it",
                extra.join(", ")
            ));
        }
        per_role.insert(role, commands);
    }
    let union: BTreeSet<Command> = per_role.values().flatten().copied().collect();
    if per_role.values().any(|c| *c != union) {
        notes.push(format!(
            "the runtime roles hold different privileges on {name} ({}); the spec grants them all the same, so apply will grant the missing ones",
            per_role
                .iter()
                .map(|(role, c)| format!("{role}: {}", command_list(c)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if union.is_empty() {
        notes.push(format!(
            "no runtime role holds a privilege on {name}: apply will grant SELECT, INSERT, UPDATE, DELETE (or list `commands:`)"
        ));
        return None;
    }
    (union.len() < ALL_COMMANDS.len()).then_some(union)
}

fn command_list(commands: &BTreeSet<Command>) -> String {
    if commands.is_empty() {
        return "nothing".into();
    }
    commands
        .iter()
        .map(|c| format!("{c:?}").to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What apply would still do to the partitions and children `name` covers.
fn children_notes(
    name: &QualifiedName,
    children: &[&crate::model::Table],
    pattern: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    for child in children {
        let own = policy_name_for(pattern, &child.name.name);
        let expected = if own.len() > 63 {
            policy_name_for(pattern, &name.name)
        } else {
            own
        };
        let mut missing = Vec::new();
        if !child.rls_enabled {
            missing.push("ENABLE ROW LEVEL SECURITY".to_string());
        }
        if !child.rls_forced {
            missing.push("FORCE ROW LEVEL SECURITY".to_string());
        }
        if !child.policies.contains_key(&expected) {
            missing.push(format!("policy {expected}"));
        }
        if !missing.is_empty() {
            notes.push(format!(
                "{} is covered by declaring {name}: apply will add {} there (it can be queried directly)",
                child.name,
                missing.join(", ")
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_name_holding_the_table_name_becomes_a_pattern() {
        assert_eq!(
            pattern_of("orders_tenant_isolation", "orders"),
            "{table}_tenant_isolation"
        );
        assert_eq!(
            pattern_of("tenant_isolation_policy", "orders"),
            "tenant_isolation_policy"
        );
        assert_eq!(most_common(["b", "a", "b", "a"]), Some("a"));
        assert_eq!(most_common(["b", "a", "b"]), Some("b"));
    }
}
