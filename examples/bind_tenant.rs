//! How an application binds the tenant: once per transaction, with a bound
//! parameter, transaction-local. Run against a database rlsctl has applied:
//!
//! ```sh
//! DATABASE_URL=postgres://app_user:…@localhost/app cargo run --example bind_tenant -- <tenant-uuid>
//! ```

use sqlx::{Connection, PgConnection};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?; // the runtime role, never the admin
    let tenant = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bind_tenant <tenant-uuid>"))?;
    let mut conn = PgConnection::connect(&url).await?;

    let mut tx = conn.begin().await?;
    // `true` = transaction-local: the binding ends with this transaction, so a
    // pooled connection never carries one customer's tenant into the next request.
    sqlx::query("SELECT set_config('app.current_tenant_id', $1, true)")
        .bind(&tenant)
        .execute(&mut *tx)
        .await?;
    // No WHERE tenant_id = …: the tenant policy adds it.
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects ORDER BY name")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    for name in names {
        println!("{name}");
    }
    Ok(())
}
