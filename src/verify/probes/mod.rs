//! The probes: each one tries, as the runtime role, to cross from tenant A to
//! tenant B, and turns what the database did into a [`Cell`].
//!
//! A probe runs in a savepoint that is rolled back afterwards, so probes never
//! see each other's effects. The statement under test runs in a nested
//! savepoint, so a refused statement leaves the transaction usable for the
//! admin-side check that follows ("is B's row still exactly where it was?").
//!
//! UPDATE and DELETE are tried in two forms because PostgreSQL treats them
//! differently: a form that reads columns (a WHERE, SET x = x) is also filtered
//! by SELECT policies; a column-free form (`DELETE FROM t`) only by the
//! UPDATE/DELETE policies — the one a SELECT-only tenant policy forgets.

mod attempt;
mod children;
mod declared;
mod definer_functions;
mod delete;
mod existence;
mod extra_policies;
mod insert;
mod move_row;
mod null_tenant;
mod on_conflict;
mod pooled;
mod read;
mod triggers;
mod unbound;
mod update;
mod views;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sqlx::PgConnection;

pub use definer_functions::callable_definer_functions;
pub use triggers::definer_triggers;

use super::admin::Admin;
use super::{Binding, Cell, Probe, Tenant, VerifyError};
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Command, PolicySpec, WhenUnbound};
use crate::verify::rows::{Layout, ProbeRow, RowFactory, Unbuildable};

/// Everything a probe needs, for one runtime role.
pub struct Probing<'a> {
    pub role: &'a str,
    pub binding: &'a Binding,
    pub when_unbound: WhenUnbound,
    pub a: &'a Tenant,
    pub b: &'a Tenant,
    pub layout: &'a Layout<'a>,
    pub admin: &'a Admin,
    pub factory: RowFactory<'a>,
    /// The state "no tenant" takes in the unbound probes being run.
    pub unbound: Unbound,
    /// What the spec lets runtime roles do, per declared table.
    pub commands: &'a BTreeMap<QualifiedName, BTreeSet<Command>>,
    /// The runtime role that `SET ROLE`s to `role`, when `role` is one it
    /// may become rather than a runtime role itself.
    pub via: Option<&'a str>,
    /// The spec's extra policies (`policies:`).
    pub policies: &'a [PolicySpec],
    /// The run's token and this probing's count of made-up values: values
    /// made for extra policies stay unique.
    token: u32,
    sequence: u32,
}

/// What every `Probing` of one run shares: the made-up tenants, the
/// catalog layout, the admin, what the spec allows.
pub struct Shared<'a> {
    pub when_unbound: WhenUnbound,
    pub a: &'a Tenant,
    pub b: &'a Tenant,
    pub layout: &'a Layout<'a>,
    pub admin: &'a Admin,
    pub token: u32,
    pub commands: &'a BTreeMap<QualifiedName, BTreeSet<Command>>,
    pub policies: &'a [PolicySpec],
}

impl<'a> Shared<'a> {
    /// Probes as `role`, binding tenants with `binding`; `via` is the runtime
    /// role that SET ROLEs to it, if any.
    pub fn probing(
        &self,
        role: &'a str,
        binding: &'a Binding,
        unbound: Unbound,
        via: Option<&'a str>,
    ) -> Probing<'a> {
        Probing {
            role,
            binding,
            when_unbound: self.when_unbound,
            a: self.a,
            b: self.b,
            layout: self.layout,
            admin: self.admin,
            factory: RowFactory::new(self.layout, binding, self.token, self.admin),
            unbound,
            commands: self.commands,
            via,
            policies: self.policies,
            token: self.token,
            // Clear of the row factory's own count.
            sequence: 1 << 20,
        }
    }
}

/// The three states in which a connection has no tenant: the application
/// forgot to bind, or a pooled connection moved on. A policy can tell them
/// apart (`current_setting(name, true)` is NULL only in the first), so each is
/// probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbound {
    /// A session that never defined the setting: `current_setting(name, true)`
    /// is NULL, and without `true` it raises.
    Fresh,
    /// After `RESET`: the session's default, or `''`.
    Reset,
    /// After a transaction that bound it with `SET LOCAL` / `set_config(…, true)`
    /// ended: `''`.
    Ended,
}

impl Unbound {
    /// How the state reads in a cell's detail.
    pub fn label(self) -> &'static str {
        match self {
            Unbound::Fresh => "in a fresh session that never defined the setting",
            Unbound::Reset => "after RESET",
            Unbound::Ended => "after a SET LOCAL transaction ended ('')",
        }
    }
}

/// The targeted forms find a row by its exact place (any table, any key).
pub(super) const LOCATED_AT_1: &str = " WHERE x.tableoid = $1::oid AND x.ctid = $2::tid";
pub(super) const LOCATED_AT_2: &str = " WHERE x.tableoid = $2::oid AND x.ctid = $3::tid";

