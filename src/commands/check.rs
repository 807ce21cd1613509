//! `rlsctl check`: the CI gate.

use std::io::Write;

use anyhow::Result;

use super::apply::print_applied;
use super::audit::write_report;
use super::database::{apply_settings, open_database};
use super::load_spec::load_spec;
use super::verify::{connect_runtime, probe_runtime, run_verify, verify_exit};
use super::{Exit, color_stdout};
use crate::apply;
use crate::cli::{CheckArgs, Format, ReportFormat};
use crate::verify::Target as VerifyTarget;

/// apply, audit, verify: the CI gate, one summary at the end.
pub(super) async fn run(args: &CheckArgs) -> Result<Exit> {
    let db_args = &args.database;
    let spec = load_spec(&db_args.spec)?;
    if args.fleet.targets.is_some() {
        if args.runtime_url.is_some() {
            anyhow::bail!(
                "--runtime-url names one database's runtime login; it cannot go with --targets"
            );
        }
        return super::fleet("check", &args.fleet, db_args).await;
    }
    let settings = apply_settings(db_args);
    let (server, shown_url, mut conn) = open_database(db_args).await?;
    // Connected before anything changes, so a wrong runtime URL fails fast.
    let mut runtime = connect_runtime(args.runtime_url.as_deref()).await?;

    eprintln!("check 1/3: apply");
    let mut bar = super::progress_bar::ProgressBar::new("apply");
    let outcome = apply::apply(&mut conn, &spec, &settings, &mut |event| bar.report(event))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("check 2/3: audit");
    let report = crate::audit::audit(&mut conn, &crate::audit::Target::from_spec(spec.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("check 3/3: verify");
    let verify_target = VerifyTarget::from_spec(&spec);
    let mut matrix = run_verify(&mut conn, &verify_target).await?;
    probe_runtime(&mut conn, runtime.as_mut(), &verify_target, &mut matrix).await?;
    drop(runtime);
    drop(conn);
    drop(server);

    let uncovered = report.uncovered_tables();
    let audit_failed = report.failing(crate::audit::Severity::Error) > 0
        || !uncovered.is_empty()
        || report.examined_nothing();
    if report.examined_nothing() {
        eprintln!("check: {}", crate::audit::report::NOTHING_EXAMINED);
    }
    for table in &uncovered {
        eprintln!(
            "check: table {table} has the tenant column, is not declared in the spec, and no policy covers it: declare it (or accept it as an exception) before check can pass"
        );
    }
    let exit = match verify_exit(&matrix, args.strict) {
        Exit::Success if !audit_failed => Exit::Success,
        _ => Exit::Attention,
    };
    let mut out = super::stdout::stdout();
    match db_args.spec.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": exit == Exit::Success,
                "apply": outcome,
                "audit": report,
                "verify": matrix,
            }))?
        )?,
        Format::Text => {
            let color = color_stdout();
            print_applied(&mut out, &outcome, &shown_url)?;
            writeln!(out)?;
            write_report(&mut out, &report, None, ReportFormat::Text, color)?;
            writeln!(out)?;
            crate::verify::report::write_table(&mut out, &matrix, color)?;
            let s = &report.summary;
            let v = &matrix.summary;
            writeln!(
                out,
                "\ncheck {}: apply {} statement(s); audit {} error(s), {} warning(s); verify {} proven, {} leak(s), {} not proven",
                if exit == Exit::Success {
                    "PASSED"
                } else {
                    "FAILED"
                },
                outcome.executed,
                s.errors,
                s.warnings,
                v.proven,
                v.leaks,
                v.not_proven
            )?;
        }
    }
    Ok(exit)
}
