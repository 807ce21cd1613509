//! The systems under examples/: each one's migrations and policies pass
//! `check` on a fresh database (`--strict` where verify can already prove
//! every cell), then its application paths (the SQL under app/, which
//! raises on any broken expectation) run as its own roles with the tenant
//! bound, and behave.
//!
//! The examples' role names are fixed and cluster-wide, so each example
//! prefixes its own (b2b_, pulse_, tutoring_, wabot_, wana_) and has one test
//! here: no two tests create the same role at the same time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::harness::{TestDb, repo_root};

fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// Copies the example's policies and the named migrations (all when `None`)
/// into the test's project folder.
fn copy_example(db: &TestDb, name: &str, migrations: Option<&[&str]>) {
    for dir in ["policies", "migrations"] {
        for entry in std::fs::read_dir(example(name).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            if dir == "migrations"
                && migrations.is_some_and(|wanted| !wanted.iter().any(|w| file.starts_with(w)))
            {
                continue;
            }
            std::fs::copy(&path, db.path().join(dir).join(&file)).unwrap();
        }
    }
}

/// `check --strict` as CI runs it; returns its JSON after asserting the exit
/// code and that nothing is wrong anywhere.
#[track_caller]
fn check_strict_passes(db: &TestDb) -> Value {
    let run = db.rlsctl(&["check", "--strict", "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr));
    let findings: Vec<String> = json["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["accepted"].is_null())
        .map(|f| format!("{} {} {}", f["severity"], f["id"], f["object"]))
        .collect();
    let unproven: Vec<String> = json["verify"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| {
            o["cells"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, c)| c["verdict"] != "PROVEN")
                .map(|(probe, c)| {
                    format!("{} {probe}: {} {}", o["object"], c["verdict"], c["detail"])
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        run.code, 0,
        "check --strict failed\nfindings: {findings:#?}\nunproven: {unproven:#?}\nstderr:\n{}",
        run.stderr
    );
    assert_eq!(json["passed"], true);
    assert_eq!(json["audit"]["summary"]["errors"], 0, "{findings:#?}");
    assert_eq!(json["audit"]["summary"]["warnings"], 0, "{findings:#?}");
    assert_eq!(json["verify"]["summary"]["leaks"], 0, "{unproven:#?}");
    assert_eq!(json["verify"]["summary"]["not_proven"], 0, "{unproven:#?}");
    json
}

/// Runs one of the example's app/ scripts logged in as `role` (the admin
/// when `None`), as `psql -v ON_ERROR_STOP=1 -f` would: the first failing
/// statement stops it, and its error is returned.
async fn run_script(db: &TestDb, role: Option<&str>, script: &Path) -> Result<(), String> {
    let sql = std::fs::read_to_string(script).unwrap();
    let url = match role {
        Some(role) => db.url_as(role),
        None => db.url.clone(),
    };
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A fresh database with the example applied and its app/seed.sql loaded:
/// where a test breaks something on purpose.
async fn applied_and_seeded(name: &str) -> TestDb {
    let db = TestDb::new().await;
    copy_example(&db, name, None);
    db.rlsctl(&["apply"]).success();
    let seed = example(name).join("app").join("seed.sql");
    expect_ok(run_script(&db, None, &seed).await, "seed.sql");
    db
}

#[track_caller]
fn expect_ok(result: Result<(), String>, script: &str) {
    if let Err(e) = result {
        panic!("{script}: {e}");
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const GLOBEX: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const NORTHWIND: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const CONTOSO: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// `sql`'s count logged in as `role`, in a transaction that binds `tenant`
/// to `setting` the way the application does.
async fn count_as(db: &TestDb, role: &str, setting: &str, tenant: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(&db.url_as(role)).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(setting)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The rows as they were before comments had a tenant column.
const B2B_LEGACY_COMMENTS: &str = "INSERT INTO comments (task_id, author, body) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000d1', 'ann', 'Ready on Monday'),
    ('aaaaaaaa-0000-4000-8000-0000000000d1', 'ann', 'Shipped'),
    ('bbbbbbbb-0000-4000-8000-0000000000d2', 'bob', 'Blocked by legal')";

/// The b2b-saas paths, on a database already seeded.
async fn b2b_paths_behave(db: &TestDb) {
    let app = example("b2b-saas").join("app");
    expect_ok(
        run_script(db, Some("b2b_app"), &app.join("tenant_paths.sql")).await,
        "tenant_paths.sql",
    );
    expect_ok(
        run_script(
            db,
            Some("b2b_compliance"),
            &app.join("compliance_paths.sql"),
        )
        .await,
        "compliance_paths.sql",
    );
    expect_ok(
        run_script(db, None, &app.join("admin_paths.sql")).await,
        "admin_paths.sql",
    );
    // Globex's rows went through Acme's attempts untouched.
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT count(*) FROM tasks WHERE tenant_id = '{GLOBEX}' AND NOT done AND title = 'Launch'"
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM documents WHERE title = 'Secret roadmap'"
        )
        .await,
        1
    );
    // Two seeded events and the one Acme appended; nothing rewritten.
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM security_audit_log WHERE action IN ('login', 'export contacts')"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn b2b_saas_passes_check_and_its_paths_stay_inside_their_tenant() {
    let app = example("b2b-saas").join("app");

    // A fresh database: the migrations make the final schema.
    let db = TestDb::new().await;
    copy_example(&db, "b2b-saas", None);
    check_strict_passes(&db);
    for seed in ["seed.sql", "seed_comments.sql"] {
        expect_ok(run_script(&db, None, &app.join(seed)).await, seed);
    }
    b2b_paths_behave(&db).await;

    // The scripts' expectations bite: an open policy beside the tenant's
    // lets Acme see Globex's projects, and the tenant paths say so.
    db.execute("CREATE POLICY open_read ON projects FOR SELECT TO b2b_app USING (true)")
        .await;
    let broken = run_script(&db, Some("b2b_app"), &app.join("tenant_paths.sql")).await;
    assert!(
        broken
            .as_ref()
            .is_err_and(|e| e.contains("Acme must see exactly its two projects")),
        "{broken:?}"
    );

    // An existing database: comments hold rows and no tenant column yet.
    // migrate-existing fills it through tasks -> projects without a long
    // lock; V2 then only adds the composite key.
    let live = TestDb::new().await;
    copy_example(&live, "b2b-saas", Some(&["V1__"]));
    live.rlsctl(&["apply"]).success();
    expect_ok(
        run_script(&live, None, &app.join("seed.sql")).await,
        "seed.sql",
    );
    live.execute(B2B_LEGACY_COMMENTS).await;
    let run = live.rlsctl(&["migrate-existing", "--table", "comments"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        count(
            &live,
            "SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id
              JOIN projects p ON p.id = t.project_id WHERE c.tenant_id = p.tenant_id"
        )
        .await,
        3,
        "every comment carries its task's project's tenant"
    );
    copy_example(&live, "b2b-saas", None);
    check_strict_passes(&live);
    b2b_paths_behave(&live).await;
    assert_eq!(
        count(
            &live,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'comments_tenant_id_task_id_fkey'
                AND contype = 'f' AND convalidated"
        )
        .await,
        1,
        "migrate-existing scoped the comments' key by tenant, and V2 kept it"
    );
    assert_eq!(
        count(
            &live,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'comments_task_id_fkey'"
        )
        .await,
        0,
        "the key on task_id alone is gone"
    );
}

/// `check` without `--strict`, for an example where some cells cannot be
/// proven yet: exit 0, no audit error or warning, no LEAK, and every NOT
/// PROVEN cell on an object accepted by `allowed_not_proven`. Returns those
/// cells as (object, probe).
#[track_caller]
fn check_passes_with_not_proven(
    db: &TestDb,
    allowed_not_proven: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let run = db.rlsctl(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!(json["passed"], true);
    assert_eq!(json["audit"]["summary"]["errors"], 0, "{:#}", json["audit"]);
    assert_eq!(
        json["audit"]["summary"]["warnings"], 0,
        "{:#}",
        json["audit"]
    );
    assert_eq!(
        json["verify"]["summary"]["leaks"], 0,
        "{:#}",
        json["verify"]
    );
    let mut not_proven = Vec::new();
    for object in json["verify"]["objects"].as_array().unwrap() {
        let name = object["object"].as_str().unwrap();
        for (probe, cell) in object["cells"].as_object().unwrap() {
            if cell["verdict"] != "PROVEN" {
                assert_eq!(cell["verdict"], "NOT_PROVEN", "{name} {probe}: {cell}");
                assert!(
                    allowed_not_proven(name, probe),
                    "{name} {probe} is not proven: {}",
                    cell["detail"]
                );
                not_proven.push((name.to_string(), probe.clone()));
            }
        }
    }
    not_proven
}

#[tokio::test]
async fn pulse_keeps_same_slug_datasets_apart_and_covers_a_later_months_partition() {
    let app = example("pulse").join("app");
    let db = TestDb::new().await;
    copy_example(&db, "pulse", Some(&["V1__"]));
    db.rlsctl(&["apply"]).success();

    // December's partition arrives with a later migration, and only it changes.
    copy_example(&db, "pulse", None);
    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    assert!(!plan.is_empty());
    assert!(
        plan.iter().all(|s| s.contains("events_2026_12")),
        "{plan:#?}"
    );
    // Probe rows land inside each monthly partition's bounds: every cell is proven.
    check_strict_passes(&db);

    expect_ok(
        run_script(&db, None, &app.join("seed.sql")).await,
        "seed.sql",
    );
    expect_ok(
        run_script(&db, Some("pulse_app"), &app.join("paths.sql")).await,
        "paths.sql",
    );
    // Both tenants' "pageviews" and "signups" datasets are distinct rows.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM datasets WHERE slug IN ('pageviews', 'signups')"
        )
        .await,
        4
    );

    // A month added after the application is live is covered as well: read
    // directly, January's partition shows Northwind its row and Contoso none.
    db.migration(
        "V3__events_2027_01.sql",
        "CREATE TABLE events_2027_01 PARTITION OF events
             FOR VALUES FROM ('2027-01-01 00:00+00') TO ('2027-02-01 00:00+00');",
    );
    check_passes_with_not_proven(&db, |object, _| object.starts_with("public.events"));
    db.execute(
        "INSERT INTO events (tenant_id, dataset_id, occurred_at)
         VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', '2027-01-05 00:00+00')",
    )
    .await;
    let january = "SELECT count(*) FROM events_2027_01";
    assert_eq!(
        count_as(&db, "pulse_app", "pulse.tenant_id", NORTHWIND, january).await,
        1
    );
    assert_eq!(
        count_as(&db, "pulse_app", "pulse.tenant_id", CONTOSO, january).await,
        0
    );

    // The paths notice a partition left without RLS: read directly, it
    // shows Northwind Contoso's December events.
    let broken = applied_and_seeded("pulse").await;
    broken
        .execute("ALTER TABLE events_2026_12 DISABLE ROW LEVEL SECURITY")
        .await;
    let failed = run_script(&broken, Some("pulse_app"), &app.join("paths.sql")).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.contains("each month's partition")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn tutoring_students_see_themselves_staff_read_across_schools_and_anon_nothing() {
    let app = example("tutoring").join("app");
    let db = TestDb::new().await;
    copy_example(&db, "tutoring", None);
    // Probe amounts fit `payments.amount numeric(10,2)`: every cell is proven.
    check_strict_passes(&db);
    // One apply converged, Supabase-style default privileges included.
    db.assert_converged();

    expect_ok(
        run_script(&db, None, &app.join("seed.sql")).await,
        "seed.sql",
    );
    expect_ok(
        run_script(&db, Some("tutoring_authenticator"), &app.join("paths.sql")).await,
        "paths.sql",
    );
    // Summit's payment and attendance went through Harbor's attempts intact.
    assert_eq!(
        count(&db, "SELECT count(*) FROM payments WHERE amount = 99.99").await,
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM attendance WHERE tenant_id = 'bbbbbbbb-0000-4000-8000-000000000002'").await,
        1
    );
    // The BYPASSRLS role is the backend's alone: the role signed-in users get
    // cannot become it, and anon holds no privilege on any school's table.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'tutoring_service_role' AND rolbypassrls
                AND NOT pg_has_role('tutoring_authenticated', oid, 'MEMBER')"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM unnest(ARRAY['students', 'teachers', 'lessons', 'attendance', 'payments']) t
              WHERE has_table_privilege('tutoring_anon', t, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')"
        )
        .await,
        0
    );
    // The paths notice a student who can see classmates.
    let broken = applied_and_seeded("tutoring").await;
    broken
        .execute("DROP POLICY student_sees_self ON students")
        .await;
    let failed = run_script(
        &broken,
        Some("tutoring_authenticator"),
        &app.join("paths.sql"),
    )
    .await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.contains("Ada must see herself only")),
        "{failed:?}"
    );
    // The default privileges gave the runtime role everything; the apply
    // left it the four data privileges.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM unnest(ARRAY['students', 'teachers', 'lessons', 'attendance', 'payments']) t
              WHERE has_table_privilege('tutoring_authenticated', t, 'TRUNCATE, REFERENCES, TRIGGER')
                 OR NOT (SELECT bool_and(has_table_privilege('tutoring_authenticated', t, p))
                           FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p)"
        )
        .await,
        0
    );
}

const WHATSAPP_TABLES: [&str; 7] = [
    "whatsapp_instances",
    "contacts",
    "groups",
    "message_templates",
    "campaigns",
    "webhooks",
    "messages_history",
];

#[tokio::test]
async fn whatsapp_bot_adopts_the_orms_public_policies_and_scopes_them_to_the_app() {
    let app = example("whatsapp-bot").join("app");
    let db = TestDb::new().await;
    copy_example(&db, "whatsapp-bot", None);

    // The ORM's policies are adopted by name: altered in place, none added
    // beside them.
    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    for table in WHATSAPP_TABLES {
        let altered = format!(
            "ALTER POLICY \"tenant_isolation_policy\" ON \"public\".\"{table}\" TO \"wabot_app\""
        );
        assert!(
            plan.iter().any(|s| s.starts_with(&altered)),
            "{table}: {plan:#?}"
        );
    }
    assert!(
        !plan
            .iter()
            .any(|s| s.starts_with("CREATE POLICY") && s.contains("tenant_isolation")),
        "{plan:#?}"
    );

    check_strict_passes(&db);
    // One permissive policy per table, the ORM's, now for the app role only.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_policy p
              WHERE p.polname = 'tenant_isolation_policy' AND p.polpermissive
                AND p.polroles = ARRAY['wabot_app'::regrole::oid]
                AND (SELECT count(*) FROM pg_policy q WHERE q.polrelid = p.polrelid AND q.polpermissive) = 1"
        )
        .await,
        7
    );

    expect_ok(
        run_script(&db, None, &app.join("seed.sql")).await,
        "seed.sql",
    );
    expect_ok(
        run_script(&db, Some("wabot_app"), &app.join("paths.sql")).await,
        "paths.sql",
    );
    // Riverside's campaign is still running; Lumen's went through its life.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM campaigns
              WHERE (name, status) IN (('Spin class', 'running'), ('Black Friday', 'completed'),
                                       ('Christmas', 'draft'), ('October promo', 'completed'))"
        )
        .await,
        4
    );
    assert_eq!(count(&db, "SELECT count(*) FROM messages_history").await, 4);
}

