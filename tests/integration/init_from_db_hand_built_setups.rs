//! `rlsctl init --from-db` on isolation built by hand or by an ORM: the spec
//! it writes describes the database as it is, so `plan` has nothing to do and
//! `audit` finds no error.

use crate::harness::{TestDb, cluster_execute, unique};

/// Runs init in the project folder and returns the spec it wrote.
pub fn init(db: &TestDb) -> String {
    let run = db.rlsctl(&["init", "--from-db"]).success();
    assert!(
        run.stderr.contains("policies/rlsctl.yaml"),
        "{}",
        run.stderr
    );
    std::fs::read_to_string(db.path().join("policies/rlsctl.yaml")).expect("the written spec")
}

/// The written spec is valid, plan has no statement, audit no error.
#[track_caller]
pub fn assert_described_exactly(db: &TestDb, spec: &str) {
    db.offline_command(&["validate"])
        .output()
        .map(|o| {
            assert!(
                o.status.success(),
                "{}\n{spec}",
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .expect("run validate");
    let plan = db.rlsctl(&["plan", "--format", "json"]).success().json();
    assert_eq!(
        plan["statements"],
        serde_json::json!([]),
        "{spec}\n{plan:#}"
    );
    let audit = db.rlsctl(&["audit", "--format", "json"]).json();
    let errors: Vec<&serde_json::Value> = audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{spec}\n{errors:#?}");
    assert!(
        audit["summary"]["tenant_tables"].as_u64().unwrap() > 0,
        "{audit:#}"
    );
}

#[tokio::test]
async fn a_hand_built_to_public_setup_with_an_inline_setting_is_described_exactly() {
    let db = TestDb::new().await;
    let app = unique("app");
    cluster_execute(&format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS")).await;
    let mut sql = String::new();
    for (table, grants) in [
        ("projects", "SELECT, INSERT, UPDATE, DELETE"),
        ("audit_log", "SELECT, INSERT"),
    ] {
        sql.push_str(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, org_id uuid NOT NULL, body text);
CREATE INDEX {table}_org_idx ON {table} (org_id);
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY {table}_org_isolation ON {table} TO PUBLIC
  USING (org_id = current_setting('app.org', true)::uuid)
  WITH CHECK (org_id = current_setting('app.org', true)::uuid);
GRANT {grants} ON {table} TO {app};
"
        ));
    }
    db.execute(&sql).await;
    let before = db.fingerprint(&[&app]).await;

    let spec = init(&db);
    assert_eq!(
        db.fingerprint(&[&app]).await,
        before,
        "init changed the database"
    );
    for expected in [
        "column: org_id",
        "setting: app.org",
        "inline: ",
        "policy_name: \"{table}_org_isolation\"",
        "policy_to: public",
        &format!("- name: {app}\n    login: true"),
        "- projects\n",
        "{ name: audit_log, commands: [select, insert] }",
    ] {
        assert!(spec.contains(expected), "`{expected}` missing from\n{spec}");
    }
    assert!(!spec.contains("# TODO:"), "{spec}");
    assert_described_exactly(&db, &spec);
}

#[tokio::test]
async fn an_orm_style_tenant_isolation_policy_on_every_table_is_described_exactly() {
    let db = TestDb::new().await;
    let web = unique("web");
    cluster_execute(&format!("CREATE ROLE {web} LOGIN NOSUPERUSER NOBYPASSRLS")).await;
    // What ORMs generate: one fixed name, TO PUBLIC (the default), USING only,
    // and a tenant column that is not called tenant_id.
    let mut sql = String::new();
    for table in ["contacts", "messages", "campaigns"] {
        sql.push_str(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, account_id uuid NOT NULL, payload text);
CREATE INDEX ON {table} (account_id, id);
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON {table}
  USING (account_id = current_setting('app.current_account', true)::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {web};
"
        ));
    }
    db.execute(&sql).await;

    let spec = init(&db);
    for expected in [
        "column: account_id",
        "setting: app.current_account",
        "policy_name: tenant_isolation_policy\n",
        "policy_to: public",
        "- campaigns\n  - contacts\n  - messages\n",
    ] {
        assert!(spec.contains(expected), "`{expected}` missing from\n{spec}");
    }
    assert_described_exactly(&db, &spec);

    // Described, not frozen: a changed policy is drift that plan repairs.
    db.execute("ALTER POLICY tenant_isolation_policy ON messages USING (true)")
        .await;
    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    assert_eq!(plan.len(), 1, "{plan:#?}");
    assert!(
        plan[0].starts_with("ALTER POLICY \"tenant_isolation_policy\" ON \"public\".\"messages\""),
        "{plan:#?}"
    );
}

#[tokio::test]
async fn a_jwt_claim_policy_is_described_with_its_claim_and_verify_binds_it() {
    let db = TestDb::new().await;
    let authenticated = unique("authenticated");
    cluster_execute(&format!(
        "CREATE ROLE {authenticated} NOLOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .await;
    // Supabase-style: the tenant is a claim of the request's JWT.
    let claim =
        "school_id = ((current_setting('request.jwt.claims', true)::jsonb ->> 'school_id'))::uuid";
    let mut sql = String::new();
    for table in ["lessons", "students"] {
        sql.push_str(&format!(
            "CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, school_id uuid NOT NULL);
CREATE INDEX ON {table} (school_id);
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY \"{table} of the school\" ON {table} TO {authenticated} USING ({claim}) WITH CHECK ({claim});
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {authenticated};
"
        ));
    }
    db.execute(&sql).await;

    let spec = init(&db);
    for expected in [
        "column: school_id",
        "jwt_claim: school_id\n    claims_setting: request.jwt.claims",
        "policy_name: \"{table} of the school\"",
        &format!("- name: {authenticated}\n"),
    ] {
        assert!(spec.contains(expected), "`{expected}` missing from\n{spec}");
    }
    assert!(!spec.contains("login: true"), "{spec}");
    assert_described_exactly(&db, &spec);
    // The source is right: verify binds the claim and proves isolation.
    let verify = db.rlsctl(&["verify", "--format", "json"]);
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    let matrix = verify.json();
    let tables = matrix["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["object"].as_str().unwrap().starts_with("public."))
        .collect::<Vec<_>>();
    assert_eq!(tables.len(), 2, "{matrix:#}");
    for object in tables {
        for probe in ["read", "update", "insert", "unbound-read"] {
            assert_eq!(
                object["cells"][probe]["verdict"], "PROVEN",
                "{probe} on {}: {matrix:#}",
                object["object"]
            );
        }
    }
}

#[tokio::test]
async fn a_database_rlsctl_built_is_described_back_to_an_empty_plan() {
    let (db, app, reader) = TestDb::applied_with_reader().await;
    let run = db
        .rlsctl(&["init", "--from-db", "--config", "described"])
        .success();
    let spec = std::fs::read_to_string(db.path().join("described/rlsctl.yaml")).unwrap();
    for expected in [
        "function: rls.current_tenant_id   # rlsctl's own",
        "setting: app.current_tenant_id",
        &format!("- name: {app}\n"),
        &format!("- name: {reader}\n    cross_tenant: read\n"),
        "{ name: tasks, commands: [select, insert] }",
        "- name: archived_read_only\n    tables: [projects]\n    command: update\n    kind: restrictive\n",
    ] {
        assert!(
            spec.contains(expected),
            "`{expected}` missing from\n{spec}\n{}",
            run.stderr
        );
    }
    // The one TODO: a cross-tenant role's reason is for people to write.
    assert_eq!(spec.matches("# TODO:").count(), 1, "{spec}");
    let plan = db
        .rlsctl(&["plan", "--config", "described", "--format", "json"])
        .success()
        .json();
    assert_eq!(
        plan["statements"],
        serde_json::json!([]),
        "{spec}\n{plan:#}"
    );
    assert_eq!(plan["notices"], serde_json::json!([]), "{spec}\n{plan:#}");
}
