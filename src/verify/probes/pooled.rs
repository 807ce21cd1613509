//! Pooled connection: the next transaction on a connection starts unbound.

use sqlx::{Connection, PgConnection};

use super::Probing;
use crate::verify::{Cell, VerifyError, db};

impl Probing<'_> {
    /// A pooled connection: after a committed transaction bound to A, the next
    /// transaction on the same connection must start with no tenant. Role and
    /// database defaults for the setting would bind every new session, too.
    pub async fn pooled_connection(
        &mut self,
        conn: &mut PgConnection,
        defaults: &[(Option<String>, Option<String>, String, String)],
        database: &str,
    ) -> Result<Cell, VerifyError> {
        let setting = self.binding.setting();
        for (role, db_name, name, value) in defaults {
            let applies = role.as_deref().is_none_or(|r| r == self.role)
                && db_name.as_deref().is_none_or(|d| d == database);
            if name == setting && applies && !value.is_empty() {
                return Ok(Cell::leak(
                    format!(
                        "a default (ALTER {} … SET) binds every new session of {} to {setting} = {value}",
                        if role.is_some() { "ROLE" } else { "DATABASE" },
                        self.role
                    ),
                    serde_json::json!({ "setting": setting, "value": value }),
                ));
            }
        }
        let mut first = conn.begin().await.map_err(db("starting a transaction"))?;
        // This transaction commits, so verify may not grant itself the role
        // here; binding with set_config is transaction-local whoever binds.
        if !self.admin.grants_itself(self.role) {
            self.act_as(&mut first).await?;
        }
        self.binding
            .bind(&mut first, Some(self.a))
            .await
            .map_err(db("binding the tenant"))?;
        first.commit().await.map_err(db("committing"))?;
        let mut next = conn.begin().await.map_err(db("starting a transaction"))?;
        self.admin.grant_inside(&mut next, self.role).await?;
        self.act_as(&mut next).await?;
        let left: Option<String> =
            sqlx::query_scalar("SELECT nullif(pg_catalog.current_setting($1, true), '')")
                .bind(setting)
                .fetch_one(&mut *next)
                .await
                .map_err(db("reading the tenant setting"))?;
        next.rollback().await.map_err(db("rolling back"))?;
        Ok(match left {
            Some(value) => Cell::leak(
                format!("the next transaction on the connection still has {setting} = {value}"),
                serde_json::json!({ "setting": setting, "value": value }),
            ),
            None => Cell::proven(format!(
                "after a committed transaction bound to tenant A, the next one starts with {setting} unset"
            )),
        })
    }
}