fn location(row: &ProbeRow) -> Vec<String> {
    vec![row.tableoid.clone(), row.ctid.clone()]
}

impl Probing<'_> {
    /// Every probe on one tenant table.
    pub async fn table(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<BTreeMap<Probe, Cell>, VerifyError> {
        let (a, b) = match self.pair(conn, table).await {
            Ok(pair) => pair,
            Err(Unbuildable(why)) => {
                let cell = Cell::not_proven(format!("no probe rows: {why}"));
                return Ok(Probe::EVERY_TABLE
                    .iter()
                    .map(|p| (*p, cell.clone()))
                    .collect());
            }
        };
        let mut cells = BTreeMap::new();
        cells.insert(Probe::Read, self.read(conn, table, column).await?);
        cells.insert(
            Probe::Update,
            self.update(conn, table, column, &a, &b).await?,
        );
        cells.insert(Probe::Delete, self.delete(conn, table, &b).await?);
        cells.insert(Probe::Insert, self.insert(conn, table, column, &b).await?);
        cells.insert(Probe::Move, self.moving(conn, table, column, &a, &b).await?);
        let (read, write) = self
            .unbound(
                conn,
                table,
                column,
                &a,
                &b,
                &[Unbound::Reset, Unbound::Ended],
            )
            .await?;
        cells.insert(Probe::UnboundRead, read);
        cells.insert(Probe::UnboundWrite, write);
        cells.insert(
            Probe::NullTenant,
            self.null_tenant(conn, table, column).await?,
        );
        cells.insert(
            Probe::Existence,
            self.existence(conn, table, column, &b).await?,
        );
        if let Some(cell) = self.declared(conn, table, &a).await? {
            cells.insert(Probe::Declared, cell);
        }
        let runtime = self.via.is_none();
        if let Some(cell) = self
            .extra_policies(conn, table, column, runtime, &[&a, &b])
            .await?
        {
            cells.insert(Probe::Policies, cell);
        }
        Ok(cells)
    }

    async fn pair(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
    ) -> Result<(ProbeRow, ProbeRow), Unbuildable> {
        let a = self.factory.insert(conn, table, self.a).await?;
        let b = self.factory.insert(conn, table, self.b).await?;
        Ok((a, b))
    }

    /// The made-up tenant a probe row belongs to.
    fn tenant_of(&self, row: &ProbeRow) -> &Tenant {
        let b = Value::String(self.b.value.clone());
        if row.values.values().any(|v| v == &b) {
            self.b
        } else {
            self.a
        }
    }

    fn key(&self, row: &ProbeRow) -> Value {
        self.key_of(&row.table, &row.values)
    }

    /// The primary key of a row, or the whole row when the table has none.
    fn key_of(&self, table: &QualifiedName, values: &Map<String, Value>) -> Value {
        let key = self.layout.primary_key(table).and_then(|key| {
            key.columns
                .iter()
                .map(|c| Some((c.clone(), values.get(c)?.clone())))
                .collect::<Option<Map<_, _>>>()
        });
        // A row about to be inserted has no key yet when a default makes it.
        Value::Object(key.unwrap_or_else(|| values.clone()))
    }

    /// A column any UPDATE may set; the first that an INSERT may name.
    fn settable(&self, table: &QualifiedName) -> Option<String> {
        self.layout
            .columns(table)
            .iter()
            .find(|c| c.writable())
            .map(|c| c.name.clone())
    }

    /// A column a column-free UPDATE can set to a row's own value without
    /// breaking a key: outside every unique and foreign key, not the tenant.
    fn harmless(&self, table: &QualifiedName, tenant_column: &str) -> Option<String> {
        self.layout
            .columns(table)
            .iter()
            .find(|c| {
                c.writable()
                    && c.name != tenant_column
                    && !self.layout.is_key_column(table, &c.name)
            })
            .map(|c| c.name.clone())
    }

    /// The bound JSON of `table`'s row type with `value` in `column` (see
    /// [`crate::verify::values::template`]).
    fn one_column(&self, table: &QualifiedName, column: &str, value: &str) -> String {
        let columns = self.layout.columns(table);
        crate::verify::values::template(self.layout.rules, table, columns, column, value)
    }

    /// `SELECT to_jsonb(x.*) FROM t AS x WHERE x.col IS DISTINCT FROM <A> LIMIT 1`.
    fn other_tenant_rows(table: &QualifiedName, column: &str) -> Sql {
        Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(table)
            .push(" AS x WHERE x.")
            .ident(column)
            .push(" IS DISTINCT FROM (SELECT r.")
            .ident(column)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(") LIMIT 1")
    }
}
