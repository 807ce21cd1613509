//! The connecting role, and the membership verify grants itself.
//!
//! verify plants probe rows as the role it connects as, then switches to each
//! runtime role with `SET LOCAL ROLE`. A superuser may do both. A managed
//! PostgreSQL admin (RDS, Cloud SQL, Supabase…) owns the database and the
//! tables and has CREATEROLE, but is neither SUPERUSER nor BYPASSRLS: it may
//! not switch to the runtime role (PostgreSQL 15 does not make a role's creator
//! a member; 16+ gives it ADMIN OPTION but neither SET nor INHERIT), and with
//! FORCE ROW LEVEL SECURITY on, no policy admits it, so it cannot plant rows.
//!
//! Such an admin may grant itself the runtime role, so verify does, first thing
//! inside each transaction it rolls back: with SET it can switch, and with
//! INHERIT the runtime role's tenant policy applies to it too, so it plants
//! and checks probe rows with each made-up tenant bound, as the application
//! writes its own rows. Rolled back, the grant leaves nothing behind. Where it
//! may not grant itself the role, verify stops before probing and names the
//! grant a superuser can make instead.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::{VerifyError, db};
use crate::quote::{Sql, display_ident};

/// `server_version_num` from which membership has separate ADMIN, INHERIT
/// and SET options.
const MEMBERSHIP_OPTIONS: i32 = 160_000;

/// What the connecting role may do, and what verify grants it per runtime role.
#[derive(Debug, Clone)]
pub struct Admin {
    pub name: String,
    /// SUPERUSER or BYPASSRLS: RLS filters nothing it plants or checks.
    pub bypasses_rls: bool,
    pub superuser: bool,
    /// The grant made inside each rolled-back transaction, per runtime role
    /// that needs one.
    grants: BTreeMap<String, Sql>,
    /// Tenants that are roles, made up inside each rolled-back transaction.
    pub tenant_roles: Option<super::role_tenants::RoleTenants>,
}

/// The connecting role's attributes.
#[derive(sqlx::FromRow)]
struct Attributes {
    name: String,
    superuser: bool,
    bypass_rls: bool,
    create_role: bool,
    inherit: bool,
    version: i32,
}

/// The connecting role's membership in one runtime role.
#[derive(sqlx::FromRow)]
struct Membership {
    /// May `SET ROLE` to it.
    set: bool,
    /// Has its privileges, so policies `TO` it apply.
    inherits: bool,
    /// May grant it (ADMIN OPTION; PostgreSQL 16+).
    admin: bool,
}

