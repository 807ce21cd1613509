//! Scale benchmark: whole-process `rlsctl` times at 200, 2,000 and 10,000
//! tenant tables, on a throwaway PostgreSQL, all measured in one run.
//!
//! `cargo bench --bench scale` (add `-- 200 2000` to choose the sizes).
//! Reports apply from empty, no-op apply, no-op plan and audit (median of
//! 3 runs each), the number of catalog queries, and growth against linear.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{results_table, rlsctl};
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

struct Row {
    tables: usize,
    apply: Duration,
    noop_apply: Duration,
    plan: Duration,
    audit: Duration,
    plan_queries: u64,
    audit_queries: u64,
}

fn median(dir: &Path, url: &str, args: &[&str]) -> (Duration, String) {
    let mut runs: Vec<(Duration, String)> = (0..3).map(|_| rlsctl(dir, url, args)).collect();
    runs.sort_by_key(|r| r.0);
    runs.swap_remove(1)
}

fn queries(json: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    value["catalog_queries"].as_u64().unwrap_or(0)
}

async fn measure(server: &EphemeralServer, tables: usize) -> Row {
    let database = format!("scale_{tables}");
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = server.url_for(&database);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN FOR i IN 1..{tables} LOOP
           EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text)', i);
         END LOOP; END $$"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let mut spec = String::from("roles:\n  - name: bench_app\n    login: true\ntables:\n");
    for i in 1..=tables {
        spec.push_str(&format!("  - t{i}\n"));
    }
    std::fs::write(dir.path().join("policies/spec.yaml"), spec).unwrap();

    let (apply, _) = rlsctl(dir.path(), &url, &["apply", "--format", "json"]);
    let (noop_apply, _) = median(dir.path(), &url, &["apply", "--format", "json"]);
    let (plan, plan_json) = median(dir.path(), &url, &["plan", "--format", "json"]);
    let (audit, audit_json) = median(dir.path(), &url, &["audit", "--format", "json"]);
    Row {
        tables,
        apply,
        noop_apply,
        plan,
        audit,
        plan_queries: queries(&plan_json),
        audit_queries: queries(&audit_json),
    }
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![200, 2_000, 10_000]
    } else {
        sizes
    };
    let server = EphemeralServer::start().expect("start PostgreSQL");
    let mut rows = Vec::new();
    for &n in &sizes {
        eprintln!("measuring {n} tables…");
        rows.push(measure(&server, n).await);
    }

    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let mut table = results_table([
        "tenant tables",
        "apply from empty (s)",
        "no-op apply (s)",
        "no-op plan (s)",
        "audit (s)",
        "catalog queries (plan / audit)",
    ]);
    for r in &rows {
        table.add_row([
            r.tables.to_string(),
            secs(r.apply),
            secs(r.noop_apply),
            secs(r.plan),
            secs(r.audit),
            format!("{} / {}", r.plan_queries, r.audit_queries),
        ]);
    }
    println!("{table}");
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.tables > first.tables
    {
        let linear = last.tables as f64 / first.tables as f64;
        let growth = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "growth {} → {} tables (linear would be {linear:.0}x): no-op plan {:.1}x, audit {:.1}x, apply {:.1}x",
            first.tables,
            last.tables,
            growth(first.plan, last.plan),
            growth(first.audit, last.audit),
            growth(first.apply, last.apply),
        );
    }
}
