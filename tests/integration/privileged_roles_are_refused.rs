//! A declared role that already exists as a superuser or with BYPASSRLS is
//! refused by plan and apply, with the statement a superuser must run: rlsctl
//! does not take privileges away from roles it did not create.

use rlsctl::quote::ident;

use crate::harness::{TestDb, unique};

/// Runs plan and apply; both must fail naming `role` and `fix`, changing nothing.
async fn refused(db: &TestDb, roles: &[&str], role: &str, found: &str, fix: &str) {
    let before = db.fingerprint(roles).await;
    for command in ["plan", "apply"] {
        let run = db.rlsctl(&[command]).failure();
        for expected in [
            &format!("role `{role}` exists and {found}"),
            &format!("`ALTER ROLE {} {fix}`", ident(role)),
            "a superuser must run that first",
            "does not take privileges away from existing roles it did not create",
        ] {
            assert!(
                run.stderr.contains(expected),
                "{command}: {expected}\n{}",
                run.stderr
            );
        }
    }
    assert_eq!(db.fingerprint(roles).await, before);
}

#[tokio::test]
async fn an_existing_superuser_runtime_role_is_refused_not_demoted() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.execute(&format!("CREATE ROLE {role} LOGIN SUPERUSER"))
        .await;
    refused(&db, &[&role], &role, "is a superuser", "NOSUPERUSER").await;
}

#[tokio::test]
async fn a_runtime_role_made_superuser_and_bypassrls_after_apply_is_refused_not_demoted() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.execute(&format!("ALTER ROLE {role} SUPERUSER BYPASSRLS"))
        .await;
    refused(
        &db,
        &[&role],
        &role,
        "is a superuser and has BYPASSRLS",
        "NOSUPERUSER NOBYPASSRLS",
    )
    .await;
}

#[tokio::test]
async fn an_existing_bypassrls_cross_tenant_role_is_refused() {
    let (db, app) = TestDb::with_projects(&["projects"]).await;
    let bi = unique("bi");
    db.execute(&format!("CREATE ROLE {bi} BYPASSRLS")).await;
    db.spec(&format!(
        "roles:\n  - name: {app}\n  - name: {bi}\n    cross_tenant: read\n    reason: dashboards\ntables:\n  - projects\n"
    ));
    refused(&db, &[&app, &bi], &bi, "has BYPASSRLS", "NOBYPASSRLS").await;
}
