//! `rlsctl init --from-db` writes one spec file, never over an existing spec
//! unless `--force`, and changes nothing when it refuses.

use crate::harness::{TestDb, cluster_execute, unique};

async fn one_tenant_table(db: &TestDb, table: &str, role: &str) {
    db.execute(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
CREATE INDEX ON {table} (tenant_id);
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON {table} TO {role}
  USING (tenant_id = current_setting('app.tenant', true)::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role};"
    ))
    .await;
}

fn policies(db: &TestDb) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(db.path().join("policies"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes,
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn init_refuses_to_overwrite_a_spec_without_force_and_changes_nothing() {
    let db = TestDb::new().await;
    let app = unique("app");
    cluster_execute(&format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS")).await;
    one_tenant_table(&db, "projects", &app).await;

    // A hand-written spec is there: nothing is written beside or over it.
    db.spec(&format!("roles:\n  - name: {app}\ntables:\n  - projects\n"));
    let before = policies(&db);
    let refused = db.rlsctl(&["init", "--from-db"]).failure();
    assert!(refused.stderr.contains("spec.yaml"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(policies(&db), before);

    // Its own earlier output is not replaced either…
    db.spec("");
    std::fs::remove_file(db.path().join("policies/spec.yaml")).unwrap();
    db.rlsctl(&["init", "--from-db"]).success();
    let first = policies(&db);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "rlsctl.yaml");
    one_tenant_table(&db, "tasks", &app).await;
    db.rlsctl(&["init", "--from-db"]).failure();
    assert_eq!(
        policies(&db),
        first,
        "a refused init left the files byte-identical"
    );

    // …until --force says so: then it describes the database as it is now.
    db.rlsctl(&["init", "--from-db", "--force"]).success();
    let replaced = policies(&db);
    assert_eq!(replaced.len(), 1);
    let text = String::from_utf8(replaced[0].1.clone()).unwrap();
    assert!(text.contains("- projects\n  - tasks\n"), "{text}");
    assert!(!text.contains("policy_to"), "{text}");
}

#[tokio::test]
async fn init_writes_into_the_config_folder_it_is_given_and_only_there() {
    let db = TestDb::new().await;
    let app = unique("app");
    cluster_execute(&format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS")).await;
    one_tenant_table(&db, "projects", &app).await;
    db.spec("roles: []\n");
    let before = policies(&db);

    db.rlsctl(&["init", "--from-db", "--config", "adopted/spec"])
        .success();
    assert_eq!(policies(&db), before, "policies/ is not touched");
    let written: Vec<_> = std::fs::read_dir(db.path().join("adopted/spec"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["rlsctl.yaml"]);
    let plan = db
        .rlsctl(&["plan", "--config", "adopted/spec", "--format", "json"])
        .success()
        .json();
    assert_eq!(plan["statements"], serde_json::json!([]), "{plan:#}");
}

#[tokio::test]
async fn a_database_without_tenant_policies_is_refused_and_nothing_is_written() {
    let db = TestDb::new().await;
    db.execute("CREATE TABLE projects (id bigint PRIMARY KEY, tenant_id uuid NOT NULL)")
        .await;
    let refused = db.rlsctl(&["init", "--from-db"]).failure();
    assert!(
        refused.stderr.contains("no tenant table found"),
        "{}",
        refused.stderr
    );
    assert!(policies(&db).is_empty());
}

#[tokio::test]
async fn to_public_policies_with_no_role_granted_are_refused_and_nothing_is_written() {
    let db = TestDb::new().await;
    db.execute(
        "CREATE TABLE projects (id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projects USING (tenant_id = current_setting('app.tenant', true)::uuid);",
    )
    .await;
    let refused = db.rlsctl(&["init", "--from-db"]).failure();
    assert!(
        refused.stderr.contains("no runtime role found"),
        "{}",
        refused.stderr
    );
    assert!(policies(&db).is_empty());
}

#[tokio::test]
async fn a_connection_failure_prints_no_password_and_writes_nothing() {
    let db = TestDb::new().await;
    let output = db
        .offline_command(&[
            "init",
            "--from-db",
            "--database-url",
            "postgres://admin:hunter2secret@127.0.0.1:1/app",
        ])
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        all.contains("postgres://admin:***@127.0.0.1:1/app"),
        "{all}"
    );
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(policies(&db).is_empty());
}
