//! Scale benchmark: whole-process `rlsctl` times at 200, 2,000 and 10,000
//! tenant tables, on a throwaway PostgreSQL, all measured in one run.
//!
//! `cargo bench --bench scale` (add `-- 200 2000` to choose the sizes, and
//! `full` or `plain` to measure one spec shape only). Reports apply from
//! empty, no-op apply, no-op plan and audit (median of 3 runs each), the
//! number of catalog queries, and growth against linear, for two spec
//! shapes: `plain` (one runtime role, a list of tables) and `full` (a
//! cross-tenant role, a cross-tenant predicate, an extra policy on every
//! table, per-role commands on every tenth and partitions under every
//! hundredth), whose cost should not differ by much.
//!
//! Peers, when on PATH, run on the same databases and are timed the same
//! way (whole process, median of 3) next to rlsctl's comparable figure:
//! `pgrls lint` (a read-only RLS linter) against `rlsctl audit`, and `migra
//! URL URL` (a schema diff of the database against itself: both sides read
//! and compared, nothing to do) against rlsctl's no-op `plan`. Absent ones
//! are reported as skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{results_table, rlsctl};
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Plain,
    Full,
}

struct Row {
    shape: Shape,
    tables: usize,
    apply: Duration,
    noop_apply: Duration,
    plan: Duration,
    audit: Duration,
    plan_queries: u64,
    audit_queries: u64,
    /// Each peer found on PATH: its name, what it was compared with, its
    /// time and rlsctl's.
    peers: Vec<PeerTime>,
}

struct PeerTime {
    peer: &'static str,
    compared_with: &'static str,
    peer_time: Duration,
    rlsctl_time: Duration,
}

/// The peers this benchmark knows how to run, with the rlsctl command each
/// is comparable to.
const PEERS: [(&str, &str); 2] = [("pgrls", "audit"), ("migra", "no-op plan")];

/// `name` as a file in one of PATH's folders.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// One whole run of `peer` against the database at `url`. pgrls exits 1
/// when it finds something and migra 2 when the two sides differ, so only
/// other exit codes are failures.
fn run_peer(peer: &Path, name: &str, url: &str) -> Duration {
    let mut command = Command::new(peer);
    match name {
        "pgrls" => command.args(["lint", "--database-url", url, "--format", "json"]),
        _ => command.args([url, url]),
    };
    let start = Instant::now();
    let output = command.output().expect("run the peer");
    let elapsed = start.elapsed();
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "{name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
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

async fn measure(server: &EphemeralServer, shape: Shape, tables: usize) -> Row {
    let database = format!("scale_{}_{tables}", format!("{shape:?}").to_lowercase());
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = server.url_for(&database);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    // Every hundredth table of the full shape is partitioned in two.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA bench_staff;
         CREATE FUNCTION bench_staff.is_staff() RETURNS boolean LANGUAGE sql STABLE AS 'SELECT false';
         DO $$ BEGIN FOR i IN 1..{tables} LOOP
           IF {partitions} AND i % 100 = 0 THEN
             EXECUTE format('CREATE TABLE t%s (id bigint, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false, body text) PARTITION BY HASH (id)', i);
             EXECUTE format('CREATE TABLE t%s_0 PARTITION OF t%s FOR VALUES WITH (MODULUS 2, REMAINDER 0)', i, i);
             EXECUTE format('CREATE TABLE t%s_1 PARTITION OF t%s FOR VALUES WITH (MODULUS 2, REMAINDER 1)', i, i);
           ELSE
             EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false, body text)', i);
           END IF;
         END LOOP; END $$",
        partitions = shape == Shape::Full,
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/spec.yaml"), spec(shape, tables)).unwrap();

    let (apply, _) = rlsctl(dir.path(), &url, &["apply", "--format", "json"]);
    let (noop_apply, _) = median(dir.path(), &url, &["apply", "--format", "json"]);
    let (plan, plan_json) = median(dir.path(), &url, &["plan", "--format", "json"]);
    let (audit, audit_json) = median(dir.path(), &url, &["audit", "--format", "json"]);
    let mut peers = Vec::new();
    for (peer, compared_with) in PEERS {
        let Some(program) = on_path(peer) else {
            continue;
        };
        let mut runs: Vec<Duration> = (0..3).map(|_| run_peer(&program, peer, &url)).collect();
        runs.sort();
        peers.push(PeerTime {
            peer,
            compared_with,
            peer_time: runs[1],
            rlsctl_time: if compared_with == "audit" {
                audit
            } else {
                plan
            },
        });
    }
    Row {
        shape,
        tables,
        apply,
        noop_apply,
        plan,
        audit,
        plan_queries: queries(&plan_json),
        audit_queries: queries(&audit_json),
        peers,
    }
}

