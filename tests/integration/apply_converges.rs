//! apply from empty, idempotency, minimal changes, no false drift, unmanaged policies.

use rlsctl::model::Volatility;
use rlsctl::quote::QualifiedName;
use sqlx::Connection;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

#[tokio::test]
async fn apply_from_empty_forces_rls_and_the_runtime_role_sees_only_its_tenant() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();

    let state = db.state(&[&role]).await;
    for name in ["projects", "tasks"] {
        let table = &state.tables[&QualifiedName::new("public", name)];
        assert!(table.rls_enabled && table.rls_forced, "{name}");
        let policy = &table.policies["tenant_isolation"];
        assert_eq!(
            policy.roles,
            [role.clone()].into(),
            "scoped to the runtime role, not PUBLIC"
        );
        let using = policy.using.as_ref().unwrap().as_str();
        assert!(using.contains("SELECT rls.current_tenant_id()"), "{using}");
        assert_eq!(policy.with_check, policy.using);
        assert!(
            table
                .indexes
                .iter()
                .any(|i| i.valid && i.columns[0] == "tenant_id")
        );
    }
    let runtime = &state.roles[&role];
    assert!(!runtime.superuser && !runtime.bypass_rls);
    let function = state.function.expect("context function");
    assert_eq!(function.volatility, Volatility::Stable);
    assert_eq!(
        function.executors,
        [role.clone()].into(),
        "EXECUTE revoked from PUBLIC"
    );

    db.execute(&format!(
        "INSERT INTO projects (tenant_id, name) VALUES ('{A}', 'a1'), ('{A}', 'a2'), ('{B}', 'b1')"
    ))
    .await;
    let mut conn = db.connect().await;
    let as_tenant = |tenant: &'static str| {
        format!(
            "SET LOCAL ROLE {role}; SELECT set_config('app.current_tenant_id', '{tenant}', true)"
        )
    };
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(as_tenant(A)))
        .execute(&mut *tx)
        .await
        .unwrap();
    let visible: Vec<String> = sqlx::query_scalar("SELECT name FROM projects ORDER BY name")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec!["a1", "a2"]);
    let write_for_b = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO projects (tenant_id, name) VALUES ('{B}', 'sneaky')"
    )))
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        write_for_b.to_string().contains("row-level security"),
        "{write_for_b}"
    );
    tx.rollback().await.unwrap();

    // Unbound, and bound to '' (what a pooled connection reads after SET LOCAL ends).
    for binding in [
        String::new(),
        "SELECT set_config('app.current_tenant_id', '', true)".to_string(),
    ] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET LOCAL ROLE {role}; {binding}"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            count, 0,
            "no tenant bound ({binding:?}) must show nothing, not fail open"
        );
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn a_runtime_role_that_may_insert_can_use_a_serial_column() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(
        "CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, kind text)",
    )
    .await;
    db.spec(&simple_spec(&role, &["events"]));
    db.rlsctl(&["apply"]).success();
    let mut conn = db.connect().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL ROLE {role}; SELECT set_config('app.current_tenant_id', '{A}', true);
         INSERT INTO events (tenant_id, kind) VALUES ('{A}', 'signup')"
    )))
    .execute(&mut *tx)
    .await
    .expect("insert through the runtime role, id from the sequence");
    tx.rollback().await.unwrap();
    db.assert_converged();
}

#[tokio::test]
async fn a_second_plan_is_empty_and_a_second_apply_executes_nothing() {
    let (db, _role) = TestDb::with_projects(&["projects", "tasks"]).await;
    let first = db.rlsctl(&["apply", "--format", "json"]).success().json();
    assert!(first["executed"].as_u64().unwrap() > 10);
    assert_eq!(db.history_rows().await, 1);

    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    assert!(plan.planned_sql().is_empty(), "{:?}", plan.planned_sql());
    assert_eq!(plan.json()["migrations"].as_array().unwrap().len(), 0);
    db.rlsctl(&["plan", "--exit-code"]).success();

    let second = db.rlsctl(&["apply"]).success();
    assert!(
        second.stdout.contains("0 statements executed"),
        "{}",
        second.stdout
    );
    assert_eq!(db.history_rows().await, 1, "a no-op apply records nothing");
}

fn spec_with_extra_policy(role: &str, using: &str) -> String {
    format!(
        "{}policies:\n  - name: archived_read_only\n    tables: [projects]\n    command: update\n    kind: restrictive\n    using: \"{using}\"\n",
        simple_spec(role, &["projects", "tasks"])
    )
}

#[tokio::test]
async fn changing_one_policy_changes_only_that_policy() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec_with_extra_policy(&role, "NOT archived"));
    db.rlsctl(&["apply"]).success();

    db.spec(&spec_with_extra_policy(
        &role,
        "NOT archived AND name <> 'locked'",
    ));
    let plan = db.rlsctl(&["plan", "--format", "json", "--exit-code"]);
    assert_eq!(plan.code, 2, "--exit-code reports pending changes");
    let sql = plan.planned_sql();
    assert_eq!(sql.len(), 1, "{sql:?}");
    assert!(
        sql[0].starts_with(r#"ALTER POLICY "archived_read_only" ON "public"."projects""#),
        "{}",
        sql[0]
    );
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
}

