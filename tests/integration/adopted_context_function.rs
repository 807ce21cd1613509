//! `tenancy.function: { name, managed: false }`: a context function the
//! database already has is checked, never created, replaced or granted, and
//! refused when the policies could not trust it.

use crate::harness::{PROJECTS, TestDb, cluster_execute, unique};

const TENANT_A: &str = "00000000-0000-4000-8000-00000000000a";

/// The database's own function, made by its own migration.
fn migration(role: &str) -> String {
    format!(
        "{PROJECTS}
CREATE SCHEMA app;
CREATE FUNCTION app.current_tenant() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('app.tenant', true), '')::uuid $$;
REVOKE EXECUTE ON FUNCTION app.current_tenant() FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO {role};
GRANT EXECUTE ON FUNCTION app.current_tenant() TO {role};"
    )
}

fn spec(role: &str, function: &str) -> String {
    format!(
        "tenancy:\n  source:\n    setting: app.tenant\n  function: {{ name: {function}, managed: false }}\nroles:\n  - name: {role}\ntables:\n  - projects\n"
    )
}

/// The function's definition, owner and grants, as the catalog has them.
async fn function_lines(db: &TestDb, role: &str) -> Vec<String> {
    db.fingerprint(&[role])
        .await
        .into_iter()
        .filter(|line| line.starts_with("function app.") || line.starts_with("schema app"))
        .collect()
}

#[tokio::test]
async fn a_safe_adopted_function_is_used_as_it_is() {
    let db = TestDb::new().await;
    let role = unique("app");
    cluster_execute(&format!("CREATE ROLE {role}")).await;
    db.migration("V1__schema.sql", &migration(&role));
    db.spec(&spec(&role, "app.current_tenant"));

    let plan = db.rlsctl(&["plan", "--format", "json"]).success();
    let sql = plan.planned_sql();
    assert!(
        !sql.iter()
            .any(|s| s.contains("FUNCTION") || s.contains(r#"SCHEMA "app""#)),
        "nothing is done to the function or its schema: {sql:#?}"
    );
    assert!(
        sql.iter()
            .any(|s| s.contains(r#"(SELECT "app"."current_tenant"())"#)),
        "the policies call it: {sql:#?}"
    );

    db.rlsctl(&["apply"]).success();
    let before = function_lines(&db, &role).await;
    assert_eq!(before.len(), 2, "{before:#?}");
    db.assert_converged();
    db.rlsctl(&["apply"]).success();
    assert_eq!(function_lines(&db, &role).await, before);

    // The policies isolate through it.
    db.execute(&format!(
        "INSERT INTO projects (tenant_id, name) VALUES ('{TENANT_A}', 'a'), (gen_random_uuid(), 'b')"
    ))
    .await;
    let mut conn = db.connect().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL ROLE {role}; SELECT set_config('app.tenant', '{TENANT_A}', true)"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 1);
}

#[tokio::test]
async fn an_adopted_function_that_could_not_be_trusted_is_refused_by_name_and_reason() {
    let db = TestDb::new().await;
    let role = unique("app");
    let owners = unique("owners");
    cluster_execute(&format!(
        "CREATE ROLE {role}; CREATE ROLE {owners}; GRANT {owners} TO {role}"
    ))
    .await;
    db.migration("V1__schema.sql", &migration(&role));
    db.spec(&spec(&role, "app.current_tenant"));
    db.rlsctl(&["apply"]).success();

    // (what breaks it, what the refusal says, what mends it)
    let cases = [
        (
            "ALTER FUNCTION app.current_tenant() VOLATILE".to_string(),
            "it is VOLATILE",
            "ALTER FUNCTION app.current_tenant() STABLE".to_string(),
        ),
        (
            "ALTER FUNCTION app.current_tenant() IMMUTABLE".to_string(),
            "it is IMMUTABLE",
            "ALTER FUNCTION app.current_tenant() STABLE".to_string(),
        ),
        (
            "ALTER FUNCTION app.current_tenant() SECURITY DEFINER".to_string(),
            "SECURITY DEFINER without a pinned search_path",
            "ALTER FUNCTION app.current_tenant() SECURITY INVOKER".to_string(),
        ),
        (
            format!("ALTER FUNCTION app.current_tenant() OWNER TO {role}"),
            "a role the spec declares: ",
            // The owner's EXECUTE went with the ownership.
            format!(
                "ALTER FUNCTION app.current_tenant() OWNER TO postgres;
                 GRANT EXECUTE ON FUNCTION app.current_tenant() TO {role}"
            ),
        ),
        (
            format!("ALTER FUNCTION app.current_tenant() OWNER TO {owners}"),
            "is a member of it",
            "ALTER FUNCTION app.current_tenant() OWNER TO postgres".to_string(),
        ),
        (
            format!("REVOKE EXECUTE ON FUNCTION app.current_tenant() FROM {role}"),
            "may not call it",
            format!("GRANT EXECUTE ON FUNCTION app.current_tenant() TO {role}"),
        ),
        (
            // Fails open: an unbound connection gets a default tenant.
            format!(
                "CREATE OR REPLACE FUNCTION app.current_tenant() RETURNS uuid LANGUAGE sql STABLE
                   AS $$ SELECT coalesce(nullif(current_setting('app.tenant', true), ''), '{TENANT_A}')::uuid $$"
            ),
            "never set) it returns '00000000-0000-4000-8000-00000000000a'",
            "CREATE OR REPLACE FUNCTION app.current_tenant() RETURNS uuid LANGUAGE sql STABLE
               AS $$ SELECT nullif(current_setting('app.tenant', true), '')::uuid $$"
                .to_string(),
        ),
        (
            // Only '' (a binding that ended) reads as a tenant here.
            format!(
                "CREATE OR REPLACE FUNCTION app.current_tenant() RETURNS uuid LANGUAGE sql STABLE
                   AS $$ SELECT CASE current_setting('app.tenant', true) WHEN '' THEN '{TENANT_A}'
                                ELSE current_setting('app.tenant', true) END::uuid $$"
            ),
            "(app.tenant = '') it returns",
            "CREATE OR REPLACE FUNCTION app.current_tenant() RETURNS uuid LANGUAGE sql STABLE
               AS $$ SELECT nullif(current_setting('app.tenant', true), '')::uuid $$"
                .to_string(),
        ),
    ];
    for (breaks, says, mends) in &cases {
        db.execute(breaks).await;
        let before = db.fingerprint(&[&role]).await;
        for command in ["plan", "apply"] {
            let run = db.rlsctl(&[command]).failure();
            assert!(
                run.stderr.contains("context function app.current_tenant()")
                    && run.stderr.contains(says),
                "{breaks} / {command}: {}",
                run.stderr
            );
        }
        assert_eq!(db.fingerprint(&[&role]).await, before, "{breaks}");
        db.execute(mends).await;
        db.assert_converged();
    }

    // A pinned search_path makes SECURITY DEFINER acceptable.
    db.execute(
        "ALTER FUNCTION app.current_tenant() SECURITY DEFINER SET search_path = pg_catalog, pg_temp",
    )
    .await;
    db.assert_converged();

    db.spec(&spec(&role, "app.no_such_function"));
    let run = db.rlsctl(&["plan"]).failure();
    assert!(
        run.stderr.contains("app.no_such_function()") && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
}
