//! plan, audit, verify, sql, validate and explain change nothing: the whole
//! catalog, every table's rows and rlsctl's own history are identical before
//! and after, on a database that is converged, one that is not, and one with
//! migrations still pending.

use crate::harness::TestDb;

/// Runs each read-only command and asserts the database is untouched.
async fn assert_read_only(db: &TestDb, roles: &[&str]) {
    let before = db.fingerprint(roles).await;
    let runs: &[&[&str]] = &[
        &["plan"],
        &["plan", "--format", "json", "--prune"],
        &["audit"],
        &["audit", "--format", "json"],
        &["verify"],
        &["verify", "--format", "json"],
    ];
    for args in runs {
        let run = db.rlsctl(args);
        assert!(
            run.code == 0 || run.code == 2,
            "{args:?} failed: {}\n{}",
            run.stderr,
            run.stdout
        );
        let after = db.fingerprint(roles).await;
        assert_eq!(
            before,
            after,
            "`rlsctl {}` changed the database",
            args.join(" ")
        );
    }
    for args in [
        ["sql"].as_slice(),
        &["validate"],
        &["explain", "TABLE_WITHOUT_RLS"],
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(args)
            .current_dir(db.path())
            .output()
            .unwrap();
        assert!(run.status.success(), "{args:?}: {run:?}");
        assert_eq!(before, db.fingerprint(roles).await, "{args:?}");
    }
}

#[tokio::test]
async fn read_only_commands_leave_a_converged_database_untouched() {
    let (db, role, reader) = TestDb::applied_with_reader().await;
    db.execute(
        "INSERT INTO projects (tenant_id, name) SELECT gen_random_uuid(), 'p' || g FROM generate_series(1, 20) g",
    )
    .await;
    assert_read_only(&db, &[&role, &reader]).await;
}

#[tokio::test]
async fn read_only_commands_leave_an_unconverged_database_with_pending_migrations_untouched() {
    // Applied once, then drifted by hand, then a new migration arrives.
    let (db, role, reader) = TestDb::applied_with_reader().await;
    db.execute(
        "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY;
         CREATE POLICY open_door ON projects USING (true);
         INSERT INTO tasks (tenant_id, title) VALUES (gen_random_uuid(), 't')",
    )
    .await;
    db.migration(
        "V2__more.sql",
        "CREATE TABLE notes (id serial PRIMARY KEY, tenant_id uuid NOT NULL, body text);
         INSERT INTO notes (tenant_id, body) VALUES (gen_random_uuid(), 'n');",
    );
    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    assert_eq!(
        plan.json()["migrations"],
        serde_json::json!(["V2__more"]),
        "{}",
        plan.stdout
    );
    assert!(!plan.planned_sql().is_empty());
    assert_read_only(&db, &[&role, &reader]).await;
}
