//! `default_from_context`: writers that do not send the tenant keep working
//! after a table comes under RLS — the column defaults to the bound tenant,
//! and with no tenant bound the insert still fails.

use sqlx::Connection;

use crate::harness::{PROJECTS, TestDb, unique};

const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";

fn spec(role: &str) -> String {
    format!(
        "tenancy:
  default_from_context: true
roles:
  - name: {role}
tables:
  - projects
  - {{ name: tasks, default_from_context: false }}
"
    )
}

/// Runs `insert` as `role` with tenant `bound` (or none), rolled back; the
/// tenant the row got, or the error.
async fn insert_as(
    db: &TestDb,
    role: &str,
    bound: Option<&str>,
    insert: &str,
) -> Result<String, String> {
    let mut conn = db.connect().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(tenant) = bound {
        sqlx::query("SELECT set_config('app.current_tenant_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "{insert} RETURNING tenant_id::text"
    )))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_row_written_without_its_tenant_gets_the_bound_one() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec(&role));
    let planned = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql()
        .join("\n");
    assert!(
        planned.contains(r#"ALTER TABLE "public"."projects" ALTER COLUMN "tenant_id" SET DEFAULT "rls"."current_tenant_id"()"#),
        "{planned}"
    );
    assert!(
        !planned.contains(r#""tasks" ALTER COLUMN"#),
        "tasks opts out: {planned}"
    );
    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    let legacy_insert = "INSERT INTO projects (name) VALUES ('from an old writer')";
    assert_eq!(
        insert_as(&db, &role, Some(A), legacy_insert).await,
        Ok(A.to_string())
    );
    let unbound = insert_as(&db, &role, None, legacy_insert)
        .await
        .unwrap_err();
    assert!(
        unbound.contains("row-level security") || unbound.contains("null value"),
        "fails closed with no tenant bound: {unbound}"
    );
    let tasks = insert_as(
        &db,
        &role,
        Some(A),
        "INSERT INTO tasks (title) VALUES ('t')",
    )
    .await
    .unwrap_err();
    assert!(
        tasks.contains("row-level security") || tasks.contains("null value"),
        "tasks opted out, so a row without its tenant is still refused: {tasks}"
    );

    db.execute("ALTER TABLE projects ALTER COLUMN tenant_id DROP DEFAULT")
        .await;
    let audit = db.rlsctl(&["audit", "--format", "json", "--fail-on", "warning"]);
    assert_eq!(audit.code, 2, "{}", audit.stdout);
    let found = audit.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| {
            f["id"] == "DRIFT_TENANT_DEFAULT" && f["object"] == "column public.projects.tenant_id"
        });
    assert!(found, "{}", audit.stdout);
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
}
