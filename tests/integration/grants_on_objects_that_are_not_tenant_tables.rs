//! `grants:` gives roles privileges on objects that are not tenant tables —
//! a staging table for raw webhooks, a lookup table, a sequence, a function,
//! a schema — converged like the rest: apply grants what is declared and a
//! second plan is empty; audit reports a missing or extra privilege as
//! DRIFT_OBJECT_GRANT; `apply --prune` revokes what a declared role holds on
//! a declared object beyond the spec; a missing object is refused by name,
//! at its line, and nothing changes.

use serde_json::Value;

use crate::harness::{TestDb, cluster_execute, unique};

const SCHEMA: &str = "
CREATE SCHEMA ingest;
CREATE TABLE tasks (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, title text);
CREATE TABLE ingest.webhooks_raw (id bigserial PRIMARY KEY, payload jsonb NOT NULL);
CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE currencies (code text PRIMARY KEY);
CREATE FUNCTION ingest.normalize_phone(raw text, region integer) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT regexp_replace(raw, '[^0-9+]', '', 'g') $$;
";

fn spec(worker: &str, webhooks: &str) -> String {
    format!(
        "roles:
  - {{ name: {worker}, login: true }}
tables:
  - tasks
grants:
  - schema: ingest
    roles: [{worker}]
    privileges: [usage]
  - table: ingest.{webhooks}
    roles: [{worker}]
    privileges: [select, insert]
  - sequence: ingest.webhooks_raw_id_seq
    roles: [{worker}]
    privileges: [usage]
  - table: countries
    roles: [{worker}]
    privileges: [select]
  - function: ingest.normalize_phone(text, int4)
    roles: [{worker}]
    privileges: [execute]
"
    )
}

async fn applied() -> (TestDb, String) {
    let db = TestDb::new().await;
    let worker = unique("worker");
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&worker, "webhooks_raw"));
    db.rlsctl(&["apply"]).success();
    (db, worker)
}

async fn holds(db: &TestDb, sql: &str, worker: &str) -> bool {
    let mut conn = db.connect().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(worker)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn object_drift(db: &TestDb) -> Vec<Value> {
    let report = db.rlsctl(&["audit", "--format", "json"]).json();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "DRIFT_OBJECT_GRANT")
        .cloned()
        .collect()
}

#[tokio::test]
async fn declared_grants_are_applied_once_and_a_second_plan_is_empty() {
    let (db, worker) = applied().await;
    for check in [
        "SELECT has_schema_privilege($1, 'ingest', 'USAGE')",
        "SELECT has_table_privilege($1, 'ingest.webhooks_raw', 'SELECT, INSERT')",
        "SELECT has_sequence_privilege($1, 'ingest.webhooks_raw_id_seq', 'USAGE')",
        "SELECT has_table_privilege($1, 'countries', 'SELECT')",
        "SELECT has_function_privilege($1, 'ingest.normalize_phone(text, integer)', 'EXECUTE')",
    ] {
        assert!(holds(&db, check, &worker).await, "{check}");
    }
    // Only what was declared: the lookup table stays read-only.
    assert!(
        !holds(
            &db,
            "SELECT has_table_privilege($1, 'countries', 'INSERT, UPDATE, DELETE')",
            &worker
        )
        .await
    );
    // The worker can do its job: insert a raw webhook (the sequence included).
    db.execute_as(
        &worker,
        "INSERT INTO ingest.webhooks_raw (payload) VALUES ('{}'); SELECT ingest.normalize_phone('+1 (555) 010', 1)",
    )
    .await;
    assert_eq!(
        db.rlsctl(&["plan", "--format", "json"]).planned_sql(),
        Vec::<String>::new()
    );
    assert!(object_drift(&db).is_empty());
}

