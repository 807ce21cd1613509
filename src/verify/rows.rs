//! Probe rows: one row per tenant in every table a probe needs, made up so the
//! table accepts it (NOT NULL columns filled, parents inserted first through
//! the foreign keys), inserted as the admin inside the probe's transaction.
//!
//! Each row is inserted with its tenant bound the way the application binds
//! it. A superuser or BYPASSRLS admin is never filtered by RLS; an admin that
//! is subject to it (a managed admin, owner of FORCEd tables; see
//! [`super::admin`]) holds the runtime role inside the transaction, so the
//! tenant policy admits the row exactly as it admits the application's own.
//! `RETURNING` makes the new row's visibility a condition of the insert, so
//! every planted row is one the admin can see again with its tenant bound:
//! the admin-side checks of the probes rely on that.
//!
//! Values travel as one bound JSON document turned into the table's row type by
//! `json_populate_record(NULL::table, $1)`: the server parses every value with
//! the column's own type, and no value or type name is pasted into SQL.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::PgConnection;

use super::admin::Admin;
use super::values::check_constraints::Formula;
use super::values::{Constraints, Problem, partition_bounds};
use super::{Binding, Tenant};
use crate::catalog::{Column, ForeignKey, UniqueKey, ValueRules};
use crate::quote::{QualifiedName, Sql};

/// Why a table got no probe row: shown as the NOT PROVEN reason.
#[derive(Debug, Clone)]
pub struct Unbuildable(pub String);

/// A row the admin inserted, and where it is.
#[derive(Debug, Clone)]
pub struct ProbeRow {
    pub table: QualifiedName,
    /// Every column's value as `to_jsonb` returned it.
    pub values: Map<String, Value>,
    /// `tableoid` and `ctid`: exact targeting, whatever the key.
    pub tableoid: String,
    pub ctid: String,
}

impl ProbeRow {
    pub fn json(&self) -> String {
        Value::Object(self.values.clone()).to_string()
    }
}

/// What the factory knows about the schema.
pub struct Layout<'a> {
    pub columns: &'a BTreeMap<QualifiedName, Vec<Column>>,
    pub foreign_keys: &'a [ForeignKey],
    pub unique_keys: &'a [UniqueKey],
    /// Tenant tables and their tenant column.
    pub tenant_columns: &'a BTreeMap<QualifiedName, String>,
    /// Types, CHECK constraints, partitions and children: what values must satisfy.
    pub rules: &'a ValueRules,
    /// Values the spec gives for columns nothing can be derived for.
    pub probe_values: &'a BTreeMap<QualifiedName, Map<String, Value>>,
}

impl Layout<'_> {
    pub fn columns(&self, table: &QualifiedName) -> &[Column] {
        self.columns.get(table).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn column(&self, table: &QualifiedName, name: &str) -> Option<&Column> {
        self.columns(table).iter().find(|c| c.name == name)
    }

    pub fn primary_key(&self, table: &QualifiedName) -> Option<&UniqueKey> {
        self.unique_keys
            .iter()
            .find(|k| &k.table == table && k.primary)
    }

    /// Columns that take part in a unique key or a foreign key.
    pub fn is_key_column(&self, table: &QualifiedName, column: &str) -> bool {
        let named = |columns: &[String]| columns.iter().any(|c| c == column);
        self.unique_keys
            .iter()
            .any(|k| &k.table == table && named(&k.columns))
            || self
                .foreign_keys
                .iter()
                .any(|k| &k.table == table && named(&k.columns))
    }

    fn references_from(&self, table: &QualifiedName) -> impl Iterator<Item = &ForeignKey> {
        self.foreign_keys.iter().filter(move |k| &k.table == table)
    }

    /// When a table's tenant column is generated (e.g. `tenants.tenant_id`
    /// computed from `id`), the column that other tenant tables point their
    /// tenant column at is the one to set.
    pub fn tenant_source_column(&self, table: &QualifiedName) -> Option<&str> {
        self.foreign_keys.iter().find_map(|k| {
            let child_tenant = self.tenant_columns.get(&k.table)?;
            (&k.references == table && k.columns == [child_tenant.clone()])
                .then(|| k.referenced_columns[0].as_str())
        })
    }
}

