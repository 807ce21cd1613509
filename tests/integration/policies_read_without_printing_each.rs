//! The live policies are read as stored trees and printed once per distinct
//! shape (one `pg_get_expr` per shape, not per policy). Sharing a printed
//! form must never hide a difference: every table's policy text as read must
//! be exactly what PostgreSQL prints for that very table, and a policy
//! changed on one table of many alike must show as a change there alone.

use std::collections::BTreeMap;

use rlsctl::catalog::{self, Scope};
use sqlx::PgConnection;

use crate::harness::{TestDb, unique};

/// What PostgreSQL prints for every policy: (table, policy) → (USING, WITH CHECK).
type Printed = BTreeMap<(String, String), (Option<String>, Option<String>)>;

async fn printed_by_the_server(conn: &mut PgConnection) -> Printed {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT schemaname || '.' || tablename, policyname, qual, with_check
           FROM pg_catalog.pg_policies
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'rlsctl')",
    )
    .fetch_all(conn)
    .await
    .expect("read pg_policies");
    rows.into_iter()
        .map(|(table, policy, using, check)| ((table, policy), (using, check)))
        .collect()
}

async fn read_by_rlsctl(conn: &mut PgConnection) -> Printed {
    let snapshot = catalog::read(conn, &Scope::default())
        .await
        .expect("read the catalog");
    let mut out = Printed::new();
    for (name, table) in &snapshot.state.tables {
        for policy in table.policies.values() {
            let text = |e: &Option<rlsctl::spec::Expression>| e.as_ref().map(|e| e.to_string());
            out.insert(
                (
                    format!("{}.{}", name.schema, name.name),
                    policy.name.clone(),
                ),
                (text(&policy.using), text(&policy.with_check)),
            );
        }
    }
    out
}

#[tokio::test]
async fn the_same_policy_on_columns_at_other_positions_is_converged_on_both_tables() {
    let db = TestDb::new().await;
    let app = unique("app");
    // tenant_id and archived are columns 2 and 3 of one table, 4 and 2 of
    // the other (after a dropped column), so their stored trees differ.
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE first (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false);
         CREATE TABLE second (gone int, archived boolean NOT NULL DEFAULT false, id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
         ALTER TABLE second DROP COLUMN gone;",
    );
    db.spec(&format!(
        "roles:
  - name: {app}
tables:
  - first
  - second
policies:
  - name: archived_read_only
    tables: [first, second]
    command: update
    kind: restrictive
    using: NOT archived
    with_check: NOT archived AND tenant_id IS NOT NULL
"
    ));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    let mut conn = db.connect().await;
    let attnums: Vec<i64> = sqlx::query_scalar(
        "SELECT attnum::int8 FROM pg_attribute
          WHERE attrelid IN ('first'::regclass, 'second'::regclass) AND attname = 'tenant_id'
          ORDER BY attrelid::regclass::text",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        attnums,
        vec![2, 4],
        "the columns sit at different positions"
    );
    let server = printed_by_the_server(&mut conn).await;
    assert_eq!(read_by_rlsctl(&mut conn).await, server);
    assert_eq!(server.len(), 4, "{server:#?}");
}

