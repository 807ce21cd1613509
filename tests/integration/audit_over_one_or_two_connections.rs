//! audit reads the posture on a second connection while the first reads the
//! catalog. A role the server allows one connection (a connection limit, as
//! managed services and poolers set) is audited over that one, with the
//! same report.

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