/// Makes and inserts probe rows; remembers the parents it made per tenant so
/// children of one tenant share them.
pub struct RowFactory<'a> {
    layout: &'a Layout<'a>,
    binding: &'a Binding,
    admin: &'a Admin,
    /// A per-run token that keeps made-up values unique.
    token: u32,
    sequence: u32,
    parents: Parents,
    constraints: Constraints<'a>,
    /// The partition or child being probed: rows are planted there only.
    focus: Option<QualifiedName>,
}

/// A boxed future: building values recurses through parents.
type Boxed<'b, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Unbuildable>> + Send + 'b>>;

/// Parent rows made so far, per (table, tenant).
pub type Parents = BTreeMap<(QualifiedName, String), ProbeRow>;

impl<'a> RowFactory<'a> {
    pub fn new(layout: &'a Layout<'a>, binding: &'a Binding, token: u32, admin: &'a Admin) -> Self {
        RowFactory {
            layout,
            binding,
            admin,
            token,
            sequence: 0,
            parents: BTreeMap::new(),
            constraints: Constraints::new(layout.rules),
            focus: None,
        }
    }

    /// Plant rows only in `child` (a partition, with the leaves under it, or
    /// an inheritance child) besides the table itself; `None`: in every one.
    /// Probing each of a table's partitions then costs rows in that one only.
    pub fn focus(&mut self, child: Option<QualifiedName>) {
        self.focus = child;
    }

    /// Forgets parents: after the transaction that held them was rolled back.
    pub fn reset(&mut self) {
        self.parents.clear();
    }

    pub fn mark(&self) -> Parents {
        self.parents.clone()
    }

    /// Back to the parents of `mark`: after a savepoint holding newer ones was rolled back.
    pub fn restore(&mut self, mark: Parents) {
        self.parents = mark;
    }

    /// Inserts a new row of `tenant` into `table` (and any parent it needs),
    /// then one into each of its partitions and inheritance children that the
    /// row did not land in, so that each of them holds rows of both tenants.
    pub async fn insert(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
    ) -> Result<ProbeRow, Unbuildable> {
        let values = self
            .values(conn, table, tenant, Map::new(), &mut Vec::new(), None)
            .await?;
        let row = self.insert_values(conn, table, tenant, &values).await?;
        for destination in self.constraints.destinations(table).iter() {
            let wanted = match &self.focus {
                None => true,
                Some(child) => {
                    destination.descendant.table == *child
                        || self
                            .layout
                            .rules
                            .descendants
                            .get(child)
                            .is_some_and(|under| {
                                under
                                    .iter()
                                    .any(|d| d.table == destination.descendant.table)
                            })
                }
            };
            if wanted && destination.descendant.oid != row.tableoid {
                self.plant(conn, table, tenant, destination).await;
            }
        }
        Ok(row)
    }

    /// One more row of `tenant` in a partition (inserted through `table`, so
    /// it is routed) or an inheritance child (inserted into it). Best effort,
    /// in savepoints: a partition left without rows is reported by its own
    /// probe. A partition whose bounds exclude the tenant (partitioned by the
    /// tenant column) gets a row of a stand-in tenant inside its bounds: any
    /// row that is not tenant A's serves its read probe.
    async fn plant(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
        destination: &partition_bounds::Destination,
    ) {
        let (into, route) = match &destination.route {
            Some(route) => (table, Some(route)),
            None => (&destination.descendant.table, None),
        };
        let oid = &destination.descendant.oid;
        let mut keys = Vec::new();
        if let Some(route) = route {
            route.columns(&mut keys);
        }
        let tenant_column = self.layout.tenant_columns.get(into).cloned();
        let on_tenant = tenant_column.as_ref().is_some_and(|t| keys.contains(t));
        let other_keys = keys.iter().any(|k| Some(k) != tenant_column.as_ref());
        // Hash partitions: each try draws fresh values for the key.
        let tries = if destination.hashed && other_keys {
            16
        } else {
            1
        };
        for _ in 0..tries {
            match self.plant_once(conn, into, tenant, route, oid).await {
                Planted::There => return,
                Planted::Elsewhere => {}
                Planted::Failed => break,
            }
        }
        let (Some(route), Some(column)) = (route.filter(|_| on_tenant), tenant_column) else {
            return;
        };
        let tries = if destination.hashed { 64 } else { 1 };
        for _ in 0..tries {
            let Some(value) = self.stand_in(into, &column, route) else {
                return;
            };
            let stand_in = Tenant { label: "C", value };
            match self
                .plant_once(conn, into, &stand_in, Some(route), oid)
                .await
            {
                Planted::There => return,
                Planted::Elsewhere => {}
                Planted::Failed if destination.hashed => {}
                Planted::Failed => return,
            }
        }
    }

