//! The README's first command (`check --ephemeral`) and `apply --ephemeral`:
//! the repo's own spec against a throwaway server that is removed afterwards.

use std::net::TcpStream;
use std::process::Command;

use crate::harness::repo_root;

/// Runs rlsctl on the repo's own project; returns stdout after checking success.
fn run_on_repo(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// The summary names the server's port; nothing may listen there any more.
fn assert_server_gone(stdout: &str) {
    let port: u16 = stdout
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the summary names the server");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the throwaway server is still running"
    );
}

#[test]
fn check_ephemeral_on_the_repo_spec_passes_apply_audit_and_verify() {
    let stdout = run_on_repo(&["check", "--ephemeral"]);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("check "))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    assert!(summary.starts_with("check PASSED"), "{summary}");
    assert!(
        summary.contains("0 error(s)") && summary.contains("0 leak(s), 0 not proven"),
        "{summary}"
    );
    assert_server_gone(&stdout);
}

#[test]
fn apply_ephemeral_on_the_repo_spec_converges_and_removes_the_server() {
    let stdout = run_on_repo(&["apply", "--ephemeral"]);
    assert!(
        stdout.contains("migration(s)") && stdout.contains("statement(s) executed"),
        "{stdout}"
    );
    for table in [
        "public.projects",
        "public.documents",
        "public.invoices",
        "public.comments",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.contains(table))
            .unwrap_or_else(|| panic!("{table} in {stdout}"));
        assert!(!row.contains("NO") && !row.contains("MISSING"), "{row}");
    }
    assert_server_gone(&stdout);
}

/// Starts `apply --ephemeral` on a project whose migration sleeps, waits until
/// the throwaway server is up, signals rlsctl, and checks nothing is left.
fn interrupted_run_leaves_nothing(signal: &str) -> Option<i32> {
    let tmp = tempfile::tempdir().unwrap();
    // The server runs as `postgres` when the tests run as root: it must reach its dir.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("policies")).unwrap();
    std::fs::create_dir(project.path().join("migrations")).unwrap();
    std::fs::write(
        project.path().join("policies/spec.yaml"),
        "roles:\n  - name: app\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("migrations/V1__slow.sql"),
        "SELECT pg_sleep(60);",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(["apply", "--ephemeral"])
        .current_dir(project.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let up = wait_until(|| {
        server_dirs()
            .iter()
            .any(|d| d.join("data/postmaster.pid").exists())
    });
    assert!(up, "the throwaway server never came up");
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    assert!(
        wait_until(|| server_dirs().is_empty()),
        "left behind after SIG{signal}: {:?}",
        server_dirs()
    );
    code
}

/// Polls for up to a minute: a liveness bound, not a timing assertion.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn ctrl_c_stops_and_removes_the_throwaway_server() {
    assert_eq!(interrupted_run_leaves_nothing("INT"), Some(130));
}

#[test]
fn even_a_killed_rlsctl_leaves_no_server_behind() {
    assert_eq!(interrupted_run_leaves_nothing("KILL"), None);
}
