//! `audit --format sarif` and `validate --format sarif`: SARIF 2.1.0 logs that
//! code scanning shows inline, each finding at the spec line that declares
//! its object, otherwise at its name in the database.

use std::process::Command;

use serde_json::Value;

use crate::harness::{TestDb, simple_spec};

/// The parts of the SARIF 2.1.0 schema a viewer relies on, checked by hand
/// (no network at test time): the log's version and one run; a driver with
/// named rules that carry help; results that name a known rule, at its index,
/// with a valid level, a message and locations that are either physical
/// (file, line ≥ 1, column ≥ 1) or logical.
#[track_caller]
fn assert_sarif_2_1_0(log: &Value) {
    assert_eq!(log["version"], "2.1.0", "{log:#}");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "rlsctl");
    let rules = driver["rules"].as_array().expect("rules");
    assert!(!rules.is_empty());
    for rule in rules {
        assert!(
            rule["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{rule}"
        );
        assert!(rule["shortDescription"]["text"].is_string(), "{rule}");
        assert!(rule["help"]["text"].is_string(), "{rule}");
        let level = rule["defaultConfiguration"]["level"].as_str().unwrap();
        assert!(["error", "warning", "note"].contains(&level), "{rule}");
    }
    for result in runs[0]["results"].as_array().expect("results") {
        let id = result["ruleId"].as_str().expect("ruleId");
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], id, "ruleIndex points at its rule");
        let level = result["level"].as_str().unwrap();
        assert!(
            ["error", "warning", "note", "none"].contains(&level),
            "{result}"
        );
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        for location in result["locations"].as_array().expect("locations") {
            let physical = &location["physicalLocation"];
            if physical.is_null() {
                assert!(location["logicalLocations"][0]["fullyQualifiedName"].is_string());
                continue;
            }
            assert!(
                physical["artifactLocation"]["uri"].is_string(),
                "{location}"
            );
            assert!(physical["region"]["startLine"].as_u64().unwrap() >= 1);
            assert!(physical["region"]["startColumn"].as_u64().unwrap() >= 1);
        }
    }
}

fn results<'a>(log: &'a Value, rule: &str) -> Vec<&'a Value> {
    log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == rule)
        .collect()
}

fn logical_name(result: &Value) -> &str {
    result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn audit_sarif_places_findings_at_their_spec_lines() {
    let (db, _role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.execute(
        "ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY;
         CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL)",
    )
    .await;
    let run = db.rlsctl(&["audit", "--format", "sarif"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let log = run.json();
    assert_sarif_2_1_0(&log);

    // `tasks` is declared on line 5 of the spec (`  - tasks`), column 5.
    let drift = results(&log, "DRIFT_RLS");
    let tasks = drift
        .iter()
        .find(|r| logical_name(r) == "public.tasks")
        .unwrap_or_else(|| panic!("{log:#}"));
    assert_eq!(tasks["level"], "error");
    let physical = &tasks["locations"][0]["physicalLocation"];
    assert_eq!(physical["artifactLocation"]["uri"], "policies/spec.yaml");
    assert_eq!(physical["region"]["startLine"], 5);
    assert_eq!(physical["region"]["startColumn"], 5);
    assert_eq!(physical["region"]["snippet"]["text"], "  - tasks");

    // `notes` is in no spec file: a logical location only.
    let undeclared = results(&log, "DRIFT_TABLE_UNDECLARED");
    let notes = undeclared
        .iter()
        .find(|r| logical_name(r) == "public.notes")
        .unwrap_or_else(|| panic!("{log:#}"));
    assert!(notes["locations"][0]["physicalLocation"].is_null());

    // Every finding of the JSON report is a result, with the rule's help
    // being what `rlsctl explain` says.
    let json = db.rlsctl(&["audit", "--format", "json"]).json();
    assert_eq!(
        log["runs"][0]["results"].as_array().unwrap().len(),
        json["findings"].as_array().unwrap().len()
    );
    let explained = db
        .offline_command(&["explain", "DRIFT_RLS"])
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let rule = rules.iter().find(|r| r["id"] == "DRIFT_RLS").unwrap();
    let fix = explained.lines().find(|l| l.starts_with("Fix: ")).unwrap();
    assert!(
        rule["help"]["text"].as_str().unwrap().contains(fix),
        "{rule}"
    );
}

fn validate_sarif(yaml: &str) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/spec.yaml"), yaml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(["validate", "--format", "sarif"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.code(), log)
}

#[test]
fn validate_sarif_reports_an_invalid_spec_at_its_line() {
    let (code, log) = validate_sarif(&simple_spec("app_user", &["projects"]));
    assert_eq!(code, Some(0));
    assert_sarif_2_1_0(&log);
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));

    let (code, log) = validate_sarif("roles:\n  - name: app_user\n    logn: true\n");
    assert_eq!(code, Some(1));
    assert_sarif_2_1_0(&log);
    let found = results(&log, "SPEC_INVALID");
    assert_eq!(found.len(), 1, "{log:#}");
    let physical = &found[0]["locations"][0]["physicalLocation"];
    assert_eq!(physical["artifactLocation"]["uri"], "policies/spec.yaml");
    assert_eq!(physical["region"]["startLine"], 3);
    assert_eq!(physical["region"]["startColumn"], 5);
    assert!(
        found[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("did you mean `login`?")
    );
}