    /// A tenant id inside a partition's bounds on the tenant column.
    fn stand_in(&mut self, table: &QualifiedName, column: &str, route: &Formula) -> Option<String> {
        let c = self.layout.column(table, column)?;
        let ty = self
            .layout
            .rules
            .types
            .get(&(table.clone(), column.to_string()));
        self.sequence += 1;
        let value = crate::verify::values::column_types::choose(
            c,
            ty,
            &route.conjunctive_tests(column),
            self.sequence,
            self.token,
        )?;
        text_of(&value)
    }

    async fn plant_once(
        &mut self,
        conn: &mut PgConnection,
        into: &QualifiedName,
        tenant: &Tenant,
        route: Option<&Formula>,
        oid: &str,
    ) -> Planted {
        let mark = self.mark();
        if savepoint(conn, "SAVEPOINT rlsctl_plant").await.is_err() {
            return Planted::Failed;
        }
        let row = match self
            .values(conn, into, tenant, Map::new(), &mut Vec::new(), route)
            .await
        {
            Ok(values) => self.insert_values(conn, into, tenant, &values).await,
            Err(e) => Err(e),
        };
        match row {
            Ok(row) => {
                let _ = savepoint(conn, "RELEASE SAVEPOINT rlsctl_plant").await;
                if row.tableoid == oid {
                    Planted::There
                } else {
                    Planted::Elsewhere
                }
            }
            Err(_) => {
                let _ = savepoint(conn, "ROLLBACK TO SAVEPOINT rlsctl_plant").await;
                let _ = savepoint(conn, "RELEASE SAVEPOINT rlsctl_plant").await;
                self.restore(mark);
                Planted::Failed
            }
        }
    }

    /// Values for a new row of `tenant` without inserting it (its parents are
    /// inserted): what a probe then tries to insert as the runtime role.
    pub async fn values_for(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
    ) -> Result<Map<String, Value>, Unbuildable> {
        self.values(conn, table, tenant, Map::new(), &mut Vec::new(), None)
            .await
    }

    /// As [`Self::values_for`], with the values of some columns given.
    pub async fn values_with(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
        fixed: Map<String, Value>,
    ) -> Result<Map<String, Value>, Unbuildable> {
        self.values(conn, table, tenant, fixed, &mut Vec::new(), None)
            .await
    }

