//! Values for probe rows that the schema accepts: a table's CHECK
//! constraints, its columns' domains and types, and the bounds of the
//! partition a row must land in, solved together. Explicit values from the
//! spec (`probe_values`) and the values the factory must use (the tenant,
//! parents' keys) are fixed; every other column the row needs is chosen.

pub mod check_constraints;
pub mod column_types;
pub mod partition_bounds;
pub mod tenant_ids;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::catalog::{Column, ValueRules};
use crate::quote::QualifiedName;
use check_constraints::{Formula, Test};

/// The constraints of each table, parsed once per run: a table with
/// hundreds of partitions is probed hundreds of times.
pub struct Constraints<'a> {
    pub rules: &'a ValueRules,
    parsed: BTreeMap<QualifiedName, Arc<Vec<(String, Formula)>>>,
    destinations: BTreeMap<QualifiedName, Arc<Vec<partition_bounds::Destination>>>,
    any_leaf: BTreeMap<QualifiedName, Option<Arc<Formula>>>,
}

impl<'a> Constraints<'a> {
    pub fn new(rules: &'a ValueRules) -> Self {
        Constraints {
            rules,
            parsed: BTreeMap::new(),
            destinations: BTreeMap::new(),
            any_leaf: BTreeMap::new(),
        }
    }

    /// See [`partition_bounds::destinations`].
    pub fn destinations(
        &mut self,
        table: &QualifiedName,
    ) -> Arc<Vec<partition_bounds::Destination>> {
        let rules = self.rules;
        self.destinations
            .entry(table.clone())
            .or_insert_with(|| Arc::new(partition_bounds::destinations(rules, table)))
            .clone()
    }

    /// See [`partition_bounds::any_leaf`].
    pub fn any_leaf(&mut self, table: &QualifiedName) -> Option<Arc<Formula>> {
        let rules = self.rules;
        self.any_leaf
            .entry(table.clone())
            .or_insert_with(|| partition_bounds::any_leaf(rules, table).map(Arc::new))
            .clone()
    }

    /// The table's CHECK constraints and its columns' domain checks, each
    /// with the text to name it by when no value satisfies it.
    pub fn of(&mut self, table: &QualifiedName, columns: &[Column]) -> Arc<Vec<(String, Formula)>> {
        let rules = self.rules;
        let parsed = self.parsed.entry(table.clone()).or_insert_with(|| {
            let mut out = Vec::new();
            for (name, expression) in rules.checks.get(table).into_iter().flatten() {
                out.push((
                    format!("CHECK {name}: {expression}"),
                    Formula::parse(expression, None),
                ));
            }
            for column in columns {
                let Some(ty) = rules.types.get(&(table.clone(), column.name.clone())) else {
                    continue;
                };
                for expression in &ty.domain_checks {
                    out.push((
                        format!("the domain of {}: CHECK {expression}", column.name),
                        Formula::parse(expression, Some(&column.name)),
                    ));
                }
            }
            Arc::new(out)
        });
        parsed.clone()
    }
}

/// The bound JSON of a row template (`json_populate_record(NULL::table,
/// $1)`) holding `value` in `column`. The columns it leaves out read NULL,
/// which a domain with NOT NULL refuses before any probe runs: those get a
/// value their domain takes.
pub fn template(
    rules: &ValueRules,
    table: &QualifiedName,
    columns: &[Column],
    column: &str,
    value: &str,
) -> String {
    let mut row = Map::new();
    for other in columns.iter().filter(|c| c.name != column) {
        let Some(ty) = rules.types.get(&(table.clone(), other.name.clone())) else {
            continue;
        };
        if !ty.domain_not_null {
            continue;
        }
        let tests: Vec<Test> = ty
            .domain_checks
            .iter()
            .flat_map(|check| {
                Formula::parse(check, Some(&other.name)).conjunctive_tests(&other.name)
            })
            .collect();
        if let Some(made) = column_types::choose(other, Some(ty), &tests, 1, 1) {
            row.insert(other.name.clone(), made);
        }
    }
    row.insert(column.to_string(), Value::String(value.to_string()));
    Value::Object(row).to_string()
}

/// What a row of one table needs.
pub struct Problem<'p> {
    pub table: &'p QualifiedName,
    pub columns: &'p [Column],
    pub rules: &'p ValueRules,
    /// Values given: explicit ones, the tenant, parents' keys.
    pub fixed: &'p Map<String, Value>,
    /// Columns that must get a value (NOT NULL without a default).
    pub required: Vec<String>,
    pub sequence: &'p mut u32,
    pub token: u32,
}

/// Alternatives tried before giving up: constraints with many ORs (a
/// default partition beside hundreds of others) stay bounded.
const BUDGET: usize = 20_000;

