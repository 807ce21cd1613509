//! Whether an apply fits in the server's lock table, known before it runs.
//!
//! Every relation a transaction locks in a strong mode takes a slot of one
//! shared table of `max_locks_per_transaction × (max_connections +
//! max_prepared_transactions)` slots, and a transaction may take them all.
//! `apply` runs its migrations and its statements in one transaction, so a
//! migration creating thousands of tables (each with its TOAST table, TOAST
//! index and primary-key index) followed by RLS on each can run out midway
//! with `out of shared memory` and no hint. This estimates the slots the
//! migrations and then the statements need, and refuses before they run,
//! naming the setting to raise and the value that would do.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::NodeRef;
use pg_query::protobuf::{ConstrType, node::Node as N};
use sqlx::PgConnection;

use crate::diff::Change;
use crate::model::State;
use crate::quote::QualifiedName;

/// Replaces the server's `max_locks_per_transaction` in the estimate, to
/// check an apply against a server configured smaller than the one at hand.
pub const ASSUME_ENV: &str = "RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION";

/// The server's lock table, from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub max_locks_per_transaction: u64,
    pub max_connections: u64,
    pub max_prepared_transactions: u64,
}

impl Capacity {
    pub fn slots(&self) -> u64 {
        self.max_locks_per_transaction * self.backends()
    }

    fn backends(&self) -> u64 {
        (self.max_connections + self.max_prepared_transactions).max(1)
    }

    /// The smallest `max_locks_per_transaction` with room for `needed` slots.
    pub fn setting_for(&self, needed: u64) -> u64 {
        needed.div_ceil(self.backends())
    }

    /// Why `needed` slots do not fit, or `None` when they do.
    pub fn refusal(&self, needed: u64, what: &str) -> Option<String> {
        (needed > self.slots()).then(|| {
            format!(
                "{what} needs about {needed} lock slots, more than this server's lock table holds: {} = max_locks_per_transaction {} × (max_connections {} + max_prepared_transactions {}). Raise max_locks_per_transaction to at least {} (postgresql.conf or ALTER SYSTEM; it takes a server restart), or split the work over several applies.",
                self.slots(),
                self.max_locks_per_transaction,
                self.max_connections,
                self.max_prepared_transactions,
                self.setting_for(needed),
            )
        })
    }
}

/// Reads the three settings (`max_locks_per_transaction` replaced by
/// `RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION` when that is set).
pub async fn capacity(conn: &mut PgConnection) -> Result<Capacity, sqlx::Error> {
    let (locks, connections, prepared): (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_catalog.current_setting('max_locks_per_transaction')::bigint,
                pg_catalog.current_setting('max_connections')::bigint,
                pg_catalog.current_setting('max_prepared_transactions')::bigint",
    )
    .fetch_one(conn)
    .await?;
    let assumed = std::env::var(ASSUME_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Capacity {
        max_locks_per_transaction: assumed.unwrap_or(locks.max(0) as u64),
        max_connections: connections.max(0) as u64,
        max_prepared_transactions: prepared.max(0) as u64,
    })
}

/// Slots this transaction holds in the shared table now: one per locked
/// object, whatever the modes it holds it in (`pg_locks` shows a row per
/// mode). Fast-path locks live elsewhere and are not counted.
pub async fn held(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT (locktype, database, relation, page, tuple, virtualxid,
                                transactionid::text, classid, objid, objsubid))
           FROM pg_catalog.pg_locks
          WHERE pid = pg_catalog.pg_backend_pid() AND NOT fastpath",
    )
    .fetch_one(conn)
    .await?;
    Ok(n.max(0) as u64)
}

/// The relations `migrations` (SQL texts) lock or create. An estimate from
/// PostgreSQL's grammar: a new table counts with its TOAST table and index
/// (unless every column is fixed-width), each primary key, unique or
/// exclusion constraint's index, each serial or identity sequence, and the
/// tables its foreign keys and partition bound lock; a new index with its
/// table; any other statement with the relations it names. Text the grammar
/// refuses counts nothing here (the migration fails on it anyway).
pub fn for_migrations<'a>(migrations: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut slots: BTreeSet<String> = BTreeSet::new();
    for sql in migrations {
        let Ok(parsed) = pg_query::parse(sql, 0) else {
            continue;
        };
        for raw in &parsed.protobuf.stmts {
            let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
                continue;
            };
            statement(node, &mut slots);
        }
    }
    slots.len() as u64
}

