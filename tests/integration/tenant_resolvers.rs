//! Tenant resolvers: a webhook worker holds a provider session id, not a
//! tenant. The declared resolver returns that session's one tenant, only the
//! named roles may call it, and audit catches any change to it.

use sqlx::Connection;

use crate::harness::{TestDb, unique};

const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";

const SCHEMA: &str = "CREATE TABLE sessions (provider_session_id text NOT NULL, tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id, provider_session_id));
CREATE TABLE messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);";

fn spec(app: &str, worker: &str) -> String {
    format!(
        "roles:
  - name: {app}
  - name: {worker}
tables:
  - sessions
  - messages
resolvers:
  - name: tenant_for_session
    table: sessions
    key: provider_session_id
    roles: [{worker}]
"
    )
}

/// `sql` run as `role` with nothing bound; the one text value it returns.
async fn as_role(db: &TestDb, role: &str, sql: &str) -> Result<Option<String>, String> {
    let mut conn = db.connect().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| e.to_string())
}

fn finding_ids(run: &crate::harness::Run) -> Vec<String> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_worker_resolves_its_sessions_tenant_and_nobody_else_may_ask() {
    let db = TestDb::new().await;
    let (app, worker) = (unique("app"), unique("worker"));
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&app, &worker));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    db.execute(&format!(
        "INSERT INTO sessions VALUES ('s-a', '{A}'), ('s-b', '{B}'), ('shared', '{A}'), ('shared', '{B}')"
    ))
    .await;

    let resolve = |key: &str| format!("SELECT rls.tenant_for_session('{key}')::text");
    assert_eq!(
        as_role(&db, &worker, &resolve("s-a")).await,
        Ok(Some(A.into()))
    );
    assert_eq!(
        as_role(&db, &worker, &resolve("s-b")).await,
        Ok(Some(B.into()))
    );
    assert_eq!(as_role(&db, &worker, &resolve("unknown")).await, Ok(None));
    assert_eq!(
        as_role(&db, &worker, &resolve("shared")).await,
        Ok(None),
        "a key two tenants share resolves to no tenant"
    );
    let denied = as_role(&db, &app, &resolve("s-a")).await.unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");

    // The worker binds what it resolved, then writes under it.
    let written = as_role(
        &db,
        &worker,
        "WITH bound AS (SELECT set_config('app.current_tenant_id', rls.tenant_for_session('s-b')::text, true))
         SELECT (SELECT set_config FROM bound)",
    )
    .await;
    assert_eq!(written, Ok(Some(B.into())));

    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{}", audit.stdout);
    db.execute(&format!(
        "ALTER FUNCTION rls.tenant_for_session(text) RESET search_path;
         GRANT EXECUTE ON FUNCTION rls.tenant_for_session(text) TO {app}"
    ))
    .await;
    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 2, "{}", audit.stdout);
    let ids = finding_ids(&audit);
    assert_eq!(
        ids.iter().filter(|id| *id == "DRIFT_RESOLVER").count(),
        2,
        "the lost search_path and the extra caller: {ids:?}"
    );
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    let denied = as_role(&db, &app, &resolve("s-a")).await.unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");
}

#[tokio::test]
async fn a_resolver_for_an_undeclared_role_is_refused_where_written() {
    let db = TestDb::new().await;
    let (app, worker) = (unique("app"), unique("worker"));
    db.spec(&spec(&app, &worker).replace(&format!("roles: [{worker}]"), "roles: [ghost]"));
    let run = db.offline_command(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spec.yaml:11:13") && stderr.contains("`ghost`"),
        "{stderr}"
    );
}
