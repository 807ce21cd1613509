//! Declaring a table covers its partitions and inheritance children.
//!
//! A partition, or a child in an inheritance tree, has RLS flags and policies
//! of its own: querying the parent applies the parent's policies, but a query
//! against the child directly applies only the child's. So every child of a
//! declared table (at any depth, and including those a later migration
//! creates) is converged exactly as its nearest declared ancestor is: the
//! same tenant column, commands, extra policies and index. A child the spec
//! declares itself keeps its own entry.

use std::collections::BTreeMap;

use crate::model::State;
use crate::quote::QualifiedName;
use crate::spec::{Spec, TableSpec, policy_name_for};

/// `spec` with an entry for every live child of a declared table.
pub fn cover_children(spec: &Spec, live: &State) -> Spec {
    let declared: BTreeMap<&QualifiedName, &TableSpec> =
        spec.tables.iter().map(|t| (&t.name, t)).collect();
    let mut covered = spec.clone();
    for name in live.tables.keys() {
        if declared.contains_key(name) {
            continue;
        }
        let Some(ancestor) = nearest_declared_ancestor(name, live, &declared) else {
            continue;
        };
        // A partitioned parent's index is built on each partition by
        // PostgreSQL itself, now and for partitions attached later.
        let index_columns = if is_partition(name, live) {
            Vec::new()
        } else {
            ancestor.index_columns.clone()
        };
        // `{table}` in the policy name stands for the child's own name, unless
        // that makes a name PostgreSQL would truncate: then the parent's.
        let policy_name = if policy_name_for(&ancestor.policy_name, &name.name).len() > 63 {
            ancestor.tenant_policy()
        } else {
            ancestor.policy_name.clone()
        };
        covered.tables.push(TableSpec {
            name: name.clone(),
            index_columns,
            policy_name,
            ..ancestor.clone()
        });
        for policy in &mut covered.policies {
            if policy.tables.contains(&ancestor.name) {
                policy.tables.push(name.clone());
            }
        }
    }
    covered
}

fn is_partition(table: &QualifiedName, live: &State) -> bool {
    live.tables
        .get(table)
        .and_then(|t| t.parent.as_ref())
        .and_then(|parent| live.tables.get(parent))
        .is_some_and(|parent| parent.partitioned)
}

fn nearest_declared_ancestor<'a>(
    table: &QualifiedName,
    live: &State,
    declared: &BTreeMap<&QualifiedName, &'a TableSpec>,
) -> Option<&'a TableSpec> {
    let mut current = live.tables.get(table)?.parent.as_ref();
    // Inheritance cannot be circular, but a bound keeps a bad read finite.
    for _ in 0..live.tables.len() {
        let parent = current?;
        if let Some(spec) = declared.get(parent) {
            return Some(spec);
        }
        current = live.tables.get(parent)?.parent.as_ref();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::cover_children;
    use crate::model::{State, Table};
    use crate::quote::QualifiedName;

    fn live(tables: &[(&str, Option<&str>)]) -> State {
        let mut state = State::default();
        for (name, parent) in tables {
            let name = QualifiedName::new("public", *name);
            state.tables.insert(
                name.clone(),
                Table {
                    name,
                    parent: parent.map(|p| QualifiedName::new("public", p)),
                    ..Table::default()
                },
            );
        }
        state
    }

    #[test]
    fn every_child_at_any_depth_is_covered_like_its_nearest_declared_ancestor() {
        let spec = crate::spec::load_str(
            std::path::Path::new("spec.yaml"),
            "roles: [{name: app}]\ntables:\n  - events\n  - { name: events_2026, commands: [select] }\npolicies:\n  - {name: p, tables: [events], using: 'true'}\n",
        )
        .unwrap();
        let state = live(&[
            ("events", None),
            ("events_2025", Some("events")),
            ("events_2025_q1", Some("events_2025")),
            ("events_2026", Some("events")),
            ("events_2026_q1", Some("events_2026")),
            ("other", None),
        ]);
        let covered = cover_children(&spec, &state);
        let names: Vec<String> = covered.tables.iter().map(|t| t.name.name.clone()).collect();
        assert_eq!(
            names,
            [
                "events",
                "events_2026",
                "events_2025",
                "events_2025_q1",
                "events_2026_q1"
            ]
        );
        let q1_2026 = covered
            .tables
            .iter()
            .find(|t| t.name.name == "events_2026_q1")
            .unwrap();
        assert_eq!(
            q1_2026.commands.len(),
            1,
            "covered like events_2026, its nearest"
        );
        let p = &covered.policies[0];
        assert!(p.tables.iter().any(|t| t.name == "events_2025_q1"));
        assert!(!p.tables.iter().any(|t| t.name == "events_2026_q1"));
    }
}
