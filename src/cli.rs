//! Every flag rlsctl takes, and the one place flags, environment and defaults
//! are merged (a flag wins, then RLSCTL_ADMIN_DATABASE_URL, then DATABASE_URL).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rlsctl",
    version,
    about = "Declare PostgreSQL row-level tenant isolation once; make the database match it.",
    long_about = "rlsctl reads the tenant isolation declared in policies/*.yaml and converges a \
PostgreSQL database on it: ENABLE and FORCE ROW LEVEL SECURITY, tenant policies with USING and \
WITH CHECK, the tenant-context function, tenant indexes, roles and grants.\n\n\
Typical flow:\n  rlsctl init --from-db      describe an existing database as a spec (optional)\n  rlsctl validate            check the spec offline\n  rlsctl plan                see the exact statements\n  rlsctl apply               run migrations/, then the statements, in one transaction\n  rlsctl apply --ephemeral   the same against a throwaway local PostgreSQL\n  rlsctl verify              prove isolation by acting as the runtime role\n  rlsctl check --ephemeral   apply + audit + verify: the CI gate",
    after_help = "Exit codes: 0 success; 1 failure (bad spec, database error, apply rolled back); \
2 `plan --exit-code` found changes, `audit` found findings at or above --fail-on, `verify` found a \
LEAK (or NOT PROVEN with --strict), `check` found any of these, or `report`'s verdict is FAILED; 64 bad command-line usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CommandKind,
}

