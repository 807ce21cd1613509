//! Statements that bind the tenant for a whole session, read from
//! pg_stat_statements where it is installed: a runtime role's session-level
//! `SET app.current_tenant_id = …` (or a DO block's `set_config(…, false)`)
//! is an error naming the statement, its calls and its role; a
//! transaction-local binding is not reported; without
//! the extension the check is silent; an admin that cannot read other
//! roles' statements is told which grant would let it.
//!
//! The test server preloads pg_stat_statements where its library is
//! installed (every packaged major); each test installs the extension in its
//! own database, and the check reads only this database's rows.

use serde_json::Value;

use crate::harness::{TestDb, cluster_execute, unique};

const ID: &str = "TENANT_BOUND_AT_SESSION_LEVEL";

/// A correct setup for login role `{r}`, whose sessions are subject to the policy.
const SETUP: &str = r#"
CREATE ROLE {r} LOGIN;
CREATE SCHEMA rls;
CREATE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid $$;
GRANT USAGE ON SCHEMA rls TO {r};
CREATE TABLE projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
                       name text NOT NULL);
CREATE INDEX projects_tenant_id_idx ON projects (tenant_id);
ALTER TABLE projects ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projects TO {r}
  USING (tenant_id = (SELECT rls.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT rls.current_tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO {r};
"#;

const SESSION_BINDING: &str = "SET app.current_tenant_id = '00000000-0000-4000-8000-000000000001';
SELECT count(*) FROM projects;";

const TRANSACTION_BINDINGS: &str = "BEGIN;
SET LOCAL app.current_tenant_id = '00000000-0000-4000-8000-000000000001';
SELECT count(*) FROM projects;
COMMIT;
BEGIN;
SELECT set_config('app.current_tenant_id', '00000000-0000-4000-8000-000000000002', true);
SELECT count(*) FROM projects;
COMMIT;";

/// A fresh database with SETUP for a fresh role; returns both.
async fn setup() -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&SETUP.replace("{r}", &role)).await;
    (db, role)
}

/// `audit --role ROLE --format json` run as `admin` (None: the superuser):
/// this check's findings and the exit code.
fn audit(db: &TestDb, role: &str, admin: Option<&str>) -> (Vec<Value>, i32) {
    let args = ["audit", "--role", role, "--format", "json"];
    let run = match admin {
        Some(admin) => db.rlsctl_as(admin, &args),
        None => db.rlsctl(&args),
    };
    assert_ne!(run.code, 1, "audit failed: {}", run.stderr);
    let findings = run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == ID)
        .cloned()
        .collect();
    (findings, run.code)
}

fn field<'a>(finding: &'a Value, name: &str) -> &'a str {
    finding[name].as_str().unwrap()
}

#[tokio::test]
async fn a_session_level_set_of_the_tenant_is_an_error_naming_statement_calls_and_role() {
    let (db, role) = setup().await;
    if !db.install_stat_statements().await {
        return;
    }
    db.execute_as(&role, SESSION_BINDING).await;
    db.execute_as(&role, SESSION_BINDING).await;
    // The superuser bypasses RLS: its own session binding is a warning.
    db.execute(SESSION_BINDING).await;

    let (findings, code) = audit(&db, &role, None);
    assert_eq!(code, 2, "an error fails the default --fail-on error");
    let by = |who: &str| {
        findings
            .iter()
            .find(|f| field(f, "object").ends_with(&format!(" by {who}")))
            .unwrap_or_else(|| panic!("no finding for {who}: {findings:#?}"))
    };
    let runtime = by(&role);
    assert_eq!(field(runtime, "severity"), "error");
    assert!(
        field(runtime, "object").starts_with("statement \"SET app.current_tenant_id = "),
        "{runtime:#?}"
    );
    assert!(
        field(runtime, "found").contains("ran it 2 time(s)")
            && field(runtime, "found").contains("app.current_tenant_id"),
        "{runtime:#?}"
    );
    assert!(field(runtime, "fix").contains("SET LOCAL"), "{runtime:#?}");
    assert_eq!(field(by("postgres"), "severity"), "warning");
    assert_eq!(findings.len(), 2, "{findings:#?}");
}

#[tokio::test]
async fn a_binding_local_to_the_transaction_is_not_reported() {
    let (db, role) = setup().await;
    if !db.install_stat_statements().await {
        return;
    }
    db.execute_as(&role, TRANSACTION_BINDINGS).await;
    // pg_stat_statements did record the bindings: the check read and judged them.
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND query LIKE 'SET LOCAL app.current_tenant_id%'"
        )
        .await,
        1
    );

    let (findings, code) = audit(&db, &role, None);
    // The SET LOCAL is judged and passes; the set_config call was recorded
    // as set_config($1, $2, $3), which cannot be judged: said as info.
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(field(&findings[0], "severity"), "info");
    assert_eq!(field(&findings[0], "object"), format!("role {role}"));
    assert!(
        field(&findings[0], "found").contains("cannot be read here"),
        "{findings:#?}"
    );
    assert_eq!(code, 0);
}

