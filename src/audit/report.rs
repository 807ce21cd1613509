//! Audit reports: a table for people, versioned JSON for tools, Markdown for
//! SOC2 evidence. Every renderer writes to any `io::Write`.

use std::io::{self, Write};

use comfy_table::{Cell, Color, Table as Grid, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::{Finding, Severity};

/// Bumped on any incompatible change of the JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    pub server_version: String,
    pub database: String,
    pub connected_as: String,
    /// sha256 of the spec files; absent when audited without a spec.
    pub spec_hash: Option<String>,
    pub runtime_roles: Vec<String>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub tables: Vec<TableState>,
    pub roles: Vec<RoleState>,
    pub history: Vec<HistoryEntry>,
    pub catalog_queries: u32,
}

impl Report {
    /// Tables with the tenant column that the spec does not declare and no
    /// policy covers (not accepted as exceptions): tenant data nobody decided
    /// about, which `check` refuses to pass.
    pub fn uncovered_tables(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.id == super::checks::drift::UNDECLARED.id && f.accepted.is_none())
            .filter_map(|f| f.object.strip_prefix("table "))
            .filter(|name| {
                self.tables
                    .iter()
                    .find(|t| t.table == *name)
                    .is_none_or(|t| t.policies.is_empty())
            })
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    /// Declared exceptions, not counted above.
    pub accepted: usize,
    /// How many tables the audit examined as tenant tables. Zero means it
    /// proved nothing about isolation: the run fails rather than pass clean.
    pub tenant_tables: usize,
}