#[derive(Debug, Subcommand)]
pub enum CommandKind {
    /// Parse and check policies/*.yaml without a database.
    Validate(ValidateArgs),
    /// Print the full DDL the spec implies, as if the database were empty (offline).
    Sql(SpecArgs),
    /// Show the statements `apply` would run against this database (changes nothing).
    ///
    /// Pending migrations are run inside a transaction that is always rolled back,
    /// so the plan is computed against the schema they produce.
    Plan(PlanArgs),
    /// Run pending migrations, then converge the policies, in one transaction.
    ///
    /// Takes an advisory lock so concurrent applies serialise, and a lock_timeout so a
    /// DDL statement never queues for long behind the application's transactions.
    /// Indexes on tables that hold rows are built CONCURRENTLY after the commit.
    Apply(ApplyArgs),
    /// Report drift from the spec and every way around tenant isolation (read-only).
    ///
    /// With a spec (default: ./policies) the runtime roles and tenant tables come from it and
    /// drift is reported too. With --role, the posture checks run on any database, no spec needed.
    Audit(AuditArgs),
    /// Prove tenant isolation by acting as the runtime role (changes nothing).
    ///
    /// For every tenant table, two made-up tenants A and B get probe rows; then, as the
    /// runtime role with A bound the way the spec tells applications to bind it, verify
    /// tries to read, update, delete, insert and move B's rows, and to read or write with no
    /// tenant bound. Views and partitions over tenant tables get the read probe. Everything
    /// runs in transactions that are rolled back. Each cell is PROVEN, LEAK (with the row's
    /// key) or NOT PROVEN (with the reason). Exit 2 on any LEAK (and NOT PROVEN with --strict).
    Verify(VerifyArgs),
    /// The CI gate: apply, then audit, then verify, with one summary.
    ///
    /// Exit 2 when audit finds errors or verify finds a leak (or, with --strict, anything
    /// not proven); 1 when apply fails.
    Check(CheckArgs),
    /// Bring a table that already holds rows under RLS, without long locks.
    ///
    /// Adds the tenant column (nullable), keeps new rows filled with a trigger, backfills
    /// existing rows in short batches (resumable: progress is kept in
    /// rlsctl.migrate_progress), makes the column NOT NULL through a validated CHECK, builds
    /// the index CONCURRENTLY, scopes the foreign key a --via backfill followed by tenant
    /// (NOT VALID, then VALIDATE), then applies the policies and verifies the table. How a row's
    /// tenant is found comes from the table's `backfill:` in the spec, or from --via,
    /// --constant or --expression. Use --dry-run first: it prints every step and its lock.
    MigrateExisting(MigrateArgs),
    /// Write an evidence bundle for a review period (read-only).
    ///
    /// DIR/report.md, DIR/report.html (one offline, printable page) and DIR/report.json:
    /// the server and database identity, the spec's content hash and git commit, a
    /// fingerprint of the isolation-relevant catalog, the audit with accepted exceptions
    /// and their reasons, the verify matrix, and the apply history over the period with
    /// the state of its hash chain (an edited or removed history row is reported).
    /// Exit 2 when the report's verdict is FAILED (open audit error, verify LEAK, or a
    /// broken history chain).
    Report(ReportArgs),
    /// Write policies/*.yaml that describe an existing database as it is (--from-db).
    ///
    /// Reads the live catalog (read-only) and finds the tenant tables by what their
    /// policies compare: a column, whatever it is called, with a session setting
    /// (`current_setting('app.org', true)::uuid`), a JWT claim or a function of them.
    /// The spec keeps the database's own names: the tenant policy name (a pattern such as
    /// `{table}_tenant_isolation` when they share one), the context function (adopted,
    /// `managed: false`) or the inline comparison, the roles the policies are TO (or, for
    /// TO PUBLIC, the login roles granted the tables), cross-tenant roles and every other
    /// policy. Partitions are covered by their parent. Whatever the spec cannot say, or
    /// apply would still change, is written as a `# TODO:` comment.
    ///
    /// Next: `rlsctl validate`, then `rlsctl plan`, which against the same database shows no
    /// statement beyond the TODOs. Writes only policies/rlsctl.yaml (or --config DIR) and
    /// refuses when the folder already holds *.yaml files, unless --force.
    Init(InitArgs),
    /// Print the JSON Schema of policies/*.yaml, for editor completion and checks.
    ///
    /// The repository publishes it as schema/policies.schema.json; point an editor at it
    /// with `# yaml-language-server: $schema=…` on a spec file's first line.
    Schema,
    /// Explain an audit finding id: what it means, why it matters, how to fix it.
    Explain {
        /// A finding id, e.g. POLICY_WITHOUT_TENANT_FILTER (case-insensitive).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Describe the database at --database-url (required: the only source init knows).
    #[arg(long, required = true)]
    pub from_db: bool,
    /// Folder to write the spec into.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub config: PathBuf,
    /// Admin connection URL. Default: $RLSCTL_ADMIN_DATABASE_URL, then $DATABASE_URL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Replace the spec file even though the folder already holds *.yaml files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Grouped by severity, one line per finding (`table` is accepted too).
    #[value(alias = "table")]
    Text,
    /// Versioned JSON (schema_version) for CI and other tools.
    Json,
    /// A report for SOC2 evidence: summary, tables, roles, history, findings.
    Markdown,
    /// SARIF 2.1.0 for code scanning: findings at their spec lines.
    Sarif,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Folder of *.yaml spec files (default: policies, unless --role is given).
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Admin connection URL. Default: $RLSCTL_ADMIN_DATABASE_URL, then $DATABASE_URL.
    #[arg(long, value_name = "URL", conflicts_with = "ephemeral")]
    pub database_url: Option<String>,
    /// Audit what the spec builds: a throwaway local PostgreSQL with ./migrations and the
    /// spec applied first, removed afterwards.
    #[arg(long, conflicts_with = "roles")]
    pub ephemeral: bool,
    /// A runtime role to audit (repeatable). Without a spec, this is required.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Without a spec: the tenant column that marks tenant tables.
    #[arg(long, value_name = "COLUMN", default_value = "tenant_id")]
    pub tenant_column: String,
    /// Without a spec: the tenant context function, schema-qualified.
    #[arg(
        long,
        value_name = "SCHEMA.NAME",
        default_value = "rls.current_tenant_id"
    )]
    pub context_function: String,
    /// Without a spec: settings that carry the tenant (repeatable).
    #[arg(long = "setting", value_name = "NAME", default_values = ["app.current_tenant_id", "request.jwt.claims"])]
    pub settings: Vec<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 2 when a finding (not accepted) is at or above this severity.
    #[arg(long, value_enum, default_value_t = crate::audit::Severity::Error)]
    pub fail_on: crate::audit::Severity,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: SQL with comments, or a summary.
    Text,
    /// For machines: one JSON document on stdout.
    Json,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Folder of *.yaml spec files.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// One line: what the spec declares.
    Text,
    /// For machines: one JSON document on stdout.
    Json,
    /// SARIF 2.1.0 for code scanning: an invalid spec as a result at its line.
    Sarif,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Folder of *.yaml spec files.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Admin connection URL. Default: $RLSCTL_ADMIN_DATABASE_URL, then $DATABASE_URL.
    #[arg(long, value_name = "URL", conflicts_with = "ephemeral")]
    pub database_url: Option<String>,
    /// Start a throwaway local PostgreSQL for this run and remove it afterwards.
    #[arg(long)]
    pub ephemeral: bool,
    /// Folder of refinery SQL migrations (V1__name.sql), run before the policies.
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Longest wait for a table lock before failing (PostgreSQL interval, e.g. 5s, 500ms; at least 1ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = lock_timeout)]
    pub lock_timeout: String,
    /// Also drop policies the spec does not declare (and rlsctl's own on tables that left the spec).
    #[arg(long)]
    pub prune: bool,
    /// Let --prune run with a spec that declares no tenant tables, which drops every
    /// policy rlsctl made: refused without this flag, as an emptied or wrong --config
    /// would otherwise remove the tenant isolation everywhere.
    #[arg(long)]
    pub allow_empty: bool,
    /// Run migrations whose INSERT … SELECT, UPDATE, DELETE or MERGE touch tables where
    /// row-level security applies to the connecting role (they change only the rows a
    /// policy admits): refused without this flag, since such a migration "succeeds" on
    /// zero rows.
    #[arg(long)]
    pub allow_rls_filtered_migrations: bool,
    /// Set the password of every declared role with `password_env` that already exists
    /// from its variable (a rotation); without it only roles with no password get one.
    #[arg(long)]
    pub rotate_passwords: bool,
}

