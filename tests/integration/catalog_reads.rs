//! The live state is read with the same number of queries however many tables exist.

use rlsctl::catalog::{self, Scope};

use crate::harness::TestDb;

#[tokio::test]
async fn catalog_query_count_does_not_grow_with_the_number_of_tables() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let scope = Scope::default();
    db.execute("CREATE TABLE t0 (id int, tenant_id uuid)").await;
    let small = catalog::read(&mut conn, &scope).await.unwrap();
    db.execute(
        "DO $$ BEGIN FOR i IN 1..200 LOOP
           EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, tenant_id uuid)', i);
           EXECUTE format('CREATE POLICY p ON t%s USING (true)', i);
         END LOOP; END $$",
    )
    .await;
    let large = catalog::read(&mut conn, &scope).await.unwrap();
    assert_eq!(large.state.tables.len(), 201);
    assert_eq!(
        large
            .state
            .tables
            .values()
            .filter(|t| t.policies.contains_key("p"))
            .count(),
        200
    );
    assert_eq!(small.queries, large.queries);
}

/// Key columns come back as attribute numbers and are named from the
/// columns the snapshot read; a table the snapshot did not read (outside the
/// user schemas, or created after it) is named by the server instead.
#[tokio::test]
async fn key_columns_are_named_in_key_order_whether_or_not_the_snapshot_read_the_table() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    db.execute(
        "CREATE SCHEMA rlsctl;
         CREATE TABLE rlsctl.codes (code text PRIMARY KEY);
         CREATE TABLE orders (gone int, id int, tenant_id uuid, PRIMARY KEY (tenant_id, id));
         ALTER TABLE orders DROP COLUMN gone;
         CREATE TABLE lines (order_id int, tenant_id uuid, code text REFERENCES rlsctl.codes,
                             FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id))",
    )
    .await;
    let snapshot = catalog::read(&mut conn, &Scope::default()).await.unwrap();
    db.execute("CREATE TABLE later (a int, b int, UNIQUE (b, a))")
        .await;
    let posture = catalog::read_posture(&mut conn, &snapshot).await.unwrap();

    let key = |table: &str| {
        posture
            .unique_keys
            .iter()
            .find(|k| k.table.name == table)
            .map(|k| k.columns.clone())
    };
    assert_eq!(key("orders"), Some(vec!["tenant_id".into(), "id".into()]));
    assert_eq!(key("later"), Some(vec!["b".into(), "a".into()]));
    let foreign = |references: &str| {
        posture
            .foreign_keys
            .iter()
            .find(|k| k.references.name == references)
            .map(|k| (k.columns.clone(), k.referenced_columns.clone()))
    };
    assert_eq!(
        foreign("orders"),
        Some((
            vec!["tenant_id".into(), "order_id".into()],
            vec!["tenant_id".into(), "id".into()]
        ))
    );
    assert_eq!(
        foreign("codes"),
        Some((vec!["code".into()], vec!["code".into()]))
    );
}
