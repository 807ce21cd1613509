//! Extra policies (`policies:`): each is shown by behaviour to have the effect
//! the spec declares, as the role it applies to — a restrictive USING hides
//! the tenant's own rows that fail it, a permissive read admits another
//! tenant's rows only where its expression does, a WITH CHECK refuses a row
//! failing it — and a live policy broader than the spec's is a LEAK naming it.

use super::{cell, verdict_as, verify};
use crate::harness::{PROJECTS, TestDb, unique};

const DOCUMENTS: &str = "CREATE TABLE documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'draft'
      CHECK (status IN ('draft', 'published', 'archived')),
    visibility text NOT NULL DEFAULT 'private');";

/// projects and documents for a fresh runtime role, with four extra policies.
async fn applied_with_extra_policies(extra: &str) -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", &format!("{PROJECTS}\n{DOCUMENTS}"));
    db.spec(&format!(
        "roles:
  - name: {role}
tables:
  - projects
  - documents
policies:
  - name: archived_read_only
    tables: [projects]
    command: update
    kind: restrictive
    using: NOT archived
  - name: hide_archived
    tables: [documents]
    command: select
    kind: restrictive
    using: status <> 'archived'
  - name: read_public
    tables: [documents]
    command: select
    roles: [{role}]
    using: visibility = 'public'
  - name: no_archived_inserts
    tables: [documents]
    command: insert
    kind: restrictive
    with_check: status <> 'archived'
{extra}"
    ));
    db.rlsctl(&["apply"]).success();
    (db, role)
}

#[tokio::test]
async fn each_extra_policy_is_proven_to_have_its_declared_effect() {
    let (db, _role) = applied_with_extra_policies("").await;
    let (code, matrix) = verify(&db, &["--strict"]);
    assert_eq!(code, 0, "{matrix:#}");
    for table in ["public.projects", "public.documents"] {
        let policies = cell(&matrix, table, "policies");
        assert_eq!(policies["verdict"], "PROVEN", "{policies:#}");
    }
    let detail = cell(&matrix, "public.documents", "policies")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    for shown in [
        "policy hide_archived (restrictive SELECT): tenant A's row that fails `status <> 'archived'` is hidden",
        "policy hide_archived (restrictive SELECT): tenant A's row that satisfies `status <> 'archived'` is visible, as declared",
        "policy read_public (permissive SELECT): tenant B's row that fails `visibility = 'public'` is hidden",
        "policy read_public (permissive SELECT): tenant B's row that satisfies `visibility = 'public'` is visible, as declared",
        "policy no_archived_inserts (restrictive INSERT): INSERT of tenant A's row that satisfies `status <> 'archived'`: admitted, as declared",
        "policy no_archived_inserts (restrictive INSERT): INSERT of a tenant A row that fails `status <> 'archived'`: refused",
    ] {
        assert!(detail.contains(shown), "{shown}\nin {detail}");
    }
    // Tables without extra policies get no such cell.
    assert_eq!(db.rlsctl(&["verify"]).code, 0);
    let text = db.rlsctl(&["verify"]).stdout;
    assert!(text.contains("pl=policies"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[tokio::test]
async fn a_live_policy_broader_than_the_spec_is_a_leak_naming_it() {
    let (db, role) = applied_with_extra_policies("").await;
    db.execute(&format!(
        "ALTER POLICY hide_archived ON documents USING (true);
         ALTER POLICY read_public ON documents USING (visibility IS NOT NULL);
         ALTER POLICY no_archived_inserts ON documents WITH CHECK (true);
         ALTER POLICY archived_read_only ON projects USING (true);
         GRANT UPDATE ON projects TO {role}"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    let documents = cell(&matrix, "public.documents", "policies");
    assert_eq!(documents["verdict"], "LEAK", "{documents:#}");
    let detail = documents["detail"].as_str().unwrap();
    for policy in ["hide_archived", "read_public", "no_archived_inserts"] {
        assert!(
            detail.contains(&format!("policy {policy} (")),
            "{policy} in {detail}"
        );
    }
    assert!(
        detail.contains("admits more than the spec declares"),
        "{detail}"
    );
    let projects = cell(&matrix, "public.projects", "policies");
    assert_eq!(projects["verdict"], "LEAK", "{projects:#}");
    assert!(
        projects["detail"]
            .as_str()
            .unwrap()
            .contains("policy archived_read_only (restrictive UPDATE)"),
        "{projects:#}"
    );
}

#[tokio::test]
async fn a_side_no_row_can_be_made_for_is_named_and_an_expression_that_cannot_be_evaluated_is_not_proven()
 {
    let (db, _role) = applied_with_extra_policies(
        "  - name: titled
    tables: [projects]
    command: delete
    kind: restrictive
    using: name ~ '^[A-Z]'
  - name: report_mode
    tables: [documents]
    command: delete
    kind: restrictive
    using: current_setting('app.report_mode') = 'on'
",
    )
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "{matrix:#}");
    // A plain probe row (its name made up) fails the pattern: that side is
    // shown; the other is named as not shown, with what to do.
    let projects = cell(&matrix, "public.projects", "policies");
    assert_eq!(projects["verdict"], "PROVEN", "{projects:#}");
    let detail = projects["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "policy titled (restrictive DELETE): DELETE of tenant A's row that fails `name ~ '^[A-Z]'`: left untouched"
        ),
        "{detail}"
    );
    assert!(
        detail.contains("not shown: no row of tenant A that satisfies `name ~ '^[A-Z]'`"),
        "{detail}"
    );
    assert!(detail.contains("probe_values"), "{detail}");
    // A setting the probe does not define: nothing can be shown.
    let documents = cell(&matrix, "public.documents", "policies");
    assert_eq!(documents["verdict"], "NOT_PROVEN", "{documents:#}");
    let detail = documents["detail"].as_str().unwrap();
    assert!(
        detail.contains("policy report_mode (restrictive DELETE)")
            && detail.contains("cannot be evaluated on a probe row"),
        "{detail}"
    );
    let (strict, _) = verify(&db, &["--strict"]);
    assert_eq!(strict, 2);
}

#[tokio::test]
async fn a_restrictive_policy_narrowing_a_cross_tenant_reader_is_proven_as_the_reader() {
    let db = TestDb::new().await;
    let (role, reader) = (unique("app"), unique("reader"));
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&format!(
        "roles:
  - name: {role}
  - name: {reader}
    cross_tenant: read
    reason: Reports across customers, archived projects left out.
tables:
  - projects
policies:
  - name: reports_skip_archived
    tables: [projects]
    command: select
    kind: restrictive
    roles: [{reader}]
    using: NOT archived
"
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &["--strict"]);
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &reader, "public.projects", "policies"),
        "PROVEN"
    );
    // Only the reader is named: the runtime role's row has no such cell.
    let runtime_row = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "public.projects" && o["role"] == role.as_str())
        .unwrap();
    assert!(
        runtime_row["cells"].get("policies").is_none(),
        "{runtime_row:#}"
    );

    db.execute("ALTER POLICY reports_skip_archived ON projects USING (true)")
        .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &reader, "public.projects", "policies"),
        "LEAK"
    );
}
