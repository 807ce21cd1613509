//! The combined report of a fleet run: one row per target, as a table, JSON
//! or Markdown, and the exit code of the worst target.

use std::io::Write;

use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::runner::TargetRun;
use crate::commands::Exit;

/// Version of the JSON document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 2: changes planned, findings, a leak — the target ran and has something to say.
    Attention,
    /// Anything else: the command could not do its work on this target.
    Failed,
}

impl Status {
    pub fn of(exit: i32) -> Status {
        match exit {
            0 => Status::Ok,
            2 => Status::Attention,
            _ => Status::Failed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Attention => "ATTENTION",
            Status::Failed => "FAILED",
        }
    }

    /// Worse is larger: a target that failed says nothing about its isolation.
    fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Attention => 1,
            Status::Failed => 2,
        }
    }
}

/// One target's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    pub status: Status,
    pub exit_code: i32,
    /// The figures that matter for the command, in a few words.
    pub summary: String,
    /// Why it failed (its last error line), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command's own JSON document for this target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    pub targets: Vec<Row>,
    pub summary: Totals,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub ok: usize,
    pub attention: usize,
    pub failed: usize,
}

impl Report {
    pub fn new(command: &str, runs: Vec<TargetRun>) -> Report {
        let mut summary = Totals::default();
        let targets: Vec<Row> = runs
            .into_iter()
            .map(|run| {
                let status = Status::of(run.exit);
                match status {
                    Status::Ok => summary.ok += 1,
                    Status::Attention => summary.attention += 1,
                    Status::Failed => summary.failed += 1,
                }
                let error = (status == Status::Failed).then(|| last_error(&run.stderr));
                Row {
                    target: run.name,
                    status,
                    exit_code: run.exit,
                    summary: run
                        .document
                        .as_ref()
                        .map(|d| summarize(command, d))
                        .unwrap_or_default(),
                    error,
                    result: run.document,
                }
            })
            .collect();
        Report {
            schema_version: SCHEMA_VERSION,
            command: command.to_string(),
            targets,
            summary,
        }
    }

    /// The exit code of the worst target (0 for an empty fleet).
    pub fn exit(&self) -> Exit {
        match self
            .targets
            .iter()
            .map(|r| r.status)
            .max_by_key(|s| s.rank())
        {
            None | Some(Status::Ok) => Exit::Success,
            Some(Status::Attention) => Exit::Attention,
            Some(Status::Failed) => Exit::Failure,
        }
    }
}

/// The line of stderr that says what went wrong (rlsctl prints `error: …`).
fn last_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| "exited without a message".into())
}

/// The figures of one target's JSON document that a fleet view needs.
pub fn summarize(command: &str, document: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let count = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len);
    let audit = |a: &serde_json::Value| {
        let s = &a["summary"];
        format!(
            "{} tenant tables: {} error(s), {} warning(s)",
            n(&s["tenant_tables"]),
            n(&s["errors"]),
            n(&s["warnings"])
        )
    };
    let verify = |v: &serde_json::Value| {
        let s = &v["summary"];
        format!(
            "{} proven, {} leak(s), {} not proven",
            n(&s["proven"]),
            n(&s["leaks"]),
            n(&s["not_proven"])
        )
    };
    match command {
        "plan" => format!(
            "{} statement(s), {} pending migration(s)",
            count(&document["statements"]),
            count(&document["migrations"])
        ),
        "apply" => format!(
            "{} statement(s) executed, {} migration(s)",
            n(&document["executed"]),
            count(&document["migrations"])
        ),
        "audit" => audit(document),
        "verify" => verify(document),
        "check" => format!(
            "{}; apply {} statement(s); audit {}; verify {}",
            if document["passed"].as_bool() == Some(true) {
                "passed"
            } else {
                "failed"
            },
            n(&document["apply"]["executed"]),
            audit(&document["audit"]),
            verify(&document["verify"])
        ),
        _ => String::new(),
    }
}

fn totals_line(report: &Report) -> String {
    format!(
        "{} target(s): {} ok, {} need attention, {} failed",
        report.targets.len(),
        report.summary.ok,
        report.summary.attention,
        report.summary.failed
    )
}

