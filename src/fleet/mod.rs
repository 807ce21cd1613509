//! `--targets FILE`: one command against a fleet of databases.
//!
//! `plan`, `apply`, `audit`, `verify` and `check` take a targets file
//! (`targets`) instead of one URL: each target runs in its own rlsctl process,
//! at most `--jobs` at once (`runner`), and one report combines them, with
//! the exit code of the worst (`report`). A target that fails — unreachable,
//! wrong credentials, an apply rolled back — is a row of the report; it
//! never stops or changes the others.

pub mod report;
pub mod runner;
pub mod targets;

use std::ffi::OsString;
use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{FleetArgs, FleetFormat};
use crate::commands::Exit;

/// Runs `command` on every target of `fleet.targets`; `json` is whether the
/// command's own `--format` asked for JSON (the default report format then).
pub async fn run(command: &str, fleet: &FleetArgs, json: bool) -> Result<Exit> {
    let file = fleet.targets.as_ref().context("--targets names no file")?;
    let targets = targets::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let program = std::env::current_exe().context("finding the rlsctl executable")?;
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = child_args(&argv);
    eprintln!(
        "rlsctl {command}: {} target(s), {} at a time",
        targets.len(),
        fleet.jobs.max(1)
    );
    let runs = runner::run(&program, command, &args, &targets, fleet.jobs).await;
    let report = report::Report::new(command, runs);
    let format = fleet.fleet_format.unwrap_or(if json {
        FleetFormat::Json
    } else {
        FleetFormat::Text
    });
    let mut out = std::io::stdout().lock();
    match format {
        FleetFormat::Text => report::write_table(&mut out, &report)?,
        FleetFormat::Json => report::write_json(&mut out, &report)?,
        FleetFormat::Markdown => report::write_markdown(&mut out, &report)?,
    }
    out.flush()?;
    Ok(report.exit())
}

/// The flags each target's process gets: those given, minus the ones that
/// pick targets and formats (the runner sets its own), after the subcommand.
fn child_args(argv: &[OsString]) -> Vec<OsString> {
    const WITH_VALUE: [&str; 6] = [
        "--targets",
        "--jobs",
        "--fleet-format",
        "--format",
        "--database-url",
        "--output",
    ];
    let mut out = Vec::new();
    let mut rest = argv.iter().skip(2);
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if WITH_VALUE.contains(&text.as_ref()) {
            rest.next();
        } else if !WITH_VALUE
            .iter()
            .any(|flag| text.starts_with(&format!("{flag}=")))
        {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::child_args;
    use std::ffi::OsString;

    #[test]
    fn each_target_gets_the_flags_given_except_those_choosing_targets_and_formats() {
        let argv: Vec<OsString> = [
            "rlsctl",
            "audit",
            "--config",
            "spec dir",
            "--targets",
            "fleet.txt",
            "--jobs=8",
            "--format",
            "markdown",
            "--fail-on=warning",
            "--output",
            "r.md",
            "--role",
            "app",
            "--fleet-format=json",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            child_args(&argv),
            ["--config", "spec dir", "--fail-on=warning", "--role", "app"]
                .map(OsString::from)
                .to_vec()
        );
    }
}
