//! `verify --runtime-url`: the runtime role logged in as the application logs
//! in, checked on the database's existing rows, besides the SET ROLE probes.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::{applied_projects, verdict_as};
use crate::harness::{TestDb, require_scram_password_for, server, unique};

const ROW: &str = "runtime connection";
const NEXT: &str = "runtime connection (next transaction)";
const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";

/// Rows of two real tenants in both tables, as a database in use has.
async fn existing_rows(db: &TestDb) {
    db.execute(&format!(
        "INSERT INTO projects (tenant_id, name) VALUES
           ('{TENANT_A}', 'a'), ('22222222-2222-2222-2222-222222222222', 'b');
         INSERT INTO tasks (tenant_id, title) VALUES
           ('{TENANT_A}', 'a'), ('22222222-2222-2222-2222-222222222222', 'b');"
    ))
    .await;
}

async fn count(db: &TestDb) -> i64 {
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar("SELECT (SELECT count(*) FROM projects) + (SELECT count(*) FROM tasks)")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Gives `role` a password it must present (SCRAM over TCP), and waits until
/// the reloaded rules turn a wrong password away.
async fn login_with_password(db: &TestDb, role: &str, password: &str) -> String {
    // Stored as SCRAM on every major (PostgreSQL 13 defaults to md5).
    db.execute(&format!(
        "SET password_encryption = 'scram-sha-256'; ALTER ROLE {role} LOGIN PASSWORD '{password}'"
    ))
    .await;
    require_scram_password_for(role).await;
    let wrong = PgConnectOptions::from_str(&db.url)
        .unwrap()
        .username(role)
        .password("not the password");
    let mut refused = false;
    for _ in 0..300 {
        if wrong.connect().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "pg_hba.conf never took effect");
    format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{}",
        server().port(),
        db.name()
    )
}

fn verify_through(db: &TestDb, runtime_url: &str) -> (i32, serde_json::Value) {
    let run = db.rlsctl(&["verify", "--format", "json", "--runtime-url", runtime_url]);
    assert!(
        run.code == 0 || run.code == 2,
        "verify failed: {}\n{}",
        run.stderr,
        run.stdout
    );
    (run.code, run.json())
}

#[tokio::test]
async fn a_password_login_as_the_declared_runtime_role_is_proven_and_changes_nothing() {
    let (db, role) = applied_projects().await;
    existing_rows(&db).await;
    let url = login_with_password(&db, &role, "Runtime-Secret-42").await;
    let (code, matrix) = verify_through(&db, &url);
    assert_eq!(code, 0, "{matrix:#}");
    for probe in ["runtime-role", "unbound-read", "unbound-write"] {
        assert_eq!(verdict_as(&matrix, &role, ROW, probe), "PROVEN", "{probe}");
    }
    assert_eq!(verdict_as(&matrix, &role, NEXT, "unbound-read"), "PROVEN");
    assert_eq!(count(&db).await, 4, "the existing rows are untouched");

    let text = db.rlsctl(&["verify", "--runtime-url", &url]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.contains(ROW), "{}", text.stdout);
    assert!(!text.stdout.contains("Runtime-Secret-42"));
}

#[tokio::test]
async fn a_runtime_login_with_bypassrls_leaks() {
    let (db, role) = applied_projects().await;
    existing_rows(&db).await;
    db.execute(&format!("ALTER ROLE {role} LOGIN BYPASSRLS"))
        .await;
    // Given through the environment, as a deployment would.
    let run = db
        .command(&["verify", "--format", "json"])
        .env("RLSCTL_RUNTIME_DATABASE_URL", db.url_as(&role))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let matrix: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(verdict_as(&matrix, &role, ROW, "runtime-role"), "LEAK");
    assert_eq!(verdict_as(&matrix, &role, ROW, "unbound-read"), "LEAK");
    assert_eq!(verdict_as(&matrix, &role, ROW, "unbound-write"), "LEAK");
    assert_eq!(count(&db).await, 4, "the writes were rolled back");
}

#[tokio::test]
async fn a_role_default_for_the_tenant_setting_leaks_on_the_runtime_connection() {
    let (db, role) = applied_projects().await;
    existing_rows(&db).await;
    db.execute(&format!(
        "ALTER ROLE {role} LOGIN;
         ALTER ROLE {role} SET app.current_tenant_id = '{TENANT_A}'"
    ))
    .await;
    let (code, matrix) = verify_through(&db, &db.url_as(&role));
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict_as(&matrix, &role, ROW, "unbound-read"), "LEAK");
    assert_eq!(verdict_as(&matrix, &role, ROW, "runtime-role"), "PROVEN");
    let cell = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == ROW)
        .unwrap()["cells"]["unbound-read"]
        .clone();
    assert_eq!(cell["key"]["value"], TENANT_A, "{cell:#}");
}