/// Rows of the whatsapp-analytics legacy table, brought under RLS while a
/// writer keeps inserting.
const LEGACY_STATUS_EVENTS: i64 = 200_000;

/// Inserts status events the legacy way (no tenant column) until `stop`;
/// returns how many inserts succeeded.
async fn legacy_writer(url: String, stop: Arc<AtomicBool>, started: Arc<AtomicUsize>) -> i64 {
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let mut written = 0;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        // Once the column is NOT NULL and the fill trigger gone, an insert
        // without a tenant is refused, as it should be: those are not counted.
        let inserted = sqlx::query(
            "INSERT INTO message_status_events (session_id, message_id, status)
             VALUES ('legacy-' || ($1 % 10), 'w' || $1, 'sent')",
        )
        .bind(n)
        .execute(&mut conn)
        .await;
        if inserted.is_ok() {
            written += 1;
            started.fetch_add(1, Ordering::SeqCst);
        }
    }
    written
}

#[tokio::test]
async fn whatsapp_analytics_ingests_webhooks_under_their_resolved_tenant_and_migrates_a_live_table()
{
    let app = example("whatsapp-analytics").join("app");
    let db = TestDb::new().await;
    copy_example(&db, "whatsapp-analytics", None);
    check_strict_passes(&db);
    expect_ok(
        run_script(&db, None, &app.join("seed.sql")).await,
        "seed.sql",
    );
    expect_ok(
        run_script(&db, Some("wana_ingest"), &app.join("ingest.sql")).await,
        "ingest.sql",
    );
    // Two webhooks filed under Bloom, one under Atlas; the unknown session's waits.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM whatsapp_template_analytics
              WHERE (tenant_id, status) IN (('aaaaaaaa-0000-4000-8000-000000000001', 'delivered'),
                                            ('aaaaaaaa-0000-4000-8000-000000000001', 'read'),
                                            ('bbbbbbbb-0000-4000-8000-000000000002', 'failed'))"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_webhooks WHERE session_id = 'sess-x'"
        )
        .await,
        1
    );
    assert_eq!(count(&db, "SELECT count(*) FROM raw_webhooks").await, 1);
    for role in ["wana_app", "wana_dashboard"] {
        expect_ok(
            run_script(&db, Some(role), &app.join("paths.sql")).await,
            role,
        );
    }
    expect_ok(
        run_script(
            &db,
            Some("wana_dashboard"),
            &app.join("dashboard_writes.sql"),
        )
        .await,
        "dashboard_writes.sql",
    );
    expect_ok(
        run_script(&db, Some("wana_reporting"), &app.join("reporting.sql")).await,
        "reporting.sql",
    );

    // The existing database: 200,000 status events without a tenant column,
    // and a writer that keeps inserting while migrate-existing runs.
    let live = TestDb::new().await;
    copy_example(&live, "whatsapp-analytics", Some(&["V1__"]));
    live.rlsctl(&["apply"]).success();
    live.execute(&format!(
        "INSERT INTO whatsapp_sessions (session_id, tenant_id)
              SELECT 'legacy-' || g, CASE WHEN g % 2 = 0 THEN 'aaaaaaaa-0000-4000-8000-000000000001'::uuid
                                          ELSE 'bbbbbbbb-0000-4000-8000-000000000002'::uuid END
                FROM generate_series(0, 9) g;
         INSERT INTO message_status_events (session_id, message_id, status)
              SELECT 'legacy-' || (g % 10), 'm' || g, 'delivered'
                FROM generate_series(1, {LEGACY_STATUS_EVENTS}) g;"
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(legacy_writer(
        live.url.clone(),
        stop.clone(),
        started.clone(),
    ));
    // A liveness bound, not a timing assertion: the writer is running.
    for _ in 0..600 {
        if started.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(started.load(Ordering::SeqCst) > 0, "the writer never wrote");
    let mut migrate = live.command(&["migrate-existing", "--table", "message_status_events"]);
    let migrated = tokio::task::spawn_blocking(move || migrate.output().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert!(
        migrated.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&migrated.stdout),
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(
        count(&live, "SELECT count(*) FROM message_status_events").await,
        LEGACY_STATUS_EVENTS + written,
        "every legacy row and every row the writer got in"
    );
    assert_eq!(
        count(
            &live,
            "SELECT count(*) FROM message_status_events e JOIN whatsapp_sessions s USING (session_id)
              WHERE e.tenant_id IS DISTINCT FROM s.tenant_id"
        )
        .await,
        0,
        "every row carries its session's tenant"
    );
    copy_example(&live, "whatsapp-analytics", None);
    check_strict_passes(&live);
}
