//! Migrations run first, through refinery, in the same transaction as the policies.

use rlsctl::quote::QualifiedName;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

#[tokio::test]
async fn plan_shows_pending_migrations_and_their_policies_without_running_them() {
    let (db, _role) = TestDb::with_projects(&["projects"]).await;

    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    assert_eq!(plan.json()["migrations"][0], "V1__schema");
    assert!(
        plan.planned_sql()
            .iter()
            .any(|s| s.contains(r#"ON "public"."projects""#))
    );
    let exists = db
        .scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'projects'")
        .await;
    assert_eq!(
        exists, 0,
        "plan must not leave the migration's tables behind"
    );
}

#[tokio::test]
async fn migrations_then_policies_and_a_later_migration_runs_alone() {
    let (db, role) = TestDb::with_projects(&["projects"]).await;
    let first = db.rlsctl(&["apply", "--format", "json"]).success().json();
    assert_eq!(first["migrations"], serde_json::json!(["V1__schema"]));

    db.migration(
        "V2__invoices.sql",
        "CREATE TABLE invoices (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount bigint NOT NULL)",
    );
    db.spec(&simple_spec(&role, &["projects", "invoices"]));
    let second = db.rlsctl(&["apply", "--format", "json"]).success().json();
    assert_eq!(second["migrations"], serde_json::json!(["V2__invoices"]));
    let objects: Vec<&str> = second["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["object"].as_str().unwrap())
        .collect();
    assert!(
        objects.iter().all(|o| o.contains("invoices")),
        "only the new table changes: {objects:?}"
    );

    let applied = db
        .scalar_i64("SELECT count(*) FROM rlsctl.refinery_schema_history")
        .await;
    assert_eq!(applied, 2);
    let state = db.state(&[&role]).await;
    assert!(state.tables[&QualifiedName::new("public", "invoices")].rls_forced);
}

#[tokio::test]
async fn a_failing_migration_rolls_back_with_everything_else() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.migration(
        "V2__broken.sql",
        "ALTER TABLE projects ADD COLUMN oops no_such_type",
    );
    db.spec(&simple_spec(&role, &["projects"]));
    let run = db.rlsctl(&["apply"]).failure();
    assert!(run.stderr.contains("no_such_type"), "{}", run.stderr);
    let exists = db
        .scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'projects'")
        .await;
    assert_eq!(exists, 0, "V1 was rolled back with V2");
}
