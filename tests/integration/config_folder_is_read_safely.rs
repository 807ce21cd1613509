//! The config folder is read without trusting what its files are: a FIFO, a
//! device or a huge file under a `.yaml` name is refused by name, promptly,
//! instead of hanging rlsctl or filling its memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Run, TestDb, simple_spec, unique};

/// Runs `command` to the end, unless it is still running after 30 s: then
/// it is killed and the test fails (a generous bound, not a timing claim).
fn finished_within_30s(mut command: Command) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rlsctl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll rlsctl").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill rlsctl");
            let run = Run::from(child.wait_with_output().expect("reap rlsctl"));
            panic!(
                "rlsctl was still running after 30 s: killed\nstderr:\n{}",
                run.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().expect("read rlsctl's output"))
}

/// A project whose spec is valid, so only the planted file can fail it.
async fn valid_project() -> TestDb {
    let db = TestDb::new().await;
    db.spec(&simple_spec(&unique("app"), &["projects"]));
    db
}

#[tokio::test]
async fn a_fifo_named_like_a_spec_file_is_refused_without_hanging() {
    let db = valid_project().await;
    let fifo = db.path().join("policies/evil.yaml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");

    let run = finished_within_30s(db.offline_command(&["validate"])).failure();
    assert!(run.stderr.contains("evil.yaml"), "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[tokio::test]
async fn a_symlink_to_a_device_is_refused_without_reading_it() {
    let db = valid_project().await;
    std::os::unix::fs::symlink("/dev/zero", db.path().join("policies/zero.yaml")).unwrap();

    let run = finished_within_30s(db.offline_command(&["validate"])).failure();
    assert!(run.stderr.contains("zero.yaml"), "{}", run.stderr);
    assert!(run.stderr.contains("character device"), "{}", run.stderr);
}

#[tokio::test]
async fn a_spec_file_over_10_mib_is_refused_with_its_size_and_the_limit() {
    let db = valid_project().await;
    let huge = db.path().join("policies/huge.yaml");
    let size = 10 * 1024 * 1024 + 1;
    // Sparse: the size is what is checked, the disk is spared.
    std::fs::File::create(&huge).unwrap().set_len(size).unwrap();

    let run = finished_within_30s(db.offline_command(&["validate"])).failure();
    assert!(run.stderr.contains("huge.yaml"), "{}", run.stderr);
    assert!(run.stderr.contains(&size.to_string()), "{}", run.stderr);
    assert!(run.stderr.contains("10485760"), "{}", run.stderr);
}

#[tokio::test]
async fn a_symlink_to_a_regular_spec_file_is_read() {
    let db = TestDb::new().await;
    let shared = db.path().join("shared.yaml");
    std::fs::write(&shared, simple_spec(&unique("app"), &["projects"])).unwrap();
    std::os::unix::fs::symlink(&shared, db.path().join("policies/spec.yaml")).unwrap();

    let run = finished_within_30s(db.offline_command(&["validate"])).success();
    assert!(run.stdout.contains("valid: 1 tables"), "{}", run.stdout);
}
