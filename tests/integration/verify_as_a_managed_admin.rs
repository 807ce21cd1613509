//! verify run by a managed-PostgreSQL admin (RDS, Cloud SQL, Supabase…): it owns
//! the database and the tables and has CREATEROLE, but is neither SUPERUSER
//! nor BYPASSRLS. verify grants itself the runtime role inside its rolled-back
//! transaction, proves every cell, and leaves no membership behind; where it
//! may not grant that, it stops and names the grant to ask for.

use serde_json::Value;

use crate::harness::{TestDb, simple_spec, unique};

/// Tasks hang off projects, so probe rows need parents planted under RLS too.
const SCHEMA: &str = "CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name text NOT NULL);
CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL REFERENCES projects (id),
    title text NOT NULL);";

/// A managed admin, its database, and a fresh runtime role that the admin's
/// own `apply` creates (with the tables, FORCEd, owned by the admin).
async fn applied_by_a_managed_admin() -> (TestDb, String, String) {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("app");
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&simple_spec(&role, &["projects", "tasks"]));
    db.rlsctl_as(&admin, &["apply"]).success();
    (db, admin, role)
}

/// Every cell that is not PROVEN, as "object [probe] VERDICT: detail".
fn unproven(matrix: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for object in matrix["objects"].as_array().unwrap() {
        for (probe, cell) in object["cells"].as_object().unwrap() {
            if cell["verdict"] != "PROVEN" {
                out.push(format!(
                    "{} [{probe}] {}: {}",
                    object["object"].as_str().unwrap(),
                    cell["verdict"].as_str().unwrap(),
                    cell["detail"].as_str().unwrap()
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_managed_admin_proves_every_cell_and_leaves_no_membership_behind() {
    let (db, admin, role) = applied_by_a_managed_admin().await;
    let facts = db.fingerprint(&[&admin, &role]).await;
    // The situation verify has to cope with: owner of FORCEd tables, no
    // superuser, no BYPASSRLS, no membership in the runtime role.
    assert!(
        facts.iter().any(|l| l.starts_with(&format!(
            "relation public.projects kind=r rls=t force=t owner={admin} "
        ))),
        "{facts:#?}"
    );
    // PostgreSQL 16+ makes the creator of a role its member, with ADMIN
    // OPTION but neither INHERIT nor SET; 15 makes no membership at all.
    let expected_membership = if db.server_version().await >= 160000 {
        format!(
            "{{\"{role}{{\\\"set_option\\\": false, \\\"admin_option\\\": true, \\\"inherit_option\\\": false}}\"}}"
        )
    } else {
        "{}".to_string()
    };
    assert!(
        facts.contains(&format!(
            "role {admin} login=t super=f bypass=f createrole=t inherit=t password=f member_of={expected_membership}"
        )),
        "{facts:#?}"
    );

    let run = db.rlsctl_as(&admin, &["verify", "--strict", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    assert_eq!(unproven(&matrix), Vec::<String>::new());
    // 9 probes × 2 tables + the pooled connection.
    assert_eq!(matrix["summary"]["proven"], 19);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // The grant, the probe rows and the role switches were all rolled back.
    assert_eq!(db.fingerprint(&[&admin, &role]).await, facts);

    let run = db.rlsctl_as(&admin, &["check", "--strict", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert_eq!(run.json()["passed"], true);
}

#[tokio::test]
async fn a_policy_that_lets_every_row_through_is_a_leak_as_a_managed_admin_too() {
    let (db, admin, role) = applied_by_a_managed_admin().await;
    db.execute_as(
        &admin,
        &format!("CREATE POLICY everything ON projects FOR SELECT TO {role} USING (true)"),
    )
    .await;

    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    let projects = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "public.projects")
        .unwrap();
    assert_eq!(projects["cells"]["read"]["verdict"], "LEAK", "{projects:#}");
    assert_eq!(
        projects["cells"]["unbound-read"]["verdict"], "LEAK",
        "{projects:#}"
    );
}

#[tokio::test]
async fn an_admin_that_may_not_grant_itself_the_runtime_role_is_told_which_grant_to_ask_for() {
    let (db, admin, role) = applied_by_a_managed_admin().await;
    let version = db
        .scalar_i64("SELECT current_setting('server_version_num')::bigint")
        .await;
    let expected = if version >= 160_000 {
        // 16+: the creator holds ADMIN OPTION on the roles it made.
        db.execute(&format!("REVOKE ADMIN OPTION FOR {role} FROM {admin}"))
            .await;
        format!("GRANT {role} TO {admin} WITH INHERIT TRUE, SET TRUE")
    } else {
        // 15: CREATEROLE is what lets a role grant others.
        db.execute(&format!("ALTER ROLE {admin} NOCREATEROLE"))
            .await;
        format!("GRANT {role} TO {admin}")
    };
    let facts = db.fingerprint(&[&admin, &role]).await;

    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stderr, run.stdout);
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(db.fingerprint(&[&admin, &role]).await, facts);
}

#[tokio::test]
async fn a_view_owned_by_the_managed_admin_is_not_proven_rather_than_probed_with_widened_rights() {
    let (db, admin, role) = applied_by_a_managed_admin().await;
    // Not security_invoker: it reads with its owner's (the admin's) rights,
    // which verify's grant of the runtime role would change.
    db.execute_as(
        &admin,
        &format!(
            "CREATE VIEW project_names AS SELECT id, tenant_id, name FROM projects;
             GRANT SELECT ON project_names TO {role};"
        ),
    )
    .await;

    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert_eq!(
        unproven(&run.json()),
        vec![format!(
            "public.project_names [read] NOT_PROVEN: the view runs with the rights of its owner {admin}, which verify widened by granting {admin} the role {role} for the probes; run verify as a superuser (or as a role that already is a member of {role}) to prove this view"
        )]
    );
}
