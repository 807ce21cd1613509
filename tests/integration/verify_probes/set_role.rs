//! SET ROLE: a role the runtime role may become is one the application's
//! connection can act as, so the table probes run again as it.

use super::{applied_projects, verify};
use crate::harness::unique;

#[tokio::test]
async fn a_bypassrls_role_the_runtime_role_may_become_is_probed_and_leaks() {
    let (db, role) = applied_projects().await;
    let helper = unique("helper");
    db.execute(&format!(
        "CREATE ROLE {helper} NOLOGIN BYPASSRLS;
         GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks TO {helper};
         GRANT {helper} TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    let as_helper = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "public.projects" && o["role"] == helper.as_str())
        .unwrap_or_else(|| panic!("no row as {helper} in {matrix:#}"));
    assert_eq!(as_helper["via"], role.as_str());
    assert_eq!(as_helper["cells"]["read"]["verdict"], "LEAK");
    assert_eq!(as_helper["cells"]["delete"]["verdict"], "LEAK");
    // The runtime role itself is still isolated.
    let as_runtime = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "public.projects" && o["role"] == role.as_str())
        .unwrap();
    assert_eq!(as_runtime["cells"]["read"]["verdict"], "PROVEN");

    let text = db.rlsctl(&["verify"]);
    assert!(
        text.stdout
            .contains(&format!("as {helper} (SET ROLE by {role})")),
        "{}",
        text.stdout
    );
}
