//! Tenant indexes on tables with rows are built CONCURRENTLY, after the commit.

use rlsctl::quote::QualifiedName;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

#[tokio::test]
async fn a_table_with_rows_gets_its_index_concurrently_after_commit() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    db.execute("INSERT INTO projects (tenant_id, name) SELECT gen_random_uuid(), 'p' || i FROM generate_series(1, 500) i").await;
    db.spec(&simple_spec(&role, &["projects", "tasks"]));

    let plan = db.rlsctl(&["plan", "--format", "json"]).success().json();
    let statements = plan["statements"].as_array().unwrap();
    let index_of = |table: &str| {
        statements
            .iter()
            .find(|s| s["kind"] == "create_index" && s["object"].as_str().unwrap().ends_with(table))
            .unwrap_or_else(|| panic!("no index for {table}"))
    };
    assert!(
        index_of("projects")["sql"]
            .as_str()
            .unwrap()
            .starts_with("CREATE INDEX CONCURRENTLY")
    );
    assert_eq!(index_of("projects")["outside_transaction"], true);
    assert!(
        !index_of("tasks")["sql"]
            .as_str()
            .unwrap()
            .contains("CONCURRENTLY"),
        "an empty table needs no concurrent build"
    );
    let last = statements.last().unwrap();
    assert_eq!(
        last["outside_transaction"], true,
        "concurrent builds run last, after COMMIT"
    );

    db.rlsctl(&["apply"]).success();
    let state = db.state(&[&role]).await;
    let projects = &state.tables[&QualifiedName::new("public", "projects")];
    assert!(
        projects
            .indexes
            .iter()
            .any(|i| i.valid && i.columns == ["tenant_id"])
    );
}

#[tokio::test]
async fn an_invalid_leftover_index_is_dropped_and_rebuilt() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    db.execute("INSERT INTO projects (tenant_id, name) SELECT gen_random_uuid(), 'p' || i FROM generate_series(1, 100) i").await;
    db.spec(&simple_spec(&role, &["projects"]));
    db.rlsctl(&["apply"]).success();
    // What a CREATE INDEX CONCURRENTLY killed half-way leaves behind.
    db.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'projects_tenant_id_idx'::regclass").await;

    let sql = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    assert_eq!(
        sql,
        vec![
            r#"DROP INDEX CONCURRENTLY IF EXISTS "public"."projects_tenant_id_idx""#.to_string(),
            r#"CREATE INDEX CONCURRENTLY "projects_tenant_id_idx" ON "public"."projects" ("tenant_id")"#.to_string(),
        ]
    );
    db.rlsctl(&["apply"]).success();
    let state = db.state(&[&role]).await;
    let indexes = &state.tables[&QualifiedName::new("public", "projects")].indexes;
    assert!(indexes.iter().all(|i| i.valid), "{indexes:?}");
    db.assert_converged();
}
