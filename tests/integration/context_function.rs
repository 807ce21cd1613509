//! The generated context function: JWT claims, and `when_unbound: error`.

use sqlx::{Connection, PgConnection};

use crate::harness::{TestDb, unique};

async fn count_as(conn: &mut PgConnection, role: &str, binding: &str) -> Result<i64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL ROLE {role}; {binding}"
    )))
    .execute(&mut *tx)
    .await?;
    let count = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await;
    tx.rollback().await?;
    count
}

#[tokio::test]
async fn a_jwt_claim_source_binds_the_tenant_and_error_mode_raises_when_unbound() {
    let db = TestDb::new().await;
    let role = unique("web");
    db.execute(
        "CREATE TABLE notes (id serial PRIMARY KEY, org text NOT NULL);
         INSERT INTO notes (org) VALUES ('acme'), ('acme'), ('globex');",
    )
    .await;
    db.spec(&format!(
        "tenancy:\n  column: org\n  type: text\n  source:\n    jwt_claim: org_id\n  when_unbound: error\nroles:\n  - name: {role}\ntables:\n  - notes\n"
    ));
    db.rlsctl(&["apply"]).success();

    let mut conn = db.connect().await;
    let acme =
        r#"SELECT set_config('request.jwt.claims', '{"org_id": "acme", "sub": "u1"}', true)"#;
    assert_eq!(count_as(&mut conn, &role, acme).await.unwrap(), 2);

    for unbound in [
        "",
        r#"SELECT set_config('request.jwt.claims', '{"sub": "u1"}', true)"#,
    ] {
        let error = count_as(&mut conn, &role, unbound).await.unwrap_err();
        assert!(
            error.to_string().contains("no tenant is bound"),
            "{unbound:?}: {error}"
        );
    }
}
