//! audit with a spec: the repo's own setup is clean, drift is found, declared
//! exceptions are shown as accepted, and the reports carry the evidence.

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

fn ids(report: &serde_json::Value) -> Vec<(String, String, bool)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().into(),
                f["object"].as_str().unwrap().into(),
                !f["accepted"].is_null(),
            )
        })
        .collect()
}

#[tokio::test]
async fn drift_from_the_spec_is_reported_and_fails_the_run() {
    let (db, _role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.execute(
        "ALTER POLICY tenant_isolation ON projects USING (true); ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY;
         CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL)",
    )
    .await;

    let run = db.rlsctl(&["audit", "--format", "json"]);
    assert_eq!(run.code, 2, "errors fail the default --fail-on error");
    let found = ids(&run.json());
    for (id, object) in [
        (
            "DRIFT_POLICY_CHANGED",
            "policy tenant_isolation on public.projects",
        ),
        (
            "POLICY_WITHOUT_TENANT_FILTER",
            "policy tenant_isolation on public.projects",
        ),
        ("DRIFT_RLS", "table public.tasks"),
        ("TABLE_RLS_NOT_FORCED", "table public.tasks"),
        ("TABLE_WITHOUT_RLS", "table public.notes"),
        ("DRIFT_TABLE_UNDECLARED", "table public.notes"),
    ] {
        assert!(
            found.iter().any(|(i, o, _)| i == id && o == object),
            "{id} on {object}: {found:#?}"
        );
    }
}

#[tokio::test]
async fn declared_exceptions_are_shown_as_accepted_not_hidden() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", &format!("{PROJECTS}\nCREATE FUNCTION is_staff() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT false $$;\nALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name);"));
    db.spec(&format!(
        "{}cross_tenant:\n  - name: support\n    when: is_staff()\n    access: read\n    reason: Support answers tickets for any customer.\nexceptions:\n  - finding: UNIQUE_NOT_SCOPED_BY_TENANT\n    object: constraint projects_name_key on public.projects\n    reason: Project names are public slugs, unique across customers.\n",
        simple_spec(&role, &["projects", "tasks"])
    ));
    db.rlsctl(&["apply"]).success();

    let run = db.rlsctl(&["audit", "--format", "json", "--fail-on", "warning"]);
    let report = run.json();
    assert_eq!(
        run.code,
        0,
        "accepted findings do not fail the run: {:#?}",
        ids(&report)
    );
    let found = ids(&report);
    assert!(
        found.contains(&(
            "POLICY_WITHOUT_TENANT_FILTER".into(),
            "policy cross_tenant_support on public.projects".into(),
            true
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&(
            "UNIQUE_NOT_SCOPED_BY_TENANT".into(),
            "constraint projects_name_key on public.projects".into(),
            true
        )),
        "{found:#?}"
    );
    // The predicate's policy on both tables, and the unique key.
    assert_eq!(report["summary"]["accepted"], 3);

    let file = db.path().join("audit.md");
    db.rlsctl(&[
        "audit",
        "--format",
        "markdown",
        "--output",
        file.to_str().unwrap(),
    ])
    .success();
    let markdown = std::fs::read_to_string(&file).unwrap();
    let server = format!(
        "| Server | PostgreSQL {}",
        db.scalar_text("SELECT split_part(current_setting('server_version'), ' ', 1)")
            .await
    );
    for needle in [
        "# Tenant isolation audit",
        server.as_str(),
        "## Accepted exceptions",
        "Support answers tickets for any customer.",
        "## Tenant tables",
        "| public.projects | yes | yes |",
        "## Roles",
        "## Apply history",
        report["spec_hash"].as_str().unwrap(),
    ] {
        assert!(
            markdown.contains(needle),
            "missing {needle:?} in\n{markdown}"
        );
    }
}

#[tokio::test]
async fn explain_teaches_each_finding_and_rejects_unknown_ids() {
    let db = TestDb::new().await;
    let explain = |id: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args(["explain", id])
            .current_dir(db.path())
            .output()
            .unwrap()
    };
    let known = explain("view_bypasses_rls");
    assert!(known.status.success());
    let text = String::from_utf8_lossy(&known.stdout);
    assert!(
        text.contains("security_invoker") && text.contains("Why it matters"),
        "{text}"
    );
    for id in [
        "POLICY_OPEN_WHEN_UNBOUND",
        "POLICY_BROADER_THAN_TENANT",
        "LEAKPROOF_USER_FUNCTION",
        "SECURITY_DEFINER_SEARCH_PATH",
        "SCHEMA_CREATE_FOR_RUNTIME",
    ] {
        let out = explain(id);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with(id) && text.contains("Fix:"),
            "{id}: {text}"
        );
    }
    let unknown = explain("NOPE");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("TRUNCATE_GRANTED"));
}

