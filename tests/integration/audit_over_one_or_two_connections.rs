//! audit reads the posture on a second connection while the first reads the
//! catalog. A role the server allows one connection (a connection limit, as
//! managed services and poolers set) is audited over that one, with the
//! same report.

use rlsctl::audit::{Target, audit, audit_with_reader};
use rlsctl::quote::QualifiedName;
use sqlx::{Connection, PgConnection};

use crate::harness::{TestDb, cluster_execute, simple_spec, unique};

#[tokio::test]
async fn an_admin_allowed_one_connection_gets_the_same_audit_as_with_two() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL);
         CREATE TABLE tasks (id bigint PRIMARY KEY, tenant_id uuid NOT NULL,
                             project_id uuid REFERENCES projects, code text UNIQUE);",
    );
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    db.rlsctl_as(&admin, &["apply"]).success();
    let two = db.rlsctl_as(&admin, &["audit", "--format", "json"]);

    cluster_execute(&format!("ALTER ROLE {admin} CONNECTION LIMIT 1")).await;
    let held = PgConnection::connect(&db.url_as(&admin)).await.unwrap();
    let refused = PgConnection::connect(&db.url_as(&admin)).await;
    assert!(
        refused.is_err(),
        "the limit must refuse a second connection"
    );
    held.close().await.unwrap();

    let one = db.rlsctl_as(&admin, &["audit", "--format", "json"]);
    assert_eq!(one.code, two.code, "{}", one.stderr);
    let (mut one, mut two) = (one.json(), two.json());
    for report in [&mut one, &mut two] {
        report.as_object_mut().unwrap().remove("generated_at");
    }
    assert_eq!(one, two);
    // The keys were read and named: the guessable project key is found.
    let findings = one["findings"].to_string();
    assert!(findings.contains("projects"), "{findings}");
}

/// Posture checks only (no spec), for the library-level tests below.
fn target(role: &str) -> Target {
    Target {
        spec: None,
        roles: vec![role.to_string()],
        tenant_column: "tenant_id".into(),
        context_function: QualifiedName::new("rls", "current_tenant_id"),
        tenant_settings: vec!["app.current_tenant_id".into()],
    }
}

/// A database whose audit has findings only the posture read shows: a view
/// that reads a tenant table with its owner's rights.
async fn database_with_a_posture_finding() -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&format!(
        "CREATE ROLE {role} LOGIN;
         CREATE TABLE projects (id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
         CREATE VIEW project_list AS SELECT * FROM projects;
         GRANT SELECT ON projects, project_list TO {role}"
    ))
    .await;
    (db, role)
}

/// The report as JSON, without the time it was made.
fn comparable(report: &rlsctl::audit::report::Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap();
    value.as_object_mut().unwrap().remove("generated_at");
    value
}

/// Guards against a hang: the audit must finish, whatever the reader does.
async fn finishes<T>(what: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(120), what)
        .await
        .expect("the audit waited for a reader that never began")
}

/// Behind a pooler whose one server connection the audit's own transaction
/// holds, a second connection is accepted but never answered. The audit
/// gives up on it and reads the posture itself.
#[tokio::test]
async fn a_reader_that_never_begins_is_abandoned_and_the_report_is_the_same() {
    let (db, role) = database_with_a_posture_finding().await;
    let mut conn = db.connect().await;
    let alone = audit(&mut conn, &target(&role)).await.unwrap();
    assert!(
        alone
            .findings
            .iter()
            .any(|f| f.object.contains("project_list")),
        "{:?}",
        alone.findings
    );

    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let reader = tokio::spawn(async move {
        PgConnection::connect(&format!(
            "postgres://nobody@127.0.0.1:{port}/none?sslmode=disable"
        ))
        .await
        .ok()
    });
    let aside = finishes(audit_with_reader(&mut conn, Some(reader), &target(&role)))
        .await
        .unwrap();
    assert_eq!(comparable(&aside), comparable(&alone));
}

/// A reader that reached another database (a host name resolving to
/// another server does the same) is not used: its posture is not this one's.
/// One on this database is, with the same report.
#[tokio::test]
async fn a_reader_on_another_database_is_not_used() {
    let (db, role) = database_with_a_posture_finding().await;
    let other = TestDb::new().await;
    let mut conn = db.connect().await;
    let alone = audit(&mut conn, &target(&role)).await.unwrap();

    for (reader_url, what) in [(&other.url, "another database"), (&db.url, "this database")] {
        let url = reader_url.clone();
        let reader = tokio::spawn(async move { PgConnection::connect(&url).await.ok() });
        let aside = finishes(audit_with_reader(&mut conn, Some(reader), &target(&role)))
            .await
            .unwrap();
        assert_eq!(comparable(&aside), comparable(&alone), "reader on {what}");
    }
}
