//! NULL tenant: no tenant may write a row whose tenant is NULL, and no tenant
//! (nor a session with none bound) may see one.

use super::{detail, verdict, verify};
use crate::harness::{TestDb, simple_spec, unique};

/// `notes` with a nullable tenant column, applied for a fresh runtime role.
async fn applied_notes() -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE notes (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid,
            body text NOT NULL);",
    );
    db.spec(&simple_spec(&role, &["notes"]));
    db.rlsctl(&["apply"]).success();
    (db, role)
}

#[tokio::test]
async fn a_nullable_tenant_column_under_the_tenant_policy_hides_and_refuses_null_tenant_rows() {
    let (db, _) = applied_notes().await;
    let (code, matrix) = verify(&db, &["--strict"]);
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.notes", "null-tenant"), "PROVEN");
    let why = detail(&matrix, "public.notes", "null-tenant");
    assert!(
        why.contains("INSERT of a row with a NULL tenant: refused"),
        "{why}"
    );
    assert!(
        why.contains("tenant A sees no row whose tenant is NULL"),
        "{why}"
    );
}

#[tokio::test]
async fn a_policy_admitting_null_tenants_leaks_null_tenant_rows() {
    let (db, role) = applied_notes().await;
    db.execute(&format!(
        "DROP POLICY tenant_isolation ON notes;
         CREATE POLICY tenant_isolation ON notes TO {role}
           USING (tenant_id IS NULL OR tenant_id = (SELECT rls.current_tenant_id()))
           WITH CHECK (tenant_id IS NULL OR tenant_id = (SELECT rls.current_tenant_id()));"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.notes", "null-tenant"), "LEAK");
    let why = detail(&matrix, "public.notes", "null-tenant");
    assert!(
        why.contains("INSERT of a row with a NULL tenant was accepted"),
        "{why}"
    );
    assert!(
        why.contains("tenant A sees a row whose tenant is NULL"),
        "{why}"
    );
    // Rows of real tenants stay isolated: the NULL rows are the only way in.
    assert_eq!(verdict(&matrix, "public.notes", "update"), "PROVEN");
}
