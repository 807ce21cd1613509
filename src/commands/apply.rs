//! `rlsctl apply`: make the database match the spec.

use std::io::Write;

use anyhow::{Context, Result};
use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use sqlx::PgConnection;

use super::Exit;
use super::database::{apply_settings, open_database};
use super::load_spec::load_spec;
use super::statements::print_notices;
use crate::apply::{self, Outcome};
use crate::catalog::{self, Scope};
use crate::cli::{ApplyArgs, Format};
use crate::spec::Spec;

pub(super) async fn run(apply_args: &ApplyArgs) -> Result<Exit> {
    let args = &apply_args.database;
    let spec = load_spec(&args.spec)?;
    if apply_args.fleet.targets.is_some() {
        return super::fleet("apply", &apply_args.fleet, args).await;
    }
    let settings = apply_settings(args);
    let (server, shown_url, mut conn) = open_database(args).await?;

    let mut bar = super::progress_bar::ProgressBar::new("apply");
    let outcome = apply::apply(&mut conn, &spec, &settings, &mut |event| bar.report(event))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = super::stdout::stdout();
    match args.spec.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?,
        Format::Text => {
            print_applied(&mut out, &outcome, &shown_url)?;
            // The throwaway server vanishes on exit: show what it ended up with.
            if server.is_some() {
                print_tables(&mut out, &mut conn, &spec).await?;
                writeln!(out, "(throwaway server: stopped and removed now)")?;
            }
        }
    }
    drop(conn);
    drop(server);
    Ok(Exit::Success)
}

pub(super) fn print_applied(
    out: &mut impl Write,
    outcome: &Outcome,
    url: &str,
) -> std::io::Result<()> {
    print_notices(out, outcome)?;
    if outcome.is_empty() {
        return writeln!(
            out,
            "Nothing to do: {url} already matches the spec (0 statements executed)."
        );
    }
    writeln!(
        out,
        "Applied to {url}: {} migration(s), {} statement(s) executed; recorded in rlsctl.apply_history.",
        outcome.migrations.len(),
        outcome.executed
    )
}

/// The state of every declared table after apply, read back from the catalog.
async fn print_tables(out: &mut impl Write, conn: &mut PgConnection, spec: &Spec) -> Result<()> {
    let snapshot = catalog::read(conn, &Scope::default())
        .await
        .context("reading the catalog")?;
    let mut grid = Grid::new();
    grid.load_style(UTF8_FULL_CONDENSED);
    grid.set_header(["table", "RLS", "FORCE", "policies", "tenant index"]);
    let yes = |b: bool| if b { "yes" } else { "NO" };
    for declared in &spec.tables {
        let Some(t) = snapshot.state.tables.get(&declared.name) else {
            continue;
        };
        let index = t
            .indexes
            .iter()
            .find(|i| i.valid && i.serves(&declared.index_columns))
            .map(|i| i.name.clone())
            .unwrap_or_else(|| "MISSING".into());
        grid.add_row([
            declared.name.to_string(),
            yes(t.rls_enabled).into(),
            yes(t.rls_forced).into(),
            t.policies.keys().cloned().collect::<Vec<_>>().join(", "),
            index,
        ]);
    }
    writeln!(out, "{grid}")?;
    Ok(())
}