#[tokio::test]
async fn a_runtime_login_that_is_not_a_proved_role_is_not_proven() {
    let (db, role) = applied_projects().await;
    existing_rows(&db).await;
    let other = unique("other_app");
    db.execute(&format!("CREATE ROLE {other} LOGIN")).await;
    let (code, matrix) = verify_through(&db, &db.url_as(&other));
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &other, ROW, "runtime-role"),
        "NOT_PROVEN"
    );
    let strict = db.rlsctl(&["verify", "--strict", "--runtime-url", &db.url_as(&other)]);
    assert_eq!(strict.code, 2, "{}", strict.stdout);
    assert!(strict.stdout.contains(&role), "{}", strict.stdout);
}

#[tokio::test]
async fn a_wrong_runtime_password_is_a_clear_error_with_the_password_masked() {
    let (db, role) = applied_projects().await;
    let url = login_with_password(&db, &role, "Right-Secret-42").await;
    let wrong = url.replace("Right-Secret-42", "Wrong-Secret-Marker");
    let run = db.rlsctl(&["verify", "--runtime-url", &wrong]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--runtime-url"), "{}", run.stderr);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{role}:***@")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Wrong-Secret-Marker"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("Wrong-Secret-Marker"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_refused_table_does_not_hide_a_leak_in_the_next_one_of_the_pooled_check() {
    let (db, _role) = applied_projects().await;
    existing_rows(&db).await;
    // May not read projects at all (refused), reads every row of tasks.
    let other = unique("reporting_login");
    db.execute(&format!(
        "CREATE ROLE {other} LOGIN BYPASSRLS; GRANT SELECT ON tasks TO {other}"
    ))
    .await;
    let (code, matrix) = verify_through(&db, &db.url_as(&other));
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict_as(&matrix, &other, NEXT, "unbound-read"), "LEAK");
    let next = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == NEXT)
        .unwrap();
    assert_eq!(
        next["cells"]["unbound-read"]["key"]["table"], "public.tasks",
        "{next:#}"
    );
}

#[tokio::test]
async fn check_and_report_verify_through_the_runtime_url_too() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    // The application logs in as the runtime role, so the spec says so (each
    // check applies it again).
    db.spec(&format!(
        "roles:\n  - {{ name: {role}, login: true }}\ntables:\n  - projects\n  - tasks\n"
    ));
    db.rlsctl(&["apply"]).success();
    existing_rows(&db).await;
    let url = login_with_password(&db, &role, "Check-Secret-42").await;

    // A drift apply would repair: a wrong runtime URL stops check before it.
    db.execute(&format!("REVOKE DELETE ON tasks FROM {role}"))
        .await;
    let wrong = url.replace("Check-Secret-42", "Wrong-Check-Marker");
    let refused = db.rlsctl(&["check", "--runtime-url", &wrong]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let can_delete: bool = sqlx::query_scalar("SELECT has_table_privilege($1, 'tasks', 'DELETE')")
        .bind(&role)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        !can_delete,
        "check applied before connecting the runtime URL"
    );
    assert!(
        refused.stderr.contains("--runtime-url"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!("{role}:***@")),
        "the runtime URL is named, masked: {}",
        refused.stderr
    );
    for output in [&refused.stdout, &refused.stderr] {
        assert!(!output.contains("Wrong-Check-Marker"), "{output}");
    }

    let run = db.rlsctl(&["check", "--format", "json", "--runtime-url", &url]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!(json["passed"], true);
    assert_eq!(
        verdict_as(&json["verify"], &role, ROW, "runtime-role"),
        "PROVEN"
    );
    assert_eq!(
        verdict_as(&json["verify"], &role, NEXT, "unbound-read"),
        "PROVEN"
    );

    // A login that ignores every policy: audit names it (an undeclared bypass
    // role), and only verify through the runtime URL watches it read every
    // tenant.
    let bypassing = unique("bypassing_login");
    db.execute(&format!(
        "CREATE ROLE {bypassing} LOGIN BYPASSRLS; GRANT SELECT ON projects, tasks TO {bypassing}"
    ))
    .await;
    let leaked = db.rlsctl(&["check", "--runtime-url", &db.url_as(&bypassing)]);
    assert_eq!(leaked.code, 2, "{}\n{}", leaked.stdout, leaked.stderr);
    assert!(leaked.stdout.contains("check FAILED"), "{}", leaked.stdout);
    assert!(!leaked.stdout.contains(" 0 leak(s)"), "{}", leaked.stdout);
    let without = db.rlsctl(&["check"]);
    assert_eq!(without.code, 2, "{}\n{}", without.stdout, without.stderr);
    assert!(without.stdout.contains(" 0 leak(s)"), "{}", without.stdout);
    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert!(
        audit.stdout.contains("BYPASS_ROLE_UNDECLARED") && audit.stdout.contains(&bypassing),
        "{}",
        audit.stdout
    );
    // A BYPASSRLS role is cluster-wide: gone before other tests look.
    db.execute(&format!("DROP OWNED BY {bypassing}; DROP ROLE {bypassing}"))
        .await;

    let out = db.path().join("evidence");
    let report = db.rlsctl(&[
        "report",
        "--output",
        out.to_str().unwrap(),
        "--runtime-url",
        &url,
    ]);
    assert_eq!(report.code, 0, "{}\n{}", report.stdout, report.stderr);
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        verdict_as(&bundle["verify"], &role, ROW, "runtime-role"),
        "PROVEN"
    );
    assert_eq!(count(&db).await, 4, "the existing rows are untouched");
}

