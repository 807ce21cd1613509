//! `rlsctl report`: the evidence bundle for a review period.

use std::io::Write;

use anyhow::{Context, Result};

use super::Exit;
use super::load_spec::load_spec;
use super::verify::{connect_runtime, probe_runtime, run_verify};
use crate::cli::{Format, ReportArgs, SpecArgs};
use crate::connect::connect;
use crate::evidence::{Period, html, markdown};

pub(super) async fn run(args: &ReportArgs) -> Result<Exit> {
    let period = Period::parse(args.since.as_deref(), args.until.as_deref())
        .map_err(|e| anyhow::anyhow!(e))?;
    let spec = load_spec(&SpecArgs {
        config: args.config.clone(),
        format: args.format,
    })?;
    let mut conn = connect(&args.database_url).await?;
    // Connected before the long work, so a wrong runtime URL fails fast.
    // (A deployment's environment may name it for a run without verify.)
    let mut runtime = match args.no_verify {
        true => None,
        false => connect_runtime(args.runtime_url.as_deref()).await?,
    };
    eprintln!("report 1/3: audit");
    let audit = crate::audit::audit(&mut conn, &crate::audit::Target::from_spec(spec.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verify = if args.no_verify {
        None
    } else {
        eprintln!("report 2/3: verify");
        let target = crate::verify::Target::from_spec(&spec);
        let mut matrix = run_verify(&mut conn, &target).await?;
        probe_runtime(&mut conn, runtime.as_mut(), &target, &mut matrix).await?;
        Some(matrix)
    };
    drop(runtime);
    eprintln!("report 3/3: history and catalog fingerprint");
    let bundle =
        crate::evidence::collect(&mut conn, &spec, &args.config, period, verify, audit).await?;
    drop(conn);

    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let document = bundle.document();
    let files = [
        ("report.json", serde_json::to_string_pretty(&bundle)? + "\n"),
        ("report.md", markdown::render(&document)),
        ("report.html", html::render(&document)),
    ];
    for (name, content) in &files {
        let path = args.output.join(name);
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }

    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": args.output,
                "files": files.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "verdict": bundle.verdict,
                "history_chain": bundle.history.chain,
                "catalog_fingerprint": bundle.catalog_fingerprint,
            }))?
        )?,
        Format::Text => {
            writeln!(
                out,
                "Wrote report.md, report.html and report.json to {}",
                args.output.display()
            )?;
            writeln!(
                out,
                "verdict: {}",
                if bundle.verdict.passed {
                    "PASSED".to_string()
                } else {
                    format!("FAILED ({})", bundle.verdict.reasons.join("; "))
                }
            )?;
            let chain = &bundle.history.chain;
            writeln!(
                out,
                "apply history: {} row(s), {} in the period, chain {}",
                chain.rows,
                bundle.history.entries.len(),
                match &chain.broken_at {
                    None => "intact".to_string(),
                    Some(b) => format!("BROKEN at row {}", b.id),
                }
            )?;
        }
    }
    Ok(if bundle.verdict.passed {
        Exit::Success
    } else {
        Exit::Attention
    })
}
