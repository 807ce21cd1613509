//! `--targets`: one command against several databases, each on its own, one
//! combined report, the exit code of the worst; a target that cannot be
//! reached fails alone, and no password is ever shown.

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// The superuser URL of `db` with a password in it (the test cluster trusts
/// every connection, so the password is only there to be hidden).
fn with_password(db: &TestDb, password: &str) -> String {
    db.url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    )
}

const UNREACHABLE: &str = "postgres://rlsctl:unreachable-secret@127.0.0.1:1/nowhere";

fn fleet(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let output = db
        .offline_command(args)
        .env("FLEET_SECOND_URL", with_password(db, "second-secret"))
        .env_remove("DATABASE_URL")
        .env_remove("RLSCTL_ADMIN_DATABASE_URL")
        .output()
        .expect("run rlsctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn apply_plan_and_audit_reach_every_target_and_an_unreachable_one_fails_alone() {
    let (first, second, third) = (
        TestDb::new().await,
        TestDb::new().await,
        TestDb::new().await,
    );
    let role = unique("app");
    first.migration("V1__schema.sql", PROJECTS);
    first.spec(&simple_spec(&role, &["projects", "tasks"]));
    // The second database is reached through FLEET_SECOND_URL, which `fleet`
    // points at the first one's server but with this database's name.
    let second_env = with_password(&second, "second-secret");
    std::fs::write(
        first.path().join("fleet.yaml"),
        format!(
            "- name: first\n  url: {}\n- name: second\n  env: SECOND_URL\n- name: third\n  url: {}\n- name: down\n  url: {UNREACHABLE}\n",
            with_password(&first, "first-secret"),
            with_password(&third, "third-secret"),
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = first
            .offline_command(args)
            .env("SECOND_URL", &second_env)
            .env_remove("DATABASE_URL")
            .env_remove("RLSCTL_ADMIN_DATABASE_URL")
            .output()
            .expect("run rlsctl");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        for secret in [
            "first-secret",
            "second-secret",
            "third-secret",
            "unreachable-secret",
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} shown by {args:?}:\n{stdout}\n{stderr}"
            );
        }
        (output.status.code().unwrap_or(-1), stdout, stderr)
    };

    let (code, stdout, stderr) = run(&[
        "apply",
        "--targets",
        "fleet.yaml",
        "--format",
        "json",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 1, "worst target failed\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let rows = report["targets"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(names, ["first", "second", "third", "down"]);
    for row in &rows[..3] {
        assert_eq!(row["status"], "ok", "{row}");
        assert!(row["result"]["executed"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["result"]["migrations"][0], "V1__schema", "{row}");
    }
    assert_eq!(rows[3]["status"], "failed");
    assert!(
        rows[3]["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{}",
        rows[3]
    );
    assert_eq!(report["summary"]["failed"], 1);

    // Each database really was converged, not only reported so.
    for db in [&first, &second, &third] {
        assert_eq!(
            db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname IN ('projects', 'tasks') AND relrowsecurity AND relforcerowsecurity")
                .await,
            2,
            "{}",
            db.name()
        );
    }

    let (code, stdout, _) = run(&["plan", "--targets", "fleet.yaml", "--exit-code"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("4 target(s): 3 ok, 0 need attention, 1 failed"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("0 statement(s), 0 pending migration(s)")
            .count(),
        3,
        "{stdout}"
    );

    // A finding on one target makes that row, and only it, need attention.
    third
        .execute("ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY")
        .await;
    let (code, stdout, _) = run(&[
        "audit",
        "--targets",
        "fleet.yaml",
        "--fleet-format",
        "markdown",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
            .to_string()
    };
    assert!(row("first").contains("| ok | 0 |"), "{stdout}");
    assert!(row("second").contains("| ok | 0 |"), "{stdout}");
    assert!(row("third").contains("| ATTENTION | 2 |"), "{stdout}");
    assert!(row("down").contains("| FAILED | 1 |"), "{stdout}");
}

#[tokio::test]
async fn a_bad_targets_file_names_the_line_and_runs_nothing() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&simple_spec(&role, &["projects"]));
    std::fs::write(
        db.path().join("fleet.txt"),
        format!(
            "# databases\n{}\nFLEET_SECOND_URL\nNOT_SET_ANYWHERE_URL\n",
            db.url
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = fleet(&db, &["apply", "--targets", "fleet.txt"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("fleet.txt:4:1"), "{stderr}");
    assert!(
        stderr.contains("NOT_SET_ANYWHERE_URL is not set"),
        "{stderr}"
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'projects'")
            .await,
        0,
        "no migration ran"
    );
}

#[tokio::test]
async fn check_and_verify_prove_isolation_on_every_target() {
    let (first, second) = (TestDb::new().await, TestDb::new().await);
    let role = unique("app");
    first.migration("V1__schema.sql", PROJECTS);
    first.spec(&simple_spec(&role, &["projects", "tasks"]));
    std::fs::write(
        first.path().join("fleet.txt"),
        format!("{}\nFLEET_SECOND_URL\n", first.url),
    )
    .unwrap();
    // FLEET_SECOND_URL names the first database in `fleet`: point it at the second.
    let run = |args: &[&str]| {
        let output = first
            .offline_command(args)
            .env("FLEET_SECOND_URL", with_password(&second, "second-secret"))
            .env_remove("DATABASE_URL")
            .env_remove("RLSCTL_ADMIN_DATABASE_URL")
            .output()
            .expect("run rlsctl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(!stdout.contains("second-secret"), "{stdout}");
        (output.status.code().unwrap_or(-1), stdout)
    };

    let (code, stdout) = run(&["check", "--targets", "fleet.txt", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    for row in report["targets"].as_array().unwrap() {
        assert_eq!(row["result"]["passed"], true, "{row}");
        assert_eq!(row["result"]["verify"]["summary"]["leaks"], 0, "{row}");
        assert!(
            row["result"]["verify"]["summary"]["proven"]
                .as_u64()
                .unwrap()
                > 0,
            "{row}"
        );
    }

    // A policy dropped on the second database is a leak there, and only there.
    second
        .execute("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY")
        .await;
    let (code, stdout) = run(&["verify", "--targets", "fleet.txt"]);
    assert_eq!(code, 2, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let leak_rows = lines.iter().filter(|l| l.contains("ATTENTION")).count();
    let ok_rows = lines.iter().filter(|l| l.contains(" ok ")).count();
    assert_eq!((ok_rows, leak_rows), (1, 1), "{stdout}");
    assert!(stdout.contains("FLEET_SECOND_URL"), "{stdout}");
}
