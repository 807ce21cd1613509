//! Unbound: nothing visible and nothing writable with no tenant bound, in each
//! state "no tenant" takes: a fresh session that never defined the setting
//! (`current_setting(name, true)` is NULL), after `RESET` (the session's
//! default), and after a `SET LOCAL` transaction ended (`''`).

use super::{applied_projects, detail, verdict, verify};

/// Replaces the tenant policy of `projects` with one that also opens when `opens`.
fn policy_opening_when(role: &str, opens: &str) -> String {
    format!(
        "DROP POLICY tenant_isolation ON projects;
         CREATE POLICY tenant_isolation ON projects TO {role}
           USING ({opens} OR tenant_id = (SELECT rls.current_tenant_id()))
           WITH CHECK ({opens} OR tenant_id = (SELECT rls.current_tenant_id()));"
    )
}

#[tokio::test]
async fn a_policy_open_while_the_setting_was_never_defined_leaks_in_a_fresh_session() {
    let (db, role) = applied_projects().await;
    db.execute(&policy_opening_when(
        &role,
        "current_setting('app.current_tenant_id', true) IS NULL",
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    for probe in ["unbound-read", "unbound-write"] {
        assert_eq!(verdict(&matrix, "public.projects", probe), "LEAK");
        let why = detail(&matrix, "public.projects", probe);
        assert!(why.contains("fresh session"), "{why}");
        assert!(
            !why.contains("RESET"),
            "only the fresh session opens: {why}"
        );
    }
    // A tenant bound, the policy isolates.
    assert_eq!(verdict(&matrix, "public.projects", "read"), "PROVEN");
}

#[tokio::test]
async fn a_policy_open_on_an_empty_setting_leaks_after_a_set_local_transaction_ended() {
    let (db, role) = applied_projects().await;
    db.execute(&policy_opening_when(
        &role,
        "current_setting('app.current_tenant_id', true) = ''",
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    for probe in ["unbound-read", "unbound-write"] {
        assert_eq!(verdict(&matrix, "public.projects", probe), "LEAK");
        let why = detail(&matrix, "public.projects", probe);
        assert!(why.contains("SET LOCAL transaction ended"), "{why}");
        assert!(!why.contains("fresh session"), "NULL is not '': {why}");
    }
}

#[tokio::test]
async fn a_database_default_for_the_setting_leaks_after_reset() {
    let (db, _) = applied_projects().await;
    // A real tenant's row, and a default that binds every session to it:
    // RESET goes back to that tenant, while '' binds nobody.
    let tenant = "6d1f3c1e-0000-4000-8000-00000000cafe";
    db.execute(&format!(
        "INSERT INTO projects (tenant_id, name) VALUES ('{tenant}', 'real');
         ALTER DATABASE \"{}\" SET app.current_tenant_id = '{tenant}';",
        db.name()
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.projects", "unbound-read"), "LEAK");
    let why = detail(&matrix, "public.projects", "unbound-read");
    assert!(why.contains("after RESET"), "{why}");
    assert!(!why.contains("SET LOCAL transaction ended"), "{why}");
    // The session was bound before verify began, so the fresh-session form
    // says why it was not run rather than passing silently.
    assert!(why.contains("not run"), "{why}");
    assert_eq!(verdict(&matrix, "public.projects", "read"), "PROVEN");
}

#[tokio::test]
async fn a_fresh_session_form_that_cannot_plant_rows_says_so_instead_of_passing() {
    let (db, _) = applied_projects().await;
    // A trigger that reads the setting on every insert: without the setting
    // ever defined, not even the admin can plant a row.
    db.execute(
        "CREATE FUNCTION note_inserter() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM current_setting('app.current_tenant_id');
             RETURN NEW;
         END $$;
         CREATE TRIGGER note_inserter BEFORE INSERT ON projects
             FOR EACH ROW EXECUTE FUNCTION note_inserter();",
    )
    .await;
    let (code, matrix) = verify(&db, &["--table", "projects"]);
    assert_eq!(code, 0, "{matrix:#}");
    for probe in ["unbound-read", "unbound-write"] {
        assert_eq!(verdict(&matrix, "public.projects", probe), "PROVEN");
        let why = detail(&matrix, "public.projects", probe);
        assert!(
            why.contains("in a fresh session that never defined the setting: not run: no probe rows could be planted"),
            "{why}"
        );
    }
}