/// `--targets`: run against every database of a file instead of one.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Run against every database listed in FILE (one URL or environment variable name
    /// per line, or a YAML list of `name:` with `url:` or `env:`), one combined report.
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    pub targets: Option<PathBuf>,
    /// With --targets: how many databases are worked on at once.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "targets", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// With --targets: the combined report's format (default: json with --format json, else text).
    #[arg(long, value_enum, value_name = "FORMAT", requires = "targets")]
    pub fleet_format: Option<FleetFormat>,
}

/// The combined report of a run over --targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetFormat {
    /// One line per target (`table` is accepted too).
    #[value(alias = "table")]
    Text,
    /// Versioned JSON, each target's own document under `result`.
    Json,
    /// A Markdown table for a pull request or a wiki.
    Markdown,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Exit 2 when there are changes (for CI).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Also fail (exit 2) when a verify probe could not be run.
    #[arg(long)]
    pub strict: bool,
    /// Verify also through this connection, logged in as the runtime role the way the
    /// application connects (as `verify --runtime-url`). Default: $RLSCTL_RUNTIME_DATABASE_URL.
    #[arg(
        long,
        value_name = "URL",
        env = "RLSCTL_RUNTIME_DATABASE_URL",
        hide_env_values = true,
        conflicts_with = "ephemeral"
    )]
    pub runtime_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The declared table to migrate (`schema.table` or `table`).
    #[arg(long, value_name = "TABLE")]
    pub table: String,
    /// Print every step with the lock it takes and the rows it would touch; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per backfill batch (each batch is its own short transaction).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub batch_size: i64,
    /// Backfill at most this many rows per second.
    #[arg(long, value_name = "ROWS_PER_SECOND")]
    pub max_rate: Option<f64>,
    /// Derive the tenant through these foreign keys, each named by a column of it (or by
    /// its constraint name), e.g. task_id,project_id; composite keys join on all their columns.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', conflicts_with_all = ["constant", "expression"])]
    pub via: Vec<String>,
    /// Give every existing row this tenant.
    #[arg(long, value_name = "TENANT", conflicts_with = "expression")]
    pub constant: Option<String>,
    /// Derive the tenant with this SQL expression over the row (aliased `x`).
    #[arg(long, value_name = "SQL")]
    pub expression: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Folder of *.yaml spec files (default: policies, unless --role is given).
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Admin connection URL: must be allowed to SET ROLE to the runtime role and to
    /// bypass RLS to plant probe rows. Default: $RLSCTL_ADMIN_DATABASE_URL, then $DATABASE_URL.
    #[arg(long, value_name = "URL", conflicts_with = "ephemeral")]
    pub database_url: Option<String>,
    /// Verify what the spec builds: a throwaway local PostgreSQL with ./migrations and the
    /// spec applied first, removed afterwards.
    #[arg(long, conflicts_with = "roles")]
    pub ephemeral: bool,
    /// The runtime role to act as (repeatable). Without a spec, this is required.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Only these tables (repeatable; `schema.table` or `table`).
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Without a spec: the tenant column; every table that has it is probed.
    #[arg(long, value_name = "COLUMN", default_value = "tenant_id")]
    pub tenant_column: String,
    /// Without a spec: the setting the application binds the tenant in.
    #[arg(long, value_name = "NAME", default_value = "app.current_tenant_id")]
    pub setting: String,
    /// Without a spec: bind the tenant as this JWT claim in --claims-setting instead.
    #[arg(long, value_name = "CLAIM")]
    pub jwt_claim: Option<String>,
    /// Without a spec: the setting holding JWT claims.
    #[arg(long, value_name = "NAME", default_value = "request.jwt.claims")]
    pub claims_setting: String,
    /// Without a spec: what the policies do with no tenant bound.
    #[arg(long, value_enum, default_value_t = crate::spec::WhenUnbound::Deny)]
    pub when_unbound: crate::spec::WhenUnbound,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also exit 2 when a probe could not be run (NOT PROVEN).
    #[arg(long)]
    pub strict: bool,
    /// Also check through this connection, logged in as the runtime role the way the
    /// application connects (who it is, its session defaults, unbound reads and writes of
    /// existing rows, binding per transaction). Default: $RLSCTL_RUNTIME_DATABASE_URL.
    #[arg(
        long,
        value_name = "URL",
        env = "RLSCTL_RUNTIME_DATABASE_URL",
        hide_env_values = true,
        conflicts_with = "ephemeral"
    )]
    pub runtime_url: Option<String>,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Folder of *.yaml spec files.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub config: PathBuf,
    /// Admin connection URL. Default: $RLSCTL_ADMIN_DATABASE_URL, then $DATABASE_URL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Folder to write report.md, report.html and report.json into (created if missing;
    /// existing report files there are replaced).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// First day of the review period (YYYY-MM-DD, UTC, included).
    #[arg(long, value_name = "DAY")]
    pub since: Option<String>,
    /// Last day of the review period (YYYY-MM-DD, UTC, included).
    #[arg(long, value_name = "DAY")]
    pub until: Option<String>,
    /// Leave the verify matrix out (verify acts as the runtime role inside rolled-back
    /// transactions; skip it where even that is not allowed).
    #[arg(long)]
    pub no_verify: bool,
    /// Verify also through this connection, logged in as the runtime role the way the
    /// application connects (as `verify --runtime-url`; not used with --no-verify).
    /// Default: $RLSCTL_RUNTIME_DATABASE_URL.
    #[arg(
        long,
        value_name = "URL",
        env = "RLSCTL_RUNTIME_DATABASE_URL",
        hide_env_values = true
    )]
    pub runtime_url: Option<String>,
    /// What to print on stdout once the files are written: a summary, or it as JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A flag wins, then RLSCTL_ADMIN_DATABASE_URL, then DATABASE_URL.