fn spec(shape: Shape, tables: usize) -> String {
    let mut spec = String::from("roles:\n  - name: bench_app\n    login: true\n");
    if shape == Shape::Full {
        spec.push_str(
            "  - name: bench_reader
    cross_tenant: read
    reason: Reports across customers.
cross_tenant:
  - name: support_staff
    when: bench_staff.is_staff()
    access: read
    reason: Support answers tickets for any customer.
",
        );
    }
    spec.push_str("tables:\n");
    for i in 1..=tables {
        if shape == Shape::Full && i % 10 == 0 {
            spec.push_str(&format!(
                "  - {{ name: t{i}, commands: [select, insert] }}\n"
            ));
        } else {
            spec.push_str(&format!("  - t{i}\n"));
        }
    }
    if shape == Shape::Full {
        let all: Vec<String> = (1..=tables).map(|i| format!("t{i}")).collect();
        spec.push_str(&format!(
            "policies:
  - name: archived_read_only
    tables: [{}]
    command: update
    kind: restrictive
    using: NOT archived
",
            all.join(", ")
        ));
    }
    spec
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let shapes: Vec<Shape> = match (
        args.iter().any(|a| a == "plain"),
        args.iter().any(|a| a == "full"),
    ) {
        (true, false) => vec![Shape::Plain],
        (false, true) => vec![Shape::Full],
        _ => vec![Shape::Plain, Shape::Full],
    };
    let sizes = if sizes.is_empty() {
        vec![200, 2_000, 10_000]
    } else {
        sizes
    };
    let server = EphemeralServer::start().expect("start PostgreSQL");
    let mut rows = Vec::new();
    for &shape in &shapes {
        for &n in &sizes {
            eprintln!("measuring {n} tables, {shape:?} spec…");
            rows.push(measure(&server, shape, n).await);
        }
    }

    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let mut table = results_table([
        "spec",
        "tenant tables",
        "apply from empty (s)",
        "no-op apply (s)",
        "no-op plan (s)",
        "audit (s)",
        "catalog queries (plan / audit)",
    ]);
    for r in &rows {
        table.add_row([
            format!("{:?}", r.shape).to_lowercase(),
            r.tables.to_string(),
            secs(r.apply),
            secs(r.noop_apply),
            secs(r.plan),
            secs(r.audit),
            format!("{} / {}", r.plan_queries, r.audit_queries),
        ]);
    }
    println!("{table}");
    for (peer, compared_with) in PEERS {
        if on_path(peer).is_none() {
            println!(
                "{peer} not on PATH: skipped (it would be compared with rlsctl {compared_with})"
            );
        }
    }
    for r in &rows {
        for p in &r.peers {
            println!(
                "{:?} spec, {} tables: {} {secs} s, rlsctl {} {} s: rlsctl takes {:.2}x the time of {}",
                r.shape,
                r.tables,
                p.peer,
                p.compared_with,
                secs(p.rlsctl_time),
                p.rlsctl_time.as_secs_f64() / p.peer_time.as_secs_f64(),
                p.peer,
                secs = secs(p.peer_time),
            );
        }
    }
    for shape in shapes {
        let of_shape: Vec<&Row> = rows.iter().filter(|r| r.shape == shape).collect();
        growth_line(&of_shape);
    }
}

fn growth_line(rows: &[&Row]) {
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.tables > first.tables
    {
        let linear = last.tables as f64 / first.tables as f64;
        let growth = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "{:?} spec, growth {} → {} tables (linear would be {linear:.0}x): no-op plan {:.1}x, audit {:.1}x, apply {:.1}x",
            first.shape,
            first.tables,
            last.tables,
            growth(first.plan, last.plan),
            growth(first.audit, last.audit),
            growth(first.apply, last.apply),
        );
    }
}
