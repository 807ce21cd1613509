//! Children: a partition or an inheritance child, read directly, is held to
//! its own policies, and the matrix says which of the two it is.

use super::{objects, verdict, verify};
use crate::harness::{TestDb, simple_spec, unique};

#[tokio::test]
async fn an_inheritance_child_is_labelled_as_such_and_leaks_when_read_directly_without_rls() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__events.sql",
        "CREATE TABLE events (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             kind text NOT NULL);
         CREATE TABLE events_old () INHERITS (events);
         CREATE TABLE events_part (
             id uuid NOT NULL DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             kind text NOT NULL
         ) PARTITION BY HASH (tenant_id);
         CREATE TABLE events_part_all PARTITION OF events_part
             FOR VALUES WITH (MODULUS 1, REMAINDER 0);",
    );
    db.spec(&simple_spec(&role, &["events", "events_part"]));
    db.rlsctl(&["apply"]).success();
    db.execute(&format!(
        "ALTER TABLE events_old DISABLE ROW LEVEL SECURITY; GRANT SELECT ON events_old TO {role}"
    ))
    .await;
    let (code, matrix) = verify(&db, &["--table", "events", "--table", "events_part"]);
    assert_eq!(code, 2, "{matrix:#}");
    let kind = |name: &str| {
        matrix["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"] == name)
            .unwrap()["kind"]
            .clone()
    };
    assert_eq!(kind("public.events_old"), "inheritance_child");
    assert_eq!(kind("public.events_part_all"), "partition");
    assert_eq!(verdict(&matrix, "public.events_old", "read"), "LEAK");
    // Each object once: a child is not also listed as a table of its own.
    let listed = objects(&matrix);
    assert_eq!(
        listed.iter().filter(|o| *o == "public.events_old").count(),
        1,
        "{listed:?}"
    );

    let text = db.rlsctl(&["verify", "--table", "events"]);
    assert!(
        text.stdout
            .contains("public.events_old (inheritance child)"),
        "{}",
        text.stdout
    );
}
