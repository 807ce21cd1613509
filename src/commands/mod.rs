//! What each subcommand does, from parsed flags to printed output.

use std::io::Write;

use anyhow::{Context, Result};
use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use sqlx::PgConnection;

use crate::apply::{self, Outcome, Settings};
use crate::audit::report::{Report, write_json, write_markdown, write_table};
use crate::catalog::{self, Scope};
use crate::cli::{
    AuditArgs, CheckArgs, Cli, CommandKind, DatabaseArgs, Format, MigrateArgs, ReportFormat,
    SpecArgs, VerifyArgs, database_url,
};
use crate::connect::{connect, connect_to, redact};
use crate::desired::desired_state;
use crate::diff::{Normalized, Options, diff};
use crate::ephemeral::EphemeralServer;
use crate::migrate::Request as MigrateRequest;
use crate::model::State;
use crate::plan::{Passwords, Statement, render};
use crate::spec::{self, Backfill, Spec, TenantSource};
use crate::verify::{Binding, Matrix, Target as VerifyTarget};

/// Process exit status, documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    /// `plan --exit-code` found changes; `audit` found findings at or above --fail-on.
    Attention = 2,
    Usage = 64,
}

pub async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        CommandKind::Validate(args) => validate(&args),
        CommandKind::Sql(args) => sql(&args),
        CommandKind::Plan(args) => with_database(&args.database, Mode::Plan(args.exit_code)).await,
        CommandKind::Apply(args) => with_database(&args, Mode::Apply).await,
        CommandKind::Audit(args) => audit(&args).await,
        CommandKind::Verify(args) => verify(&args).await,
        CommandKind::Check(args) => check(&args).await,
        CommandKind::MigrateExisting(args) => migrate_existing(&args).await,
        CommandKind::Explain { id } => explain(&id),
    }
}

fn load_spec(args: &SpecArgs) -> Result<Spec> {
    // The error is already a located, rendered message.
    spec::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))
}

fn validate(args: &SpecArgs) -> Result<Exit> {
    let spec = load_spec(args)?;
    let runtime: Vec<&str> = spec.runtime_roles().map(|r| r.name.as_str()).collect();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "valid": true,
                "tables": spec.tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
                "runtime_roles": runtime,
                "policies": spec.policies.len(),
                "spec_hash": spec.hash,
            })
        ),
        Format::Text => println!(
            "{}: valid: {} tables, runtime roles {}, {} extra policies",
            args.config.display(),
            spec.tables.len(),
            runtime.join(", "),
            spec.policies.len()
        ),
    }
    Ok(Exit::Success)
}

fn sql(args: &SpecArgs) -> Result<Exit> {
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
    let mut out = std::io::stdout().lock();
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// With `--exit-code`: exit 2 when there are changes.
    Plan(bool),
    Apply,
}

/// A connection to the database the flags name (or to a throwaway server
/// that lives as long as the returned handle), and the URL to show.
async fn open_database(
    args: &DatabaseArgs,
) -> Result<(Option<EphemeralServer>, String, PgConnection)> {
    let server = if args.ephemeral {
        eprintln!("starting a throwaway PostgreSQL…");
        Some(EphemeralServer::start()?)
    } else {
        None
    };
    let url = match (&server, database_url(&args.database_url)) {
        (Some(server), _) => server.url(),
        (None, Some(url)) => url,
        (None, None) => anyhow::bail!(
            "no database to connect to: pass --database-url, set RLSCTL_ADMIN_DATABASE_URL or DATABASE_URL, or use --ephemeral"
        ),
    };
    let conn = connect_to(&url).await?;
    Ok((server, redact(&url), conn))
}

fn apply_settings(args: &DatabaseArgs) -> Settings {
    let (migrations_dir, migrations_required) = args.migrations_dir();
    Settings {
        migrations_dir,
        migrations_required,
        prune: args.prune,
        allow_empty: args.allow_empty,
        lock_timeout: args.lock_timeout.clone(),
    }
}

