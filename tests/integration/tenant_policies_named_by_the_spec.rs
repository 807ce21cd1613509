//! `tenancy.policy_name` (and a table's own `policy_name`) describe a
//! database whose tenant policies already have names of their own.

use crate::harness::{PROJECTS, TestDb, cluster_execute, unique};

/// Exactly what rlsctl generates (README, "What rlsctl generates"), written
/// by hand, with the tenant policies named `<table>_tenant_policy`.
fn hand_built(role: &str) -> String {
    let mut sql = format!(
        "{PROJECTS}
CREATE SCHEMA rls;
CREATE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS '
SELECT nullif(pg_catalog.current_setting(''app.current_tenant_id'', true), '''')::uuid
';
REVOKE EXECUTE ON FUNCTION rls.current_tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rls.current_tenant_id() TO {role};
GRANT USAGE ON SCHEMA rls TO {role};
"
    );
    for table in ["projects", "tasks"] {
        sql.push_str(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant_policy ON {table} AS PERMISSIVE FOR ALL TO {role}
  USING (tenant_id = (SELECT rls.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT rls.current_tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {table} TO {role};
CREATE INDEX {table}_tenant_id_idx ON {table} (tenant_id);
"
        ));
    }
    sql
}

fn policy_statements(plan: &serde_json::Value) -> Vec<String> {
    plan["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["kind"].as_str().unwrap().ends_with("_policy"))
        .map(|s| s["sql"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn hand_named_tenant_policies_match_a_spec_that_names_them() {
    let db = TestDb::new().await;
    let role = unique("app");
    // A hand-built database: the role is older than the migrations.
    cluster_execute(&format!(
        "CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .await;
    db.migration("V1__hand_built.sql", &hand_built(&role));
    let tables = "tables:\n  - projects\n  - tasks\n";

    // The default name describes other policies: plan would add them.
    db.spec(&format!("roles:\n  - name: {role}\n{tables}"));
    let default = db.rlsctl(&["plan", "--format", "json"]).success().json();
    let created = policy_statements(&default);
    assert_eq!(
        created
            .iter()
            .filter(|s| s.starts_with("CREATE POLICY \"tenant_isolation\""))
            .count(),
        2,
        "{created:#?}"
    );

    db.spec(&format!(
        "tenancy:\n  policy_name: \"{{table}}_tenant_policy\"\nroles:\n  - name: {role}\n{tables}"
    ));
    let plan = db.rlsctl(&["plan", "--format", "json"]).success().json();
    assert_eq!(plan["migrations"], serde_json::json!(["V1__hand_built"]));
    assert_eq!(plan["statements"], serde_json::json!([]), "{plan:#}");
    assert_eq!(plan["notices"], serde_json::json!([]), "{plan:#}");

    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    let audit = db.rlsctl(&["audit", "--format", "json"]).json();
    let drift: Vec<&serde_json::Value> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("DRIFT_"))
        .collect();
    assert!(drift.is_empty(), "{drift:#?}");
    db.rlsctl(&["verify"]).success();

    // One table's own name wins over the pattern: that table's policy changes.
    db.spec(&format!(
        "tenancy:\n  policy_name: \"{{table}}_tenant_policy\"\nroles:\n  - name: {role}\ntables:\n  - projects\n  - {{ name: tasks, policy_name: tasks_isolation }}\n"
    ));
    let plan = db.rlsctl(&["plan", "--format", "json"]).success().json();
    let statements = policy_statements(&plan);
    assert_eq!(statements.len(), 2, "the policy and its comment: {plan:#}");
    assert!(
        statements[0].starts_with(r#"CREATE POLICY "tasks_isolation" ON "public"."tasks""#),
        "{statements:?}"
    );
}
