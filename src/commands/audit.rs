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
    let (_server, mut conn, reader) = match (&target.spec, args.ephemeral) {
        (Some(spec), true) => {
            let (server, conn) = super::database::open_applied_ephemeral(spec).await?;
            (Some(server), conn, None)
        }
        _ => {
            // A second connection reads the posture; a server that refuses
            // it (a connection limit) is audited over one. Opened once the
            // first is in, so that it never takes the last slot first.
            let conn = connect(&args.database_url).await?;
            let url = args.database_url.clone();
            let reader = tokio::spawn(async move { connect(&url).await.ok() });
            (None, conn, Some(reader))
        }
    };
    let report = crate::audit::audit_with_reader(&mut conn, reader, &target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &args.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            write_report(&mut file, &report, target.spec.as_ref(), args.format, false)?;
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
            &mut super::stdout::stdout(),
            &report,
            target.spec.as_ref(),
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
    spec: Option<&crate::spec::Spec>,
    format: ReportFormat,
    color: bool,
) -> std::io::Result<()> {
    match format {
        ReportFormat::Text => write_table(out, report, color),
        ReportFormat::Sarif => crate::sarif::write_audit(out, report, spec),
        ReportFormat::Json => write_json(out, report),
        ReportFormat::Markdown => write_markdown(out, report),
    }
}
