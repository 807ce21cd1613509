//! Verify benchmark: whole-process `rlsctl verify` at 200 and 2,000 tenant
//! tables on a throwaway PostgreSQL, with and without `--runtime-url`.
//!
//! `cargo bench --bench verify` (optionally `-- 200 2000`). Each table holds
//! two rows of two real tenants, so the runtime connection's checks have
//! existing rows to look for. One run of each; whole-process times.

mod common;

use std::time::Duration;

use std::path::Path;
use std::time::Instant;

use common::{results_table, rlsctl};
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

struct Row {
    tables: usize,
    verify: Duration,
    runtime: Duration,
    cells: String,
    runtime_cells: String,
}

/// `rlsctl verify ARGS --database-url URL`, whole-process time and the
/// summary; exit 2 (a LEAK found) is a result, not a failure.
fn verify(dir: &Path, url: &str, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("verify")
        .args(["--format", "json"])
        .args(args)
        .arg("--database-url")
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("run rlsctl");
    let elapsed = start.elapsed();
    assert!(
        matches!(output.status.code(), Some(0 | 2)),
        "rlsctl verify {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let s = &value["summary"];
    (
        elapsed,
        format!("{} / {} / {}", s["proven"], s["leaks"], s["not_proven"]),
    )
}

async fn measure(server: &EphemeralServer, tables: usize) -> Row {
    let database = format!("verify_{tables}");
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = server.url_for(&database);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
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
    rlsctl(dir.path(), &url, &["apply"]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN FOR i IN 1..{tables} LOOP
           EXECUTE format('INSERT INTO t%s VALUES (1, gen_random_uuid(), ''a''), (2, gen_random_uuid(), ''b'')', i);
         END LOOP; END $$"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let runtime_url = format!(
        "postgres://bench_app@127.0.0.1:{}/{database}",
        server.port()
    );
    let (plain, cells) = verify(dir.path(), &url, &[]);
    let (runtime, runtime_cells) = verify(dir.path(), &url, &["--runtime-url", &runtime_url]);
    Row {
        tables,
        verify: plain,
        runtime,
        cells,
        runtime_cells,
    }
}

#[tokio::main]
async fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![200, 2000];
    }
    let server = EphemeralServer::start().expect("start PostgreSQL");
    let mut rows = Vec::new();
    for tables in sizes {
        eprintln!("{tables} tables…");
        rows.push(measure(&server, tables).await);
    }
    let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let mut table = results_table([
        "tenant tables",
        "verify (s)",
        "proven / leak / not proven",
        "verify --runtime-url (s)",
        "proven / leak / not proven",
        "per table (ms)",
    ]);
    for row in &rows {
        table.add_row([
            row.tables.to_string(),
            secs(row.verify),
            row.cells.clone(),
            secs(row.runtime),
            row.runtime_cells.clone(),
            format!(
                "{:.1}",
                row.verify.as_secs_f64() * 1000.0 / row.tables as f64
            ),
        ]);
    }
    println!("{table}");
}
