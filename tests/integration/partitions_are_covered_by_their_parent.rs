//! Declaring a partitioned table (or an inheritance parent) covers every
//! partition and child: those that exist and those a later migration
//! creates, each with RLS, FORCE, the tenant policy and the parent's grants,
//! since a partition can be queried directly.

use crate::harness::{TestDb, unique};

const EVENTS: &str = "
CREATE TABLE events (id bigint NOT NULL, tenant_id uuid NOT NULL, kind text)
    PARTITION BY HASH (id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0)
    PARTITION BY HASH (tenant_id);
CREATE TABLE events_0_a PARTITION OF events_0 FOR VALUES WITH (MODULUS 1, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE notes (id serial PRIMARY KEY, tenant_id uuid NOT NULL, body text);
CREATE TABLE legacy_notes (archived_at timestamptz) INHERITS (notes);
";

async fn covered(db: &TestDb, table: &str, role: &str) -> (bool, bool, Vec<String>, bool) {
    let mut conn = db.connect().await;
    sqlx::query_as(
        "SELECT c.relrowsecurity, c.relforcerowsecurity,
                ARRAY(SELECT polname::text FROM pg_policy WHERE polrelid = c.oid ORDER BY 1),
                has_table_privilege($2, c.oid, 'SELECT')
           FROM pg_class c WHERE c.oid = $1::regclass",
    )
    .bind(table)
    .bind(role)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_partition_and_child_is_covered_now_and_after_a_later_migration() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__events.sql", EVENTS);
    db.spec(&format!(
        "roles:\n  - name: {role}\ntables:\n  - events\n  - notes\n"
    ));
    db.rlsctl(&["apply"]).success();
    for table in [
        "events",
        "events_0",
        "events_0_a",
        "events_1",
        "notes",
        "legacy_notes",
    ] {
        assert_eq!(
            covered(&db, table, &role).await,
            (true, true, vec!["tenant_isolation".to_string()], true),
            "{table}"
        );
    }
    db.assert_converged();

    // A partition made later by a migration is reported, then covered.
    db.migration(
        "V2__more.sql",
        "ALTER TABLE events DETACH PARTITION events_1;
         CREATE TABLE events_1b PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);",
    );
    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    let sql = plan.planned_sql();
    assert!(
        sql.iter().all(|s| s.contains("events_1b")),
        "only the new partition changes: {sql:#?}"
    );
    assert!(!sql.is_empty());
    db.rlsctl(&["apply"]).success();
    assert_eq!(
        covered(&db, "events_1b", &role).await,
        (true, true, vec!["tenant_isolation".to_string()], true)
    );
    db.assert_converged();
    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{}", audit.stdout);
}

#[tokio::test]
async fn audit_reports_a_partition_created_after_the_last_apply() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__events.sql", EVENTS);
    db.spec(&format!("roles:\n  - name: {role}\ntables:\n  - events\n"));
    db.rlsctl(&["apply"]).success();
    db.execute(
        "ALTER TABLE events DETACH PARTITION events_1;
         CREATE TABLE events_late PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);",
    )
    .await;
    let audit = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 2, "{}", audit.stdout);
    let findings = audit.json()["findings"].as_array().unwrap().clone();
    assert!(
        findings
            .iter()
            .any(|f| f["object"] == "table public.events_late" && f["id"] == "DRIFT_RLS"),
        "{findings:#?}"
    );
}
