//! An apply that needs more lock slots than the server's lock table holds
//! is refused before it runs, naming the setting to raise and by how much,
//! instead of failing midway with `out of shared memory`.
//!
//! The test cluster is shared and its lock table is large, so the server's
//! `max_locks_per_transaction` is replaced by RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION;
//! max_connections and max_prepared_transactions are the server's own.

use crate::harness::{TestDb, simple_spec, unique};

const TABLES: usize = 120;

fn migration() -> String {
    (1..=TABLES)
        .map(|i| {
            format!(
                "CREATE TABLE t{i} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);\n"
            )
        })
        .collect()
}

async fn backends(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint",
    )
    .await
}

#[tokio::test]
async fn migrations_and_statements_too_big_for_the_lock_table_are_refused_before_they_run() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__tables.sql", &migration());
    db.spec(&simple_spec(&role, &["t1"]));
    let backends = backends(&db).await;
    // 120 tables, each with its TOAST table, TOAST index and primary key.
    let needed = (TABLES * 4) as i64;
    assert!(
        needed > backends,
        "the test needs more slots than one per backend"
    );

    let refused = db
        .command(&["apply"])
        .env("RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "running the 1 pending migration(s) needs about {needed} lock slots"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{backends} = max_locks_per_transaction 1 × (max_connections"
        )),
        "{stderr}"
    );
    let at_least = (needed + backends - 1) / backends;
    assert!(
        stderr.contains(&format!(
            "Raise max_locks_per_transaction to at least {at_least}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was run"), "{stderr}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 't1'")
            .await,
        0
    );

    // With the setting the estimate asked for, the same migrations run.
    db.command(&["apply"])
        .env(
            "RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION",
            at_least.to_string(),
        )
        .output()
        .map(|o| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)))
        .unwrap();

    // RLS on every table and an index on each, in one transaction: the
    // plan warns, the apply refuses and changes nothing.
    let all: Vec<String> = (1..=TABLES).map(|i| format!("t{i}")).collect();
    db.spec(&simple_spec(
        &role,
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let plan = plan_with_one_slot_a_backend(&db);
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("applying these statements needs about"),
        "{warnings}"
    );

    let refused = db
        .command(&["apply"])
        .env("RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("applying these statements needs about"),
        "{stderr}"
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname LIKE 't%' AND relrowsecurity")
            .await,
        1,
        "only t1, from the first apply"
    );

    // The real server's lock table holds it all.
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
}

/// The estimate is checked against PostgreSQL itself: the plan's statements
/// run in one transaction, and the objects it then holds locks on (as
/// `pg_locks` counts them, one per object whatever the modes) are no more
/// than the slots the estimate asked for. Four policies a table each lock
/// their policy (`COMMENT ON POLICY`): counting tables alone let a
/// 10,000-table apply start and fail midway with `out of shared memory`.
#[tokio::test]
async fn the_estimate_covers_every_lock_a_multi_policy_apply_takes() {
    let db = TestDb::new().await;
    let (app, reader) = (unique("app"), unique("reader"));
    // Enough tables that the estimate exceeds one slot per backend (the
    // assumed setting below), so the plan names it in its warning.
    let count = (backends(&db).await / 4 + 1).max(30);
    let tables: Vec<String> = (1..=count).map(|i| format!("m{i}")).collect();
    for t in &tables {
        db.execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false)"
        ))
        .await;
    }
    let list = tables.join(", ");
    db.spec(&format!(
        "roles:
  - name: {app}
  - name: {reader}
    cross_tenant: read
    reason: Reports across customers.
tables: [{list}]
policies:
  - name: archived_read_only
    tables: [{list}]
    command: update
    kind: restrictive
    using: NOT archived
"
    ));
    let (estimate, held) = estimate_and_locks_held(&db).await;
    // Each table, its index and its three policies at least.
    assert!(held >= count * 5, "held {held}");
    assert!(
        estimate >= held,
        "the estimate ({estimate}) is below the objects the statements lock ({held})"
    );
}

/// Partitions: an index or a tenant default set on a partitioned table is
/// set on every partition, each locked with its index or its old default;
/// and grants on schemas lock the roles they name.
#[tokio::test]
async fn the_estimate_covers_partitions_defaults_and_grants_on_other_objects() {
    let db = TestDb::new().await;
    let app = unique("app");
    let count = (backends(&db).await / 4 + 1).max(30);
    db.execute("CREATE TABLE events (id bigint, tenant_id uuid NOT NULL) PARTITION BY HASH (id)")
        .await;
    let mut roles = String::new();
    let mut grants = String::new();
    for i in 0..count {
        db.execute(&format!(
            "CREATE TABLE events_{i} PARTITION OF events FOR VALUES WITH (MODULUS {count}, REMAINDER {i});
             CREATE SCHEMA area_{i}"
        ))
        .await;
        let reader = unique("reader");
        roles.push_str(&format!("  - name: {reader}\n"));
        grants.push_str(&format!(
            "  - schema: area_{i}\n    roles: [{reader}]\n    privileges: [usage]\n"
        ));
    }
    db.spec(&format!(
        "roles:\n  - name: {app}\n{roles}tables:\n  - {{ name: events, default_from_context: true }}\ngrants:\n{grants}"
    ));
    let (estimate, held) = estimate_and_locks_held(&db).await;
    // Each partition with its index and its default, and each role.
    assert!(held >= count * 3, "held {held}");
    assert!(
        estimate >= held,
        "the estimate ({estimate}) is below the objects the statements lock ({held})"
    );
}

/// The plan's estimate (read from its warning, with one slot a backend
/// assumed) and the objects its statements really lock, run in one
/// transaction that is rolled back.
async fn estimate_and_locks_held(db: &TestDb) -> (i64, i64) {
    let plan = plan_with_one_slot_a_backend(db);
    let warning = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .find(|w| w.starts_with("applying these statements needs about "))
        .unwrap_or_else(|| panic!("no lock warning: {}", plan["warnings"]))
        .to_string();
    let estimate: i64 = warning["applying these statements needs about ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut conn = db.connect().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    for statement in plan["statements"].as_array().unwrap() {
        if statement["outside_transaction"].as_bool() == Some(true) {
            continue;
        }
        let sql = statement["sql"].as_str().unwrap().to_string();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT (locktype, database, relation, page, tuple, virtualxid,
                                transactionid::text, classid, objid, objsubid))
           FROM pg_catalog.pg_locks
          WHERE pid = pg_catalog.pg_backend_pid() AND NOT fastpath",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    (estimate, held)
}

/// `plan --format json` with `max_locks_per_transaction` assumed to be 1.
fn plan_with_one_slot_a_backend(db: &TestDb) -> serde_json::Value {
    let plan = db
        .command(&["plan", "--format", "json"])
        .env("RLSCTL_ASSUME_MAX_LOCKS_PER_TRANSACTION", "1")
        .output()
        .unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    serde_json::from_slice(&plan.stdout).unwrap()
}
