//! `rlsctl audit`: read the live database and report what is wrong with it.

use std::io::Write;

use anyhow::{Context, Result};

use super::load_spec::spec_unless_roles_given;
use super::{Exit, color_stdout};
use crate::audit::report::{Report, write_json, write_markdown, write_table};
use crate::cli::{AuditArgs, ReportFormat};
use crate::connect::connect;

pub(super) async fn run(args: &AuditArgs) -> Result<Exit> {
    let spec = spec_unless_roles_given(&args.config, &args.roles, "audit")?;
    if args.fleet.targets.is_some() {
        let json = args.format == ReportFormat::Json;
        return crate::fleet::run("audit", &args.fleet, json).await;
    }
    let target = if let Some(spec) = spec {
        let mut target = crate::audit::Target::from_spec(spec);
        if !args.roles.is_empty() {
            target.roles = args.roles.clone();
        }
        target
    } else {
        let (schema, name) = args
            .context_function
            .split_once('.')
            .ok_or_else(|| anyhow::anyhow!("--context-function needs a schema: SCHEMA.NAME"))?;
        crate::audit::Target {
            spec: None,
            roles: args.roles.clone(),
            tenant_column: args.tenant_column.clone(),
            context_function: crate::quote::QualifiedName::new(schema, name),
            tenant_settings: args.settings.clone(),
        }
    };
    let mut conn = connect(&args.database_url).await?;
    let report = crate::audit::audit(&mut conn, &target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &args.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            write_report(&mut file, &report, args.format, false)?;
            file.flush()?;
            eprintln!(
                "wrote {}: {} tenant tables examined; {} errors, {} warnings, {} info, {} accepted",
                path.display(),
                report.summary.tenant_tables,
                report.summary.errors,
                report.summary.warnings,
                report.summary.infos,
                report.summary.accepted
            );
        }
        None => write_report(
            &mut std::io::stdout().lock(),
            &report,
            args.format,
            color_stdout(),
        )?,
    }
    if report.examined_nothing() {
        eprintln!("audit: {}", crate::audit::report::NOTHING_EXAMINED);
    }
    Ok(
        if report.failing(args.fail_on) > 0 || report.examined_nothing() {
            Exit::Attention
        } else {
            Exit::Success
        },
    )
}

pub(super) fn write_report(
    out: &mut impl Write,
    report: &Report,
    format: ReportFormat,
    color: bool,
) -> std::io::Result<()> {
    match format {
        ReportFormat::Table => write_table(out, report, color),
        ReportFormat::Json => write_json(out, report),
        ReportFormat::Markdown => write_markdown(out, report),
    }
}
