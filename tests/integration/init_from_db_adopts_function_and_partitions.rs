//! `rlsctl init --from-db` on a setup with its own context function, a
//! partitioned table, a cross-tenant reader and an extra policy: the function
//! is adopted (`managed: false`), the partitions are covered by declaring
//! their parent, and plan has nothing to do.

use crate::harness::{TestDb, cluster_execute, unique};
use crate::init_from_db_hand_built_setups::{assert_described_exactly, init};

#[tokio::test]
async fn a_context_function_and_a_partitioned_table_are_adopted_as_they_are() {
    let db = TestDb::new().await;
    let (app, reporting) = (unique("app"), unique("reporting"));
    cluster_execute(&format!(
        "CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS; CREATE ROLE {reporting} NOLOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .await;
    let mut sql = format!(
        "CREATE SCHEMA app;
CREATE FUNCTION app.current_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.org', true), '')::uuid $$;
REVOKE EXECUTE ON FUNCTION app.current_org() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_org() TO {app};
GRANT USAGE ON SCHEMA app TO {app};
CREATE TABLE orders (id bigint PRIMARY KEY, org_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false);
CREATE INDEX ON orders (org_id);
CREATE TABLE events (org_id uuid NOT NULL, at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE INDEX ON events (org_id);
CREATE TABLE legacy_orders () INHERITS (orders);
CREATE INDEX ON legacy_orders (org_id);
CREATE POLICY orders_not_archived ON orders AS RESTRICTIVE FOR UPDATE TO {app} USING (NOT archived);
CREATE POLICY orders_not_archived ON legacy_orders AS RESTRICTIVE FOR UPDATE TO {app} USING (NOT archived);
"
    );
    for table in [
        "orders",
        "legacy_orders",
        "events",
        "events_2026",
        "events_2027",
    ] {
        sql.push_str(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table} TO {app}
  USING (org_id = (SELECT app.current_org())) WITH CHECK (org_id = (SELECT app.current_org()));
CREATE POLICY cross_tenant_{reporting} ON {table} FOR SELECT TO {reporting} USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {app};
GRANT SELECT ON {table} TO {reporting};
"
        ));
    }
    db.execute(&sql).await;

    let spec = init(&db);
    for expected in [
        "function: { name: app.current_org, managed: false }",
        "setting: app.org",
        &format!("- name: {reporting}\n    cross_tenant: read\n"),
        "- events\n  - orders\n",
        "- name: orders_not_archived\n    tables: [orders]\n    command: update\n    kind: restrictive\n    using: \"(NOT archived)\"\n",
    ] {
        assert!(spec.contains(expected), "`{expected}` missing from\n{spec}");
    }
    for child in ["events_2026", "legacy_orders"] {
        assert!(
            !spec.contains(child),
            "{child} is covered by its parent:\n{spec}"
        );
    }
    assert!(!spec.contains("policy_to"), "{spec}");
    assert_described_exactly(&db, &spec);

    // Declaring the parent covers the partitions a later migration creates.
    db.execute("CREATE TABLE events_2028 PARTITION OF events FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')")
        .await;
    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    for expected in [
        "ALTER TABLE \"public\".\"events_2028\" ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE \"public\".\"events_2028\" FORCE ROW LEVEL SECURITY",
        "CREATE POLICY \"tenant_isolation\" ON \"public\".\"events_2028\"",
    ] {
        assert!(
            plan.iter().any(|s| s.starts_with(expected)),
            "{expected}: {plan:#?}"
        );
    }
}
