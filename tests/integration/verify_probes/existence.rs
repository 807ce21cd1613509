//! Existence: `INSERT … ON CONFLICT DO NOTHING` with another tenant's key must
//! insert as with a fresh key; "0 rows" tells tenant A the key is taken.

use super::{detail, verdict, verify};
use crate::harness::{TestDb, simple_spec, unique};

#[tokio::test]
async fn a_natural_key_unique_across_tenants_is_an_existence_oracle() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE accounts (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL,
            email text NOT NULL UNIQUE);
         CREATE TABLE members (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL,
            email text NOT NULL,
            UNIQUE (tenant_id, email));",
    );
    db.spec(&simple_spec(&role, &["accounts", "members"]));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.accounts", "existence"), "LEAK");
    let why = detail(&matrix, "public.accounts", "existence");
    assert!(why.contains("another tenant holds (email)"), "{why}");
    // Reads and writes are isolated all the same: only the key tells.
    assert_eq!(verdict(&matrix, "public.accounts", "read"), "PROVEN");
    // Scoped by tenant, the same key tells nothing; the server-made id is not probed.
    assert_eq!(verdict(&matrix, "public.members", "existence"), "PROVEN");
}

#[tokio::test]
async fn an_oracle_the_spec_accepts_is_shown_as_accepted_with_its_reason() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE instances (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL,
            phone_number text NOT NULL UNIQUE);",
    );
    db.spec(&format!(
        "{}exceptions:
  - finding: UNIQUE_NOT_SCOPED_BY_TENANT
    object: constraint instances_phone_number_key on public.instances
    reason: a number belongs to one account only
",
        simple_spec(&role, &["instances"])
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(
        code, 0,
        "an accepted oracle does not fail verify: {matrix:#}"
    );
    assert_eq!(
        verdict(&matrix, "public.instances", "existence"),
        "ACCEPTED"
    );
    let why = detail(&matrix, "public.instances", "existence");
    assert!(
        why.contains("a number belongs to one account only"),
        "{why}"
    );
    assert_eq!(matrix["summary"]["accepted"], 1);
    assert_eq!(matrix["summary"]["leaks"], 0);
}

#[tokio::test]
async fn an_id_the_application_chooses_without_a_default_is_an_existence_oracle() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE t1 (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);",
    );
    db.spec(&simple_spec(&role, &["t1"]));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.t1", "existence"), "LEAK");
    assert_eq!(matrix["summary"]["leaks"], 1, "{matrix:#}");
}
