//! `rlsctl report`: an evidence bundle an auditor can read offline, whose
//! apply history shows when a row was edited or removed by hand.

use std::path::Path;

use crate::harness::TestDb;

fn read_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// Three applies, each recorded: the schema, then two later migrations.
async fn three_applies() -> (TestDb, String) {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.migration(
        "V2__labels.sql",
        "ALTER TABLE projects ADD COLUMN label text;",
    );
    db.rlsctl(&["apply", "--prune"]).success();
    db.migration("V3__due.sql", "ALTER TABLE tasks ADD COLUMN due date;");
    db.rlsctl(&["apply"]).success();
    (db, role)
}

#[tokio::test]
async fn the_report_bundle_holds_the_evidence_and_changes_nothing() {
    let (db, role) = three_applies().await;
    let before = db.fingerprint(&[&role]).await;

    let out = db.path().join("evidence");
    let run = db
        .rlsctl(&["report", "--output", out.to_str().unwrap()])
        .success();
    assert!(run.stdout.contains("verdict: PASSED"), "{}", run.stdout);
    assert_eq!(
        db.fingerprint(&[&role]).await,
        before,
        "report changed the database"
    );

    let json = read_json(&out);
    assert_eq!(json["verdict"]["passed"], true, "{json:#}");
    assert_eq!(json["server"]["database"], db.name());
    assert_eq!(json["spec"]["files"], serde_json::json!(["spec.yaml"]));
    assert_eq!(
        json["catalog_fingerprint"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let chain = &json["history"]["chain"];
    assert_eq!(chain["intact"], true);
    assert_eq!(chain["rows"], 3);
    let entries = json["history"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1]["migrations"], serde_json::json!(["V2__labels"]));
    assert_eq!(
        entries[1]["flags"],
        serde_json::json!(["--prune"]),
        "the flags an apply ran with are recorded"
    );
    let cells = json["verify"]["summary"]["proven"].as_u64().unwrap();
    assert!(cells > 0, "the verify matrix is part of the evidence");

    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let spec_hash = json["spec"]["hash"].as_str().unwrap();
    for text in [&markdown, &html] {
        assert!(text.contains(spec_hash), "the spec hash is shown");
        assert!(text.contains("is intact over 3 row(s)"), "{text}");
        assert!(text.contains("public.projects"));
        assert!(text.contains("V2__labels"));
    }
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"));
}

#[tokio::test]
async fn an_edited_history_row_is_reported_and_fails_the_report() {
    let (db, _role) = three_applies().await;
    db.execute("UPDATE rlsctl.apply_history SET applied_by = 'nobody' WHERE id = 2")
        .await;

    let out = db.path().join("evidence");
    let run = db.rlsctl(&["report", "--output", out.to_str().unwrap(), "--no-verify"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("BROKEN at row 2"), "{}", run.stdout);
    let json = read_json(&out);
    assert_eq!(json["verdict"]["passed"], false);
    assert_eq!(json["history"]["chain"]["broken_at"]["id"], 2);
    assert!(
        json["verify"].is_null(),
        "--no-verify leaves the matrix out"
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("BROKEN at row 2"), "{markdown}");
}

#[tokio::test]
async fn a_removed_history_row_is_reported() {
    let (db, _role) = three_applies().await;
    db.execute("DELETE FROM rlsctl.apply_history WHERE id = 2")
        .await;

    let out = db.path().join("evidence");
    let run = db.rlsctl(&[
        "report",
        "--output",
        out.to_str().unwrap(),
        "--no-verify",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let broken = &run.json()["history_chain"]["broken_at"];
    assert_eq!(broken["id"], 3, "the row after the gap no longer links");
    assert!(broken["reason"].as_str().unwrap().contains("removed"));
}

#[tokio::test]
async fn the_period_selects_the_applies_shown() {
    let (db, _role) = three_applies().await;
    let out = db.path().join("evidence");
    db.rlsctl(&[
        "report",
        "--output",
        out.to_str().unwrap(),
        "--no-verify",
        "--until",
        "2000-01-01",
    ])
    .success();
    let json = read_json(&out);
    assert_eq!(json["history"]["entries"], serde_json::json!([]));
    assert_eq!(
        json["history"]["chain"]["rows"], 3,
        "the chain is checked over the whole table, not only the period"
    );

    let bad = db.rlsctl(&[
        "report",
        "--output",
        out.to_str().unwrap(),
        "--since",
        "2026-02-30",
    ]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
}