pub fn write_table(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let mut grid = Grid::new();
    grid.load_style(UTF8_FULL_CONDENSED);
    grid.set_header(["target", "status", "exit", "result"]);
    for row in &report.targets {
        grid.add_row([
            row.target.clone(),
            row.status.label().to_string(),
            row.exit_code.to_string(),
            row.error.clone().unwrap_or_else(|| row.summary.clone()),
        ]);
    }
    writeln!(out, "rlsctl {} on {}", report.command, totals_line(report))?;
    writeln!(out, "{grid}")
}

pub fn write_json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(report)?)
}

pub fn write_markdown(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    writeln!(out, "# rlsctl {} across the fleet\n", report.command)?;
    writeln!(out, "{}\n", totals_line(report))?;
    writeln!(out, "| target | status | exit | result |")?;
    writeln!(out, "|---|---|---|---|")?;
    for row in &report.targets {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&row.target),
            row.status.label(),
            row.exit_code,
            cell(row.error.as_deref().unwrap_or(&row.summary))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, exit: i32, document: Option<serde_json::Value>, stderr: &str) -> TargetRun {
        TargetRun {
            name: name.into(),
            exit,
            document,
            stderr: stderr.into(),
        }
    }

    fn audit_doc(errors: u64) -> serde_json::Value {
        serde_json::json!({"summary": {"tenant_tables": 3, "errors": errors, "warnings": 1}})
    }

    #[test]
    fn the_exit_code_is_the_worst_target_and_a_failure_outranks_findings() {
        let ok = || run("a", 0, Some(audit_doc(0)), "");
        let findings = || run("b", 2, Some(audit_doc(4)), "");
        let down = || {
            run(
                "c",
                1,
                None,
                "error: cannot connect to postgres://u:***@c/db: refused",
            )
        };
        assert_eq!(Report::new("audit", vec![ok(), ok()]).exit(), Exit::Success);
        assert_eq!(
            Report::new("audit", vec![ok(), findings()]).exit(),
            Exit::Attention
        );
        assert_eq!(
            Report::new("audit", vec![findings(), down(), ok()]).exit(),
            Exit::Failure
        );
        assert_eq!(
            Report::new("audit", vec![run("d", 130, None, "interrupted")]).exit(),
            Exit::Failure
        );
    }

    #[test]
    fn each_format_shows_every_target_with_its_figures_or_its_error() {
        let report = Report::new(
            "audit",
            vec![
                run("eu|1", 2, Some(audit_doc(4)), ""),
                run(
                    "us-1",
                    1,
                    None,
                    "connecting…\nerror: cannot connect to us-1: refused\n",
                ),
            ],
        );
        let mut table = Vec::new();
        write_table(&mut table, &report).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("2 target(s): 0 ok, 1 need attention, 1 failed"),
            "{table}"
        );
        assert!(
            table.contains("3 tenant tables: 4 error(s), 1 warning(s)"),
            "{table}"
        );
        assert!(table.contains("cannot connect to us-1: refused"), "{table}");

        let mut markdown = Vec::new();
        write_markdown(&mut markdown, &report).unwrap();
        let markdown = String::from_utf8(markdown).unwrap();
        assert!(
            markdown.contains("| eu\\|1 | ATTENTION | 2 | 3 tenant tables"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| us-1 | FAILED | 1 | cannot connect"),
            "{markdown}"
        );

        let mut json = Vec::new();
        write_json(&mut json, &report).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["targets"][0]["result"]["summary"]["errors"], 4);
        assert_eq!(json["targets"][1]["status"], "failed");
    }

    #[test]
    fn summaries_read_each_command_s_document() {
        let plan = serde_json::json!({"statements": [{}, {}], "migrations": ["V1"]});
        assert_eq!(
            summarize("plan", &plan),
            "2 statement(s), 1 pending migration(s)"
        );
        let verify = serde_json::json!({"summary": {"proven": 10, "leaks": 1, "not_proven": 0}});
        assert_eq!(
            summarize("verify", &verify),
            "10 proven, 1 leak(s), 0 not proven"
        );
        let check = serde_json::json!({"passed": true, "apply": {"executed": 0}, "audit": audit_doc(0), "verify": verify});
        assert!(summarize("check", &check).starts_with("passed; apply 0 statement(s)"));
    }
}