async fn with_database(args: &DatabaseArgs, mode: Mode) -> Result<Exit> {
    let spec = load_spec(&args.spec)?;
    let settings = apply_settings(args);
    let (server, shown_url, mut conn) = open_database(args).await?;

    let result = match mode {
        Mode::Plan(_) => apply::plan(&mut conn, &spec, &settings).await,
        Mode::Apply => apply::apply(&mut conn, &spec, &settings, &mut |m| eprintln!("{m}")).await,
    };
    let outcome = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    match (mode, args.spec.format) {
        (_, Format::Json) => writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?,
        (Mode::Plan(_), Format::Text) => print_plan(&mut out, &outcome, &shown_url)?,
        (Mode::Apply, Format::Text) => {
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
    Ok(if mode == Mode::Plan(true) && !outcome.is_empty() {
        Exit::Attention
    } else {
        Exit::Success
    })
}

fn write_statements(
    out: &mut impl Write,
    statements: &[crate::plan::StatementView],
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

fn print_notices(out: &mut impl Write, outcome: &Outcome) -> std::io::Result<()> {
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

fn print_applied(out: &mut impl Write, outcome: &Outcome, url: &str) -> std::io::Result<()> {
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

/// audit and verify read a spec from `--config` (default `policies`) unless
/// they were given the runtime roles with `--role` and no `--config`.
fn spec_unless_roles_given(
    config: &Option<std::path::PathBuf>,
    roles: &[String],
    command: &str,
) -> Result<Option<Spec>> {
    if !roles.is_empty() && config.is_none() {
        return Ok(None);
    }
    let config = config.clone().unwrap_or_else(|| "policies".into());
    spec::load(&config).map(Some).map_err(|e| {
        anyhow::anyhow!("{e}\n(to {command} without a spec, name the runtime role with --role)")
    })
}

async fn audit(args: &AuditArgs) -> Result<Exit> {
    let spec = spec_unless_roles_given(&args.config, &args.roles, "audit")?;
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

fn write_report(
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

fn explain(id: &str) -> Result<Exit> {
    let Some(info) = crate::audit::explain(id) else {
        let ids: Vec<&str> = crate::audit::checks::ALL
            .iter()
            .map(|c| c.info.id)
            .chain(crate::audit::checks::drift::INFOS.iter().map(|i| i.id))
            .collect();
        anyhow::bail!("no finding `{id}`; known ids:\n  {}", ids.join("\n  "));
    };
    println!(
        "{} ({})\n\n{}\n\nWhy it matters: {}\n\nFix: {}",
        info.id,
        info.severity.label(),
        info.title,
        info.why,
        info.fix
    );
    Ok(Exit::Success)
}

async fn verify(args: &VerifyArgs) -> Result<Exit> {
    let spec = spec_unless_roles_given(&args.config, &args.roles, "verify")?;
    let mut target = if let Some(spec) = spec {
        let mut target = VerifyTarget::from_spec(&spec);
        if !args.roles.is_empty() {
            target.roles = args.roles.clone();
        }
        target
    } else {
        VerifyTarget {
            roles: args.roles.clone(),
            tables: Default::default(),
            only: Vec::new(),
            tenant_column: args.tenant_column.clone(),
            binding: Binding {
                source: match &args.jwt_claim {
                    Some(claim) => TenantSource::JwtClaim {
                        claims_setting: args.claims_setting.clone(),
                        claim: claim.clone(),
                    },
                    None => TenantSource::Setting(args.setting.clone()),
                },
            },
            when_unbound: args.when_unbound,
        }
    };
    target.only = args.tables.clone();
    let mut conn = connect(&args.database_url).await?;
    let matrix = run_verify(&mut conn, &target).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => crate::verify::report::write_json(&mut out, &matrix)?,
        Format::Text => crate::verify::report::write_table(&mut out, &matrix, color_stdout())?,
    }
    Ok(verify_exit(&matrix, args.strict))
}

async fn run_verify(conn: &mut PgConnection, target: &VerifyTarget) -> Result<Matrix> {
    let mut bar = ProgressBar::new("verify");
    let matrix = crate::verify::verify(conn, target, &mut |done, total, object| {
        bar.show(done, total, object)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::verify::report::write_warning(&mut std::io::stderr().lock(), &matrix)?;
    Ok(matrix)
}

fn verify_exit(matrix: &Matrix, strict: bool) -> Exit {
    if matrix.summary.leaks > 0 || (strict && matrix.summary.not_proven > 0) {
        Exit::Attention
    } else {
        Exit::Success
    }
}

/// apply, audit, verify: the CI gate, one summary at the end.
async fn check(args: &CheckArgs) -> Result<Exit> {
    let db_args = &args.database;
    let spec = load_spec(&db_args.spec)?;
    let settings = apply_settings(db_args);
    let (server, shown_url, mut conn) = open_database(db_args).await?;

    eprintln!("check 1/3: apply");
    let outcome = apply::apply(&mut conn, &spec, &settings, &mut |m| eprintln!("{m}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("check 2/3: audit");
    let report = crate::audit::audit(&mut conn, &crate::audit::Target::from_spec(spec.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("check 3/3: verify");
    let matrix = run_verify(&mut conn, &VerifyTarget::from_spec(&spec)).await?;
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
    let mut out = std::io::stdout().lock();
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
            write_report(&mut out, &report, ReportFormat::Table, color)?;
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

fn color_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A one-line progress bar on stderr, drawn only on a terminal and only for
/// runs long enough to need one.
struct ProgressBar {
    task: &'static str,
    terminal: bool,
    drawn: bool,
}

impl ProgressBar {
    fn new(task: &'static str) -> Self {
        use std::io::IsTerminal;
        ProgressBar {
            task,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn show(&mut self, done: usize, total: usize, object: &str) {
        if !self.terminal || total < 20 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * done / total.max(1);
        eprint!(
            "\r{} [{}{}] {done}/{total} {:<40.40}",
            self.task,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            object
        );
        self.drawn = true;
        if done == total {
            eprintln!();
        }
    }
}

/// The steps of migrate-existing; apply and verify through their usual paths.
async fn migrate_existing(args: &MigrateArgs) -> Result<Exit> {
    let db_args = &args.database;
    let spec = load_spec(&db_args.spec)?;
    let (schema, name) = match args.table.split_once('.') {
        Some((schema, name)) => (schema, name),
        None => ("public", args.table.as_str()),
    };
    let table = crate::quote::QualifiedName::new(schema, name);
    let backfill = match (&args.via, &args.constant, &args.expression) {
        (via, None, None) if !via.is_empty() => Backfill::Via(via.clone()),
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
    let mut out = std::io::stdout().lock();
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

    let mut say = |m: &str| eprintln!("{m}");
    let summary = crate::migrate::prepare_table(&mut conn, &spec, &request, &mut say)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    say("6/7 apply: row-level security, policies, grants");
    let outcome = apply::apply(&mut conn, &spec, &apply_settings(db_args), &mut say)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::migrate::remove_trigger(&mut conn, &request, &mut say)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    say(&format!("7/7 verify {table}"));
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
