//! Tenants that are roles: policies keyed on the role itself
//! (`owner = current_user`), declared with `tenancy.source: current_user`.
//!
//! There is no setting to bind: "tenant A" is a database role that holds the
//! runtime role's rights, and a transaction is A's when it runs as A. So
//! verify makes up two such roles, A and B, inside every transaction it rolls
//! back (CREATE ROLE is transactional, so they never exist for anyone else),
//! makes each a member of every runtime role, plants a row owned by each, and
//! runs each probe as the runtime role and then, where the probe binds a
//! tenant, `SET LOCAL ROLE` to that tenant's role. With no tenant bound the
//! statement runs as the runtime role itself, which owns no tenant's rows.
//!
//! A policy on `session_user` (the role that logged in) is not changed by
//! SET ROLE: there verify uses `SET LOCAL SESSION AUTHORIZATION`, which only
//! a superuser may run, and resets it after each statement so the checks
//! that follow run as the admin again.

use sqlx::PgConnection;

use super::{VerifyError, db, set_role};
use crate::quote::Sql;
use crate::spec::SessionRole;

/// The made-up tenant roles of one run.
#[derive(Debug, Clone)]
pub struct RoleTenants {
    pub function: SessionRole,
    /// The names of A's and B's roles: the tenant ids of the run.
    pub names: [String; 2],
    /// The runtime roles each tenant role is made a member of.
    pub members_of: Vec<String>,
    /// The connecting role is a superuser: it may `SET ROLE` to any role.
    pub superuser: bool,
    /// The connecting role is SUPERUSER or BYPASSRLS, so it sees and plants
    /// every tenant's rows; otherwise `owner = current_user` admits only a
    /// row of its own name.
    pub bypasses_rls: bool,
}

impl RoleTenants {
    /// Two role names nobody uses: `token` is the run's random token.
    pub fn names(token: &str) -> [String; 2] {
        [
            format!("rlsctl_verify_a_{token}"),
            format!("rlsctl_verify_b_{token}"),
        ]
    }

    /// Creates A and B inside the caller's transaction, which is rolled back.
    /// A setup verify cannot run this way is an error here, which makes each
    /// of the object's cells NOT PROVEN with the reason.
    pub async fn create(&self, conn: &mut PgConnection) -> Result<(), VerifyError> {
        if self.function == SessionRole::SessionUser && !self.superuser {
            return Err(VerifyError::Setup(
                "the tenant policies compare with session_user, the role that logged in, which SET ROLE does not change: verify acts as each tenant with SET SESSION AUTHORIZATION, which only a superuser may run".into(),
            ));
        }
        if !self.bypasses_rls {
            return Err(VerifyError::Setup(
                "tenants are roles here, so a policy admits a row only to the role it names and the connecting role cannot plant or check the probe rows; run verify as a superuser or a BYPASSRLS role with CREATEROLE".into(),
            ));
        }
        let [a, b] = &self.names;
        let mut statements = vec![
            Sql::new("CREATE ROLE ").ident(a).push(" NOLOGIN"),
            Sql::new("CREATE ROLE ").ident(b).push(" NOLOGIN"),
        ];
        if !self.members_of.is_empty() {
            statements.push(
                Sql::new("GRANT ")
                    .idents(self.members_of.iter().map(String::as_str))
                    .push(" TO ")
                    .idents([a.as_str(), b.as_str()]),
            );
        }
        // SET ROLE needs the session's role to be a member of the target.
        if !self.superuser {
            statements.push(
                Sql::new("GRANT ")
                    .idents([a.as_str(), b.as_str()])
                    .push(" TO CURRENT_USER"),
            );
        }
        for statement in statements {
            sqlx::query(statement.to_query())
                .execute(&mut *conn)
                .await
                .map_err(db(format!(
                    "making up the tenant roles {a} and {b} (verify needs SUPERUSER, or CREATEROLE and the right to grant the runtime roles): {statement}"
                )))?;
        }
        Ok(())
    }

    /// Switches from `role` to the tenant's role when `role` is a runtime
    /// role acting for itself (a cross-tenant role, or one reached by SET
    /// ROLE, acts as itself).
    pub async fn act_as_tenant(
        &self,
        conn: &mut PgConnection,
        role: &str,
        via: Option<&str>,
        tenant: &str,
    ) -> Result<(), VerifyError> {
        if via.is_some() || !self.members_of.iter().any(|r| r == role) {
            return Ok(());
        }
        let statement = match self.function {
            SessionRole::CurrentUser => set_role(tenant),
            SessionRole::SessionUser => Sql::new("SET LOCAL SESSION AUTHORIZATION ").ident(tenant),
        };
        sqlx::query(statement.to_query())
            .execute(conn)
            .await
            .map_err(db(format!("acting as tenant {tenant}: {statement}")))?;
        Ok(())
    }

    /// Back to the admin's own session user after a statement that
    /// completed (a failed one is undone with its savepoint).
    pub async fn leave_tenant(&self, conn: &mut PgConnection) -> Result<(), VerifyError> {
        if self.function == SessionRole::SessionUser {
            sqlx::query("RESET SESSION AUTHORIZATION")
                .execute(conn)
                .await
                .map_err(db("RESET SESSION AUTHORIZATION"))?;
        }
        Ok(())
    }
}
