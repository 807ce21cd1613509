//! Long work shows progress on stderr. Where stderr is not a terminal (a CI
//! log), verify prints a plain line per tenth of the work: enough to see it
//! is alive, never a line per table, and no terminal escape codes.

use crate::harness::{TestDb, simple_spec, unique};

#[tokio::test]
async fn verify_of_many_tables_prints_plain_progress_lines_in_a_log() {
    let db = TestDb::new().await;
    let role = unique("app");
    let tables: Vec<String> = (0..24).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let ddl: String = tables
        .iter()
        .map(|t| format!("CREATE TABLE {t} (id serial PRIMARY KEY, tenant_id uuid NOT NULL);\n"))
        .collect();
    db.migration("V1__tables.sql", &ddl);
    db.spec(&simple_spec(&role, &names));
    db.rlsctl(&["apply"]).success();

    let run = db.rlsctl(&["verify"]).success();
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("verify progress: "))
        .collect();
    // 24 tables and the pooled-connection probe: 25 steps, a line per tenth.
    assert_eq!(lines.len(), 10, "{}", run.stderr);
    assert_eq!(lines.last(), Some(&"verify progress: 25/25"));
    assert!(!run.stderr.contains('\u{1b}'), "no escape codes in a log");
    assert!(!run.stderr.contains('\r'), "no redrawing in a log");

    // A short run shows none.
    let run = db.rlsctl(&["verify", "--table", "t1"]).success();
    assert!(!run.stderr.contains("verify progress"), "{}", run.stderr);
}
