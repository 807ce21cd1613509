//! What each subcommand does, from parsed flags to printed output: one file
//! per subcommand, and the few helpers they share beside them.

use anyhow::Result;

use crate::cli::{Cli, CommandKind};

mod apply;
mod audit;
mod check;
mod database;
mod explain;
mod init;
mod load_spec;
mod migrate_existing;
mod plan;
mod progress_bar;
mod report;
mod schema;
mod sql;
mod statements;
mod stdout;
mod validate;
mod verify;

/// Process exit status, documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    /// `plan --exit-code` found changes; `audit` found findings at or above --fail-on.
    Attention = 2,
    Usage = 64,
}

pub use stdout::is_closed_stdout;

pub async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        CommandKind::Validate(args) => validate::run(&args),
        CommandKind::Sql(args) => sql::run(&args),
        CommandKind::Plan(args) => plan::run(&args).await,
        CommandKind::Apply(args) => apply::run(&args).await,
        CommandKind::Audit(args) => audit::run(&args).await,
        CommandKind::Verify(args) => verify::run(&args).await,
        CommandKind::Check(args) => check::run(&args).await,
        CommandKind::MigrateExisting(args) => migrate_existing::run(&args).await,
        CommandKind::Report(args) => report::run(&args).await,
        CommandKind::Schema => schema::run(),
        CommandKind::Explain { id } => explain::run(&id),
        CommandKind::Init(args) => init::run(&args).await,
    }
}

/// `--targets`: the command runs once per target instead (see `fleet`).
async fn fleet(
    command: &str,
    fleet: &crate::cli::FleetArgs,
    database: &crate::cli::DatabaseArgs,
) -> Result<Exit> {
    if database.ephemeral {
        anyhow::bail!("--targets and --ephemeral cannot be used together");
    }
    let json = database.spec.format == crate::cli::Format::Json;
    crate::fleet::run(command, fleet, json).await
}

/// Colour only on a terminal, and never when NO_COLOR is set.
fn color_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
