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
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
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
