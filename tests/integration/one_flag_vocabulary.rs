//! One flag vocabulary: the README's flag table is what each command's
//! `--help` offers, both ways, and every database command takes
//! `--database-url`, `--ephemeral` and `--format text`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::harness::{PROJECTS, repo_root, simple_spec, unique};

/// Each flag of `rlsctl COMMAND -h` with its possible values (empty when
/// it takes none or any).
fn help_flags(command: &str) -> BTreeMap<String, BTreeSet<String>> {
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args([command, "-h"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{command} -h");
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut flags = BTreeMap::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let trimmed = trimmed.strip_prefix("-h, ").unwrap_or(trimmed);
        let Some(rest) = trimmed.strip_prefix("--") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name == "help" || name == "version" {
            continue;
        }
        let values = line
            .split("[possible values: ")
            .nth(1)
            .and_then(|v| v.split(']').next())
            .map(|v| v.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        flags.insert(format!("--{name}"), values);
    }
    flags
}

/// The README's `### Flags` table: command → flag → documented values.
fn readme_flags() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n### Flags\n")
        .nth(1)
        .expect("README has a ### Flags section");
    let mut table = BTreeMap::new();
    for row in section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        // Cells split on `|` not escaped as `\|`.
        let cells: Vec<String> = row
            .replace("\\|", "\u{1}")
            .split('|')
            .map(|c| c.trim().replace('\u{1}', "|"))
            .collect();
        let command = cells[1]
            .trim_matches('`')
            .strip_prefix("rlsctl ")
            .expect("a command cell")
            .to_string();
        let mut flags = BTreeMap::new();
        for code in cells[2].split('`').skip(1).step_by(2) {
            let Some(flag) = code.strip_prefix("--") else {
                continue;
            };
            let (name, value) = flag.split_once(' ').unwrap_or((flag, ""));
            let values: BTreeSet<String> = if value.contains('|') {
                value.split('|').map(str::to_string).collect()
            } else {
                BTreeSet::new()
            };
            flags.insert(format!("--{name}"), values);
        }
        table.insert(command, flags);
    }
    table
}

#[test]
fn the_readme_flag_table_matches_each_commands_help() {
    let documented = readme_flags();
    let commands = [
        "validate",
        "sql",
        "plan",
        "apply",
        "audit",
        "verify",
        "check",
        "migrate-existing",
        "explain",
        "schema",
        "init",
        "report",
    ];
    assert_eq!(
        documented.keys().collect::<BTreeSet<_>>(),
        commands
            .iter()
            .map(|c| c.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect(),
        "the README's flag table lists every command"
    );
    for command in commands {
        let offered = help_flags(command);
        let written = &documented[command];
        for (flag, values) in written {
            let help_values = offered.get(flag).unwrap_or_else(|| {
                panic!("README: `{command} {flag}`, which --help does not offer")
            });
            if !values.is_empty() {
                assert_eq!(values, help_values, "README values of `{command} {flag}`");
            }
        }
        for flag in offered.keys() {
            assert!(
                written.contains_key(flag),
                "`{command} {flag}` is in --help but not in the README's flag table"
            );
        }
    }
}

#[test]
fn every_database_command_takes_the_same_connection_and_format_flags() {
    for command in [
        "plan",
        "apply",
        "audit",
        "verify",
        "check",
        "migrate-existing",
    ] {
        let flags = help_flags(command);
        for flag in ["--database-url", "--ephemeral", "--format", "--config"] {
            assert!(flags.contains_key(flag), "{command} lacks {flag}");
        }
        assert!(flags["--format"].contains("text"), "{command}: {flags:?}");
        assert!(flags["--format"].contains("json"), "{command}: {flags:?}");
        assert!(
            !flags["--format"].contains("table"),
            "{command}: one spelling"
        );
    }
}

#[test]
fn audit_and_verify_ephemeral_judge_what_the_spec_builds() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["policies", "migrations"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
    }
    std::fs::write(dir.path().join("migrations/V1__schema.sql"), PROJECTS).unwrap();
    std::fs::write(
        dir.path().join("policies/spec.yaml"),
        simple_spec(&unique("app"), &["projects", "tasks"]),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("RLSCTL_ADMIN_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let audit = run(&["audit", "--ephemeral", "--format", "json"]);
    assert_eq!(audit["summary"]["tenant_tables"], 2, "{audit:#}");
    assert_eq!(audit["summary"]["errors"], 0, "{audit:#}");
    let verify = run(&["verify", "--ephemeral", "--format", "json"]);
    assert_eq!(verify["summary"]["leaks"], 0, "{verify:#}");
    assert!(
        verify["summary"]["proven"].as_u64().unwrap() > 0,
        "{verify:#}"
    );
}