fn statement(node: &N, slots: &mut BTreeSet<String>) {
    match node {
        N::CreateStmt(create) => {
            let table = create
                .relation
                .as_ref()
                .map_or_else(String::new, |r| name(&r.schemaname, &r.relname));
            slots.insert(table.clone());
            let mut toast = false;
            let mut constraints = Vec::new();
            for element in &create.table_elts {
                match element.node.as_ref() {
                    Some(N::ColumnDef(column)) => {
                        let type_name = column
                            .type_name
                            .as_ref()
                            .and_then(|t| t.names.last())
                            .and_then(|n| match n.node.as_ref() {
                                Some(N::String(s)) => Some(s.sval.to_ascii_lowercase()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        toast |= !FIXED_WIDTH.contains(&type_name.as_str())
                            || column
                                .type_name
                                .as_ref()
                                .is_some_and(|t| !t.array_bounds.is_empty());
                        if SERIAL.contains(&type_name.as_str()) {
                            slots.insert(format!("{table}.{} sequence", column.colname));
                        }
                        constraints.extend(
                            column
                                .constraints
                                .iter()
                                .map(|c| (c, column.colname.clone())),
                        );
                    }
                    Some(N::Constraint(_)) => constraints.push((element, String::new())),
                    _ => {}
                }
            }
            // A partitioned table has no storage, so no TOAST table.
            if toast && create.partspec.is_none() {
                slots.insert(format!("{table} toast"));
                slots.insert(format!("{table} toast index"));
            }
            for (i, (constraint, column)) in constraints.into_iter().enumerate() {
                if let Some(N::Constraint(c)) = constraint.node.as_ref() {
                    constraint_slots(&table, i, &column, c, slots);
                }
            }
            for parent in &create.inh_relations {
                if let Some(N::RangeVar(r)) = parent.node.as_ref() {
                    slots.insert(name(&r.schemaname, &r.relname));
                }
            }
        }
        N::IndexStmt(index) => {
            let table = index
                .relation
                .as_ref()
                .map_or_else(String::new, |r| name(&r.schemaname, &r.relname));
            slots.insert(format!("{table} index {}", slots.len()));
            slots.insert(table);
        }
        N::AlterTableStmt(alter) => {
            let table = alter
                .relation
                .as_ref()
                .map_or_else(String::new, |r| name(&r.schemaname, &r.relname));
            slots.insert(table.clone());
            for (i, cmd) in alter.cmds.iter().enumerate() {
                if let Some(N::AlterTableCmd(cmd)) = cmd.node.as_ref()
                    && let Some(N::Constraint(c)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
                {
                    constraint_slots(&table, i + 1000 * slots.len(), &cmd.name, c, slots);
                }
            }
        }
        N::CreateSeqStmt(seq) => {
            if let Some(r) = &seq.sequence {
                slots.insert(name(&r.schemaname, &r.relname));
            }
        }
        other => {
            let tree = other.to_ref();
            for relation in crate::sql_tree::relations(other.nodes().into_iter().map(|(n, ..)| n)) {
                slots.insert(relation);
            }
            if matches!(tree, NodeRef::CreateTableAsStmt(_) | NodeRef::ViewStmt(_)) {
                slots.insert(format!("new relation {}", slots.len()));
            }
        }
    }
}

fn constraint_slots(
    table: &str,
    i: usize,
    column: &str,
    c: &pg_query::protobuf::Constraint,
    slots: &mut BTreeSet<String>,
) {
    match ConstrType::try_from(c.contype) {
        Ok(ConstrType::ConstrPrimary | ConstrType::ConstrUnique | ConstrType::ConstrExclusion) => {
            slots.insert(format!("{table} constraint index {i} {column}"));
        }
        Ok(ConstrType::ConstrForeign) => {
            if let Some(r) = &c.pktable {
                slots.insert(name(&r.schemaname, &r.relname));
            }
        }
        Ok(ConstrType::ConstrIdentity) => {
            slots.insert(format!("{table}.{column} sequence"));
        }
        _ => {}
    }
}

/// The objects the statements of `changes` lock inside the transaction:
/// - each table once, however many statements touch it;
/// - each index built (or dropped) in the transaction rather than
///   CONCURRENTLY after it, and on a partitioned table each partition with
///   the index built on it;
/// - each policy created (`COMMENT ON POLICY` locks the new policy) or
///   dropped, and each function a resolver replacement drops;
/// - each tenant default set (the default it replaces is locked), on a
///   partitioned table on every partition too;
/// - each role a policy, grant or revoke names (a lock on the role, so that
///   it cannot be dropped meanwhile).
///
/// Checked against `pg_locks` by a test. Counting tables alone let a
/// 10,000-table spec with four policies a table pass and fail midway with
/// `out of shared memory`.
pub fn for_changes(changes: &[Change], state: &State) -> u64 {
    let mut tables = BTreeSet::new();
    let mut roles: BTreeSet<&str> = BTreeSet::new();
    let mut others = 0u64;
    let partitions = Partitions::of(state);
    for change in changes {
        match change {
            Change::EnableRls { table } | Change::ForceRls { table } => {
                tables.insert(table);
            }
            Change::DropPolicy { table, .. } => {
                tables.insert(table);
                others += 1;
            }
            Change::AlterPolicy { table, policy } => {
                tables.insert(table);
                roles.extend(policy.roles.iter().map(String::as_str));
            }
            Change::CreatePolicy { table, policy } => {
                tables.insert(table);
                roles.extend(policy.roles.iter().map(String::as_str));
                others += 1;
            }
            Change::GrantTable { table, role, .. } | Change::RevokeTable { table, role, .. } => {
                tables.insert(table);
                roles.insert(role);
            }
            Change::GrantExecute { role, .. }
            | Change::RevokeExecute { role, .. }
            | Change::GrantSchemaUsage { role, .. }
            | Change::GrantSequenceUsage { role, .. }
            | Change::GrantResolverExecute { role, .. }
            | Change::RevokeResolverExecute { role, .. }
            | Change::GrantObject { role, .. }
            | Change::RevokeObject { role, .. } => {
                roles.insert(role);
            }
            Change::ReplaceResolver { .. } => others += 1,
            Change::SetTenantDefault { table, .. } => {
                tables.insert(table);
                others += 1 + 2 * partitions.below(table);
            }
            Change::CreateIndex {
                table,
                concurrently: false,
                ..
            } => {
                tables.insert(table);
                others += 1 + 2 * partitions.below(table);
            }
            Change::DropInvalidIndex {
                table,
                concurrently: false,
                ..
            } => {
                tables.insert(table);
                others += 1;
            }
            _ => {}
        }
    }
    // PUBLIC is no role and takes no lock.
    roles.remove("PUBLIC");
    tables.len() as u64 + roles.len() as u64 + others
}

/// Each table's partitions, read from the live state.
struct Partitions<'a>(BTreeMap<&'a QualifiedName, Vec<&'a QualifiedName>>);

impl<'a> Partitions<'a> {
    fn of(state: &'a State) -> Partitions<'a> {
        let mut children: BTreeMap<&QualifiedName, Vec<&QualifiedName>> = BTreeMap::new();
        for table in state.tables.values() {
            if let Some(parent) = &table.parent {
                children.entry(parent).or_default().push(&table.name);
            }
        }
        Partitions(children)
    }

    /// How many partitions lie below `table`, at any depth.
    fn below(&self, table: &QualifiedName) -> u64 {
        let mut count = 0;
        let mut next = vec![table];
        while let Some(t) = next.pop() {
            for child in self.0.get(t).into_iter().flatten() {
                count += 1;
                next.push(child);
            }
        }
        count
    }
}

fn name(schema: &str, relation: &str) -> String {
    if schema.is_empty() {
        relation.to_string()
    } else {
        format!("{schema}.{relation}")
    }
}

/// Column types stored inline: a table of only these has no TOAST table.
const FIXED_WIDTH: &[&str] = &[
    "int2",
    "int4",
    "int8",
    "smallint",
    "integer",
    "int",
    "bigint",
    "float4",
    "float8",
    "real",
    "bool",
    "boolean",
    "uuid",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "money",
    "oid",
    "serial",
    "bigserial",
    "smallserial",
    "serial4",
    "serial8",
    "serial2",
];

const SERIAL: &[&str] = &[
    "serial",
    "bigserial",
    "smallserial",
    "serial4",
    "serial8",
    "serial2",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::QualifiedName;

    #[test]
    fn a_new_table_counts_its_toast_its_key_index_its_sequence_and_what_it_references() {
        assert_eq!(for_migrations(["CREATE TABLE a (id bigint, n integer)"]), 1);
        assert_eq!(
            for_migrations(["CREATE TABLE a (id bigint PRIMARY KEY, body text)"]),
            4
        );
        assert_eq!(
            for_migrations([
                "CREATE TABLE t (id bigserial PRIMARY KEY, code text UNIQUE, p bigint REFERENCES parent (id))"
            ]),
            1 + 2 + 1 + 1 + 1 + 1,
            "table, toast and its index, pkey, unique, sequence, parent"
        );
        assert_eq!(
            for_migrations(["CREATE TABLE e (id bigint, tenant_id uuid) PARTITION BY HASH (id)"]),
            1
        );
    }

    #[test]
    fn a_table_counts_once_however_many_statements_touch_it_and_each_file_adds_up() {
        let one = "CREATE TABLE a (id bigint); ALTER TABLE a ADD COLUMN n integer; CREATE INDEX ON a (n);";
        assert_eq!(for_migrations([one]), 2, "the table and the new index");
        let many: Vec<String> = (0..2_000)
            .map(|i| {
                format!(
                    "CREATE TABLE t{i} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);"
                )
            })
            .collect();
        assert_eq!(for_migrations(many.iter().map(String::as_str)), 8_000);
        assert_eq!(
            for_migrations(["INSERT INTO a SELECT * FROM b", "not sql at all"]),
            2
        );
    }

    #[test]
    fn statements_count_each_table_once_and_each_index_built_in_the_transaction() {
        let t = |n: &str| QualifiedName::new("public", n);
        let changes = vec![
            Change::EnableRls { table: t("a") },
            Change::ForceRls { table: t("a") },
            Change::EnableRls { table: t("b") },
            Change::CreateIndex {
                table: t("b"),
                index: crate::model::Index {
                    name: "b_tenant_id_idx".into(),
                    columns: vec!["tenant_id".into()],
                    valid: true,
                },
                concurrently: false,
            },
            Change::CreateIndex {
                table: t("c"),
                index: crate::model::Index {
                    name: "c_tenant_id_idx".into(),
                    columns: vec!["tenant_id".into()],
                    valid: true,
                },
                concurrently: true,
            },
        ];
        assert_eq!(for_changes(&changes, &State::default()), 3);
    }

    #[test]
    fn the_setting_to_raise_is_the_smallest_that_fits() {
        let server = Capacity {
            max_locks_per_transaction: 64,
            max_connections: 100,
            max_prepared_transactions: 0,
        };
        assert_eq!(server.slots(), 6_400);
        assert_eq!(server.refusal(6_400, "this apply"), None);
        let refused = server.refusal(8_007, "this apply").unwrap();
        assert!(refused.contains("8007 lock slots"), "{refused}");
        assert!(refused.contains("6400 = max_locks_per_transaction 64 × (max_connections 100 + max_prepared_transactions 0)"), "{refused}");
        assert!(
            refused.contains("max_locks_per_transaction to at least 81"),
            "{refused}"
        );
        assert_eq!(server.setting_for(8_100), 81);
    }
}
