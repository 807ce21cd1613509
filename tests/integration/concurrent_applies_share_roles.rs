//! Roles are cluster-wide: applies to different databases of one cluster that
//! declare the same new role, run at the same moment, all succeed.

use std::process::Stdio;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// Starts `rlsctl apply EXTRA` on six fresh databases at once, all declaring
/// one new role; every apply must succeed and every database converge.
async fn six_applies_at_once(extra: &[&str]) {
    let role = unique("shared");
    let mut dbs = Vec::new();
    for _ in 0..6 {
        let db = TestDb::new().await;
        db.migration("V1__schema.sql", PROJECTS);
        db.spec(&simple_spec(&role, &["projects", "tasks"]));
        dbs.push(db);
    }
    let mut args = vec!["apply"];
    args.extend_from_slice(extra);
    let children: Vec<_> = dbs
        .iter()
        .map(|db| {
            db.command(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start rlsctl apply")
        })
        .collect();
    for (db, child) in dbs.iter().zip(children) {
        let output = child.wait_with_output().expect("wait for rlsctl apply");
        assert!(
            output.status.success(),
            "apply to {} failed:\n{}",
            db.name(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for db in &dbs {
        db.assert_converged();
    }
}

#[tokio::test]
async fn six_applies_to_six_databases_creating_the_same_role_all_converge() {
    six_applies_at_once(&[]).await;
}

/// The second CREATE ROLE waits for the first transaction; with a lock
/// timeout far shorter than that transaction, it must keep waiting, not fail.
#[tokio::test]
async fn a_create_role_waiting_on_another_database_s_apply_outlasts_the_lock_timeout() {
    six_applies_at_once(&["--lock-timeout", "1ms"]).await;
}
