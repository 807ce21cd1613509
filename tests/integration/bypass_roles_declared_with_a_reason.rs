//! A role that bypasses row-level security on purpose (Supabase's
//! `service_role`) is declared once, with its reason, under `bypass_roles:`.
//! Undeclared, it is an audit error; declared, apply leaves it as it is and
//! audit shows what it alone causes as accepted, with the reason, and exits 0.
//! A declared bypass role cannot also be a role the application connects as.
//!
//! Roles are cluster-wide: the roles here are this test's own (unique names),
//! and what ties them to this audit is their grants on this database's tables.

use serde_json::Value;

use crate::harness::{TestDb, cluster_execute, unique};

const SCHEMA: &str =
    "CREATE TABLE tasks (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, title text);";

/// An applied database with a NOLOGIN BYPASSRLS service role that holds
/// every privilege on the tenant table, and a LOGIN role (PostgREST's
/// authenticator) that may SET ROLE to it.
async fn with_service_role() -> (TestDb, String, String, String) {
    let db = TestDb::new().await;
    let runtime = unique("app");
    let service = unique("service_role");
    let authenticator = unique("authenticator");
    cluster_execute(&format!("CREATE ROLE {service} NOLOGIN BYPASSRLS")).await;
    cluster_execute(&format!(
        "CREATE ROLE {authenticator} LOGIN NOINHERIT; GRANT {service} TO {authenticator}"
    ))
    .await;
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&runtime, None));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!("GRANT ALL ON tasks TO {service}"))
        .await;
    (db, runtime, service, authenticator)
}

fn spec(runtime: &str, bypass: Option<&str>) -> String {
    let mut yaml = format!("roles:\n  - name: {runtime}\ntables:\n  - tasks\n");
    if let Some(role) = bypass {
        yaml.push_str(&format!(
            "bypass_roles:\n  - role: {role}\n    reason: the backend's service key only\n"
        ));
    }
    yaml
}

fn findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_undeclared_bypassrls_role_reachable_by_a_login_is_an_error() {
    let (db, _, service, authenticator) = with_service_role().await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let found: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "BYPASS_ROLE_UNDECLARED")
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["object"], format!("role {service}"));
    assert!(found[0]["accepted"].is_null());
    let text = found[0]["found"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "LOGIN role {authenticator} can SET ROLE {service}"
        )) && text.contains("TRUNCATE"),
        "{text}"
    );
    // The TRUNCATE the authenticator reaches through it is open too.
    assert!(
        findings(&report)
            .iter()
            .any(|f| f["id"] == "TRUNCATE_GRANTED" && f["accepted"].is_null()),
        "{report:#}"
    );
}

#[tokio::test]
async fn a_declared_bypass_role_is_left_alone_and_what_it_alone_causes_is_accepted() {
    let (db, runtime, service, _) = with_service_role().await;
    db.spec(&spec(&runtime, Some(&service)));
    // Apply neither demotes nor refuses it, and has nothing to do.
    db.rlsctl(&["apply"]).success();
    assert_eq!(
        db.rlsctl(&["plan", "--format", "json"]).planned_sql(),
        Vec::<String>::new()
    );
    let mut conn = db.connect().await;
    let still: bool = sqlx::query_scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = $1")
        .bind(&service)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(still);

    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let reason = format!("bypass role {service}: the backend's service key only");
    let through_it: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| {
            [
                "BYPASS_ROLE_UNDECLARED",
                "TRUNCATE_GRANTED",
                "EXCESS_TABLE_PRIVILEGE",
            ]
            .contains(&f["id"].as_str().unwrap())
        })
        .collect();
    assert!(through_it.len() >= 3, "{report:#}");
    for finding in &through_it {
        assert_eq!(finding["accepted"], reason.as_str(), "{finding:#}");
    }
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
}

#[tokio::test]
async fn a_finding_that_stays_without_the_bypass_role_is_not_accepted() {
    let (db, runtime, service, authenticator) = with_service_role().await;
    // The authenticator may TRUNCATE by a grant of its own, not only through
    // the service role: declaring the service role does not excuse that.
    db.execute(&format!("GRANT TRUNCATE ON tasks TO {authenticator}"))
        .await;
    db.spec(&spec(&runtime, Some(&service)));
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let open: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "TRUNCATE_GRANTED" && f["accepted"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "{report:#}");
}

