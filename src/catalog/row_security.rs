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
    sqlx::query_as(
        "SELECT current_user::text,
                ARRAY(SELECT t FROM unnest($1::text[]) AS t
                       WHERE pg_catalog.row_security_active(pg_catalog.to_regclass(t)))",
    )
    .bind(tables)
    .fetch_one(conn)
    .await
}
