//! The declared roles are created before the migrations run, in the same
//! transaction, so a migration can grant to them on a fresh database.

use crate::harness::{TestDb, unique};

#[tokio::test]
async fn a_migration_can_grant_to_a_declared_role_on_a_fresh_database() {
    let db = TestDb::new().await;
    let role = unique("app");
    let variable = format!("{}_PASSWORD", role.to_uppercase());
    db.migration(
        "V1__notes.sql",
        &format!(
            "CREATE TABLE notes (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);
             GRANT SELECT ON notes TO {role};"
        ),
    );
    db.spec(&format!(
        "roles:\n  - name: {role}\n    login: true\n    password_env: {variable}\ntables:\n  - notes\n"
    ));

    let before = db.fingerprint(&[&role]).await;
    let plan = db.rlsctl(&["plan", "--format", "json"]).success().json();
    assert_eq!(plan["migrations"], serde_json::json!(["V1__notes"]));
    let first = &plan["statements"][0];
    assert_eq!(first["kind"], "create_role", "{plan:#}");
    assert_eq!(
        first["sql"],
        format!(r#"CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '********'"#),
    );
    let creates = plan["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "create_role")
        .count();
    assert_eq!(creates, 1, "{plan:#}");
    assert_eq!(
        db.fingerprint(&[&role]).await,
        before,
        "plan left something behind"
    );

    let applied = db
        .command(&["apply", "--format", "json"])
        .env(&variable, "correct horse battery staple")
        .output()
        .expect("run rlsctl");
    let applied = crate::harness::Run::from(applied).success().json();
    assert_eq!(applied["statements"][0]["kind"], "create_role");
    db.assert_converged();
    let after = db.fingerprint(&[&role]).await;
    assert!(
        after
            .iter()
            .any(|l| l.starts_with(&format!("role {role} login=t")) && l.contains("password=t")),
        "{after:#?}"
    );
}
