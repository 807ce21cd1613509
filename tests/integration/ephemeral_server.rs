//! The README's first command: the repo's own spec against a throwaway server.

use std::net::TcpStream;
use std::process::Command;

use crate::harness::repo_root;

#[test]
fn apply_ephemeral_on_the_repo_spec_converges_and_removes_the_server() {
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(["apply", "--ephemeral"])
        .current_dir(repo_root())
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
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
