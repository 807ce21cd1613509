//! `check` does not pass while a table with the tenant column is neither
//! declared nor covered by any policy: tenant data nobody decided about.

use crate::harness::{TestDb, simple_spec};

#[tokio::test]
async fn check_fails_on_a_tenant_table_the_spec_dropped_and_no_policy_covers() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["check"]).success();

    // tasks leaves the spec; --prune drops its rlsctl policy.
    db.spec(&simple_spec(&role, &["projects"]));
    db.rlsctl(&["apply", "--prune"]).success();
    let failed = db.rlsctl(&["check"]);
    assert_eq!(failed.code, 2, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed
            .stderr
            .contains("table public.tasks has the tenant column"),
        "{}",
        failed.stderr
    );

    // A hand-written policy covering it is a decision: check passes again.
    db.execute(
        "CREATE POLICY hand_written ON tasks USING (tenant_id = (SELECT rls.current_tenant_id()))",
    )
    .await;
    let covered = db.rlsctl(&["check"]);
    assert!(
        !covered.stderr.contains("has the tenant column"),
        "{}",
        covered.stderr
    );

    // Declared again: passes.
    db.execute("DROP POLICY hand_written ON tasks").await;
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    db.rlsctl(&["check"]).success();
}
