//! Declared: what the spec withholds from runtime roles (`commands:`, e.g. an
//! append-only table `[select, insert]`) is refused even on the tenant's own
//! rows; a read-only cross-tenant role (`cross_tenant: read`) reads every
//! tenant and writes nothing; the extra policies that narrow it have their
//! effect too (see `extra_policies`).

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::PgConnection;

use super::attempt::{Attempt, Stop};
use super::{LOCATED_AT_1, Probing, location};
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Access, Command};
use crate::verify::rows::{ProbeRow, Unbuildable};
use crate::verify::{Cell, Probe, VerifyError};

impl Probing<'_> {
    /// With A bound, each withheld write on A's own row must be refused or
    /// change nothing; `None` when the spec withholds no write here.
    pub(super) async fn declared(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        a: &ProbeRow,
    ) -> Result<Option<Cell>, VerifyError> {
        let Some(commands) = self.commands.get(table) else {
            return Ok(None);
        };
        let withheld: Vec<Command> = [Command::Insert, Command::Update, Command::Delete]
            .into_iter()
            .filter(|c| !commands.contains(c) && !commands.contains(&Command::All))
            .collect();
        if withheld.is_empty() {
            return Ok(None);
        }
        let mut cells = Vec::new();
        for command in withheld {
            cells.push(match command {
                Command::Insert => {
                    self.refused_insert(conn, table, "INSERT (withheld by the spec)")
                        .await?
                }
                Command::Update => match self.settable(table) {
                    Some(settable) => {
                        let statement = Sql::new("UPDATE ")
                            .qname(table)
                            .push(" AS x SET ")
                            .ident(&settable)
                            .push(" = x.")
                            .ident(&settable)
                            .push(LOCATED_AT_1);
                        self.must_not_touch(
                            conn,
                            "UPDATE of tenant A's own row (withheld by the spec)",
                            Some(self.a),
                            statement,
                            location(a),
                            &[a],
                        )
                        .await?
                    }
                    None => Cell::proven("UPDATE: the table has no column an UPDATE may set"),
                },
                _ => {
                    let statement = Sql::new("DELETE FROM ")
                        .qname(table)
                        .push(" AS x")
                        .push(LOCATED_AT_1);
                    self.must_not_touch(
                        conn,
                        "DELETE of tenant A's own row (withheld by the spec)",
                        Some(self.a),
                        statement,
                        location(a),
                        &[a],
                    )
                    .await?
                }
            });
        }
        Ok(Some(Cell::combine(cells)))
    }

    /// An INSERT of a new row for A, with A bound, that must be refused.
    async fn refused_insert(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        form: &str,
    ) -> Result<Cell, VerifyError> {
        let mark = self.open(conn).await?;
        let cell = match self.factory.values_for(conn, table, self.a).await {
            Ok(values) => {
                self.must_refuse_insert(conn, form, Some(self.a), table, &values)
                    .await
            }
            Err(Unbuildable(why)) => Ok(Cell::not_proven(format!("{form}: {why}"))),
        };
        self.close(conn, mark).await?;
        cell
    }

    /// A declared cross-tenant role, on one tenant table: it reads both
    /// tenants' rows; read-only, it may change none and insert nothing.
    pub async fn cross_tenant(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        access: Access,
    ) -> Result<BTreeMap<Probe, Cell>, VerifyError> {
        let (a, b) = match self.pair(conn, table).await {
            Ok(pair) => pair,
            Err(Unbuildable(why)) => {
                let cell = Cell::not_proven(format!("no probe rows: {why}"));
                return Ok([Probe::Read, Probe::Update, Probe::Delete, Probe::Insert]
                    .into_iter()
                    .map(|p| (p, cell.clone()))
                    .collect());
            }
        };
        let mut cells = BTreeMap::new();
        cells.insert(
            Probe::Read,
            self.reads_every_tenant(conn, table, &a, &b).await?,
        );
        if let Some(cell) = self
            .extra_policies(conn, table, column, false, &[&a, &b])
            .await?
        {
            cells.insert(Probe::Policies, cell);
        }
        if access == Access::ReadWrite {
            return Ok(cells);
        }
        let mut updates = Vec::new();
        if let Some(settable) = self.settable(table) {
            let aimed = Sql::new("UPDATE ")
                .qname(table)
                .push(" AS x SET ")
                .ident(&settable)
                .push(" = x.")
                .ident(&settable)
                .push(LOCATED_AT_1);
            updates.push(
                self.must_not_touch(
                    conn,
                    "UPDATE aimed at tenant B's row by a read-only role",
                    None,
                    aimed,
                    location(&b),
                    &[&b],
                )
                .await?,
            );
        }
        if let Some((statement, binds)) = self.column_free_update(table, column, &a, &b) {
            updates.push(
                self.must_not_touch(
                    conn,
                    "column-free UPDATE by a read-only role",
                    None,
                    statement,
                    binds,
                    &[&a, &b],
                )
                .await?,
            );
        }
        if updates.is_empty() {
            updates.push(Cell::proven("the table has no column an UPDATE may set"));
        }
        cells.insert(Probe::Update, Cell::combine(updates));
        let every = Sql::new("DELETE FROM ").qname(table).push(" AS x");
        cells.insert(
            Probe::Delete,
            self.must_not_touch(
                conn,
                "DELETE FROM by a read-only role",
                None,
                every,
                Vec::new(),
                &[&a, &b],
            )
            .await?,
        );
        let mark = self.open(conn).await?;
        let inserted = match self.factory.values_for(conn, table, self.a).await {
            Ok(values) => {
                self.must_refuse_insert(conn, "INSERT by a read-only role", None, table, &values)
                    .await
            }
            Err(Unbuildable(why)) => Ok(Cell::not_proven(why)),
        };
        self.close(conn, mark).await?;
        cells.insert(Probe::Insert, inserted?);
        Ok(cells)
    }

    /// Both probe rows visible to the role with no tenant bound.
    async fn reads_every_tenant(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        a: &ProbeRow,
        b: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let both = Sql::new("SELECT to_jsonb(count(*)) FROM ")
            .qname(table)
            .push(
                " AS x WHERE (x.tableoid = $1::oid AND x.ctid = $2::tid)
                    OR (x.tableoid = $3::oid AND x.ctid = $4::tid)",
            );
        let mut binds = location(a);
        binds.extend(location(b));
        Ok(match self.attempt(conn, None, &both, &binds, true).await? {
            Attempt::Done { rows, .. } if rows.first() == Some(&Value::from(2)) => {
                Cell::proven("reads both tenants' rows, as declared (cross_tenant)")
            }
            Attempt::Done { rows, .. } => Cell::not_proven(format!(
                "declared to read every tenant, but sees {} of the two probe rows",
                rows.first().cloned().unwrap_or(Value::Null)
            )),
            Attempt::Stopped(Stop::Refused(why) | Stop::Failed(why)) => Cell::not_proven(format!(
                "declared to read every tenant, but reading failed: {why}"
            )),
        })
    }
}
