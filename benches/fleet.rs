//! Fleet benchmark: one `rlsctl … --targets FILE` over 50 databases of 200
//! tenant tables each, against running rlsctl once per database, one after
//! the other (what a shell loop does), on one throwaway PostgreSQL.
//!
//! `cargo bench --bench fleet` (optionally `-- DATABASES TABLES JOBS`,
//! default 50 200 4). Apply from empty runs on two sets of databases (the
//! fleet run on one, the loop on the other); no-op plan and audit run on
//! the same set both ways. Whole-run times, one run each.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{results_table, rlsctl};
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

async fn create(server: &EphemeralServer, name: &str, tables: usize) -> String {
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = server.url_for(name);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN FOR i IN 1..{tables} LOOP
           EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text)', i);
         END LOOP; END $$"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    url
}

/// `rlsctl ARGS --targets targets-file` in `dir`; whole-process time.
fn fleet(dir: &Path, targets: &str, jobs: usize, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(args)
        .args(["--targets", targets, "--jobs", &jobs.to_string()])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .output()
        .expect("run rlsctl");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "rlsctl {args:?} --targets failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn one_by_one(dir: &Path, urls: &[String], args: &[&str]) -> Duration {
    urls.iter().map(|url| rlsctl(dir, url, args).0).sum()
}

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let databases = numbers.first().copied().unwrap_or(50);
    let tables = numbers.get(1).copied().unwrap_or(200);
    let jobs = numbers.get(2).copied().unwrap_or(4);

    let server = EphemeralServer::start().expect("start PostgreSQL");
    eprintln!("creating 2 × {databases} databases of {tables} tables…");
    let (mut fleet_urls, mut loop_urls) = (Vec::new(), Vec::new());
    for i in 0..databases {
        fleet_urls.push(create(&server, &format!("fleet_{i}"), tables).await);
        loop_urls.push(create(&server, &format!("loop_{i}"), tables).await);
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let mut spec = String::from("roles:\n  - name: bench_app\n    login: true\ntables:\n");
    for i in 1..=tables {
        spec.push_str(&format!("  - t{i}\n"));
    }
    std::fs::write(dir.path().join("policies/spec.yaml"), spec).unwrap();
    std::fs::write(dir.path().join("targets.txt"), fleet_urls.join("\n")).unwrap();

    eprintln!("apply…");
    let apply_fleet = fleet(dir.path(), "targets.txt", jobs, &["apply"]);
    let apply_loop = one_by_one(dir.path(), &loop_urls, &["apply"]);
    eprintln!("plan…");
    let plan_fleet = fleet(dir.path(), "targets.txt", jobs, &["plan", "--exit-code"]);
    let plan_loop = one_by_one(dir.path(), &fleet_urls, &["plan", "--exit-code"]);
    eprintln!("audit…");
    let audit_fleet = fleet(dir.path(), "targets.txt", jobs, &["audit"]);
    let audit_loop = one_by_one(dir.path(), &fleet_urls, &["audit"]);

    let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let mut table = results_table([
        "command",
        &format!("--targets, {jobs} jobs (s)"),
        &format!("one database × {databases} (s)"),
        "ratio",
    ]);
    for (command, fleet, one) in [
        ("apply from empty", apply_fleet, apply_loop),
        ("no-op plan", plan_fleet, plan_loop),
        ("audit", audit_fleet, audit_loop),
    ] {
        table.add_row([
            command.to_string(),
            secs(fleet),
            secs(one),
            format!("{:.2}×", fleet.as_secs_f64() / one.as_secs_f64()),
        ]);
    }
    println!("{databases} databases of {tables} tenant tables, one throwaway PostgreSQL");
    println!("{table}");
}
