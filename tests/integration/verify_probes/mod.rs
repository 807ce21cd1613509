//! verify, one way in per file (as `src/verify/probes/`): each test turns the
//! matching breakage into a LEAK, or proves the probe on a correct setup.

mod children;
mod declared;
mod definer_functions;
mod existence;
mod extra_policies;
mod null_tenant;
mod runtime_connection;
mod set_role;
mod triggers;
mod unbound;
mod views;

use serde_json::Value;

use crate::harness::TestDb;

/// The cell of `probe` on `object` (as printed, e.g. `public.projects`) as the
/// first role that has one.
pub fn cell<'m>(matrix: &'m Value, object: &str, probe: &str) -> &'m Value {
    matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object"] == object)
        .find_map(|o| o["cells"].get(probe))
        .unwrap_or_else(|| panic!("no {probe} cell for {object} in {matrix:#}"))
}

pub fn verdict(matrix: &Value, object: &str, probe: &str) -> String {
    cell(matrix, object, probe)["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn detail(matrix: &Value, object: &str, probe: &str) -> String {
    cell(matrix, object, probe)["detail"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The objects of the matrix, as printed.
pub fn objects(matrix: &Value) -> Vec<String> {
    matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap().to_string())
        .collect()
}

/// A migrated and applied database with `projects` and `tasks` declared.
pub async fn applied_projects() -> (TestDb, String) {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    (db, role)
}

/// Runs `verify --format json`; returns the exit code and the matrix.
pub fn verify(db: &TestDb, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify", "--format", "json"];
    args.extend_from_slice(extra);
    let run = db.rlsctl(&args);
    assert!(
        run.code == 0 || run.code == 2,
        "verify failed: {}\n{}",
        run.stderr,
        run.stdout
    );
    (run.code, run.json())
}

/// The verdict of `probe` on `object` as `role`.
pub fn verdict_as(matrix: &Value, role: &str, object: &str, probe: &str) -> String {
    matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object && o["role"] == role)
        .and_then(|o| o["cells"][probe]["verdict"].as_str())
        .unwrap_or_else(|| panic!("no {probe} cell for {object} as {role} in {matrix:#}"))
        .to_string()
}
