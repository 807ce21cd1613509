//! Bad input: a clear error at file:line:column, a non-zero exit, nothing touched.

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// Runs `apply` on a spec that must be refused, and checks nothing changed.
async fn refused(db: &TestDb, role: &str, yaml: &str) -> String {
    db.spec(yaml);
    let before = db.state(&[role]).await;
    let run = db.rlsctl(&["apply"]).failure();
    assert_eq!(
        db.state(&[role]).await,
        before,
        "a refused apply changed the catalog"
    );
    assert_eq!(db.history_rows().await, 0);
    run.stderr
}

#[tokio::test]
async fn each_class_of_bad_yaml_is_refused_at_its_position() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    let cases: [(&str, String, &str); 5] = [
        (
            "unknown key",
            format!("roles:\n  - name: {role}\n    logn: true\ntables:\n  - projects\n"),
            "spec.yaml:3:5",
        ),
        (
            "wrong type",
            format!("roles:\n  - name: {role}\n    login: sometimes\ntables:\n  - projects\n"),
            "spec.yaml:3:12",
        ),
        (
            "duplicate table",
            format!("roles:\n  - name: {role}\ntables:\n  - projects\n  - public.projects\n"),
            "spec.yaml:5:5",
        ),
        (
            "policy on an undeclared table",
            format!(
                "{}policies:\n  - name: p\n    tables: [invoices]\n    using: 'true'\n",
                simple_spec(&role, &["projects"])
            ),
            "spec.yaml:7:14",
        ),
        (
            "invalid identifier",
            format!(
                "roles:\n  - name: {role}\ntables:\n  - {}\n",
                "t".repeat(70)
            ),
            "spec.yaml:4:5",
        ),
    ];
    for (what, yaml, position) in cases {
        let stderr = refused(&db, &role, &yaml).await;
        assert!(
            stderr.contains(position),
            "{what}: expected {position} in\n{stderr}"
        );
        assert!(
            stderr.contains(" | "),
            "{what}: the offending line is shown\n{stderr}"
        );
    }
}

#[tokio::test]
async fn a_declared_table_missing_from_the_database_is_named() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    let stderr = refused(&db, &role, &simple_spec(&role, &["projects", "invoices"])).await;
    assert!(
        stderr.contains("table public.invoices does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.yaml:5:5"), "{stderr}");
}

#[tokio::test]
async fn a_policy_naming_a_role_that_does_not_exist_is_named() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    let yaml = format!(
        "{}policies:\n  - name: auditors_read\n    tables: [projects]\n    command: select\n    roles: [no_such_auditor]\n    using: 'true'\n",
        simple_spec(&role, &["projects"])
    );
    let stderr = refused(&db, &role, &yaml).await;
    assert!(stderr.contains("no_such_auditor"), "{stderr}");
}

#[tokio::test]
async fn an_expression_postgres_rejects_names_the_policy_and_applies_nothing() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    let yaml = format!(
        "{}policies:\n  - name: only_open\n    tables: [projects]\n    command: select\n    using: 'no_such_column = 1'\n",
        simple_spec(&role, &["projects"])
    );
    let stderr = refused(&db, &role, &yaml).await;
    assert!(
        stderr.contains("policy only_open on public.projects"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no_such_column"),
        "PostgreSQL's message: {stderr}"
    );
}

#[tokio::test]
async fn validate_works_offline_and_reports_the_same_errors() {
    let db = TestDb::new().await;
    db.spec("roles:\n  - name: app\ntables:\n  - projects\n");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("validate")
        .current_dir(db.path())
        .output()
        .unwrap();
    assert!(ok.status.success());
    db.spec("roles:\n  - name: app\ntables:\n  - projects\n  - projects\n");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("validate")
        .current_dir(db.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("duplicate table `public.projects`"),
        "{stderr}"
    );
}

#[test]
fn every_shipped_spec_validates() {
    let root = crate::harness::repo_root();
    for config in ["policies", "examples/jwt-claims/policies"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(["validate", "--config", config])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn a_lock_timeout_of_zero_is_refused_as_bad_usage_before_connecting() {
    let (db, role) = TestDb::with_projects(&["projects"]).await;
    let before = db.state(&[&role]).await;
    let run = db.rlsctl(&["apply", "--lock-timeout", "0"]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("--lock-timeout") && run.stderr.contains("wait forever"),
        "{}",
        run.stderr
    );
    assert_eq!(db.state(&[&role]).await, before);
    assert_eq!(db.history_rows().await, 0);
}