pub fn database_url(flag: &Option<String>) -> Option<String> {
    flag.clone()
        .or_else(|| std::env::var("RLSCTL_ADMIN_DATABASE_URL").ok())
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.is_empty())
}

impl DatabaseArgs {
    pub fn migrations_dir(&self) -> (PathBuf, bool) {
        match &self.migrations {
            Some(dir) => (dir.clone(), true),
            None => (PathBuf::from("migrations"), false),
        }
    }
}

/// `--lock-timeout`: a duration as PostgreSQL's `lock_timeout` reads it (a
/// number, optionally fractional, and a unit; no unit is milliseconds). Zero
/// — or anything PostgreSQL rounds to zero milliseconds — means "wait forever"
/// to PostgreSQL, the opposite of what the flag is for, so it is refused here.
fn lock_timeout(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let milliseconds_per_unit = match trimmed[number_end..].trim() {
        "us" => 0.001,
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => f64::NAN,
    };
    let milliseconds = trimmed[..number_end]
        .parse::<f64>()
        .map(|n| n * milliseconds_per_unit)
        .unwrap_or(f64::NAN);
    if milliseconds.is_nan() {
        Err("expected a duration such as 5s, 500ms or 1min (units: us, ms, s, min, h, d)".into())
    } else if milliseconds < 1.0 {
        Err("a lock timeout of 0 would wait forever for a lock; give at least 1ms, e.g. 5s".into())
    } else if milliseconds > f64::from(i32::MAX) {
        Err("too long: PostgreSQL's lock_timeout is at most 2147483647ms (about 24 days)".into())
    } else {
        Ok(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_timeout_of_zero_is_refused_and_durations_are_kept() {
        for forever in ["0", "0s", "0ms", "0.0min", "500us", "0.4"] {
            let refused = lock_timeout(forever).unwrap_err();
            assert!(refused.contains("wait forever"), "{forever}: {refused}");
        }
        for malformed in ["", "soon", "-5s", "5 parsecs", "1e3"] {
            assert!(lock_timeout(malformed).is_err(), "{malformed}");
        }
        assert!(lock_timeout("30d").is_err());
        for kept in ["5s", "500ms", "1", "1.5s", " 2 min", "1h"] {
            assert_eq!(lock_timeout(kept).as_deref(), Ok(kept.trim()));
        }
    }

    #[test]
    fn audit_format_table_is_still_text() {
        let cli = Cli::try_parse_from(["rlsctl", "audit", "--format", "table"]).unwrap();
        let CommandKind::Audit(args) = cli.command else {
            panic!("audit");
        };
        assert_eq!(args.format, ReportFormat::Text);
    }

    #[test]
    fn a_lock_timeout_of_zero_is_a_usage_error() {
        let error = Cli::try_parse_from(["rlsctl", "apply", "--lock-timeout", "0"]).unwrap_err();
        assert!(error.use_stderr());
        assert!(error.to_string().contains("--lock-timeout"), "{error}");
        assert!(error.to_string().contains("wait forever"), "{error}");
    }
}
