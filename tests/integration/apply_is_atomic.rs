//! A failed apply changes nothing; concurrent applies serialise; locks fail fast.

use std::process::Stdio;

use sqlx::Connection;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

#[tokio::test]
async fn a_statement_failing_mid_apply_leaves_the_catalog_exactly_as_it_was() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    // A relation already holds the name rlsctl gives the tasks index, so the
    // apply fails after the statements for projects have run.
    db.execute("CREATE TABLE tasks_tenant_id_idx (x int)").await;
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    let before = db.state(&[&role]).await;

    let run = db.rlsctl(&["apply"]).failure();
    assert!(run.stderr.contains("tasks_tenant_id_idx"), "{}", run.stderr);
    assert!(run.stderr.contains("rolled back"), "{}", run.stderr);
    assert!(
        run.stderr.contains("CREATE INDEX"),
        "names the statement: {}",
        run.stderr
    );

    let after = db.state(&[&role]).await;
    assert_eq!(before, after, "catalog changed by a failed apply");
    assert!(
        !after.roles.contains_key(&role),
        "the role creation was rolled back too"
    );
    assert_eq!(db.history_rows().await, 0);
}

#[tokio::test]
async fn two_concurrent_applies_both_succeed_and_the_second_is_a_no_op() {
    let (db, _role) = TestDb::with_projects(&["projects", "tasks"]).await;
    let spawn = || {
        db.command(&["apply"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let stdouts: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
        .collect();
    let no_ops = stdouts
        .iter()
        .filter(|s| s.contains("Nothing to do"))
        .count();
    assert_eq!(no_ops, 1, "{stdouts:?}");
    assert_eq!(db.history_rows().await, 1);
}

#[tokio::test]
async fn apply_against_a_locked_table_fails_within_lock_timeout_and_changes_nothing() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    let before = db.state(&[&role]).await;

    // The application's long transaction: it only reads, but ENABLE ROW LEVEL
    // SECURITY needs ACCESS EXCLUSIVE and would queue behind it.
    let mut app = db.connect().await;
    let mut long_tx = app.begin().await.unwrap();
    sqlx::query("SELECT count(*) FROM projects")
        .execute(&mut *long_tx)
        .await
        .unwrap();

    let run = db.rlsctl(&["apply", "--lock-timeout", "300ms"]).failure();
    assert!(
        run.stderr.contains("lock_timeout (300ms)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("public.projects"), "{}", run.stderr);
    long_tx.rollback().await.unwrap();

    assert_eq!(db.state(&[&role]).await, before);
    db.rlsctl(&["apply"]).success();
}
