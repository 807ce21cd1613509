//! `rlsctl plan`: the statements apply would run, changing nothing.

use std::io::Write;

use anyhow::Result;

use super::Exit;
use super::database::{apply_settings, open_database};
use super::load_spec::load_spec;
use super::statements::{print_notices, write_statements};
use crate::apply::{self, Outcome};
use crate::cli::{Format, PlanArgs};

pub(super) async fn run(args: &PlanArgs) -> Result<Exit> {
    let db_args = &args.database;
    let spec = load_spec(&db_args.spec)?;
    if args.fleet.targets.is_some() {
        return super::fleet("plan", &args.fleet, db_args).await;
    }
    let settings = apply_settings(db_args);
    let (server, shown_url, mut conn) = open_database(db_args).await?;

    let outcome = apply::plan(&mut conn, &spec, &settings)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = super::stdout::stdout();
    match db_args.spec.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?,
        Format::Text => print_plan(&mut out, &outcome, &shown_url)?,
    }
    drop(conn);
    drop(server);
    // With `--exit-code`: exit 2 when there are changes.
    Ok(if args.exit_code && !outcome.is_empty() {
        Exit::Attention
    } else {
        Exit::Success
    })
}

fn print_plan(out: &mut impl Write, outcome: &Outcome, url: &str) -> std::io::Result<()> {
    writeln!(out, "-- rlsctl plan for {url}")?;
    if !outcome.migrations.is_empty() {
        writeln!(
            out,
            "-- pending migrations (run first): {}",
            outcome.migrations.join(", ")
        )?;
    }
    print_notices(out, outcome)?;
    if outcome.is_empty() {
        writeln!(out, "-- No changes: the database matches the spec.")?;
        return Ok(());
    }
    write_statements(out, &outcome.statements)?;
    writeln!(
        out,
        "-- {} statements; `rlsctl apply` runs them in one transaction.",
        outcome.statements.len()
    )
}
