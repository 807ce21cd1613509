//! `rlsctl sql`: the full DDL of the spec, without a database.

use std::io::Write;

use anyhow::Result;

use super::Exit;
use super::load_spec::load_spec;
use super::statements::write_statements;
use crate::cli::{Format, SpecArgs};
use crate::desired::desired_state;
use crate::diff::{Normalized, Options, diff};
use crate::model::State;
use crate::plan::{Passwords, Statement, render};

pub(super) fn run(args: &SpecArgs) -> Result<Exit> {
    let spec = load_spec(args)?;
    let changes = diff(
        &desired_state(&spec),
        &State::default(),
        &Normalized::default(),
        &spec.tenancy.column,
        Options::default(),
    )
    .changes;
    let statements = render(&changes, &Passwords::Masked)?;
    let mut out = super::stdout::stdout();
    match args.format {
        Format::Json => {
            let views: Vec<_> = statements.iter().map(Statement::view).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&views)?)?;
        }
        Format::Text => {
            writeln!(
                out,
                "-- rlsctl sql: the full DDL of {} (spec {})",
                args.config.display(),
                &spec.hash[..12]
            )?;
            writeln!(
                out,
                "-- passwords are masked; `rlsctl apply` reads them from the environment"
            )?;
            write_statements(
                &mut out,
                &statements.iter().map(Statement::view).collect::<Vec<_>>(),
            )?;
        }
    }
    Ok(Exit::Success)
}
