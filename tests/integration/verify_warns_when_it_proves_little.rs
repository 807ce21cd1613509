//! verify may exit 0 with cells NOT PROVEN (without --strict); when they are
//! most of the matrix, it says so on stderr, with the commonest reason.

use crate::harness::{TestDb, simple_spec, unique};

#[tokio::test]
async fn verify_warns_when_most_cells_are_not_proven_and_names_the_commonest_reason() {
    let db = TestDb::new().await;
    let role = unique("app");
    // rlsctl cannot make up a point: no probe row, so no probe can run.
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE shapes (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL,
            outline point NOT NULL);",
    );
    db.spec(&simple_spec(&role, &["shapes"]));
    db.rlsctl(&["apply"]).success();

    let run = db.rlsctl(&["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let summary = &run.json()["summary"];
    assert_eq!(summary["not_proven"], 9, "{summary}");
    assert_eq!(summary["proven"], 1, "{summary}");
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {}", run.stderr));
    assert!(
        warning.contains("9 of 10 cells are NOT PROVEN"),
        "{warning}"
    );
    assert!(warning.contains("commonest reason (9 cell(s)"), "{warning}");
    assert!(
        warning.contains("needs a value rlsctl cannot make up"),
        "{warning}"
    );
}