impl Problem<'_> {
    /// Values for the required columns and for every column `goals` constrain
    /// (partition keys must be set even when a default would fill them).
    pub fn solve(
        &mut self,
        goals: &[&Formula],
        route: Option<&Formula>,
    ) -> Option<Map<String, Value>> {
        let mut all: Vec<&Formula> = goals.to_vec();
        all.extend(route);
        let mut budget = BUDGET;
        let tests = self.search(all, BTreeMap::new(), &mut budget)?;
        let mut wanted = self.required.clone();
        if let Some(route) = route {
            route.columns(&mut wanted);
        }
        let mut out = Map::new();
        for name in wanted {
            let columns = self.columns;
            let Some(column) = columns.iter().find(|c| c.name == name) else {
                continue;
            };
            if self.fixed.contains_key(&name) || !column.writable() {
                continue;
            }
            *self.sequence += 1;
            let value = column_types::choose(
                column,
                self.rules.types.get(&(self.table.clone(), name.clone())),
                tests.get(&name).map(Vec::as_slice).unwrap_or(&[]),
                *self.sequence,
                self.token,
            )?;
            out.insert(name, value);
        }
        self.order(goals, &mut out);
        Some(out)
    }

    /// Made-up values of two compared columns swapped where they are in the
    /// wrong order (`ends_at > starts_at` with ends_at chosen first).
    fn order(&self, goals: &[&Formula], out: &mut Map<String, Value>) {
        let mut relations = Vec::new();
        for goal in goals {
            goal.relations(&mut relations);
        }
        for (left, bound, right) in relations {
            let (Some(a), Some(b), Some(column)) = (
                out.get(left),
                out.get(right),
                self.columns.iter().find(|c| c.name == left),
            ) else {
                continue;
            };
            let ty = self
                .rules
                .types
                .get(&(self.table.clone(), left.to_string()));
            if column_types::holds(column, ty, a, bound, b) == Some(false) {
                let (a, b) = (a.clone(), b.clone());
                out.insert(left.to_string(), b);
                out.insert(right.to_string(), a);
            }
        }
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Depth-first through the ORs: the tests per column of the first
    /// alternative every column can satisfy.
    fn search(
        &self,
        mut goals: Vec<&Formula>,
        mut tests: BTreeMap<String, Vec<Test>>,
        budget: &mut usize,
    ) -> Option<BTreeMap<String, Vec<Test>>> {
        while let Some(goal) = goals.pop() {
            *budget = budget.checked_sub(1)?;
            match goal {
                Formula::Relation(..) | Formula::Anything => {}
                Formula::And(parts) => goals.extend(parts.iter()),
                Formula::Atom(atom) => {
                    let list = tests.entry(atom.column.clone()).or_default();
                    list.push(atom.test.clone());
                    if !self.feasible(&atom.column, list) {
                        return None;
                    }
                }
                Formula::Or(options) => {
                    return options.iter().find_map(|option| {
                        let mut next = goals.clone();
                        next.push(option);
                        self.search(next, tests.clone(), budget)
                    });
                }
            }
        }
        Some(tests)
    }

    fn feasible(&self, name: &str, tests: &[Test]) -> bool {
        let Some(column) = self.column(name) else {
            return true;
        };
        let ty = self
            .rules
            .types
            .get(&(self.table.clone(), name.to_string()));
        match self.fixed.get(name) {
            Some(value) => column_types::accepts(column, ty, value, tests),
            // The server computes it: nothing to choose.
            None if !column.writable() => true,
            None => column_types::choose(column, ty, tests, 1, 1).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, base_type: &str, category: char) -> Column {
        Column {
            name: name.into(),
            base_type: base_type.into(),
            category,
            not_null: true,
            has_default: false,
            generated: false,
            identity_always: false,
            first_label: None,
        }
    }

    #[test]
    fn the_first_alternative_consistent_with_the_fixed_tenant_is_chosen() {
        let table = QualifiedName::new("public", "t");
        let columns = [
            column("tenant_id", "text", 'S'),
            column("direction", "text", 'S'),
        ];
        let rules = ValueRules::default();
        let fixed: Map<String, Value> = [("tenant_id".to_string(), Value::from("b"))]
            .into_iter()
            .collect();
        let mut sequence = 0;
        let mut problem = Problem {
            table: &table,
            columns: &columns,
            rules: &rules,
            fixed: &fixed,
            required: vec!["direction".into()],
            sequence: &mut sequence,
            token: 1,
        };
        let check = Formula::parse(
            "(((tenant_id = 'a'::text) AND (direction = 'in'::text)) OR ((tenant_id <> 'a'::text) AND (direction = ANY (ARRAY['out'::text, 'x'::text]))))",
            None,
        );
        let values = problem.solve(&[&check], None).unwrap();
        assert_eq!(values["direction"], Value::from("out"));
    }
}
