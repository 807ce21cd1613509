//! Roles as real systems have them: a read-only dashboard role next to a
//! writing worker, a compliance reader limited to the audit log, an
//! append-only table — declared once, converged, audited and proven.

use crate::harness::{TestDb, unique};

const SCHEMA: &str = "CREATE TABLE projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL, name text NOT NULL);
CREATE TABLE audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, event text NOT NULL);";

fn spec(worker: &str, dashboard: &str, compliance: &str) -> String {
    format!(
        "roles:
  - name: {worker}
  - name: {dashboard}
    commands: [select]
  - name: {compliance}
    cross_tenant: read
    tables: [audit_log]
    reason: the compliance team reviews every tenant's audit events
tables:
  - projects
  - name: audit_log
    commands: [select, insert]
"
    )
}

async fn privileges(db: &TestDb, role: &str, table: &str) -> Vec<String> {
    let mut conn = db.connect().await;
    sqlx::query_scalar(
        "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE']) p
          WHERE has_table_privilege($1, $2::regclass, p) ORDER BY array_position(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE'], p)",
    )
    .bind(role)
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn each_role_gets_only_the_tables_and_commands_it_declares() {
    let db = TestDb::new().await;
    let (worker, dashboard, compliance) = (unique("worker"), unique("dash"), unique("compliance"));
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&worker, &dashboard, &compliance));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    assert_eq!(
        privileges(&db, &worker, "projects").await,
        ["SELECT", "INSERT", "UPDATE", "DELETE"]
    );
    assert_eq!(privileges(&db, &dashboard, "projects").await, ["SELECT"]);
    assert_eq!(privileges(&db, &dashboard, "audit_log").await, ["SELECT"]);
    assert_eq!(
        privileges(&db, &worker, "audit_log").await,
        ["SELECT", "INSERT"],
        "the audit log is append-only for the application"
    );
    assert_eq!(privileges(&db, &compliance, "audit_log").await, ["SELECT"]);
    assert!(
        privileges(&db, &compliance, "projects").await.is_empty(),
        "the compliance reader reaches the audit log only"
    );
    let cross_tenant_policies = db
        .scalar_i64(
            "SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
              WHERE p.polname LIKE 'cross_tenant_%' AND c.relname = 'projects'",
        )
        .await;
    assert_eq!(
        cross_tenant_policies, 0,
        "no cross-tenant policy on projects"
    );

    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{}", audit.stdout);
    let verify = db.rlsctl(&["verify", "--strict", "--format", "json"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let json = verify.json();
    assert!(json["summary"]["proven"].as_u64().unwrap() > 0);
    let compliance_objects: Vec<&str> = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["role"] == compliance.as_str())
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        compliance_objects,
        ["public.audit_log"],
        "a role is proven on the tables it is given"
    );
}

#[tokio::test]
async fn narrowing_a_role_later_revokes_what_it_no_longer_declares() {
    let db = TestDb::new().await;
    let (worker, dashboard, compliance) = (unique("worker"), unique("dash"), unique("compliance"));
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&worker, &dashboard, &compliance).replace("    commands: [select]\n", ""));
    db.rlsctl(&["apply"]).success();
    assert_eq!(
        privileges(&db, &dashboard, "projects").await,
        ["SELECT", "INSERT", "UPDATE", "DELETE"]
    );

    db.spec(&spec(&worker, &dashboard, &compliance).replace(
        "    commands: [select]\n",
        "    commands: [select]\n    tables: [projects]\n",
    ));
    let planned = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql()
        .join("\n");
    assert!(planned.contains("REVOKE"), "{planned}");
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    assert_eq!(privileges(&db, &dashboard, "projects").await, ["SELECT"]);
    assert!(
        privileges(&db, &dashboard, "audit_log").await.is_empty(),
        "a table taken out of the role's scope loses its grants"
    );
}

#[tokio::test]
async fn a_scope_naming_an_undeclared_table_or_a_write_for_a_reader_is_refused_where_written() {
    let db = TestDb::new().await;
    let (worker, dashboard, compliance) = (unique("worker"), unique("dash"), unique("compliance"));
    db.spec(
        &spec(&worker, &dashboard, &compliance)
            .replace("tables: [audit_log]", "tables: [audit_logs]"),
    );
    let run = db.offline_command(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spec.yaml:7:14") && stderr.contains("public.audit_logs"),
        "{stderr}"
    );

    db.spec(&spec(&worker, &dashboard, &compliance).replace(
        "    tables: [audit_log]\n",
        "    tables: [audit_log]\n    commands: [select, update]\n",
    ));
    let run = db.offline_command(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("can only be [select]"), "{stderr}");
}
