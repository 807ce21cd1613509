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
        verdict(&matrix, "public.project_count()", "read"),
        "NOT_PROVEN"
    );
    let why = detail(&matrix, "public.project_count()", "read");
    assert!(why.contains("nothing to test with"), "{why}");
    // A required argument: verify cannot know a meaningful one.
    let probed = objects(&matrix);
    assert!(
        !probed.contains(&"public.project_named()".to_string()),
        "{probed:?}"
    );
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