impl Admin {
    /// Reads the connecting role and decides, for every runtime role, whether
    /// verify must grant it to itself; fails when it must but may not.
    pub async fn assess(conn: &mut PgConnection, roles: &[String]) -> Result<Admin, VerifyError> {
        let me: Attributes = sqlx::query_as(
            "SELECT r.rolname::text AS name, r.rolsuper AS superuser,
                    r.rolbypassrls AS bypass_rls, r.rolcreaterole AS create_role,
                    r.rolinherit AS inherit,
                    pg_catalog.current_setting('server_version_num')::int AS version
               FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(db("reading the connecting role"))?;
        let mut admin = Admin {
            bypasses_rls: me.superuser || me.bypass_rls,
            superuser: me.superuser,
            name: me.name.clone(),
            grants: BTreeMap::new(),
            tenant_roles: None,
        };
        if me.superuser {
            return Ok(admin);
        }
        let options = me.version >= MEMBERSHIP_OPTIONS;
        let query = if options {
            "SELECT pg_catalog.pg_has_role($1, 'SET') AS set,
                    pg_catalog.pg_has_role($1, 'USAGE') AS inherits,
                    pg_catalog.pg_has_role($1, 'MEMBER WITH ADMIN OPTION') AS admin"
        } else {
            "SELECT pg_catalog.pg_has_role($1, 'MEMBER') AS set,
                    pg_catalog.pg_has_role($1, 'USAGE') AS inherits,
                    false AS admin"
        };
        for role in roles {
            let membership: Membership = sqlx::query_as(query)
                .bind(role)
                .fetch_one(&mut *conn)
                .await
                .map_err(db(format!("reading {}'s membership in {role}", me.name)))?;
            // Planting needs the tenant policy to admit the admin, unless RLS
            // never filters it.
            let needs_inherit = !admin.bypasses_rls;
            if membership.set && (membership.inherits || !needs_inherit) {
                continue;
            }
            let grant = Sql::new("GRANT ").ident(role).push(" TO CURRENT_USER");
            let grant = if options && membership.admin {
                grant.push(" WITH INHERIT TRUE, SET TRUE")
            } else if !options && me.create_role && (me.inherit || !needs_inherit) {
                grant
            } else {
                return Err(VerifyError::Setup(refusal(
                    &me,
                    role,
                    options,
                    needs_inherit,
                    membership.set,
                )));
            };
            admin.grants.insert(role.clone(), grant);
        }
        Ok(admin)
    }

    /// Whether verify grants itself `role` in its transactions (else the
    /// connecting role already may act as it).
    pub fn grants_itself(&self, role: &str) -> bool {
        self.grants.contains_key(role)
    }

    /// Whether the grant of `role` widens the rights of `owner` (the admin
    /// itself, or a role that inherits the admin's rights): then what runs with
    /// the owner's rights (a view) is not what the application meets.
    pub async fn widens_rights_of(
        &self,
        conn: &mut PgConnection,
        owner: &str,
        role: &str,
    ) -> Result<bool, VerifyError> {
        if !self.grants_itself(role) {
            return Ok(false);
        }
        sqlx::query_scalar(
            "SELECT pg_catalog.pg_has_role($1, current_user, 'USAGE')
                    AND NOT pg_catalog.pg_has_role($1, $2, 'USAGE')",
        )
        .bind(owner)
        .bind(role)
        .fetch_one(conn)
        .await
        .map_err(db(format!("reading {owner}'s rights")))
    }

    /// Grants the connecting role `role` when it needs it: only ever inside a
    /// transaction that is rolled back.
    pub async fn grant_inside(
        &self,
        conn: &mut PgConnection,
        role: &str,
    ) -> Result<(), VerifyError> {
        if let Some(grant) = self.grants.get(role) {
            sqlx::query(grant.to_query())
                .execute(conn)
                .await
                .map_err(db(format!(
                    "granting itself {role} for the probes: {grant}"
                )))?;
        }
        Ok(())
    }
}

/// Why verify cannot act as `role`, and what a superuser can run so it may.
fn refusal(
    me: &Attributes,
    role: &str,
    options: bool,
    needs_inherit: bool,
    member: bool,
) -> String {
    // For a person to paste: quoted only where needed, like other messages.
    let (role_shown, admin_shown) = (display_ident(role), display_ident(&me.name));
    let mut fixes = Vec::new();
    // 15: without the INHERIT attribute no membership brings the policies.
    let noinherit = !options && needs_inherit && !me.inherit;
    if noinherit {
        fixes.push(format!("ALTER ROLE {admin_shown} INHERIT"));
    }
    if options {
        fixes.push(format!(
            "GRANT {role_shown} TO {admin_shown} WITH INHERIT TRUE, SET TRUE"
        ));
    } else if !(member && noinherit) {
        fixes.push(format!("GRANT {role_shown} TO {admin_shown}"));
    }
    let membership = if needs_inherit {
        "SET and INHERIT"
    } else {
        "SET"
    };
    let why = if options {
        format!("it holds no ADMIN OPTION on {role}")
    } else if noinherit {
        format!("it is NOINHERIT, so no membership gives it {role}'s policies")
    } else {
        "it has no CREATEROLE".to_string()
    };
    format!(
        "{name} cannot act as the runtime role {role}: it is not a superuser, not a member of {role} with {membership}, and it cannot grant itself that membership inside verify's rolled-back transaction ({why}); ask a superuser to run: {fixes}",
        name = me.name,
        fixes = fixes.join("; ")
    )
}