#[tokio::test]
async fn a_policy_altered_on_one_of_fifty_identical_tables_is_reported_there_alone() {
    let db = TestDb::new().await;
    let app = unique("app");
    let tables: Vec<String> = (1..=50).map(|i| format!("t{i}")).collect();
    db.migration(
        "V1__schema.sql",
        "DO $$ BEGIN FOR i IN 1..50 LOOP
           EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, archived boolean NOT NULL DEFAULT false)', i);
         END LOOP; END $$",
    );
    db.spec(&format!(
        "roles:
  - name: {app}
tables: [{list}]
policies:
  - name: archived_read_only
    tables: [{list}]
    command: update
    kind: restrictive
    using: NOT archived
",
        list = tables.join(", ")
    ));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    // On one table another expression; on another the same expression
    // written otherwise (a cast to the type it already has), which PostgreSQL
    // stores as the same tree with other locations: no change.
    db.execute(
        "ALTER POLICY archived_read_only ON t17 USING (archived IS NOT TRUE);
         ALTER POLICY tenant_isolation ON t33 USING (tenant_id = (SELECT rls.current_tenant_id())::uuid)",
    )
    .await;
    let mut conn = db.connect().await;
    assert_eq!(
        read_by_rlsctl(&mut conn).await,
        printed_by_the_server(&mut conn).await
    );

    let planned = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    let touched: Vec<&String> = tables
        .iter()
        .filter(|t| planned.iter().any(|s| s.contains(&format!("\"{t}\""))))
        .collect();
    assert_eq!(touched, vec!["t17"], "{planned:#?}");
    assert!(
        planned
            .iter()
            .all(|s| s.contains("\"t17\"") && s.contains("archived_read_only")),
        "{planned:#?}"
    );
}

#[tokio::test]
async fn printed_forms_that_name_the_table_or_its_row_stay_each_tables_own() {
    let db = TestDb::new().await;
    // Same-named tables in two schemas, a reserved word as a table name, a
    // sub-select reading a table of the policy table's name, a whole-row
    // reference, constants with type modifiers, columns of one name but
    // different types, and one stored tree (column 2 > 0) that names a
    // different column on each of two tables: every printed form must be the
    // server's own.
    db.execute(
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE members (member_tenant uuid, who text);
         CREATE TABLE a.orders (id int, tenant_id uuid, amount numeric);
         CREATE TABLE b.orders (amount numeric(10,2), tenant_id uuid, id int);
         CREATE TABLE \"order\" (tenant_id uuid, id int, amount numeric);
         CREATE TABLE b.members (tenant_id text, who text, amount real);
         CREATE TABLE texts (tenant_id text, id int, amount numeric);
         CREATE TABLE ab (id int, a int, b int);
         CREATE TABLE ba (id int, b int, a int);
         CREATE POLICY second_column ON ab USING (a > 0);
         CREATE POLICY second_column ON ba USING (b > 0);
         DO $$ DECLARE t text; bare text; BEGIN
           FOREACH t IN ARRAY ARRAY['a.orders', 'b.orders', '\"order\"', 'b.members', 'texts'] LOOP
             bare := regexp_replace(t, '^[a-z]+[.]', '');
             EXECUTE format('CREATE POLICY outer_ref ON %s USING (EXISTS (SELECT 1 FROM members m WHERE m.member_tenant::text = tenant_id::text AND m.who = current_user))', t);
             EXECUTE format('CREATE POLICY whole_row ON %s USING (%s IS NOT NULL)', t, bare);
             EXECUTE format('CREATE POLICY typmod ON %s USING (amount::numeric(6,1) > 1.50::numeric(4,2)) WITH CHECK (tenant_id IS NOT NULL)', t);
             EXECUTE format('CREATE POLICY plain ON %s USING (tenant_id IS NOT NULL)', t);
           END LOOP;
           FOREACH t IN ARRAY ARRAY['a.orders', 'b.orders'] LOOP
             EXECUTE format('CREATE POLICY same_name ON %s USING (EXISTS (SELECT 1 FROM b.orders WHERE orders.id = 1))', t);
           END LOOP;
         END $$",
    )
    .await;
    let mut conn = db.connect().await;
    let server = printed_by_the_server(&mut conn).await;
    assert_eq!(read_by_rlsctl(&mut conn).await, server);
    assert_eq!(server.len(), 24, "{server:#?}");
    let qual = |table: &str, policy: &str| {
        server[&(table.to_string(), policy.to_string())]
            .0
            .clone()
            .unwrap()
    };
    assert!(
        qual("public.order", "outer_ref").contains("\"order\".tenant_id"),
        "{server:#?}"
    );
    assert_eq!(qual("public.ba", "second_column"), "(b > 0)");
}
