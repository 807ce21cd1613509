//! Where a probe row must go so that every partition holds rows of both
//! tenants: each leaf partition's constraint (its bounds and its ancestors')
//! becomes a goal for the row's values, and the row is inserted through the
//! partitioned table, so routing puts it there. A time-range partition whose
//! range excludes now() gets a row dated inside its range.

use super::check_constraints::Formula;
use crate::catalog::{Descendant, ValueRules};
use crate::quote::QualifiedName;

/// A place under a table that a probe row can be sent to.
pub struct Destination {
    pub descendant: Descendant,
    /// The leaf's bounds as a goal; `None` for an inheritance child, whose
    /// rows are inserted into it directly.
    pub route: Option<Formula>,
    /// A hash partition: only the server knows which values land there, so
    /// fresh values are tried a few times.
    pub hashed: bool,
}

pub fn destinations(rules: &ValueRules, table: &QualifiedName) -> Vec<Destination> {
    rules
        .descendants
        .get(table)
        .into_iter()
        .flatten()
        .map(|d| Destination {
            descendant: d.clone(),
            route: d.constraint.as_deref().map(|c| Formula::parse(c, None)),
            hashed: d
                .constraint
                .as_deref()
                .is_some_and(|c| c.contains("satisfies_hash_partition")),
        })
        .collect()
}

/// A row inserted into a partitioned table must fit some leaf: any of them.
pub fn any_leaf(rules: &ValueRules, table: &QualifiedName) -> Option<Formula> {
    let leaves: Vec<Formula> = destinations(rules, table)
        .into_iter()
        .filter_map(|d| d.route)
        .collect();
    (!leaves.is_empty()).then_some(Formula::Or(leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_for_a_partitioned_table_may_go_to_any_leaf() {
        let table = QualifiedName::new("public", "events");
        let mut rules = ValueRules::default();
        rules.descendants.insert(
            table.clone(),
            ["FROM", "TO"]
                .iter()
                .enumerate()
                .map(|(i, _)| Descendant {
                    table: QualifiedName::new("public", format!("events_{i}")),
                    oid: i.to_string(),
                    constraint: Some(format!(
                        "((at IS NOT NULL) AND (at >= {i}) AND (at < {}))",
                        i + 1
                    )),
                })
                .collect(),
        );
        let Some(Formula::Or(leaves)) = any_leaf(&rules, &table) else {
            panic!("no alternatives");
        };
        assert_eq!(leaves.len(), 2);
        assert!(destinations(&rules, &table).iter().all(|d| !d.hashed));
    }
}
