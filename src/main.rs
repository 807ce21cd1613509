use std::process::ExitCode;

use clap::Parser;
use rlsctl::cli::Cli;
use rlsctl::commands::{Exit, is_closed_stdout, run};
use rlsctl::connect::redact_in_message;
use tokio::signal::unix::{SignalKind, signal};

// Reading a 10,000-table catalog allocates a few hundred thousand small
// strings and map nodes; mimalloc cuts that share of audit's CPU (measured
// in the scale benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Registered before any work: a SIGINT during a blocking step (starting a
    // throwaway server) must wait for cleanup instead of killing the process.
    let mut interrupt = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot handle Ctrl-C: {e}");
            return ExitCode::from(Exit::Failure as u8);
        }
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // A URL typed without its flag is echoed back: never its password.
            eprint!("{}", redact_in_message(&e.render().to_string()));
            return ExitCode::from(Exit::Usage as u8);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(0);
        }
    };
    // Ctrl-C drops the work in flight: an open transaction rolls back with the
    // connection, and a throwaway server is stopped and removed.
    let exit = tokio::select! {
        result = run(cli) => match result {
            Ok(exit) => exit,
            // `rlsctl sql | head`: the reader had enough.
            Err(e) if is_closed_stdout(&e) => Exit::Success,
            Err(e) => {
                eprintln!("error: {e:#}");
                Exit::Failure
            }
        },
        _ = interrupt.recv() => {
            eprintln!("interrupted");
            return ExitCode::from(130);
        }
    };
    ExitCode::from(exit as u8)
}