#[tokio::test]
async fn a_bypass_role_that_is_also_a_runtime_role_is_refused_where_it_is_written() {
    let db = TestDb::new().await;
    let runtime = unique("app");
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&runtime, Some(&runtime)));
    let run = db.rlsctl(&["plan"]).failure();
    assert!(
        run.stderr.contains("spec.yaml:6:11")
            && run.stderr.contains(&format!(
                "bypass role `{runtime}` is also declared under `roles:`"
            )),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_runtime_role_that_can_become_a_declared_bypass_role_stays_an_open_finding() {
    let (db, runtime, service, _) = with_service_role().await;
    db.spec(&spec(&runtime, Some(&service)));
    db.execute(&format!("GRANT {service} TO {runtime}")).await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let open: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "RUNTIME_CAN_BECOME_PRIVILEGED" && f["accepted"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "{report:#}");
}

#[tokio::test]
async fn nothing_is_accepted_for_a_bypass_role_the_runtime_role_inherits_from() {
    let (db, runtime, service, _) = with_service_role().await;
    db.spec(&spec(&runtime, Some(&service)));
    // Inheriting its grants: the runtime role may TRUNCATE every tenant's rows.
    db.execute(&format!("GRANT {service} TO {runtime}")).await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let reached: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "BYPASS_ROLE_REACHED_BY_APPLICATION")
        .collect();
    assert_eq!(reached.len(), 1, "{report:#}");
    assert_eq!(
        reached[0]["object"],
        format!("role {runtime}"),
        "{report:#}"
    );
    assert_eq!(reached[0]["severity"], "error", "{report:#}");
    let accepted: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| !f["accepted"].is_null())
        .collect();
    assert!(accepted.is_empty(), "{report:#}");
    let truncate_open = findings(&report)
        .into_iter()
        .any(|f| f["id"] == "TRUNCATE_GRANTED" && f["accepted"].is_null());
    assert!(truncate_open, "{report:#}");
}

#[tokio::test]
async fn a_no_tenant_access_role_that_can_become_a_declared_bypass_role_is_an_error() {
    let (db, runtime, service, _) = with_service_role().await;
    let anon = unique("anon");
    cluster_execute(&format!("CREATE ROLE {anon} NOLOGIN")).await;
    db.spec(&format!(
        "{}no_tenant_access: [{anon}]\n",
        spec(&runtime, Some(&service))
    ));
    let before = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(before.code, 0, "{}\n{}", before.stdout, before.stderr);
    db.execute(&format!("GRANT {service} TO {anon}")).await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let reached = findings(&report).into_iter().find(|f| {
        f["id"] == "BYPASS_ROLE_REACHED_BY_APPLICATION" && f["object"] == format!("role {anon}")
    });
    assert!(reached.is_some(), "{report:#}");
    assert!(
        findings(&report).iter().all(|f| f["accepted"].is_null()),
        "{report:#}"
    );
    db.execute(&format!("REVOKE {service} FROM {anon}")).await;

    // A member of a member: the fix names the anon's own membership.
    let mid = unique("mid");
    cluster_execute(&format!(
        "CREATE ROLE {mid} NOLOGIN; GRANT {service} TO {mid}; GRANT {mid} TO {anon}"
    ))
    .await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let reached = findings(&report)
        .into_iter()
        .find(|f| {
            f["id"] == "BYPASS_ROLE_REACHED_BY_APPLICATION" && f["object"] == format!("role {anon}")
        })
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        reached["fix"],
        format!("REVOKE \"{mid}\" FROM \"{anon}\";"),
        "{reached:#}"
    );
    cluster_execute(&format!("REVOKE {mid} FROM {anon}")).await;
    let after = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
    cluster_execute(&format!("DROP ROLE {mid}; DROP ROLE {anon}")).await;
}

#[tokio::test]
async fn a_declared_backup_role_with_bypassrls_is_accepted_with_its_backup_reason() {
    let db = TestDb::new().await;
    let runtime = unique("app");
    let backup = unique("backup");
    cluster_execute(&format!("CREATE ROLE {backup} LOGIN BYPASSRLS")).await;
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&format!(
        "{}backup_roles:\n  - role: {backup}\n    reason: nightly pg_dump\n",
        spec(&runtime, None)
    ));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!("GRANT SELECT ON tasks TO {backup}"))
        .await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let found: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "BYPASS_ROLE_UNDECLARED")
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(
        found[0]["accepted"],
        format!("backup role {backup}: nightly pg_dump").as_str()
    );
}

#[tokio::test]
async fn a_declared_maintenance_role_with_bypassrls_is_accepted_with_its_reason() {
    let db = TestDb::new().await;
    let runtime = unique("app");
    let ops = unique("ops");
    cluster_execute(&format!("CREATE ROLE {ops} LOGIN BYPASSRLS")).await;
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&format!(
        "{}maintenance:\n  - role: {ops}\n    access: read\n    reason: data checks\n",
        spec(&runtime, None)
    ));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!("GRANT SELECT ON tasks TO {ops}")).await;
    let report = db.rlsctl(&["audit", "--format", "json"]).json();
    let found: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["id"] == "BYPASS_ROLE_UNDECLARED")
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(
        found[0]["accepted"],
        format!("maintenance role {ops}: data checks").as_str()
    );
}
