//! NULL tenant: a row whose tenant is NULL belongs to no tenant, so no tenant
//! may write one, and none may see one (`tenant = x` is never true for NULL,
//! but `IS NOT DISTINCT FROM`, `coalesce` or `OR tenant IS NULL` are).

use serde_json::{Map, Value};
use sqlx::PgConnection;

use super::attempt::{Attempt, Stop, exec};
use super::{Probing, Unbound};
use crate::errors::database_message;
use crate::quote::{QualifiedName, Sql};
use crate::verify::rows::{Unbuildable, insert_statement};
use crate::verify::{Cell, VerifyError, db};

impl Probing<'_> {
    pub(super) async fn null_tenant(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        match self.layout.column(table, column) {
            Some(c) if c.not_null => {
                return Ok(Cell::proven(
                    "the tenant column is NOT NULL: no row can have a NULL tenant",
                ));
            }
            Some(c) if c.writable() => {}
            _ => {
                return Ok(Cell::not_proven(
                    "the tenant column is computed by the server, so a row with a NULL tenant cannot be made to probe with",
                ));
            }
        }
        let mark = self.open(conn).await?;
        let written = self.null_tenant_write(conn, table, column).await;
        self.close(conn, mark).await?;
        let mark = self.open(conn).await?;
        let read = self.null_tenant_read(conn, table, column).await;
        self.close(conn, mark).await?;
        Ok(Cell::combine(vec![written?, read?]))
    }

    /// With A bound, an INSERT of a row whose tenant is NULL must be refused.
    async fn null_tenant_write(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        let mut values = match self.factory.values_for(conn, table, self.a).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
        };
        values.insert(column.to_string(), Value::Null);
        self.must_refuse_insert(
            conn,
            "INSERT of a row with a NULL tenant",
            Some(self.a),
            table,
            &values,
        )
        .await
    }

    /// The admin plants a row whose tenant is NULL; neither tenant A nor a
    /// session with no tenant may see it.
    async fn null_tenant_read(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
    ) -> Result<Cell, VerifyError> {
        let values = match self.factory.values_for(conn, table, self.a).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Cell::not_proven(why)),
        };
        if let Some(why) = self.plant_null_tenant(conn, table, column, values).await? {
            return Ok(Cell::not_proven(format!(
                "a row with a NULL tenant could not be planted to read: {why}"
            )));
        }
        let nulls = Sql::new("SELECT to_jsonb(x.*) FROM ")
            .qname(table)
            .push(" AS x WHERE x.")
            .ident(column)
            .push(" IS NULL LIMIT 1");
        let before = self.unbound;
        self.unbound = Unbound::Ended;
        let mut cells = Vec::new();
        for (tenant, who) in [
            (Some(self.a), "tenant A"),
            (None, "a session with no tenant bound"),
        ] {
            let attempt = self.attempt(conn, tenant, &nulls, &[], true).await;
            let attempt = match attempt {
                Ok(attempt) => attempt,
                Err(error) => {
                    self.unbound = before;
                    return Err(error);
                }
            };
            cells.push(match attempt {
                Attempt::Done { rows, .. } => match rows.first() {
                    Some(Value::Object(row)) => Cell::leak(
                        format!("{who} sees a row whose tenant is NULL"),
                        self.key_of(table, row),
                    ),
                    _ => Cell::proven(format!("{who} sees no row whose tenant is NULL")),
                },
                Attempt::Stopped(Stop::Refused(why)) => Cell::proven(format!(
                    "{who} reading rows with a NULL tenant: refused ({why})"
                )),
                Attempt::Stopped(stop) => {
                    stop.cell(&format!("{who} reading rows with a NULL tenant"))
                }
            });
        }
        self.unbound = before;
        Ok(Cell::combine(cells))
    }

    /// Inserts the row as the admin, with A bound as the application binds
    /// (the factory's own insert insists a row keep its tenant); `Some` says
    /// why it could not.
    async fn plant_null_tenant(
        &self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        column: &str,
        mut values: Map<String, Value>,
    ) -> Result<Option<String>, VerifyError> {
        values.insert(column.to_string(), Value::Null);
        exec(conn, "SAVEPOINT rlsctl_plant").await?;
        self.binding
            .bind(conn, Some(self.a))
            .await
            .map_err(db("binding the tenant"))?;
        let statement = insert_statement(table, values.keys().map(String::as_str));
        let inserted = sqlx::query(statement.to_query())
            .bind(Value::Object(values).to_string())
            .execute(&mut *conn)
            .await;
        match inserted {
            Ok(_) => {
                exec(conn, "RELEASE SAVEPOINT rlsctl_plant").await?;
                Ok(None)
            }
            Err(error) => {
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_plant").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_plant").await?;
                Ok(Some(database_message(&error)))
            }
        }
    }
}