#[tokio::test]
async fn a_reformatted_expression_is_not_drift_but_a_changed_one_is() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec_with_extra_policy(
        &role,
        "NOT archived AND name <> ''",
    ));
    db.rlsctl(&["apply"]).success();

    // Other case, spacing, parentheses and an explicit cast: the same expression.
    db.spec(&spec_with_extra_policy(
        &role,
        "( not   ARCHIVED )  and (NAME <> ''::text)",
    ));
    let same = db.rlsctl(&["plan", "--format", "json"]).success();
    assert!(
        same.planned_sql().is_empty(),
        "false drift: {:?}",
        same.planned_sql()
    );

    db.spec(&spec_with_extra_policy(
        &role,
        "NOT archived AND name <> 'x'",
    ));
    let changed = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].contains("'x'"), "{}", changed[0]);
}

#[tokio::test]
async fn unmanaged_policies_are_kept_and_shown_unless_pruned() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.execute("CREATE POLICY hand_made ON projects FOR SELECT USING (true)")
        .await;

    let plan = db.rlsctl(&["plan"]).success();
    assert!(
        plan.stdout
            .contains("policy hand_made on public.projects is not in the spec: kept"),
        "{}",
        plan.stdout
    );
    db.rlsctl(&["apply"]).success();
    let kept = db.state(&[&role]).await;
    assert!(
        kept.tables[&QualifiedName::new("public", "projects")]
            .policies
            .contains_key("hand_made")
    );

    db.rlsctl(&["apply", "--prune"]).success();
    let pruned = db.state(&[&role]).await;
    let projects = &pruned.tables[&QualifiedName::new("public", "projects")];
    assert!(!projects.policies.contains_key("hand_made"));
    assert!(projects.policies.contains_key("tenant_isolation"));
}

#[tokio::test]
async fn hostile_identifiers_are_quoted_never_executed() {
    let db = TestDb::new().await;
    let role = unique("app\"; DROP ROLE postgres; --é");
    db.migration(
        "V1__schema.sql",
        r#"CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."select" (id int PRIMARY KEY, "Tenant; DROP" uuid NOT NULL);
           CREATE TABLE "we""ird;--" (id int PRIMARY KEY, tenant_id uuid NOT NULL);
           CREATE TABLE "таблица" (id int PRIMARY KEY, tenant_id uuid NOT NULL);"#,
    );
    let yaml = format!(
        "roles:\n  - name: '{role}'\ntables:\n  - {{ schema: My Schema, name: select, column: 'Tenant; DROP' }}\n  - {{ name: 'we\"ird;--' }}\n  - таблица\n"
    );
    db.spec(&yaml);
    db.rlsctl(&["apply"]).success();
    let state = db.state(&[&role]).await;
    assert!(
        state.roles.contains_key("postgres"),
        "the injected DROP ROLE never ran"
    );
    for table in [
        QualifiedName::new("My Schema", "select"),
        QualifiedName::new("public", "we\"ird;--"),
        QualifiedName::new("public", "таблица"),
    ] {
        let t = &state.tables[&table];
        assert!(
            t.rls_forced && t.policies.contains_key("tenant_isolation"),
            "{table}"
        );
        assert_eq!(t.policies["tenant_isolation"].roles, [role.clone()].into());
    }
    db.assert_converged();
}

/// Privileges the spec does not grant are revoked from a runtime role:
/// TRUNCATE on every major, MAINTAIN where the server has it (17+). A
/// statement naming MAINTAIN never reaches an older server.
#[tokio::test]
async fn undeclared_truncate_and_maintain_are_revoked_from_a_runtime_role() {
    let (db, role) = TestDb::with_projects(&["projects"]).await;
    db.rlsctl(&["apply"]).success();
    let maintain = db.server_version().await >= 170000;
    let extra = if maintain {
        "TRUNCATE, MAINTAIN"
    } else {
        eprintln!("PostgreSQL before 17: no MAINTAIN privilege; TRUNCATE alone is tested");
        "TRUNCATE"
    };
    db.execute(&format!("GRANT {extra} ON projects TO {role}"))
        .await;
    let planned = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    let revoke = format!("REVOKE {extra} ON TABLE \"public\".\"projects\" FROM \"{role}\"");
    assert!(
        planned.iter().any(|s| s.starts_with(&revoke)),
        "{revoke}: {planned:#?}"
    );
    assert!(
        maintain || planned.iter().all(|s| !s.contains("MAINTAIN")),
        "{planned:#?}"
    );
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    let live = db.state(&[&role]).await;
    let grants = &live.tables[&QualifiedName::new("public", "projects")].grants[&role];
    assert!(
        grants
            .iter()
            .all(|p| !matches!(p.keyword(), "TRUNCATE" | "MAINTAIN")),
        "{grants:?}"
    );
}
