//! Offline scale benchmark: whole-process `rlsctl validate` and `rlsctl sql`
//! on a generated spec of 10,000 and 100,000 tenant tables. No database.
//!
//! `cargo bench --bench validate` (add `-- 10000 50000 100000` to choose the
//! sizes). Reports the median of 3 runs of each command and the growth from
//! the smallest to the largest size next to linear growth, so a quadratic
//! path in loading, validating, building the desired state or rendering shows
//! up as a ratio far above the size ratio.

// Each benchmark uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::results_table;

/// A spec shaped like a real one, only long: a cross-tenant role, every tenth
/// table in the map form with an extra index column, and extra policies on a
/// few tables, on every hundredth table and on every table.
fn spec(tables: usize) -> String {
    let mut yaml = String::from(
        "roles:\n  - name: app_user\n    login: true\n  - name: reporting\n    cross_tenant: read\n    reason: dashboards\ntables:\n",
    );
    for i in 1..=tables {
        if i % 10 == 0 {
            writeln!(yaml, "  - {{ name: t{i}, index: [created_at] }}").unwrap();
        } else {
            writeln!(yaml, "  - t{i}").unwrap();
        }
    }
    let list = |step: usize, limit: usize| {
        (1..=tables)
            .step_by(step)
            .take(limit)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    write!(
        yaml,
        "policies:
  - name: archived_read_only
    tables: [{first}]
    command: update
    kind: restrictive
    using: NOT archived
  - name: sampled_reads
    tables: [{sampled}]
    command: select
    using: visible
  - name: soft_delete_hidden
    tables: [{all}]
    kind: restrictive
    using: deleted_at IS NULL
",
        first = list(1, 10),
        sampled = list(100, usize::MAX),
        all = list(1, usize::MAX),
    )
    .unwrap();
    yaml
}

/// Runs `rlsctl ARGS` in `dir`, stdout discarded (the DDL of 100,000 tables
/// is over 100 MB); panics on failure. Returns the whole-process time.
fn time(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .output()
        .expect("run rlsctl");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "rlsctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn median(dir: &Path, args: &[&str]) -> Duration {
    let mut runs: Vec<Duration> = (0..3).map(|_| time(dir, args)).collect();
    runs.sort();
    runs[1]
}

struct Row {
    tables: usize,
    spec_bytes: usize,
    validate: Duration,
    sql: Duration,
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let mut rows = Vec::new();
    for &tables in &sizes {
        eprintln!("measuring {tables} tables…");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        let yaml = spec(tables);
        std::fs::write(dir.path().join("policies/spec.yaml"), &yaml).unwrap();
        rows.push(Row {
            tables,
            spec_bytes: yaml.len(),
            validate: median(dir.path(), &["validate"]),
            sql: median(dir.path(), &["sql"]),
        });
    }

    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let mut table = results_table(["tenant tables", "spec (KiB)", "validate (s)", "sql (s)"]);
    for r in &rows {
        table.add_row([
            r.tables.to_string(),
            (r.spec_bytes / 1024).to_string(),
            secs(r.validate),
            secs(r.sql),
        ]);
    }
    println!("{table}");
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.tables > first.tables
    {
        let linear = last.tables as f64 / first.tables as f64;
        let growth = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "growth {} → {} tables (linear would be {linear:.0}x): validate {:.1}x, sql {:.1}x",
            first.tables,
            last.tables,
            growth(first.validate, last.validate),
            growth(first.sql, last.sql),
        );
    }
}
