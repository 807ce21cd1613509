//! `password_env` sets the password of a declared role that already exists
//! without one, and `--rotate-passwords` replaces it; the secret is never shown.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

use crate::harness::{Run, TestDb, require_scram_password_for, unique};

const VARIABLE: &str = "RLSCTL_TEST_ROLE_PASSWORD";

fn spec(role: &str) -> String {
    format!("roles:\n  - name: {role}\n    login: true\n    password_env: {VARIABLE}\n")
}

fn run_with(db: &TestDb, password: &str, args: &[&str]) -> Run {
    let mut command = db.command(args);
    command.env(VARIABLE, password);
    Run::from(command.output().expect("run rlsctl"))
}

async fn log_in(db: &TestDb, role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::from_str(&db.url)
        .unwrap()
        .username(role)
        .password(password)
        .connect()
        .await
}

/// Requires SCRAM for `role` and waits until the server enforces it
/// (a reload is asynchronous): until then any password is let in.
async fn require_password(db: &TestDb, role: &str) {
    require_scram_password_for(role).await;
    for _ in 0..600 {
        if log_in(db, role, "certainly not the password")
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("pg_hba.conf never took effect for {role}");
}

fn never_shows(run: &Run, secret: &str) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("SCRAM-SHA-256$"), "{text}");
    }
}

/// The planned or applied statements about `role` itself (not its grants).
fn about(run: &Run, role: &str) -> Vec<String> {
    let subject = format!("ROLE \"{role}\"");
    run.planned_sql()
        .into_iter()
        .filter(|sql| sql.contains(&subject))
        .collect()
}

async fn recorded_history(db: &TestDb) -> Vec<(String, Vec<String>)> {
    let mut conn = db.connect().await;
    sqlx::query_as(
        "SELECT array_to_string(statements, ';'), flags FROM rlsctl.apply_history ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_role_another_admin_made_without_a_password_gets_it_and_can_log_in() {
    let db = TestDb::new().await;
    let role = unique("login");
    let secret = unique("Pw7Marker");
    db.execute(&format!("CREATE ROLE {role} LOGIN")).await;
    db.spec(&spec(&role));

    let plan = run_with(&db, &secret, &["plan", "--format", "json"]).success();
    let planned = about(&plan, &role);
    assert_eq!(
        planned,
        vec![format!("ALTER ROLE \"{role}\" PASSWORD '********'")],
        "{}",
        plan.stdout
    );
    never_shows(&plan, &secret);

    let applied = run_with(&db, &secret, &["apply"]).success();
    never_shows(&applied, &secret);
    require_password(&db, &role).await;
    log_in(&db, &role, &secret)
        .await
        .expect("log in with the password apply set");

    // Set once: the next plan has nothing to do.
    db.assert_converged();
    let history = recorded_history(&db).await;
    let (statements, _) = history.last().unwrap();
    assert!(statements.contains("PASSWORD '********'"), "{statements}");
    assert!(!statements.contains(&secret) && !statements.contains("SCRAM-SHA-256$"));
}

#[tokio::test]
async fn rotate_passwords_replaces_the_password_and_the_history_says_so() {
    let db = TestDb::new().await;
    let role = unique("login");
    let old = unique("Old7Marker");
    let new = unique("New7Marker");
    db.spec(&spec(&role));
    run_with(&db, &old, &["apply"]).success();
    require_password(&db, &role).await;
    log_in(&db, &role, &old).await.expect("the first password");

    // Without the flag, a changed variable alone changes nothing.
    let plan = run_with(&db, &new, &["plan", "--format", "json"]).success();
    assert_eq!(plan.planned_sql(), Vec::<String>::new(), "{}", plan.stdout);

    let rotated = run_with(
        &db,
        &new,
        &["apply", "--rotate-passwords", "--format", "json"],
    )
    .success();
    never_shows(&rotated, &new);
    never_shows(&rotated, &old);
    assert_eq!(
        about(&rotated, &role),
        vec![format!("ALTER ROLE \"{role}\" PASSWORD '********'")]
    );
    assert!(
        log_in(&db, &role, &old).await.is_err(),
        "the old password still works"
    );
    log_in(&db, &role, &new).await.expect("the new password");

    let history = recorded_history(&db).await;
    let (statements, flags) = history.last().unwrap();
    assert!(
        flags.contains(&"--rotate-passwords".to_string()),
        "{flags:?}"
    );
    assert!(!statements.contains(&new) && !statements.contains("SCRAM-SHA-256$"));
}

#[tokio::test]
async fn an_admin_that_cannot_read_passwords_leaves_the_role_alone_and_names_the_flag() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("login");
    let secret = unique("Hid7Marker");
    db.execute(&format!("CREATE ROLE {role} LOGIN")).await;
    db.spec(&spec(&role));

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args(["apply"])
        .arg("--database-url")
        .arg(db.url_as(&admin))
        .current_dir(db.path())
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .env(VARIABLE, &secret);
    let applied = Run::from(command.output().expect("run rlsctl")).success();
    never_shows(&applied, &secret);
    let notice = applied
        .stdout
        .lines()
        .find(|l| l.contains(&format!("role {role}")))
        .unwrap_or_else(|| panic!("no notice about {role}:\n{}", applied.stdout));
    assert!(notice.contains("--rotate-passwords"), "{notice}");
    assert!(notice.contains(VARIABLE), "{notice}");
    assert!(
        about(&plan_as(&db, &admin, &secret), &role).is_empty(),
        "nothing is planned for the role"
    );
    let mut conn = db.connect().await;
    let unset: bool =
        sqlx::query_scalar("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(unset, "the role was left as it was");
}

/// `plan --format json` as `admin`.
fn plan_as(db: &TestDb, admin: &str, secret: &str) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args(["plan", "--format", "json"])
        .arg("--database-url")
        .arg(db.url_as(admin))
        .current_dir(db.path())
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .env(VARIABLE, secret);
    Run::from(command.output().expect("run rlsctl")).success()
}

#[tokio::test]
async fn a_rotation_the_admin_has_no_rights_for_is_refused_before_anything_runs() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("login");
    let secret = unique("Rot7Marker");
    // Made by the superuser: from PostgreSQL 16 a CREATEROLE admin also needs
    // ADMIN OPTION on a role to change its password.
    db.execute(&format!("CREATE ROLE {role} LOGIN")).await;
    db.spec(&spec(&role));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args(["apply", "--rotate-passwords"])
        .arg("--database-url")
        .arg(db.url_as(&admin))
        .current_dir(db.path())
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .env(VARIABLE, &secret);
    let run = Run::from(command.output().expect("run rlsctl"));
    never_shows(&run, &secret);
    let mut conn = db.connect().await;
    let unset: bool =
        sqlx::query_scalar("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if db.server_version().await >= 160000 {
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains(&format!("setting the password of role {role}"))
                && run.stderr.contains("WITH ADMIN OPTION"),
            "{}",
            run.stderr
        );
        assert!(unset, "nothing changed");
        assert_eq!(db.history_rows().await, 0);
    } else {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(!unset, "the password was set");
    }
}
