//! rlsctl run by the admin a managed cloud hands out: CREATEROLE and CREATEDB,
//! never SUPERUSER. It must alter only what changes (PostgreSQL refuses a
//! SUPERUSER or BYPASSRLS clause from it even when nothing would change), and
//! learn before anything runs that it lacks a right, with the grant to ask for.

use rlsctl::quote::ident;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// A database owned by a fresh admin that is not a superuser; its migrations
/// create `projects` and `tasks`.
async fn cloud_database(rights: &str) -> (TestDb, String) {
    let db = TestDb::new().await;
    let admin = unique("cloud_admin");
    db.execute(&format!(
        "CREATE ROLE {admin} LOGIN {rights};
         ALTER DATABASE {} OWNER TO {admin};
         ALTER SCHEMA public OWNER TO {admin};",
        db.name()
    ))
    .await;
    db.migration("V1__schema.sql", PROJECTS);
    (db, admin)
}

#[tokio::test]
async fn a_createrole_admin_converges_a_drifted_login_by_altering_login_alone() {
    let (db, admin) = cloud_database("CREATEROLE CREATEDB").await;
    let app = unique("app");
    db.spec(&format!(
        "roles:\n  - name: {app}\n    login: true\ntables:\n  - projects\n  - tasks\n"
    ));
    db.rlsctl_as(&admin, &["apply"]).success();
    assert!(db.state(&[&app]).await.roles[&app].login);

    db.execute(&format!("ALTER ROLE {app} NOLOGIN")).await;
    let planned = db
        .rlsctl_as(&admin, &["plan", "--format", "json"])
        .success()
        .planned_sql();
    assert_eq!(planned, vec![format!("ALTER ROLE {} LOGIN", ident(&app))]);
    db.rlsctl_as(&admin, &["apply"]).success();
    assert!(db.state(&[&app]).await.roles[&app].login);
    db.assert_converged();
}

#[tokio::test]
async fn an_admin_without_createrole_is_stopped_before_anything_runs_and_told_the_grant() {
    let (db, admin) = cloud_database("CREATEDB").await;
    let app = unique("app");
    db.spec(&simple_spec(&app, &["projects", "tasks"]));
    // Sequences are not transactional: a migration that ran and was rolled
    // back still leaves the sequence advanced.
    db.execute(&format!(
        "CREATE SEQUENCE migration_ran; GRANT USAGE ON SEQUENCE migration_ran TO {admin}"
    ))
    .await;
    db.migration("V2__mark.sql", "SELECT nextval('migration_ran');");
    let before = db.fingerprint(&[&admin, &app]).await;

    let run = db.rlsctl_as(&admin, &["apply"]).failure();
    let grant = format!("ALTER ROLE {} CREATEROLE;", ident(&admin));
    for expected in [
        &format!("creating role {app} needs CREATEROLE"),
        &grant,
        "A superuser must run first",
        "Nothing was run",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert_eq!(db.fingerprint(&[&admin, &app]).await, before);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM migration_ran WHERE is_called")
            .await,
        0,
        "a migration ran before the check"
    );

    let plan = db.rlsctl_as(&admin, &["plan"]).success();
    assert!(
        plan.stdout.contains("-- warning: role") && plan.stdout.contains(&grant),
        "{}",
        plan.stdout
    );
    let json = db
        .rlsctl_as(&admin, &["plan", "--format", "json"])
        .success()
        .json();
    let warnings = json["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{json:#}");
    assert!(warnings[0].as_str().unwrap().contains(&grant), "{json:#}");
}
