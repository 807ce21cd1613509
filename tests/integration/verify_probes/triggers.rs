//! Triggers: a SECURITY DEFINER trigger function runs with its owner's rights
//! when the runtime role writes, so it must not copy another tenant's rows
//! into the new row or into a table the role reads.

use super::{applied_projects, detail, verdict, verify};

const TASKS_TRIGGER: &str = "public.tasks trigger fill_title";

#[tokio::test]
async fn a_definer_trigger_that_copies_other_tenants_rows_into_the_new_row_is_a_leak() {
    let (db, _role) = applied_projects().await;
    // Owned by the test's superuser admin: its query reads past every policy.
    db.execute(
        "CREATE FUNCTION fill_title() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
         BEGIN
             NEW.title := coalesce((SELECT string_agg(p.id::text, ',') FROM projects p), '');
             RETURN NEW;
         END $$;
         CREATE TRIGGER fill_title BEFORE INSERT ON tasks
             FOR EACH ROW EXECUTE FUNCTION fill_title();",
    )
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, TASKS_TRIGGER, "insert"), "LEAK");
    let why = detail(&matrix, TASKS_TRIGGER, "insert");
    assert!(why.contains("came back holding tenant B's data"), "{why}");
}

#[tokio::test]
async fn a_definer_trigger_that_copies_other_tenants_rows_into_a_readable_table_is_a_leak() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE TABLE project_digest (note text);
         GRANT SELECT ON project_digest TO {role};
         CREATE FUNCTION digest_projects() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
         BEGIN
             INSERT INTO project_digest SELECT p.id::text FROM projects p;
             RETURN NULL;
         END $$;
         CREATE TRIGGER fill_title AFTER INSERT ON tasks
             FOR EACH ROW EXECUTE FUNCTION digest_projects();"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, TASKS_TRIGGER, "insert"), "LEAK");
    let why = detail(&matrix, TASKS_TRIGGER, "insert");
    assert!(
        why.contains("public.project_digest shows tenant A a row of tenant B"),
        "{why}"
    );
}

#[tokio::test]
async fn a_definer_trigger_that_reads_only_the_new_rows_tenant_is_proven() {
    let (db, _role) = applied_projects().await;
    db.execute(
        "CREATE FUNCTION fill_title() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
         BEGIN
             NEW.title := coalesce((SELECT string_agg(p.id::text, ',') FROM projects p
                                     WHERE p.tenant_id = NEW.tenant_id), '');
             RETURN NEW;
         END $$;
         CREATE TRIGGER fill_title BEFORE INSERT ON tasks
             FOR EACH ROW EXECUTE FUNCTION fill_title();",
    )
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(verdict(&matrix, TASKS_TRIGGER, "insert"), "PROVEN");
}

/// An INSERT does not fire an UPDATE trigger, nor tell whether a WHEN
/// condition held: not proven, with the reason, never proven by default.
#[tokio::test]
async fn a_definer_trigger_an_insert_does_not_surely_fire_is_not_proven() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE TABLE project_digest (note text);
         GRANT SELECT ON project_digest TO {role};
         CREATE FUNCTION digest_projects() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
         BEGIN
             INSERT INTO project_digest SELECT p.id::text FROM projects p;
             RETURN NULL;
         END $$;
         CREATE TRIGGER on_update AFTER UPDATE ON tasks
             FOR EACH ROW EXECUTE FUNCTION digest_projects();
         CREATE TRIGGER on_export AFTER INSERT ON tasks
             FOR EACH ROW WHEN (NEW.title = 'export') EXECUTE FUNCTION digest_projects();"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "{matrix:#}");
    let update = "public.tasks trigger on_update";
    assert_eq!(verdict(&matrix, update, "insert"), "NOT_PROVEN");
    assert!(detail(&matrix, update, "insert").contains("it fires on UPDATE"));
    let when = "public.tasks trigger on_export";
    assert_eq!(verdict(&matrix, when, "insert"), "NOT_PROVEN");
    assert!(detail(&matrix, when, "insert").contains("WHEN condition"));
}

/// The trigger function's own `SET search_path` decides where its unqualified
/// names land; the probe reads there.
#[tokio::test]
async fn a_copy_into_a_table_found_through_the_functions_own_search_path_is_a_leak() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE SCHEMA reports;
         CREATE TABLE reports.project_digest (note text);
         GRANT USAGE ON SCHEMA reports TO {role};
         GRANT SELECT ON reports.project_digest TO {role};
         CREATE FUNCTION reports.digest_projects() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = reports, public AS $$
         BEGIN
             INSERT INTO project_digest SELECT p.id::text FROM projects p;
             RETURN NULL;
         END $$;
         CREATE TRIGGER fill_title AFTER INSERT ON tasks
             FOR EACH ROW EXECUTE FUNCTION reports.digest_projects();"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, TASKS_TRIGGER, "insert"), "LEAK");
    assert!(
        detail(&matrix, TASKS_TRIGGER, "insert").contains("reports.project_digest"),
        "{matrix:#}"
    );
}
