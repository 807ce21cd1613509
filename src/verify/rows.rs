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
use super::{Binding, Tenant};
use crate::catalog::{Column, ForeignKey, UniqueKey};
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
        }
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

    /// Inserts a new row of `tenant` into `table` (and any parent it needs).
    pub async fn insert(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
    ) -> Result<ProbeRow, Unbuildable> {
        let values = self
            .values(conn, table, tenant, Map::new(), &mut Vec::new())
            .await?;
        self.insert_values(conn, table, tenant, &values).await
    }

    /// Values for a new row of `tenant` without inserting it (its parents are
    /// inserted): what a probe then tries to insert as the runtime role.
    pub async fn values_for(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant: &Tenant,
    ) -> Result<Map<String, Value>, Unbuildable> {
        self.values(conn, table, tenant, Map::new(), &mut Vec::new())
            .await
    }

    /// Builds a row's values: `fixed` ones first, the tenant, foreign keys from
    /// parents (made on demand), then a made-up value for each remaining
    /// NOT NULL column without a default.
    fn values<'b>(
        &'b mut self,
        conn: &'b mut PgConnection,
        table: &'b QualifiedName,
        tenant: &'b Tenant,
        fixed: Map<String, Value>,
        path: &'b mut Vec<QualifiedName>,
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
            for column in layout.columns(table) {
                if values.contains_key(&column.name)
                    || !column.writable()
                    || !column.not_null
                    || column.has_default
                {
                    continue;
                }
                let value = self.made_up(column).ok_or_else(|| {
                    Unbuildable(format!(
                        "column {}.{} of type {} needs a value rlsctl cannot make up",
                        table, column.name, column.base_type
                    ))
                })?;
                values.insert(column.name.clone(), value);
            }
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
        let values = self.values(conn, table, tenant, fixed, path).await?;
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
                Unbuildable(format!(
                    "inserting a probe row into {table} failed: {}{subject}",
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

    /// A value the column's type accepts, unique within the run.
    fn made_up(&mut self, column: &Column) -> Option<Value> {
        self.sequence += 1;
        let n = self.sequence;
        let token = self.token;
        Some(match (column.base_type.as_str(), column.category) {
            ("uuid", _) => Value::String(format!("{token:08x}-0000-4000-8000-{n:012x}")),
            ("json" | "jsonb", _) => Value::Object(Map::new()),
            (_, 'S') => Value::String(format!("rv{:06x}{n}", token & 0xff_ffff)),
            // Far from the small numbers real keys start at; smallint must still fit.
            ("smallint", _) => Value::from(1 + (token % 20_000) + n),
            (_, 'N') => {
                Value::from(1_000_000_000 + u64::from(token % 1_000_000_000) + u64::from(n))
            }
            (_, 'B') => Value::Bool(false),
            (_, 'D') => Value::String("now".into()),
            (_, 'T') => Value::String("1 hour".into()),
            (_, 'A') => Value::String("{}".into()),
            (_, 'I') => Value::String("192.0.2.1".into()),
            (_, 'E') => Value::String(column.first_label.clone()?),
            _ => return None,
        })
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

/// A JSON scalar as the text PostgreSQL would print.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