impl Summary {
    pub fn of(findings: &[Finding], tenant_tables: usize) -> Summary {
        let mut s = Summary {
            tenant_tables,
            ..Summary::default()
        };
        for f in findings {
            match (f.accepted.is_some(), f.severity) {
                (true, _) => s.accepted += 1,
                (false, Severity::Error) => s.errors += 1,
                (false, Severity::Warning) => s.warnings += 1,
                (false, Severity::Info) => s.infos += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableState {
    pub table: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub policies: Vec<String>,
    pub tenant_index: Option<String>,
    pub owner: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleState {
    pub role: String,
    pub login: bool,
    pub superuser: bool,
    pub bypass_rls: bool,
    pub member_of: Vec<String>,
}

/// The newest applies, as `crate::history` reads them.
pub use crate::history::Recent as HistoryEntry;

impl Report {
    /// Findings that fail the run: not accepted, at or above `threshold`.
    pub fn failing(&self, threshold: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.accepted.is_none() && f.severity >= threshold)
            .count()
    }

    /// No tenant table was examined: no finding is not a clean bill.
    pub fn examined_nothing(&self) -> bool {
        self.summary.tenant_tables == 0
    }
}

/// What a report with no tenant table says, in every format.
pub const NOTHING_EXAMINED: &str = "No tenant tables were examined: no table has the tenant column, no declared table exists and no policy compares a column with a tenant setting or function, so this audit says nothing about tenant isolation (wrong database, schema, --tenant-column or spec?).";

fn examined(summary: &Summary) -> String {
    match summary.tenant_tables {
        1 => "1 tenant table examined".into(),
        n => format!("{n} tenant tables examined"),
    }
}

/// Runs `body` on `out` through a buffer: standard output flushes at every
/// newline, and a pretty-printed report of 10,000 findings has hundreds of
/// thousands of lines (one `write` each, unbuffered).
fn buffered<W: Write>(
    out: &mut W,
    body: impl FnOnce(&mut io::BufWriter<&mut W>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buffer = io::BufWriter::new(out);
    body(&mut buffer)?;
    buffer.flush()
}

pub fn write_json(out: &mut impl Write, report: &Report) -> io::Result<()> {
    buffered(out, |out| {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    })
}

pub fn write_table(out: &mut impl Write, report: &Report, color: bool) -> io::Result<()> {
    let s = &report.summary;
    writeln!(
        out,
        "rlsctl audit of {} ({} as {}): {}; {} errors, {} warnings, {} info, {} accepted",
        report.database,
        report.server_version,
        report.connected_as,
        examined(s),
        s.errors,
        s.warnings,
        s.infos,
        s.accepted
    )?;
    if report.examined_nothing() {
        writeln!(out, "{NOTHING_EXAMINED}")?;
    }
    if report.findings.is_empty() {
        return writeln!(out, "No findings.");
    }
    let mut grid = Grid::new();
    grid.load_style(UTF8_FULL_CONDENSED);
    if color {
        grid.enforce_styling();
    } else {
        grid.force_no_tty();
    }
    grid.set_header(["severity", "id", "object", "found"]);
    for f in &report.findings {
        let (label, colour) = match (&f.accepted, f.severity) {
            (Some(_), _) => ("accepted".to_string(), Color::DarkGrey),
            (None, Severity::Error) => ("error".into(), Color::Red),
            (None, Severity::Warning) => ("warning".into(), Color::Yellow),
            (None, Severity::Info) => ("info".into(), Color::Blue),
        };
        let found = match &f.accepted {
            Some(reason) => format!("{} (accepted: {reason})", f.found),
            None => f.found.clone(),
        };
        grid.add_row([
            Cell::new(label).fg(colour),
            Cell::new(f.id),
            Cell::new(&f.object),
            Cell::new(found),
        ]);
    }
    writeln!(out, "{grid}")?;
    writeln!(
        out,
        "`rlsctl explain <id>` says why each matters and how to fix it."
    )
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "**no**" }
}

/// Markdown table cells cannot hold `|` or newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn write_markdown(out: &mut impl Write, report: &Report) -> io::Result<()> {
    buffered(out, |out| markdown(out, report))
}

fn markdown(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let s = &report.summary;
    writeln!(out, "# Tenant isolation audit: {}\n", report.database)?;
    writeln!(out, "| | |\n|---|---|")?;
    writeln!(out, "| Generated | {} |", report.generated_at)?;
    writeln!(out, "| Server | PostgreSQL {} |", report.server_version)?;
    writeln!(
        out,
        "| Database | {} (audited as {}) |",
        report.database, report.connected_as
    )?;
    writeln!(
        out,
        "| Spec hash | {} |",
        report
            .spec_hash
            .as_deref()
            .unwrap_or("(no spec: posture checks only)")
    )?;
    writeln!(
        out,
        "| Runtime roles | {} |",
        report.runtime_roles.join(", ")
    )?;
    writeln!(out, "| Tenant tables examined | {} |", s.tenant_tables)?;
    writeln!(
        out,
        "| Findings | {} errors, {} warnings, {} info, {} accepted exceptions |\n",
        s.errors, s.warnings, s.infos, s.accepted
    )?;
    if report.examined_nothing() {
        writeln!(out, "**{NOTHING_EXAMINED}**\n")?;
    }

    writeln!(out, "## Findings\n")?;
    if report.findings.iter().all(|f| f.accepted.is_some()) {
        writeln!(out, "No open findings.\n")?;
    }
    for f in report.findings.iter().filter(|f| f.accepted.is_none()) {
        writeln!(out, "### {} `{}`: {}\n", f.severity.label(), f.id, f.object)?;
        writeln!(
            out,
            "- **Found:** {}\n- **Why it matters:** {}\n- **Fix:** `{}`\n",
            f.found, f.why, f.fix
        )?;
    }
    let accepted: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.accepted.is_some())
        .collect();
    if !accepted.is_empty() {
        writeln!(
            out,
            "## Accepted exceptions\n\n| id | object | found | reason |\n|---|---|---|---|"
        )?;
        for f in accepted {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                f.id,
                cell(&f.object),
                cell(&f.found),
                cell(f.accepted.as_deref().unwrap_or(""))
            )?;
        }
        writeln!(out)?;
    }

    writeln!(
        out,
        "## Tenant tables\n\n| table | RLS | FORCE | policies | tenant index | owner |\n|---|---|---|---|---|---|"
    )?;
    for t in &report.tables {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&t.table),
            yes(t.rls_enabled),
            yes(t.rls_forced),
            cell(&t.policies.join(", ")),
            t.tenant_index
                .as_deref()
                .map(cell)
                .unwrap_or_else(|| "**missing**".into()),
            cell(&t.owner)
        )?;
    }
    writeln!(
        out,
        "\n## Roles\n\n| role | LOGIN | SUPERUSER | BYPASSRLS | member of |\n|---|---|---|---|---|"
    )?;
    for r in &report.roles {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&r.role),
            r.login,
            r.superuser,
            r.bypass_rls,
            cell(&r.member_of.join(", "))
        )?;
    }
    writeln!(out, "\n## Apply history\n")?;
    if report.history.is_empty() {
        writeln!(out, "No rlsctl apply recorded in this database.")?;
    } else {
        writeln!(
            out,
            "| applied at | by | spec hash | migrations | statements |\n|---|---|---|---|---|"
        )?;
        for h in &report.history {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                h.applied_at,
                cell(&h.applied_by),
                &h.spec_hash[..h.spec_hash.len().min(12)],
                cell(&h.migrations.join(", ")),
                h.statements
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checks::roles::SUPERUSER;

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            generated_at: "2026-11-23T00:00:00Z".into(),
            server_version: "15.18".into(),
            database: "app".into(),
            connected_as: "admin".into(),
            spec_hash: None,
            runtime_roles: vec!["app_user".into()],
            summary: Summary::of(&findings, 1),
            findings,
            tables: vec![],
            roles: vec![],
            history: vec![],
            catalog_queries: 23,
        }
    }

    #[test]
    fn the_table_is_plain_text_unless_colour_is_asked_for() {
        let r = report(vec![SUPERUSER.info.finding(
            "role app_user",
            "is a superuser",
            "ALTER ROLE …",
        )]);
        let mut plain = Vec::new();
        write_table(&mut plain, &r, false).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.contains("RUNTIME_SUPERUSER") && !plain.contains('\u{1b}'),
            "{plain}"
        );
        let mut coloured = Vec::new();
        write_table(&mut coloured, &r, true).unwrap();
        assert!(String::from_utf8(coloured).unwrap().contains('\u{1b}'));
    }

    #[test]
    fn a_report_that_examined_no_tenant_table_says_so_in_every_format() {
        let mut r = report(vec![]);
        r.summary.tenant_tables = 0;
        assert!(r.examined_nothing());
        let mut text = Vec::new();
        write_table(&mut text, &r, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("0 tenant tables examined") && text.contains(NOTHING_EXAMINED),
            "{text}"
        );
        let mut md = Vec::new();
        write_markdown(&mut md, &r).unwrap();
        assert!(String::from_utf8(md).unwrap().contains(NOTHING_EXAMINED));
        let mut json = Vec::new();
        write_json(&mut json, &r).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["summary"]["tenant_tables"], 0);
    }

    #[test]
    fn accepted_findings_do_not_count_against_the_threshold() {
        let mut accepted = SUPERUSER
            .info
            .finding("role app_user", "is a superuser", "");
        accepted.accepted = Some("break-glass account".into());
        let r = report(vec![accepted]);
        assert_eq!(r.failing(Severity::Info), 0);
        assert_eq!(r.summary.accepted, 1);
        let mut md = Vec::new();
        write_markdown(&mut md, &r).unwrap();
        assert!(
            String::from_utf8(md)
                .unwrap()
                .contains("break-glass account")
        );
    }
}
