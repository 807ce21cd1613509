//! Passwords from URLs and from the environment never reach the output.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

use crate::harness::{PROJECTS, TestDb, require_scram_password_for, server_log, unique};

#[tokio::test]
async fn a_connection_failure_does_not_print_the_password() {
    let db = TestDb::new().await;
    db.spec("roles:\n  - name: app\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args([
            "plan",
            "--database-url",
            "postgres://admin:hunter2secret@127.0.0.1:1/app",
        ])
        .current_dir(db.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        all.contains("postgres://admin:***@127.0.0.1:1/app"),
        "{all}"
    );
    assert!(!all.contains("hunter2secret"), "{all}");
}

#[tokio::test]
async fn odd_and_malformed_urls_never_print_their_password() {
    let db = TestDb::new().await;
    db.spec("roles:\n  - name: app\n");
    // Each password holds the marker; port 1 on localhost refuses at once.
    let urls = [
        "postgres://admin:Mark3r-pa/ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r-pa?ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r-pa#ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r-p@ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r-pa%ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r pa ss@127.0.0.1:1/app",
        "postgres://admin:Mark3r%2Fpa%40ss@127.0.0.1:1/app",
        "postgresql://admin:Mark3r-pass@127.0.0.1:1/app",
        "postgres://admin:Mark3r-pass@127.0.0.1:notaport/app",
        "postgres://admin:Mark3r-pass@127.0.0.1:1/app?sslmode=disable&PASSWORD=Mark3r-again",
        "postgres://127.0.0.1:1/app?password=Mark3r-pass",
        "postgres://admin:Mark3r-pass",
        "admin:Mark3r-pass@127.0.0.1:1/app",
        "host=127.0.0.1 port=1 password='Mark3r pass' dbname=app",
        "host=127.0.0.1 port=1 password=Mark3r-pass dbname=app",
        "host=127.0.0.1 password='Mark3r-unterminated",
    ];
    for url in urls {
        for command in ["plan", "audit", "verify"] {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
                .args([command, "--database-url", url])
                .current_dir(db.path())
                .output()
                .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(output.status.code(), Some(1), "{command} {url}: {all}");
            assert!(all.contains("cannot connect to"), "{command} {url}: {all}");
            assert!(!all.contains("Mark3r"), "{command} {url}: {all}");
        }
    }
    // The same through the environment instead of the flag.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("plan")
        .env(
            "DATABASE_URL",
            "postgres://admin:Mark3r-pa/ss@127.0.0.1:1/app",
        )
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .current_dir(db.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Mark3r"), "{stderr}");
}

#[tokio::test]
async fn a_role_password_from_the_environment_is_set_but_never_shown_or_recorded() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(PROJECTS).await;
    db.spec(&format!(
        "roles:\n  - name: {role}\n    login: true\n    password_env: TEST_APP_PASSWORD\ntables:\n  - projects\n"
    ));
    let missing = db.rlsctl(&["apply"]).failure();
    assert!(
        missing
            .stderr
            .contains("TEST_APP_PASSWORD, which is not set"),
        "{}",
        missing.stderr
    );

    let output = db
        .command(&["apply", "--format", "json"])
        .env("TEST_APP_PASSWORD", "pa55-w0rd-xyz")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("pa55-w0rd-xyz") && stdout.contains("PASSWORD '********'"),
        "{stdout}"
    );

    let mut conn = db.connect().await;
    let recorded: String =
        sqlx::query_scalar("SELECT array_to_string(statements, ';') FROM rlsctl.apply_history")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!recorded.contains("pa55-w0rd-xyz"), "{recorded}");
    let has_password: bool =
        sqlx::query_scalar("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(has_password, "the password was set");
}

/// Connects to `db` as `role` with `password`.
async fn log_in(db: &TestDb, role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::from_str(&db.url)
        .unwrap()
        .username(role)
        .password(password)
        .connect()
        .await
}

#[tokio::test]
async fn a_role_password_reaches_the_server_only_as_a_scram_verifier() {
    let db = TestDb::new().await;
    let role = unique("login");
    let marker = unique("Xq7Marker");
    // Quotes, a backslash and a no-break space (SASLprep maps it to a space).
    let password = format!("{marker} p\u{e4}ss'\"\\\u{a0}w0rd");
    db.execute(PROJECTS).await;
    // Every statement of this database is logged, the password's included
    // if it were sent.
    db.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET log_statement = %L', current_database(), 'all'); END $$",
    )
    .await;
    // A relation holds the name of the tasks index: the first apply fails
    // after CREATE ROLE, and the server logs the failed statement.
    db.execute("CREATE TABLE tasks_tenant_id_idx (x int)").await;
    db.spec(&format!(
        "roles:\n  - name: {role}\n    login: true\n    password_env: TEST_LOGIN_PASSWORD\ntables:\n  - projects\n  - tasks\n"
    ));
    let apply = |args: &[&str]| {
        let output = db
            .command(args)
            .env("TEST_LOGIN_PASSWORD", &password)
            .output()
            .unwrap();
        crate::harness::Run::from(output)
    };

    let failed = apply(&["apply"]).failure();
    assert!(
        failed.stderr.contains("tasks_tenant_id_idx"),
        "{}",
        failed.stderr
    );
    db.execute("DROP TABLE tasks_tenant_id_idx").await;
    let plan = apply(&["plan"]).success();
    assert!(
        plan.stdout.contains("PASSWORD '********'"),
        "{}",
        plan.stdout
    );
    let applied = apply(&["apply", "--format", "json"]).success();
    assert!(
        applied.stdout.contains("PASSWORD '********'"),
        "{}",
        applied.stdout
    );
    for run in [&failed, &plan, &applied] {
        assert!(!run.stdout.contains(&marker) && !run.stderr.contains(&marker));
        assert!(!run.stdout.contains("SCRAM-SHA-256$") && !run.stderr.contains("SCRAM-SHA-256$"));
    }

    let mut conn = db.connect().await;
    let recorded: String =
        sqlx::query_scalar("SELECT array_to_string(statements, ';') FROM rlsctl.apply_history")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(recorded.contains("PASSWORD '********'"), "{recorded}");
    assert!(
        !recorded.contains(&marker) && !recorded.contains("SCRAM-SHA-256$"),
        "{recorded}"
    );
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");

    // The verifier is right: with SCRAM required, the password logs in and
    // a wrong one does not (retried until the reloaded rules are in force).
    require_scram_password_for(&role).await;
    let started = Instant::now();
    while log_in(&db, &role, "not the password").await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pg_hba.conf never took effect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut as_role = log_in(&db, &role, &password)
        .await
        .expect("log in with the password set by apply");
    let current_user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut as_role)
        .await
        .unwrap();
    assert_eq!(current_user, role);

    let log = server_log();
    assert!(
        log.contains(&format!("CREATE ROLE \"{role}\"")) && log.contains("tasks_tenant_id_idx"),
        "the statements were logged"
    );
    assert!(!log.contains(&marker), "the password is in the server log");
}

#[test]
fn a_url_typed_without_its_flag_is_not_echoed_with_its_password() {
    for args in [
        vec!["plan", "postgres://admin:Hunter2Marker@db/app"],
        vec![
            "audit",
            "--databse-url=postgresql://admin:Hunter2Marker@db/app",
        ],
        vec!["verify", "host=db password=Hunter2Marker dbname=app"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains("Hunter2Marker"), "{args:?}: {all}");
        assert!(all.contains("error:"), "{all}");
    }
}