#[tokio::test]
async fn audit_without_a_spec_or_a_role_cannot_run() {
    let db = TestDb::new().await;
    std::fs::remove_dir_all(db.path().join("policies")).unwrap();
    let run = db.rlsctl(&["audit"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--role"), "{}", run.stderr);
}

/// Applies a two-table spec, runs `breakage`, audits, and expects `id` on `object`.
async fn drift_after(breakage: &str, id: &str, object: &str) {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    db.execute(&breakage.replace("{r}", &role)).await;
    let run = db.rlsctl(&["audit", "--format", "json", "--fail-on", "warning"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let found = ids(&run.json());
    assert!(
        found
            .iter()
            .any(|(i, o, _)| i == id && o == &object.replace("{r}", &role)),
        "{id} on {object}: {found:#?}"
    );
}

#[tokio::test]
async fn drift_a_dropped_policy() {
    drift_after(
        "DROP POLICY tenant_isolation ON tasks",
        "DRIFT_POLICY_MISSING",
        "policy tenant_isolation on public.tasks",
    )
    .await;
}

#[tokio::test]
async fn drift_a_policy_added_by_hand() {
    drift_after(
        "CREATE POLICY hotfix ON tasks AS RESTRICTIVE USING (title <> '')",
        "DRIFT_POLICY_EXTRA",
        "policy hotfix on public.tasks",
    )
    .await;
}

#[tokio::test]
async fn drift_a_replaced_context_function() {
    drift_after(
        "CREATE OR REPLACE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT '00000000-0000-0000-0000-000000000001'::uuid $$",
        "DRIFT_CONTEXT_FUNCTION",
        "function rls.current_tenant_id()",
    )
    .await;
}

#[tokio::test]
async fn drift_a_role_given_bypassrls() {
    drift_after("ALTER ROLE {r} BYPASSRLS", "DRIFT_ROLE", "role {r}").await;
}

#[tokio::test]
async fn drift_an_extra_grant() {
    drift_after(
        "GRANT TRUNCATE ON tasks TO {r}",
        "DRIFT_GRANTS",
        "table public.tasks",
    )
    .await;
}

#[tokio::test]
async fn drift_a_dropped_tenant_index() {
    drift_after(
        "DROP INDEX tasks_tenant_id_idx",
        "DRIFT_TENANT_INDEX",
        "index tasks_tenant_id_idx on public.tasks",
    )
    .await;
}

#[tokio::test]
async fn an_audit_that_examined_no_tenant_table_says_so_and_fails() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&format!(
        "CREATE ROLE {role}; CREATE TABLE invoices (id int PRIMARY KEY, org_id uuid NOT NULL)"
    ))
    .await;
    // The tenant column is org_id, but the audit is told tenant_id: nothing to examine.
    let run = db.rlsctl(&["audit", "--role", &role, "--format", "json"]);
    assert_eq!(
        run.code, 2,
        "no tenant table is no clean bill: {}",
        run.stderr
    );
    assert_eq!(run.json()["summary"]["tenant_tables"], 0);
    assert!(
        run.stderr.contains("No tenant tables were examined"),
        "{}",
        run.stderr
    );
    let text = db.rlsctl(&["audit", "--role", &role]);
    assert_eq!(text.code, 2);
    assert!(
        text.stdout.contains("0 tenant tables examined")
            && text.stdout.contains("No tenant tables were examined"),
        "{}",
        text.stdout
    );

    // Fixed: the right tenant column, and a table that isolates by it.
    db.execute(&format!(
        "ALTER TABLE invoices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE INDEX ON invoices (org_id);
         CREATE POLICY org_isolation ON invoices TO {role}
           USING (org_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)"
    ))
    .await;
    let run = db.rlsctl(&[
        "audit",
        "--role",
        &role,
        "--tenant-column",
        "org_id",
        "--format",
        "json",
    ]);
    let report = run.json();
    assert_eq!(report["summary"]["tenant_tables"], 1);
    assert_eq!(run.code, 0, "{:#?}", ids(&report));
    let text = db.rlsctl(&["audit", "--role", &role, "--tenant-column", "org_id"]);
    assert!(
        text.stdout.contains("1 tenant table examined"),
        "{}",
        text.stdout
    );
}

/// Without a spec and with no table holding `--tenant-column`, the tenant
/// tables are found from their policies: the column compared with a tenant
/// context, whatever it is called, and the context function they call.
#[tokio::test]
async fn spec_less_audit_finds_tenant_tables_from_their_policies() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&format!(
        "CREATE ROLE {role};
         CREATE SCHEMA auth;
         CREATE FUNCTION auth.org_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
           AS $$ SELECT nullif(current_setting('app.org', true), '')::uuid $$;
         CREATE TABLE invoices (id int PRIMARY KEY, org_id uuid NOT NULL);
         ALTER TABLE invoices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE POLICY org_isolation ON invoices TO {role} USING (org_id = auth.org_id());
         GRANT SELECT ON invoices TO {role};"
    ))
    .await;
    let found = |db: &TestDb| {
        let report = db
            .rlsctl(&["audit", "--role", &role, "--format", "json"])
            .json();
        assert_eq!(report["summary"]["tenant_tables"], 1, "{report:#}");
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["found"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(id, _)| id == "CONTEXT_CALLED_PER_ROW" || id == "TENANT_INDEX_MISSING")
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found(&db),
        vec![
            (
                "CONTEXT_CALLED_PER_ROW".to_string(),
                "calls auth.org_id() outside a sub-select".to_string()
            ),
            (
                "TENANT_INDEX_MISSING".to_string(),
                "no valid index starts with org_id".to_string()
            ),
        ]
    );
    db.execute(
        "CREATE INDEX ON invoices (org_id);
         ALTER POLICY org_isolation ON invoices USING (org_id = (SELECT auth.org_id()))",
    )
    .await;
    assert_eq!(found(&db), Vec::<(String, String)>::new());
}
