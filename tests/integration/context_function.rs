//! The generated context function: JWT claims, `when_unbound: error`, and
//! parallel query through its policies.

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

/// The runtime role's plan for a full scan of `projects`, with parallel
/// workers made free so the planner takes them whenever it is allowed to.
async fn scan_plan(conn: &mut PgConnection, role: &str) -> String {
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL ROLE {role};
         SELECT set_config('app.current_tenant_id', '00000000-0000-4000-8000-000000000001', true);
         SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
         SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL enable_indexscan = off;
         SET LOCAL enable_bitmapscan = off;"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN SELECT count(*) FROM projects")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    plan.join("\n")
}

#[tokio::test]
async fn queries_through_the_policies_can_run_in_parallel_and_apply_restores_that() {
    let (db, role) = TestDb::with_projects(&["projects"]).await;
    db.rlsctl(&["apply"]).success();
    let mut conn = db.connect().await;
    let plan = scan_plan(&mut conn, &role).await;
    assert!(plan.contains("Parallel Seq Scan"), "{plan}");

    // CREATE OR REPLACE without PARALLEL SAFE (what a hand edit usually does)
    // makes every query on every tenant table serial.
    db.execute(
        "CREATE OR REPLACE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE
           AS $$ SELECT nullif(pg_catalog.current_setting('app.current_tenant_id', true), '')::uuid $$",
    )
    .await;
    let plan = scan_plan(&mut conn, &role).await;
    assert!(!plan.contains("Parallel"), "{plan}");
    let audit = db.rlsctl(&["audit", "--format", "json"]).json();
    let ids: Vec<&str> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"POLICY_BLOCKS_PARALLEL_QUERY"), "{ids:?}");
    assert!(ids.contains(&"DRIFT_CONTEXT_FUNCTION"), "{ids:?}");

    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    let plan = scan_plan(&mut conn, &role).await;
    assert!(plan.contains("Parallel Seq Scan"), "{plan}");
}