#[tokio::test]
async fn a_hostile_search_path_of_the_runtime_login_is_reported_and_does_not_fool_the_probes() {
    let (db, role) = applied_projects().await;
    existing_rows(&db).await;
    // The login's own default puts a schema with a same-named table, open to
    // every tenant, before the real one.
    let evil = unique("evil");
    db.execute(&format!(
        "CREATE SCHEMA {evil};
         CREATE TABLE {evil}.projects (LIKE public.projects);
         INSERT INTO {evil}.projects (id, tenant_id, name, archived)
           VALUES (gen_random_uuid(), '{TENANT_A}', 'shadow', false);
         GRANT USAGE ON SCHEMA {evil} TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON {evil}.projects TO {role};
         ALTER ROLE {role} LOGIN;
         ALTER ROLE {role} SET search_path = {evil}, public"
    ))
    .await;
    let (code, matrix) = verify_through(&db, &db.url_as(&role));
    assert_eq!(code, 2, "{matrix:#}");
    // The probes read the real tables, which show nothing unbound...
    assert_eq!(verdict_as(&matrix, &role, ROW, "unbound-read"), "PROVEN");
    assert_eq!(verdict_as(&matrix, &role, ROW, "unbound-write"), "PROVEN");
    assert_eq!(verdict_as(&matrix, &role, NEXT, "unbound-read"), "PROVEN");
    // ...and the login's bare `projects` finding the other table is the LEAK.
    let row = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == ROW)
        .unwrap();
    let cell = &row["cells"]["runtime-role"];
    assert_eq!(cell["verdict"], "LEAK", "{cell:#}");
    assert_eq!(cell["key"]["table"], "public.projects", "{cell:#}");
    assert_eq!(cell["key"]["found"], format!("{evil}.projects"), "{cell:#}");

    // Without the shadow table, a schema the login may create in before the
    // tables' is named with the fix, and strict fails on it.
    db.execute(&format!(
        "DROP TABLE {evil}.projects; GRANT CREATE ON SCHEMA {evil} TO {role}"
    ))
    .await;
    let (code, matrix) = verify_through(&db, &db.url_as(&role));
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &role, ROW, "runtime-role"),
        "NOT_PROVEN"
    );
    let text = db.rlsctl(&["verify", "--runtime-url", &db.url_as(&role)]);
    assert!(
        text.stdout
            .contains(&format!("REVOKE CREATE ON SCHEMA {evil} FROM {role}")),
        "{}",
        text.stdout
    );

    db.execute(&format!("REVOKE CREATE ON SCHEMA {evil} FROM {role}"))
        .await;
    let (code, matrix) = verify_through(&db, &db.url_as(&role));
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(verdict_as(&matrix, &role, ROW, "runtime-role"), "PROVEN");
    assert_eq!(count(&db).await, 4, "the existing rows are untouched");
}
