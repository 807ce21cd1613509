//! Every message a person reads points at the fix: the file, line and column
//! once, the closest known name for a misspelt one, the table a lock wait was
//! for, and never PostgreSQL's own C source line. A reader closing the pipe
//! (`rlsctl sql | head`) is not an error.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use sqlx::Connection;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// PostgreSQL's error fields carry the line of its C source that raised
/// them; a message showing "at line 587" sends the reader to the wrong file.
#[track_caller]
fn assert_no_server_source_line(stderr: &str) {
    assert!(!stderr.contains(" at line "), "{stderr}");
}

#[test]
fn sql_piped_into_head_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    // Far more DDL than a pipe buffers, so rlsctl is still writing when the
    // reader leaves.
    let tables: Vec<String> = (0..3000).map(|i| format!("table_{i}")).collect();
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    std::fs::write(
        dir.path().join("policies/spec.yaml"),
        simple_spec("app_user", &names),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("sql")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rlsctl sql");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("-- rlsctl sql"), "{first}");
    // The reader is dropped here: the pipe is closed, as `head` closes it.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not worth a message");
}

#[test]
fn an_unknown_spec_key_is_reported_once_with_the_closest_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/spec.yaml"),
        "tenancy:\n  colum: tenant_id\nroles:\n  - name: app\ntables:\n  - projects\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "error: policies/spec.yaml:2:3: unknown field `colum`: did you mean `column`?"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert!(!stderr.contains("line 2 column 3"), "{stderr}");
}

#[tokio::test]
async fn a_misspelt_table_or_role_is_refused_with_the_existing_name() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    db.spec(&simple_spec(&role, &["projetcs"]));
    let run = db.rlsctl(&["apply"]).failure();
    assert!(
        run.stderr.contains("did you mean `public.projects`?"),
        "{}",
        run.stderr
    );
    let auditor = unique("auditor");
    db.execute(&format!("CREATE ROLE {auditor}")).await;
    let misspelt = format!("{auditor}x");
    db.spec(&format!(
        "{}policies:\n  - name: audit_read\n    tables: [projects]\n    command: select\n    roles: [{misspelt}]\n    using: 'true'\n",
        simple_spec(&role, &["projects"])
    ));
    let run = db.rlsctl(&["apply"]).failure();
    assert!(
        run.stderr.contains(&format!("did you mean `{auditor}`?")),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.history_rows().await,
        0,
        "a refused apply changed nothing"
    );

    db.spec(&simple_spec(&role, &["projects"]));
    db.rlsctl(&["apply"]).success();
    let run = db.rlsctl(&["verify", "--table", "projetcs"]).failure();
    assert!(
        run.stderr.contains("did you mean `projects`?"),
        "{}",
        run.stderr
    );
    let run = db
        .rlsctl(&[
            "migrate-existing",
            "--table",
            "projetcs",
            "--constant",
            "00000000-0000-0000-0000-000000000001",
            "--dry-run",
        ])
        .failure();
    assert!(
        run.stderr.contains("did you mean `public.projects`?"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_failing_migration_names_its_file_and_line() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.migration(
        "V2__seed.sql",
        "-- seed one project\nINSERT INTO projects (tenant_id, name)\nVALUES\n  (42, 'first');\n",
    );
    db.spec(&simple_spec(&role, &["projects"]));
    let run = db.rlsctl(&["apply"]).failure();
    // Line 4, column 4: the `42` that is not a uuid.
    assert!(
        run.stderr.contains(
            "migrations/V2__seed.sql:4:4: migration failed: column \"tenant_id\" is of type uuid"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("4 |   (42, 'first');"),
        "{}",
        run.stderr
    );
    assert_no_server_source_line(&run.stderr);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'projects'")
            .await,
        0,
        "the migrations before it were rolled back too"
    );
}

#[tokio::test]
async fn a_migration_that_waits_too_long_for_a_lock_names_the_table() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    db.rlsctl(&["apply"]).success();
    db.migration(
        "V2__archive.sql",
        "ALTER TABLE tasks ADD COLUMN done boolean;\n\nALTER TABLE projects\n  ADD COLUMN archived_at timestamptz;\n",
    );
    // The application holds a read on projects in a long transaction.
    let mut app = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM projects;")
        .execute(&mut app)
        .await
        .unwrap();
    let run = db.rlsctl(&["apply", "--lock-timeout", "100ms"]).failure();
    sqlx::raw_sql("ROLLBACK").execute(&mut app).await.unwrap();
    assert!(
        run.stderr.contains(
            "migrations/V2__archive.sql:3:1: migration failed: waited longer than lock_timeout for a lock on projects"
        ),
        "{}",
        run.stderr
    );
    assert_no_server_source_line(&run.stderr);
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'tasks'::regclass AND attname = 'done'"
        )
        .await,
        0,
        "the statement before the lock wait was rolled back"
    );
}
