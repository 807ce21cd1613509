//! A migration that holds transaction control (or a statement that cannot run
//! in a transaction block) is refused before anything runs: plan and apply
//! both fail with the file and line, and the database is exactly as before.

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

const ESCAPING: &[(&str, &str, &str)] = &[
    (
        "BEGIN; CREATE TABLE escaped (id int); COMMIT;",
        ":1:1:",
        "transaction control",
    ),
    (
        "CREATE TABLE escaped (id int);\n-- the ORM's habit\nCOMMIT;\n",
        ":3:1:",
        "transaction control",
    ),
    (
        "CREATE TABLE escaped (id int);\n  END;",
        ":2:3:",
        "transaction control",
    ),
    (
        "CREATE TABLE escaped (id int);\nROLLBACK;\nCREATE TABLE escaped2 (id int);",
        ":2:1:",
        "transaction control",
    ),
    (
        "CREATE TABLE escaped (id int);\nCREATE INDEX CONCURRENTLY escaped_idx ON escaped (id);",
        ":2:1:",
        "cannot run inside a transaction block",
    ),
    ("VACUUM;", ":1:1:", "cannot run inside a transaction block"),
];

#[tokio::test]
async fn a_migration_with_commit_is_refused_by_plan_and_apply_and_nothing_runs() {
    for (sql, position, why) in ESCAPING {
        let (db, role) = TestDb::with_projects(&["projects"]).await;
        db.rlsctl(&["apply"]).success();
        db.migration("V2__escape.sql", sql);
        let before = db.fingerprint(&[&role]).await;
        for command in ["plan", "apply"] {
            let run = db.rlsctl(&[command]).failure();
            let expected = format!("V2__escape.sql{position}");
            assert!(
                run.stderr.contains(&expected) && run.stderr.contains(why),
                "{command} on {sql:?}: expected {expected} and {why:?} in\n{}",
                run.stderr
            );
            assert!(run.stderr.contains("Nothing was run"), "{}", run.stderr);
            assert_eq!(
                before,
                db.fingerprint(&[&role]).await,
                "{command} changed the database for {sql:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_pending_migration_is_shown_by_plan_and_not_committed() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    // Transaction words inside strings, comments and function bodies are not
    // transaction control.
    db.migration(
        "V2__words.sql",
        "-- COMMIT;\nCREATE FUNCTION noop() RETURNS text LANGUAGE sql AS $$ SELECT 'COMMIT; BEGIN' $$;\n/* ROLLBACK; /* nested */ END; */\nSELECT 'BEGIN';",
    );
    db.spec(&simple_spec(&role, &["projects"]));
    let before = db.fingerprint(&[&role]).await;
    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    assert_eq!(
        plan.json()["migrations"],
        serde_json::json!(["V1__schema", "V2__words"])
    );
    assert_eq!(before, db.fingerprint(&[&role]).await);
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
}
