//! `examples/ci/github-actions.yml` calls rlsctl with flags rlsctl has: every
//! `rlsctl …` line of the workflow is checked against that command's --help.

use std::process::Command;

use crate::harness::repo_root;

/// The rlsctl invocations in the workflow's `run:` steps.
fn invocations() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo_root().join("examples/ci/github-actions.yml"))
        .expect("the example workflow");
    let workflow: serde_json::Value = serde_saphyr::from_str(&text).expect("the workflow is YAML");
    let steps = workflow["jobs"]["rlsctl"]["steps"]
        .as_array()
        .expect("steps");
    steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .flat_map(|run| run.lines())
        .map(|line| line.split("||").next().unwrap().trim())
        .filter(|line| line.starts_with("rlsctl "))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn the_example_workflow_uses_only_flags_rlsctl_has() {
    let calls = invocations();
    let commands: Vec<&str> = calls.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(commands, ["validate", "check", "audit", "report"]);
    for call in &calls {
        let help = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args([&call[0], "--help"])
            .output()
            .expect("run rlsctl");
        assert!(help.status.success(), "rlsctl {} --help", call[0]);
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in call.iter().filter(|a| a.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "rlsctl {} has no {flag}",
                call[0]
            );
        }
    }
    let audit = calls.iter().find(|c| c[0] == "audit").unwrap();
    assert!(
        audit.windows(2).any(|w| w == ["--format", "sarif"]),
        "the workflow uploads SARIF: {audit:?}"
    );
}
