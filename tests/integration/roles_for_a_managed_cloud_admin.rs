//! rlsctl run by the admin a managed cloud hands out: CREATEROLE and CREATEDB,
//! never SUPERUSER. It must alter only what changes (PostgreSQL refuses a
//! SUPERUSER or BYPASSRLS clause from it even when nothing would change).

use rlsctl::quote::ident;

use crate::harness::{PROJECTS, TestDb, unique};

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