#[tokio::test]
async fn audit_reports_a_missing_and_an_extra_privilege_and_prune_revokes_the_extra() {
    let (db, worker) = applied().await;
    db.execute(&format!(
        "REVOKE INSERT ON ingest.webhooks_raw FROM {worker}; GRANT DELETE ON countries TO {worker};
         GRANT SELECT ON currencies TO {worker}; GRANT SELECT ON countries TO PUBLIC"
    ))
    .await;

    let drift = object_drift(&db);
    let objects: Vec<(&str, &str)> = drift
        .iter()
        .map(|f| (f["object"].as_str().unwrap(), f["found"].as_str().unwrap()))
        .collect();
    assert!(
        objects
            .iter()
            .any(|(object, found)| *object == "table ingest.webhooks_raw"
                && found.contains("lacks INSERT")),
        "{objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|(object, found)| *object == "table public.countries" && found.contains("DELETE")),
        "{objects:?}"
    );

    // Without --prune the extra privilege is kept (and said); the missing one is granted.
    let plan = db.rlsctl(&["plan", "--format", "json"]);
    let sql = plan.planned_sql();
    assert_eq!(sql.len(), 1, "{sql:?}");
    assert!(
        sql[0].starts_with("GRANT INSERT ON TABLE \"ingest\".\"webhooks_raw\""),
        "{sql:?}"
    );
    assert!(
        plan.stdout.contains("--prune revokes it"),
        "{}",
        plan.stdout
    );

    db.rlsctl(&["apply", "--prune"]).success();
    assert!(
        !holds(
            &db,
            "SELECT has_table_privilege($1, 'countries', 'DELETE')",
            &worker
        )
        .await
    );
    assert!(
        holds(
            &db,
            "SELECT has_table_privilege($1, 'ingest.webhooks_raw', 'INSERT')",
            &worker
        )
        .await
    );
    // An object the spec does not name, and PUBLIC's rights, are not its business.
    assert!(
        holds(
            &db,
            "SELECT has_table_privilege($1, 'currencies', 'SELECT')
                AND has_table_privilege('public', 'countries', 'SELECT')",
            &worker
        )
        .await
    );
    assert_eq!(
        db.rlsctl(&["plan", "--prune", "--format", "json"])
            .planned_sql(),
        Vec::<String>::new()
    );
    assert!(object_drift(&db).is_empty());
}

#[tokio::test]
async fn a_grant_on_a_missing_object_is_refused_by_name_and_nothing_changes() {
    let (db, worker) = applied().await;
    db.execute(&format!("REVOKE SELECT ON countries FROM {worker}"))
        .await;
    let before = db.fingerprint(&[&worker]).await;
    db.spec(&spec(&worker, "webhook_raw"));
    let run = db.rlsctl(&["apply"]).failure();
    assert!(
        run.stderr.contains("spec.yaml:9:12")
            && run
                .stderr
                .contains("table ingest.webhook_raw (under `grants:`) does not exist")
            && run.stderr.contains("did you mean `ingest.webhooks_raw`?"),
        "{}",
        run.stderr
    );
    assert_eq!(db.fingerprint(&[&worker]).await, before);

    // A misspelt privilege never reaches the server.
    db.spec(&spec(&worker, "webhooks_raw").replace("[select, insert]", "[select, insret]"));
    let run = db.rlsctl(&["apply"]).failure();
    assert!(
        run.stderr.contains("spec.yaml:11:26")
            && run
                .stderr
                .contains("`insret` is not a privilege on a table")
            && run.stderr.contains("did you mean `insert`?"),
        "{}",
        run.stderr
    );
    assert_eq!(db.fingerprint(&[&worker]).await, before);
}

#[tokio::test]
async fn a_managed_admin_that_owns_the_objects_converges_the_grants_in_one_apply() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let worker = unique("worker");
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&spec(&worker, "webhooks_raw"));
    db.rlsctl_as(&admin, &["apply"]).success();
    assert!(
        holds(
            &db,
            "SELECT has_function_privilege($1, 'ingest.normalize_phone(text, integer)', 'EXECUTE')
                AND has_table_privilege($1, 'ingest.webhooks_raw', 'INSERT')",
            &worker
        )
        .await
    );
    assert_eq!(
        db.rlsctl_as(&admin, &["plan", "--format", "json"])
            .planned_sql(),
        Vec::<String>::new()
    );
}

