//! Whether row-level security applies to the connecting role on given tables.

use sqlx::PgConnection;

/// `current_user`, and those of `tables` (as `to_regclass` takes them) where
/// row security is active for it: PostgreSQL's own answer, covering
/// superuser, BYPASSRLS, ownership and FORCE. Tables that do not exist (yet)
/// are left out.
pub async fn active_for_current_user(
    conn: &mut PgConnection,
    tables: &[String],
) -> Result<(String, Vec<String>), sqlx::Error> {
    filtering_current_user(conn, tables, &[]).await
}

/// Like [`active_for_current_user`], leaving out the tables where one of
/// `open_policies` (the declared maintenance policies, by name) lets
/// `current_user` read and write every row: a permissive FOR ALL policy with
/// USING (true) and no WITH CHECK other than true, for a role whose rights
/// `current_user` has, and no restrictive policy that applies to it.
pub async fn filtering_current_user(
    conn: &mut PgConnection,
    tables: &[String],
    open_policies: &[String],
) -> Result<(String, Vec<String>), sqlx::Error> {
    sqlx::query_as(
        "SELECT current_user::text,
                ARRAY(SELECT t FROM unnest($1::text[]) AS t
                       WHERE pg_catalog.row_security_active(pg_catalog.to_regclass(t))
                         AND NOT (
                           EXISTS (SELECT FROM pg_catalog.pg_policy p
                                    WHERE p.polrelid = pg_catalog.to_regclass(t)
                                      AND p.polname = ANY($2::text[])
                                      AND p.polpermissive AND p.polcmd = '*'
                                      AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
                                      AND coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'true') = 'true'
                                      AND EXISTS (SELECT FROM unnest(p.polroles) r
                                                   WHERE r <> 0
                                                     AND pg_catalog.pg_has_role(current_user, r, 'USAGE')))
                           AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p
                                    WHERE p.polrelid = pg_catalog.to_regclass(t)
                                      AND NOT p.polpermissive
                                      AND EXISTS (SELECT FROM unnest(p.polroles) r
                                                   WHERE r = 0
                                                      OR pg_catalog.pg_has_role(current_user, r, 'USAGE')))))",
    )
    .bind(tables)
    .bind(open_policies)
    .fetch_one(conn)
    .await
}

/// Pairs (runtime role, maintenance role) where the runtime role is a member
/// of the maintenance role, directly or through other roles: the maintenance
/// policies would then admit the application to every tenant's rows.
pub async fn runtime_members_of(
    conn: &mut PgConnection,
    runtime: &[String],
    maintenance: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.rolname::text, m.rolname::text
           FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_roles m
          WHERE r.rolname = ANY($1::text[]) AND m.rolname = ANY($2::text[])
            AND r.oid <> m.oid
            AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER')
          ORDER BY 1, 2",
    )
    .bind(runtime)
    .bind(maintenance)
    .fetch_all(conn)
    .await
}