/// The usual application form, `set_config('…', $1, false)`, is stored with
/// its constants replaced: audit cannot tell it from `true`, and says so for
/// the role that ran it instead of keeping silent.
#[tokio::test]
async fn a_plain_set_config_is_named_as_undecidable_for_the_role_that_ran_it() {
    let (db, role) = setup().await;
    if !db.install_stat_statements().await {
        return;
    }
    db.execute_as(
        &role,
        "SELECT set_config('app.current_tenant_id', '00000000-0000-4000-8000-000000000001', false)",
    )
    .await;
    let (findings, code) = audit(&db, &role, None);
    let undecided: Vec<&Value> = findings
        .iter()
        .filter(|f| field(f, "object") == format!("role {role}"))
        .collect();
    assert_eq!(undecided.len(), 1, "{findings:#?}");
    assert_eq!(field(undecided[0], "severity"), "info");
    assert!(
        field(undecided[0], "found").contains("1 call(s)"),
        "{findings:#?}"
    );
    assert_eq!(code, 0);
}

/// pg_stat_statements keeps a DO block's text whole, constants included:
/// a `set_config(…, false)` in its body is decided, `true` is not reported.
#[tokio::test]
async fn set_config_false_in_a_do_block_is_found_and_true_is_not() {
    let (db, role) = setup().await;
    if !db.install_stat_statements().await {
        return;
    }
    db.execute_as(
        &role,
        "DO $$ BEGIN PERFORM set_config('app.current_tenant_id', '00000000-0000-4000-8000-000000000001', false); END $$",
    )
    .await;
    db.execute_as(
        &role,
        "DO $$ BEGIN PERFORM set_config('app.current_tenant_id', '00000000-0000-4000-8000-000000000002', true); END $$",
    )
    .await;

    let (findings, code) = audit(&db, &role, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let object = field(&findings[0], "object");
    assert!(
        object.starts_with("statement \"DO $$ BEGIN PERFORM set_config(")
            && object.ends_with(&format!(" by {role}")),
        "{object}"
    );
    assert_eq!(field(&findings[0], "severity"), "error");
    assert_eq!(code, 2);
}

#[tokio::test]
async fn without_pg_stat_statements_the_check_is_silent() {
    let (db, role) = setup().await;
    db.execute_as(&role, SESSION_BINDING).await;

    let (findings, code) = audit(&db, &role, None);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(code, 0);
}

/// Without pg_read_all_stats an admin sees only its own statements' text:
/// the runtime role's binding is hidden, and the audit says which grant
/// shows it. With the grant the binding is found.
#[tokio::test]
async fn an_admin_that_cannot_read_other_roles_statements_is_told_the_grant() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("app");
    db.execute(&SETUP.replace("{r}", &role)).await;
    if !db.install_stat_statements().await {
        return;
    }
    db.execute_as(&role, SESSION_BINDING).await;

    let (findings, _) = audit(&db, &role, Some(&admin));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let info = &findings[0];
    assert_eq!(field(info, "severity"), "info");
    assert_eq!(field(info, "object"), "extension pg_stat_statements");
    assert_eq!(
        field(info, "fix"),
        format!("GRANT pg_read_all_stats TO \"{admin}\";")
    );

    cluster_execute(&format!("GRANT pg_read_all_stats TO {admin}")).await;
    let (findings, code) = audit(&db, &role, Some(&admin));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(field(&findings[0], "severity"), "error");
    assert!(field(&findings[0], "object").ends_with(&format!(" by {role}")));
    assert_eq!(code, 2);
}

/// The view raising (here: its schema is not the admin's to use) is an info
/// finding; the rest of the audit runs as before.
#[tokio::test]
async fn an_unreadable_log_is_info_and_the_audit_still_runs() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("app");
    db.execute(&SETUP.replace("{r}", &role)).await;
    if !server_preloads() {
        return;
    }
    db.execute("CREATE SCHEMA stats; CREATE EXTENSION pg_stat_statements SCHEMA stats")
        .await;
    db.execute_as(&role, SESSION_BINDING).await;

    let (findings, _) = audit(&db, &role, Some(&admin));
    let unreadable = findings
        .iter()
        .find(|f| field(f, "found").starts_with("pg_stat_statements could not be read"))
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(field(unreadable, "severity"), "info");
    assert!(
        field(unreadable, "found").contains("permission denied for schema stats"),
        "{unreadable:#?}"
    );
    let report = db
        .rlsctl_as(&admin, &["audit", "--role", &role, "--format", "json"])
        .json();
    assert_eq!(report["summary"]["tenant_tables"], 1, "{report:#?}");
}

fn server_preloads() -> bool {
    let preloads = crate::harness::server().preloads_stat_statements();
    if !preloads {
        eprintln!("SKIPPED: the test server does not preload pg_stat_statements");
    }
    preloads
}
