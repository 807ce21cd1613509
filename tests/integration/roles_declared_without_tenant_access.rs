//! `no_tenant_access:` names existing roles that must reach no tenant's rows
//! (Supabase's `anon`, reached by SET ROLE, so not a LOGIN role): audit
//! reports every privilege they hold on a tenant table, with the path.

use crate::harness::{PROJECTS, TestDb, unique};

fn spec(app: &str, anon: &str) -> String {
    format!(
        "roles:\n  - name: {app}\ntables:\n  - projects\n  - tasks\nno_tenant_access: [{anon}]\n"
    )
}

/// (id, object, severity, found) of each finding, role names written `{anon}`.
fn findings(run: &crate::harness::Run, anon: &str) -> Vec<(String, String, String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().replace(anon, "{anon}");
            (text("id"), text("object"), text("severity"), text("found"))
        })
        .collect()
}

/// An applied project, plus an anonymous role that kept TRUNCATE on a
/// tenant table and SELECT on another: the first empties every tenant's
/// rows (error, audit fails), the second is denied by the policies today
/// (warning). Revoked, audit has nothing to say about the role.
#[tokio::test]
async fn an_anonymous_role_with_truncate_fails_the_audit_until_revoked() {
    let db = TestDb::new().await;
    let (app, anon) = (unique("app"), unique("anon"));
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec(&app, &anon));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!(
        "CREATE ROLE {anon} NOLOGIN; GRANT TRUNCATE ON projects TO {anon}; GRANT SELECT ON tasks TO {anon}"
    ))
    .await;

    let run = db.rlsctl(&["audit", "--format", "json"]);
    let found = findings(&run, &anon);
    assert_eq!(run.code, 2, "{found:#?}\n{}", run.stderr);
    assert!(
        found.contains(&(
            "TRUNCATE_GRANTED".into(),
            "table public.projects".into(),
            "error".into(),
            "{anon} may TRUNCATE it (granted to {anon})".into()
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&(
            "NO_TENANT_ACCESS_ROLE_GRANTED".into(),
            "table public.tasks".into(),
            "warning".into(),
            "{anon} is declared no_tenant_access, and {anon} may SELECT it (granted to {anon}); no policy applies to it yet".into()
        )),
        "{found:#?}"
    );

    // A policy for everyone makes the SELECT a way to other tenants' rows.
    db.execute("CREATE POLICY everyone ON tasks USING (true)")
        .await;
    let found = findings(&db.rlsctl(&["audit", "--format", "json"]), &anon);
    assert!(
        found.iter().any(
            |(id, object, severity, text)| id == "NO_TENANT_ACCESS_ROLE_GRANTED"
                && object == "table public.tasks"
                && severity == "error"
                && text.ends_with("policy everyone applies to it")
        ),
        "{found:#?}"
    );
    db.execute("DROP POLICY everyone ON tasks").await;

    db.execute(&format!("REVOKE ALL ON projects, tasks FROM {anon}"))
        .await;
    let run = db.rlsctl(&["audit", "--format", "json"]);
    let found = findings(&run, &anon);
    assert!(
        !found.iter().any(|(_, _, _, text)| text.contains("{anon}")),
        "{found:#?}"
    );
    assert_eq!(run.code, 0, "{found:#?}\n{}", run.stderr);
}

/// The privilege reaches the role through a group it is a member of: the
/// finding names the membership and the fix revokes it.
#[tokio::test]
async fn a_privilege_through_a_group_names_the_membership() {
    let db = TestDb::new().await;
    let (app, anon) = (unique("app"), unique("anon"));
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec(&app, &anon));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!(
        "CREATE ROLE {anon} NOLOGIN; CREATE ROLE {anon}_api NOLOGIN;
         GRANT DELETE ON projects TO {anon}_api; GRANT {anon}_api TO {anon}"
    ))
    .await;
    let report = db.rlsctl(&["audit", "--format", "json"]).json();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "NO_TENANT_ACCESS_ROLE_GRANTED")
        .unwrap_or_else(|| panic!("{report:#}"))
        .clone();
    let text = |k: &str| finding[k].as_str().unwrap().replace(&anon, "{anon}");
    assert!(
        text("found").contains(
            "{anon} may DELETE it: {anon} inherits the rights of {anon}_api (membership with INHERIT), which is granted DELETE"
        ),
        "{finding:#}"
    );
    assert!(
        text("fix").starts_with("REVOKE \"{anon}_api\" FROM \"{anon}\";"),
        "{finding:#}"
    );
}

/// A role cannot both reach tenants' rows and be declared to reach none:
/// the error points at the no_tenant_access entry, and nothing runs.
#[tokio::test]
async fn a_runtime_role_cannot_be_declared_without_tenant_access() {
    let db = TestDb::new().await;
    let app = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&format!(
        "roles:\n  - name: {app}\ntables:\n  - projects\nno_tenant_access:\n  - {app}\n"
    ));
    let run = db.rlsctl(&["audit"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("spec.yaml:6:5")
            && run.stderr.contains(
                "is listed under no_tenant_access but declared with tenant access under `roles:`"
            ),
        "{}",
        run.stderr
    );
}
