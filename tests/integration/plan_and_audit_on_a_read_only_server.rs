//! plan and audit work where nothing can be created: on a real hot standby
//! of the primary, and with a read-only transaction default, they give the
//! same statements and the same findings as on the primary, from the
//! deparses the last apply recorded; an expression changed since then is
//! reported plainly, never guessed.

use serde_json::Value;

use crate::harness::{TestDb, spec_with_reader};
use crate::replica::replica;

/// Runs `rlsctl ARGS --database-url URL` in the project folder.
fn rlsctl_at(db: &TestDb, url: &str, args: &[&str]) -> crate::harness::Run {
    crate::harness::Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(args)
            .arg("--database-url")
            .arg(url)
            .current_dir(db.path())
            .env_remove("DATABASE_URL")
            .env_remove("RLSCTL_ADMIN_DATABASE_URL")
            .output()
            .unwrap(),
    )
}

/// What an audit found, without the parts that differ by server or time.
fn findings(run: &crate::harness::Run) -> Vec<Value> {
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    let mut findings = run.json()["findings"].as_array().unwrap().clone();
    findings.sort_by_key(|f| f.to_string());
    findings
}

/// A database applied once and then drifted by hand, so plan has statements
/// and audit has findings.
async fn applied_and_drifted() -> (TestDb, String, String) {
    let (db, role, reader) = TestDb::applied_with_reader().await;
    db.execute(
        "ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY;
         ALTER POLICY archived_read_only ON projects USING (true);",
    )
    .await;
    (db, role, reader)
}

fn database_of(db: &TestDb) -> &str {
    db.url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn plan_and_audit_on_a_hot_standby_match_the_primary() {
    let (db, role, reader) = applied_and_drifted().await;
    let Some(standby) = replica() else {
        return;
    };
    standby.catch_up(&db.url).await;
    let standby_url = standby.url_for(database_of(&db));

    let on_primary = db.rlsctl(&["plan", "--format", "json"]).success();
    let on_standby = rlsctl_at(&db, &standby_url, &["plan", "--format", "json"]).success();
    assert!(!on_primary.planned_sql().is_empty());
    assert_eq!(on_primary.planned_sql(), on_standby.planned_sql());

    let audit_primary = findings(&db.rlsctl(&["audit", "--format", "json"]));
    let audit_standby = findings(&rlsctl_at(
        &db,
        &standby_url,
        &["audit", "--format", "json"],
    ));
    assert!(
        audit_primary
            .iter()
            .any(|f| f["id"] == "DRIFT_POLICY_CHANGED"),
        "{audit_primary:#?}"
    );
    assert_eq!(audit_primary, audit_standby);

    // apply refuses plainly on the standby.
    let refused = rlsctl_at(&db, &standby_url, &["apply"]).failure();
    assert!(refused.stderr.contains("read-only"), "{}", refused.stderr);

    // An expression changed since the last apply cannot be normalised there.
    db.spec(&spec_with_reader(&role, &reader, "archived IS NOT TRUE"));
    let changed = rlsctl_at(&db, &standby_url, &["plan"]).failure();
    assert!(
        changed.stderr.contains("archived_read_only")
            && changed.stderr.contains("changed since the last apply"),
        "{}",
        changed.stderr
    );
    db.rlsctl(&["plan"]).success();

    // Pending migrations cannot be run there either.
    db.spec(&spec_with_reader(&role, &reader, "NOT archived"));
    db.migration("V2__more.sql", "CREATE TABLE notes (id int);");
    let pending = rlsctl_at(&db, &standby_url, &["plan"]).failure();
    assert!(pending.stderr.contains("V2__more"), "{}", pending.stderr);
}

#[tokio::test]
async fn plan_and_audit_with_a_read_only_transaction_default_match_a_writable_session() {
    let (db, role, reader) = applied_and_drifted().await;
    let before = db.fingerprint(&[&role, &reader]).await;
    let read_only_url = format!("{}?options=-c%20default_transaction_read_only%3Don", db.url);
    let writable = db.rlsctl(&["plan", "--format", "json"]).success();
    let read_only = rlsctl_at(&db, &read_only_url, &["plan", "--format", "json"]).success();
    assert_eq!(writable.planned_sql(), read_only.planned_sql());
    assert_eq!(
        findings(&db.rlsctl(&["audit", "--format", "json"])),
        findings(&rlsctl_at(
            &db,
            &read_only_url,
            &["audit", "--format", "json"]
        ))
    );
    assert_eq!(before, db.fingerprint(&[&role, &reader]).await);
}
