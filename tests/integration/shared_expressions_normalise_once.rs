//! Expressions many tables share (the tenant predicate, a cross-tenant role's
//! `true`, an extra policy's `NOT archived`) are normalised once per shape of
//! the columns they use, not once per table; the forms must still match what
//! the server stores on every table, or plan would never be empty again.

use crate::harness::{TestDb, unique};

const SCHEMA: &str = "
CREATE TABLE memberships (member_tenant uuid NOT NULL, user_name text NOT NULL);
CREATE TABLE projects (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false, title text);
CREATE TABLE tasks (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false);
CREATE TABLE notes (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived integer NOT NULL DEFAULT 0, body text);
CREATE TABLE labels (id bigint, tenant_id text NOT NULL);
CREATE TABLE events (id bigint NOT NULL, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false)
    PARTITION BY HASH (id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE SCHEMA staff;
CREATE FUNCTION staff.is_staff() RETURNS boolean LANGUAGE sql STABLE AS 'SELECT false';
";

#[tokio::test]
async fn plan_is_empty_after_apply_with_cross_tenant_roles_extra_policies_and_partitions() {
    let db = TestDb::new().await;
    let (app, reader, writer) = (unique("app"), unique("reader"), unique("writer"));
    db.migration("V1__schema.sql", SCHEMA);
    db.spec(&format!(
        "tenancy:
  type: uuid
roles:
  - name: {app}
  - name: {reader}
    cross_tenant: read
    reason: Reports across customers.
  - name: {writer}
    cross_tenant: read_write
    reason: Support fixes data for any customer.
cross_tenant:
  - name: support_staff
    when: staff.is_staff()
    access: read
    reason: Support engineers answer tickets for any customer.
tables:
  - projects
  - {{ name: tasks, commands: [select, insert] }}
  - events
  - notes
policies:
  - name: archived_read_only
    tables: [projects, tasks, events]
    command: update
    kind: restrictive
    using: NOT archived
  - name: archived_flag
    tables: [notes]
    command: update
    kind: restrictive
    using: archived = 0
  - name: member_of_tenant
    tables: [projects, tasks, notes]
    command: select
    kind: restrictive
    using: EXISTS (SELECT 1 FROM memberships m WHERE m.member_tenant = tenant_id AND m.user_name = current_user)
"
    ));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    // What the server stored names each table where the expression refers
    // back to it, so a form taken from another table would never match.
    let stored = db
        .scalar_text(
            "SELECT qual FROM pg_policies WHERE tablename = 'tasks' AND policyname = 'member_of_tenant'",
        )
        .await;
    assert!(stored.contains("tasks.tenant_id"), "{stored}");

    // A changed expression is still seen as a change on every table carrying it.
    let spec = std::fs::read_to_string(db.path().join("policies/spec.yaml")).unwrap();
    db.spec(&spec.replace("using: NOT archived", "using: archived IS NOT TRUE"));
    let planned = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    for table in ["projects", "tasks", "events"] {
        assert!(
            planned.iter().any(
                |s| s.contains("\"archived_read_only\"") && s.contains(&format!("\"{table}\""))
            ),
            "{table}: {planned:#?}"
        );
    }
    assert!(
        planned.iter().all(|s| !s.contains("member_of_tenant")),
        "{planned:#?}"
    );
}
