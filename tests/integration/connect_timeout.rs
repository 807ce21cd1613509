//! A server that accepts the connection and never answers does not hang
//! rlsctl: it gives up after the connect timeout and says how to change it.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Run, TestDb};

/// Accepts connections and holds them open without a byte in reply.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

/// Runs rlsctl, killing it if it has not ended by itself within `limit`.
fn run_ended_by_itself(mut command: Command, limit: Duration) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let run = Run::from(child.wait_with_output().unwrap());
            panic!("still waiting after {limit:?}, killed:\n{}", run.stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

fn plan(db: &TestDb, url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args(["plan", "--database-url", url])
        .current_dir(db.path())
        .env_remove("PGCONNECT_TIMEOUT");
    command
}

#[tokio::test]
async fn a_server_that_never_answers_fails_after_connect_timeout_from_the_url() {
    let db = TestDb::new().await;
    db.spec("roles:\n  - name: app\n");
    let port = silent_server();
    let url = format!("postgres://u:Mark3r-pass@127.0.0.1:{port}/db?connect_timeout=1");
    let run = run_ended_by_itself(plan(&db, &url), Duration::from_secs(30)).failure();
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to postgres://u:***@127.0.0.1:{port}/db?connect_timeout=1: no answer within 1 s (connect_timeout in the URL)"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("PGCONNECT_TIMEOUT"), "{}", run.stderr);
    assert!(!run.stderr.contains("Mark3r") && !run.stdout.contains("Mark3r"));
}

#[tokio::test]
async fn a_server_that_never_answers_fails_after_pgconnect_timeout() {
    let db = TestDb::new().await;
    db.spec("roles:\n  - name: app\n");
    let port = silent_server();
    let mut command = plan(
        &db,
        &format!("postgres://u:Mark3r-pass@127.0.0.1:{port}/db"),
    );
    command.env("PGCONNECT_TIMEOUT", "1");
    let run = run_ended_by_itself(command, Duration::from_secs(30)).failure();
    assert!(
        run.stderr
            .contains("no answer within 1 s (PGCONNECT_TIMEOUT)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Mark3r") && !run.stdout.contains("Mark3r"));
}
