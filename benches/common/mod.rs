//! What every benchmark shares: running the rlsctl binary as a user would.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `rlsctl ARGS --database-url URL` in the project folder `dir`;
/// panics on failure. Returns the whole-process time and stdout.
pub fn rlsctl(dir: &Path, url: &str, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(args)
        .arg("--database-url")
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("run rlsctl");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "rlsctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// An empty results table in the style every benchmark prints.
pub fn results_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(header);
    table
}
