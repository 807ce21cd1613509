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
