//! Statements, notices and warnings written as an SQL script: what plan and
//! sql print, and the notes apply prints before it says what it did.

use std::io::Write;

use crate::apply::Outcome;
use crate::plan::StatementView;

pub(super) fn write_statements(
    out: &mut impl Write,
    statements: &[StatementView],
) -> std::io::Result<()> {
    let mut after_commit_said = false;
    for s in statements {
        if s.outside_transaction && !after_commit_said {
            writeln!(
                out,
                "-- after COMMIT, outside the transaction (writes continue while these run):"
            )?;
            after_commit_said = true;
        }
        writeln!(out, "-- {}\n{};", s.object, s.sql)?;
    }
    Ok(())
}

pub(super) fn print_notices(out: &mut impl Write, outcome: &Outcome) -> std::io::Result<()> {
    for notice in &outcome.notices {
        writeln!(out, "-- note: {notice}")?;
    }
    for warning in &outcome.warnings {
        let mut lines = warning.lines();
        if let Some(first) = lines.next() {
            writeln!(out, "-- warning: {first}")?;
        }
        for line in lines {
            writeln!(out, "--   {line}")?;
        }
    }
    Ok(())
}
