//! Views: a view over tenant tables shows tenant A none of B's rows; a view
//! that cannot even be read is NOT PROVEN, and the run goes on.

use super::{applied_projects, detail, objects, verdict, verify};

/// `loop_a` reads projects and `loop_b`, which reads `loop_a`: reading either
/// fails with "infinite recursion detected in rules for relation".
const RECURSIVE_VIEWS: &str = "
CREATE VIEW loop_a AS SELECT id, name FROM projects;
CREATE VIEW loop_b AS SELECT id, name FROM loop_a;
CREATE OR REPLACE VIEW loop_a AS
    SELECT id, name FROM projects UNION ALL SELECT id, name FROM loop_b;";

#[tokio::test]
async fn a_view_whose_rules_recurse_is_not_proven_with_the_reason_and_the_run_goes_on() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "{RECURSIVE_VIEWS}
         GRANT SELECT ON loop_a, loop_b TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "{matrix:#}");
    assert_eq!(verdict(&matrix, "public.loop_a", "read"), "NOT_PROVEN");
    let why = detail(&matrix, "public.loop_a", "read");
    assert!(why.contains("infinite recursion"), "{why}");
    // Everything else was still probed and proven.
    for probe in ["read", "update", "delete", "insert", "move"] {
        assert_eq!(verdict(&matrix, "public.projects", probe), "PROVEN");
        assert_eq!(verdict(&matrix, "public.tasks", probe), "PROVEN");
    }
}

#[tokio::test]
async fn table_narrows_the_views_probed_to_those_reading_a_chosen_table() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "{RECURSIVE_VIEWS}
         CREATE VIEW task_titles AS SELECT id, title FROM tasks;
         GRANT SELECT ON loop_a, loop_b, task_titles TO {role};"
    ))
    .await;
    let (_, matrix) = verify(&db, &["--table", "tasks"]);
    let probed = objects(&matrix);
    assert!(
        probed.contains(&"public.task_titles".to_string()),
        "{probed:?}"
    );
    assert!(
        !probed.iter().any(|o| o.starts_with("public.loop_")),
        "{probed:?}"
    );
    assert!(
        !probed.contains(&"public.projects".to_string()),
        "{probed:?}"
    );
    // Owned by the (superuser) admin, it bypasses RLS: the narrowed run still
    // probes it and finds the leak.
    assert_eq!(verdict(&matrix, "public.task_titles", "read"), "LEAK");
}