    /// Builds a row's values: `fixed` ones first, the spec's explicit probe
    /// values, the tenant, foreign keys from parents (made on demand), then
    /// for each remaining NOT NULL column without a default (and each column
    /// `route`, the bounds of the partition the row must land in, constrains)
    /// a made-up value that satisfies the table's CHECK constraints, the
    /// column's type and domain, and the route: any partition when `None`.
    fn values<'b>(
        &'b mut self,
        conn: &'b mut PgConnection,
        table: &'b QualifiedName,
        tenant: &'b Tenant,
        fixed: Map<String, Value>,
        path: &'b mut Vec<QualifiedName>,
        route: Option<&'b Formula>,
    ) -> Boxed<'b, Map<String, Value>> {
        Box::pin(async move {
            let layout = self.layout;
            if layout.columns.get(table).is_none() {
                return Err(Unbuildable(format!("table {table} does not exist")));
            }
            if path.contains(table) {
                return Err(Unbuildable(format!(
                    "foreign keys form a cycle through {table}"
                )));
            }
            path.push(table.clone());
            let mut values = fixed;
            for (column, value) in layout.probe_values.get(table).into_iter().flatten() {
                values
                    .entry(column.clone())
                    .or_insert_with(|| value.clone());
            }
            if let Some(column) = layout.tenant_columns.get(table) {
                let target = match layout.column(table, column) {
                    Some(c) if c.writable() => Some(column.as_str()),
                    _ => layout.tenant_source_column(table),
                };
                match target {
                    Some(target) => {
                        values.insert(target.to_string(), Value::String(tenant.value.clone()));
                    }
                    None => {
                        return Err(Unbuildable(format!(
                            "the tenant column {column} of {table} is computed by the server, and no foreign key says from which column"
                        )));
                    }
                }
            }
            for key in layout.references_from(table) {
                let nullable = key
                    .columns
                    .iter()
                    .all(|c| layout.column(table, c).is_some_and(|c| !c.not_null));
                if nullable || &key.references == table {
                    continue;
                }
                let mut parent_fixed = Map::new();
                for (column, referenced) in key.columns.iter().zip(&key.referenced_columns) {
                    if let Some(value) = values.get(column) {
                        parent_fixed.insert(referenced.clone(), value.clone());
                    }
                }
                let parent = self
                    .parent(conn, &key.references, tenant, parent_fixed, path)
                    .await?;
                for (column, referenced) in key.columns.iter().zip(&key.referenced_columns) {
                    if let Some(value) = parent.values.get(referenced) {
                        values.insert(column.clone(), value.clone());
                    }
                }
            }
            let columns = layout.columns(table);
            let required: Vec<String> = columns
                .iter()
                .filter(|c| {
                    !values.contains_key(&c.name)
                        && c.writable()
                        && (c.not_null || self.domain_not_null(table, &c.name))
                        && !c.has_default
                })
                .map(|c| c.name.clone())
                .collect();
            let any_leaf = match route {
                Some(_) => None,
                None => self.constraints.any_leaf(table),
            };
            let route = route.or(any_leaf.as_deref());
            let checks = self.constraints.of(table, columns);
            let goals: Vec<&Formula> = checks.iter().map(|(_, f)| f).collect();
            let mut problem = Problem {
                table,
                columns,
                rules: layout.rules,
                fixed: &values,
                required: required.clone(),
                sequence: &mut self.sequence,
                token: self.token,
            };
            let chosen = match problem.solve(&goals, route) {
                Some(chosen) => chosen,
                None => {
                    return Err(self.unsolvable(table, &required, &checks, route.is_some()));
                }
            };
            values.extend(chosen);
            values.retain(|name, _| layout.column(table, name).is_some_and(Column::writable));
            path.pop();
            Ok(values)
        })
    }

    /// A parent row of `tenant` matching `fixed`: the one made before, or a new one.
    async fn parent(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
        fixed: Map<String, Value>,
        path: &mut Vec<QualifiedName>,
    ) -> Result<ProbeRow, Unbuildable> {
        let cache_key = (table.clone(), tenant.value.clone());
        if let Some(row) = self.parents.get(&cache_key)
            && fixed.iter().all(|(k, v)| row.values.get(k) == Some(v))
        {
            return Ok(row.clone());
        }
        let values = self.values(conn, table, tenant, fixed, path, None).await?;
        let row = self.insert_values(conn, table, tenant, &values).await?;
        self.parents.insert(cache_key, row.clone());
        Ok(row)
    }

    /// Inserts `values` as the admin, with the tenant bound the way the
    /// application binds it (so triggers and FORCEd policies see it too).
    pub async fn insert_values(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
        values: &Map<String, Value>,
    ) -> Result<ProbeRow, Unbuildable> {
        self.binding
            .bind(conn, Some(tenant))
            .await
            .map_err(|e| Unbuildable(crate::errors::database_message(&e)))?;
        let statement = insert_statement(table, values.keys().map(String::as_str))
            .push(" RETURNING x.tableoid::text, x.ctid::text, to_jsonb(x.*)");
        let (tableoid, ctid, row): (String, String, Value) = sqlx::query(statement.to_query())
            .bind(Value::Object(values.clone()).to_string())
            .try_map(|r: sqlx::postgres::PgRow| {
                use sqlx::Row;
                Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            })
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| {
                let subject = if self.admin.bypasses_rls {
                    String::new()
                } else {
                    format!(
                        " ({} plants probe rows subject to row-level security, with the tenant bound and the runtime role's policies: they must admit and show a new row of the bound tenant)",
                        self.admin.name
                    )
                };
                // A CHECK rlsctl could not read (a pattern, a function call).
                let hint = if e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|code| code == "23514")
                {
                    "; give the columns it checks values in the spec with `probe_values` on the table"
                } else {
                    ""
                };
                Unbuildable(format!(
                    "inserting a probe row into {table} failed: {}{subject}{hint}",
                    crate::errors::database_message(&e)
                ))
            })?;
        let Value::Object(values) = row else {
            return Err(Unbuildable(format!("{table}: unexpected row")));
        };
        if let Some(column) = self.layout.tenant_columns.get(table)
            && values.get(column).and_then(text_of) != Some(tenant.value.clone())
        {
            return Err(Unbuildable(format!(
                "a probe row inserted into {table} for tenant {} came back with another tenant (a trigger or default rewrote {column})",
                tenant.value
            )));
        }
        Ok(ProbeRow {
            table: table.clone(),
            values,
            tableoid,
            ctid,
        })
    }

    fn domain_not_null(&self, table: &QualifiedName, column: &str) -> bool {
        self.layout
            .rules
            .types
            .get(&(table.clone(), column.to_string()))
            .is_some_and(|t| t.domain_not_null)
    }

    /// Why no row could be made up: the constraints in the way, and what to do.
    fn unsolvable(
        &self,
        table: &QualifiedName,
        required: &[String],
        checks: &[(String, Formula)],
        routed: bool,
    ) -> Unbuildable {
        // A type rlsctl has no value for at all, whatever the constraints.
        for name in required {
            let Some(column) = self.layout.column(table, name) else {
                continue;
            };
            let ty = self.layout.rules.types.get(&(table.clone(), name.clone()));
            if crate::verify::values::column_types::choose(column, ty, &[], 1, 1).is_none() {
                return Unbuildable(format!(
                    "column {table}.{name} of type {} needs a value rlsctl cannot make up; give one in the spec with `probe_values` on the table",
                    column.base_type
                ));
            }
        }
        let mut why: Vec<String> = checks.iter().map(|(text, _)| text.clone()).collect();
        if routed {
            why.push("the bounds of its partitions".into());
        }
        let columns = if required.is_empty() {
            String::new()
        } else {
            format!(" for {}", required.join(", "))
        };
        Unbuildable(format!(
            "rlsctl cannot make up values{columns} in {table} that satisfy {}; give them in the spec with `probe_values` on the table",
            if why.is_empty() {
                "the column types".to_string()
            } else {
                why.join("; ")
            }
        ))
    }
}

/// `INSERT INTO table AS x (cols) SELECT cols FROM json_populate_record(NULL::table, $1::json) r`
/// (or DEFAULT VALUES when no column is given).
pub fn insert_statement<'c>(
    table: &QualifiedName,
    columns: impl IntoIterator<Item = &'c str>,
) -> Sql {
    let columns: Vec<&str> = columns.into_iter().collect();
    let into = Sql::new("INSERT INTO ").qname(table).push(" AS x");
    if columns.is_empty() {
        return into.push(" DEFAULT VALUES");
    }
    let mut sql = into
        .push(" (")
        .idents(columns.iter().copied())
        .push(") SELECT ");
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            sql = sql.push(", ");
        }
        sql = sql.push("r.").ident(column);
    }
    sql.push(" FROM ").sql(&Sql::json_row(table))
}

/// Where a planted row went.
enum Planted {
    There,
    Elsewhere,
    Failed,
}

/// A savepoint statement of the planting (fixed text, no value in it).
async fn savepoint(conn: &mut PgConnection, statement: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(statement).execute(conn).await.map(|_| ())
}

/// A JSON scalar as the text PostgreSQL would print.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
