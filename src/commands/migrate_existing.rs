//! `rlsctl migrate-existing`: bring a table that already holds rows under
//! tenant isolation.

use std::io::Write;

use anyhow::Result;

use super::database::{apply_settings, open_database};
use super::load_spec::load_spec;
use super::progress_bar::ProgressBar;
use super::verify::{run_verify, verify_exit};
use super::{Exit, color_stdout};
use crate::apply;
use crate::cli::{Format, MigrateArgs};
use crate::migrate::Request as MigrateRequest;
use crate::spec::Backfill;
use crate::verify::Target as VerifyTarget;

/// The steps of migrate-existing; apply and verify through their usual paths.
pub(super) async fn run(args: &MigrateArgs) -> Result<Exit> {
    let db_args = &args.database;
    let spec = load_spec(&db_args.spec)?;
    let (schema, name) = match args.table.split_once('.') {
        Some((schema, name)) => (schema, name),
        None => ("public", args.table.as_str()),
    };
    let table = crate::quote::QualifiedName::new(schema, name);
    let backfill = match (&args.via, &args.constant, &args.expression) {
        (via, None, None) if !via.is_empty() => Backfill::Via {
            keys: via.clone(),
            // The spec's choice holds for keys given on the command line too.
            scope_foreign_key: !matches!(
                spec.table(&table).and_then(|t| t.backfill.as_ref()),
                Some(Backfill::Via {
                    scope_foreign_key: false,
                    ..
                })
            ),
        },
        (_, Some(constant), None) => Backfill::Constant(constant.clone()),
        (_, None, Some(expression)) => Backfill::Expression(
            crate::spec::Expression::parse(expression)
                .map_err(|(_, why)| anyhow::anyhow!("--expression: {why}"))?,
        ),
        _ => spec
            .table(&table)
            .and_then(|t| t.backfill.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "how do existing rows of {table} get their tenant? Declare `backfill:` on the table in the spec, or pass --via, --constant or --expression"
                )
            })?,
    };
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be positive");
    let request = MigrateRequest {
        table: table.clone(),
        backfill,
        batch_size: args.batch_size,
        max_rate: args.max_rate,
        lock_timeout: "2s".into(),
    };
    let (server, _shown_url, mut conn) = open_database(db_args).await?;
    let mut out = super::stdout::stdout();
    if args.dry_run {
        let steps = crate::migrate::dry_run(&mut conn, &spec, &request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match db_args.spec.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&steps)?)?,
            Format::Text => {
                writeln!(
                    out,
                    "-- rlsctl migrate-existing {table} --dry-run: nothing was changed"
                )?;
                for step in &steps {
                    writeln!(
                        out,
                        "-- {}. {}{}\n--    lock: {}",
                        step.number,
                        step.what,
                        if step.done { " [already done]" } else { "" },
                        step.lock
                    )?;
                    for statement in &step.statements {
                        writeln!(out, "{statement};")?;
                    }
                }
            }
        }
        return Ok(Exit::Success);
    }

    let mut bar = ProgressBar::new("backfill").with_what_in_lines();
    let summary = crate::migrate::prepare_table(&mut conn, &spec, &request, &mut |e| bar.report(e))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(bar);
    eprintln!("7/8 apply: row-level security, policies, grants");
    let mut bar = ProgressBar::new("apply");
    let outcome = apply::apply(&mut conn, &spec, &apply_settings(db_args), &mut |e| {
        bar.report(e)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::migrate::remove_trigger(&mut conn, &request, &mut |e| bar.report(e))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(bar);
    eprintln!("8/8 verify {table}");
    let mut target = VerifyTarget::from_spec(&spec);
    target.only = vec![table.to_string()];
    let matrix = run_verify(&mut conn, &target).await?;
    drop(conn);
    drop(server);
    match db_args.spec.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "table": table.to_string(),
                "backfill": summary,
                "apply": outcome,
                "verify": matrix,
            }))?
        )?,
        Format::Text => {
            writeln!(
                out,
                "migrated {table}: {} row(s) filled in {} batch(es) in {:.1}s ({} lock retries); apply executed {} statement(s)",
                summary.rows_filled,
                summary.batches,
                summary.seconds,
                summary.lock_retries,
                outcome.executed
            )?;
            crate::verify::report::write_table(&mut out, &matrix, color_stdout())?;
        }
    }
    Ok(verify_exit(&matrix, false))
}