/// A declared privilege held WITH GRANT OPTION lets the role hand the object
/// on to anyone: audit says so, and `--prune` takes the option back
/// (CASCADE: what the role granted on goes with it) while the declared
/// privilege stays.
#[tokio::test]
async fn a_grant_option_on_a_declared_privilege_is_drift_and_prune_takes_it_back() {
    let (db, worker) = applied().await;
    let other = unique("other");
    cluster_execute(&format!("CREATE ROLE {other}")).await;
    db.execute(&format!(
        "GRANT SELECT, UPDATE ON countries TO {worker} WITH GRANT OPTION;
         SET ROLE {worker}; GRANT UPDATE, SELECT ON countries TO {other}; RESET ROLE;"
    ))
    .await;
    let drift = object_drift(&db);
    assert!(
        drift.iter().any(|f| f["object"] == "table public.countries"
            && f["found"].as_str().unwrap().contains("WITH GRANT OPTION")),
        "{drift:#?}"
    );
    let plan = db.rlsctl(&["plan", "--prune", "--format", "json"]);
    let sql = plan.planned_sql();
    assert!(
        sql.iter().any(|s| s
            .starts_with("REVOKE GRANT OPTION FOR SELECT ON TABLE \"public\".\"countries\"")
            && s.ends_with(" CASCADE")),
        "{sql:?}"
    );
    db.rlsctl(&["apply", "--prune"]).success();
    let mut conn = db.connect().await;
    let (select, update, select_option, others): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege($1, 'countries', 'SELECT'),
                has_table_privilege($1, 'countries', 'UPDATE'),
                has_table_privilege($1, 'countries', 'SELECT WITH GRANT OPTION'),
                has_table_privilege($2, 'countries', 'SELECT')",
    )
    .bind(&worker)
    .bind(&other)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(select, "the declared privilege stays");
    assert!(!update, "the undeclared one is revoked");
    assert!(!select_option, "the grant option is taken back");
    assert!(!others, "what the worker granted on goes with it");
    assert_eq!(
        db.rlsctl(&["plan", "--prune", "--format", "json"])
            .planned_sql(),
        Vec::<String>::new()
    );
    cluster_execute(&format!("DROP ROLE {other}")).await;
}

/// Taking back a grant option is CASCADE: a declared privilege another
/// declared role received from that role goes with it, and is granted again
/// in the same apply, so the second plan is empty.
#[tokio::test]
async fn prune_keeps_a_declared_privilege_another_role_received_through_the_grant_option() {
    let db = TestDb::new().await;
    let worker = unique("worker");
    let reporter = unique("reporter");
    cluster_execute(&format!("CREATE ROLE {reporter}")).await;
    db.migration("V1__schema.sql", SCHEMA);
    let spec = spec(&worker, "webhooks_raw").replace(
        &format!("  - table: countries\n    roles: [{worker}]"),
        &format!("  - table: countries\n    roles: [{worker}, {reporter}]"),
    );
    db.spec(&spec);
    db.rlsctl(&["apply"]).success();
    db.execute(&format!(
        "REVOKE SELECT ON countries FROM {reporter};
         GRANT SELECT ON countries TO {worker} WITH GRANT OPTION;
         SET ROLE {worker}; GRANT SELECT ON countries TO {reporter}; RESET ROLE;"
    ))
    .await;
    db.rlsctl(&["apply", "--prune"]).success();
    assert!(
        holds(
            &db,
            "SELECT has_table_privilege($1, 'countries', 'SELECT')",
            &reporter
        )
        .await,
        "the declared privilege of the other role survives the CASCADE"
    );
    assert!(
        !holds(
            &db,
            "SELECT has_table_privilege($1, 'countries', 'SELECT WITH GRANT OPTION')",
            &worker
        )
        .await
    );
    assert_eq!(
        db.rlsctl(&["plan", "--prune", "--format", "json"])
            .planned_sql(),
        Vec::<String>::new()
    );
    db.execute(&format!("DROP OWNED BY {reporter}")).await;
    cluster_execute(&format!("DROP ROLE {reporter}")).await;
}
