//! SECURITY DEFINER functions: one the runtime role can call with no argument
//! that reads a tenant table runs with its owner's rights, so it must filter
//! by the bound tenant itself.

use super::{applied_projects, detail, objects, verdict, verify};

#[tokio::test]
async fn a_definer_function_returning_every_tenants_rows_is_a_leak() {
    let (db, role) = applied_projects().await;
    // Owned by the test's superuser admin: it reads past every policy.
    db.execute(&format!(
        "CREATE FUNCTION all_projects() RETURNS SETOF projects
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM projects';
         CREATE FUNCTION project_count(since timestamptz DEFAULT NULL) RETURNS bigint
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT count(*) FROM projects';
         CREATE FUNCTION project_named(wanted text) RETURNS SETOF projects
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM projects WHERE name = wanted';
         REVOKE EXECUTE ON FUNCTION all_projects(), project_count(timestamptz), project_named(text) FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION all_projects(), project_count(timestamptz), project_named(text) TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.all_projects()", "read"), "LEAK");
    let why = detail(&matrix, "public.all_projects()", "read");
    assert!(
        why.contains("the function shows tenant A a row of tenant B"),
        "{why}"
    );
    // Every argument has a default, so it is called; but a count carries no
    // row of B to recognise, which is said rather than called proven.
    assert_eq!(
        verdict(
            &matrix,
            "public.project_count(since timestamp with time zone)",
            "read"
        ),
        "NOT_PROVEN"
    );
    let why = detail(
        &matrix,
        "public.project_count(since timestamp with time zone)",
        "read",
    );
    assert!(why.contains("nothing to test with"), "{why}");
    // A required argument: verify cannot know a meaningful one.
    let probed = objects(&matrix);
    assert!(
        !probed
            .iter()
            .any(|o| o.starts_with("public.project_named(")),
        "{probed:?}"
    );
}

#[tokio::test]
async fn a_volatile_or_set_role_only_definer_function_is_not_proven_and_not_called() {
    let (db, role) = applied_projects().await;
    let power = crate::harness::unique("power");
    crate::harness::cluster_execute(&format!("CREATE ROLE {power}")).await;
    db.execute(&format!(
        "CREATE SEQUENCE invoice_no;
         CREATE FUNCTION issue_invoices() RETURNS SETOF projects
             LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
             AS 'SELECT nextval(''invoice_no''); SELECT * FROM projects';
         CREATE FUNCTION power_projects() RETURNS SETOF projects
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM projects';
         REVOKE EXECUTE ON FUNCTION issue_invoices(), power_projects() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION issue_invoices() TO {role};
         GRANT EXECUTE ON FUNCTION power_projects() TO {power};
         ALTER ROLE {role} NOINHERIT;
         GRANT {power} TO {role};"
    ))
    .await;
    let (_, matrix) = verify(&db, &[]);
    assert_eq!(
        verdict(&matrix, "public.issue_invoices()", "read"),
        "NOT_PROVEN"
    );
    assert!(detail(&matrix, "public.issue_invoices()", "read").contains("VOLATILE"));
    assert_eq!(
        db.scalar_i64("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM invoice_no")
            .await,
        0,
        "verify called the volatile function"
    );
    assert_eq!(
        verdict(&matrix, "public.power_projects()", "read"),
        "NOT_PROVEN"
    );
    assert!(detail(&matrix, "public.power_projects()", "read").contains("SET ROLE"));
    db.execute(&format!(
        "REVOKE {power} FROM {role}; ALTER ROLE {role} INHERIT; DROP OWNED BY {power}"
    ))
    .await;
    crate::harness::cluster_execute(&format!("DROP ROLE {power}")).await;
}

#[tokio::test]
async fn a_definer_function_that_filters_by_the_bound_tenant_is_proven() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE FUNCTION my_projects() RETURNS SETOF projects
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM projects WHERE tenant_id = rls.current_tenant_id()';
         CREATE FUNCTION other_projects() RETURNS SETOF projects
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM projects';
         REVOKE EXECUTE ON FUNCTION my_projects(), other_projects() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION my_projects() TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.my_projects()", "read"), "PROVEN");
    // Not callable by the runtime role: nothing to fear from it.
    assert_eq!(
        verdict(&matrix, "public.other_projects()", "read"),
        "PROVEN"
    );
    let why = detail(&matrix, "public.other_projects()", "read");
    assert!(why.contains("may not call"), "{why}");
}

/// A body that reaches tenant rows through a view is probed through the
/// view's tables; one that builds its SQL at run time cannot say which
/// tables it reads: not proven, never left out.
#[tokio::test]
async fn definer_functions_reading_through_a_view_or_dynamic_sql_are_not_left_out() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE VIEW project_names AS SELECT id, tenant_id, name FROM projects;
         CREATE FUNCTION via_view() RETURNS SETOF project_names
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
             AS 'SELECT * FROM project_names';
         CREATE FUNCTION dynamic_projects() RETURNS SETOF projects
             LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
         BEGIN
             RETURN QUERY EXECUTE 'SELECT * FROM projects';
         END $$;
         REVOKE EXECUTE ON FUNCTION via_view(), dynamic_projects() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION via_view(), dynamic_projects() TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.via_view()", "read"), "LEAK");
    assert_eq!(
        verdict(&matrix, "public.dynamic_projects()", "read"),
        "NOT_PROVEN"
    );
    assert!(detail(&matrix, "public.dynamic_projects()", "read").contains("EXECUTE"));
}
