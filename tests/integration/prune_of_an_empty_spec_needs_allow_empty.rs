//! `--prune` with a spec that declares no tenant tables would drop every
//! policy rlsctl made (a spec folder emptied by mistake, the wrong --config):
//! it is refused unless `--allow-empty` says it is meant.

use rlsctl::quote::QualifiedName;

use crate::harness::TestDb;

#[tokio::test]
async fn prune_with_no_tables_declared_is_refused_until_allow_empty() {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    let applied = db.state(&[&role]).await;
    let tenant_policy = |state: &rlsctl::model::State, table: &str| {
        state.tables[&QualifiedName::new("public", table)]
            .policies
            .contains_key("tenant_isolation")
    };
    assert!(tenant_policy(&applied, "projects") && tenant_policy(&applied, "tasks"));

    db.spec(&format!("roles:\n  - name: {role}\n"));
    for command in ["plan", "apply"] {
        let refused = db.rlsctl(&[command, "--prune"]).failure();
        assert!(
            refused.stderr.contains("declares no tenant tables")
                && refused.stderr.contains("--allow-empty"),
            "{command}: the refusal says why and how\n{}",
            refused.stderr
        );
    }
    assert_eq!(
        db.state(&[&role]).await,
        applied,
        "a refused prune changed the catalog"
    );

    db.rlsctl(&["apply", "--prune", "--allow-empty"]).success();
    let pruned = db.state(&[&role]).await;
    assert!(!tenant_policy(&pruned, "projects") && !tenant_policy(&pruned, "tasks"));
}
