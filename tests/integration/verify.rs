//! verify: acting as the runtime role proves isolation on a correct setup,
//! leaves nothing behind, and turns each classic breakage into the right LEAK.

use serde_json::Value;

use crate::harness::{PROJECTS, TestDb, simple_spec, unique};

/// The verdict of one cell: `object` as printed (e.g. `public.projects`).
fn verdict(matrix: &Value, object: &str, probe: &str) -> String {
    matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
        .unwrap_or_else(|| panic!("no {object} in {matrix:#}"))["cells"][probe]["verdict"]
        .as_str()
        .unwrap_or_else(|| panic!("no {probe} cell for {object}"))
        .to_string()
}

/// Every cell that is not PROVEN, as (object, probe, verdict, detail).
fn unproven(matrix: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for object in matrix["objects"].as_array().unwrap() {
        for (probe, cell) in object["cells"].as_object().unwrap() {
            if cell["verdict"] != "PROVEN" {
                out.push((
                    object["object"].as_str().unwrap().to_string(),
                    probe.clone(),
                    cell["verdict"].as_str().unwrap().to_string(),
                    cell["detail"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// A migrated and applied database with `projects` declared, for one role.
async fn applied_projects() -> (TestDb, String) {
    let (db, role) = TestDb::with_projects(&["projects", "tasks"]).await;
    db.rlsctl(&["apply"]).success();
    (db, role)
}

/// Runs `verify --format json`; returns the exit code and the matrix.
fn verify(db: &TestDb, extra: &[&str]) -> (i32, Value) {
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

#[tokio::test]
async fn the_repo_spec_applies_audits_clean_and_verifies_every_cell_proven() {
    let db = TestDb::with_repo_project().await;
    db.rlsctl(&["apply"]).success();
    let tables = [
        "tenants",
        "projects",
        "contacts",
        "documents",
        "tasks",
        "comments",
        "invoices",
    ];
    let before = db.state(&["app_user", "app_worker", "reporting"]).await;
    let rows_before = db.row_counts(&tables).await;

    let run = db.rlsctl(&["check", "--format", "json", "--strict"]);
    let result = run.json();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(result["passed"], true);
    let audit = &result["audit"];
    assert_eq!(audit["summary"]["errors"], 0, "{:#}", audit["findings"]);
    assert_eq!(audit["summary"]["warnings"], 0, "{:#}", audit["findings"]);
    assert_eq!(audit["tables"].as_array().unwrap().len(), 7);
    assert_eq!(audit["history"].as_array().unwrap().len(), 1);
    let matrix = &result["verify"];
    assert_eq!(unproven(matrix), vec![]);
    // For each runtime role: 9 probes × 7 tables, `declared` on the two
    // tables the spec makes read-only or append-only, `policies` on projects
    // (its restrictive archived_read_only), the pooled connection; then read,
    // update, delete, insert × 7 tables as the read-only `reporting`.
    assert_eq!(matrix["summary"]["proven"], 2 * (9 * 7 + 2 + 1 + 1) + 4 * 7);

    // Probe rows, parents and role switches were all rolled back.
    assert_eq!(db.row_counts(&tables).await, rows_before);
    assert_eq!(
        db.state(&["app_user", "app_worker", "reporting"]).await,
        before
    );
}

#[tokio::test]
async fn verify_leaves_rows_and_catalog_exactly_as_they_were_and_uses_existing_rows() {
    let (db, role) = applied_projects().await;
    // A real customer's row: verify must not see it as tenant A, nor touch it.
    db.execute("INSERT INTO projects (tenant_id, name) VALUES (gen_random_uuid(), 'existing')")
        .await;
    let before = db.state(&[&role]).await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(db.row_counts(&["projects", "tasks"]).await, vec![1, 0]);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM projects WHERE name = 'existing'")
            .await,
        1
    );
    assert_eq!(db.state(&[&role]).await, before);
}

#[tokio::test]
async fn a_superuser_runtime_role_reads_other_tenants() {
    let (db, role) = applied_projects().await;
    db.execute(&format!("ALTER ROLE {role} SUPERUSER")).await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.projects", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.projects", "unbound-read"), "LEAK");
    let key = &matrix["objects"][0]["cells"]["read"]["key"];
    assert!(
        key["id"].is_string(),
        "the leaking row's key is shown: {key}"
    );
}

#[tokio::test]
async fn a_bypassrls_runtime_role_reads_and_writes_other_tenants() {
    let (db, role) = applied_projects().await;
    db.execute(&format!("ALTER ROLE {role} BYPASSRLS")).await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    for probe in ["read", "update", "delete", "insert", "move"] {
        assert_eq!(
            verdict(&matrix, "public.projects", probe),
            "LEAK",
            "{probe}"
        );
    }
}

#[tokio::test]
async fn a_runtime_role_owning_the_table_without_force_is_not_isolated() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "ALTER TABLE projects OWNER TO {role}; ALTER TABLE projects NO FORCE ROW LEVEL SECURITY"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.projects", "read"), "LEAK");
    // The other table is still isolated.
    assert_eq!(verdict(&matrix, "public.tasks", "read"), "PROVEN");
}

#[tokio::test]
async fn an_extra_permissive_using_true_policy_opens_reads() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE POLICY everyone_reads ON projects FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let (_, matrix) = verify(&db, &[]);
    assert_eq!(verdict(&matrix, "public.projects", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.projects", "unbound-read"), "LEAK");
    // Writes are still governed by the tenant policy.
    assert_eq!(verdict(&matrix, "public.projects", "insert"), "PROVEN");
}

#[tokio::test]
async fn a_write_policy_without_a_tenant_with_check_lets_rows_cross() {
    let (db, _) = applied_projects().await;
    db.execute("ALTER POLICY tenant_isolation ON projects WITH CHECK (true)")
        .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.projects", "insert"), "LEAK");
    assert_eq!(verdict(&matrix, "public.projects", "move"), "LEAK");
    let unbound = &matrix["objects"][0]["cells"]["unbound-write"];
    assert_eq!(unbound["verdict"], "LEAK", "{unbound}");
    assert_eq!(verdict(&matrix, "public.projects", "read"), "PROVEN");
}

#[tokio::test]
async fn a_view_owned_by_a_bypassing_role_without_security_invoker_leaks() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "CREATE VIEW project_names AS SELECT id, name FROM projects;
         GRANT SELECT ON project_names TO {role};"
    ))
    .await;
    // security_invoker exists from PostgreSQL 15 on.
    let invoker = db.server_version().await >= 150000;
    if invoker {
        db.execute(&format!(
            "CREATE VIEW safe_names WITH (security_invoker = true) AS SELECT id, name FROM projects;
             GRANT SELECT ON safe_names TO {role};"
        ))
        .await;
    } else {
        eprintln!("skipped on this major: the security_invoker half (PostgreSQL 15+)");
    }
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    // The view does not even show the tenant column: B's row is recognised by its key.
    assert_eq!(verdict(&matrix, "public.project_names", "read"), "LEAK");
    if invoker {
        assert_eq!(verdict(&matrix, "public.safe_names", "read"), "PROVEN");
    }
}

#[tokio::test]
async fn a_select_only_tenant_policy_with_open_write_policies_leaks_through_column_free_writes() {
    let (db, role) = applied_projects().await;
    // A common mistake: the tenant policy only for SELECT, and "cleanup" write
    // policies that someone assumed the SELECT policy would narrow.
    db.execute(&format!(
        "DROP POLICY tenant_isolation ON projects;
         CREATE POLICY tenant_reads ON projects FOR SELECT TO {role}
           USING (tenant_id = (SELECT rls.current_tenant_id()));
         CREATE POLICY cleanup ON projects FOR DELETE TO {role} USING (true);
         CREATE POLICY edits ON projects FOR UPDATE TO {role} USING (true);"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.projects", "read"), "PROVEN");
    assert_eq!(verdict(&matrix, "public.projects", "delete"), "LEAK");
    assert_eq!(verdict(&matrix, "public.projects", "update"), "LEAK");
    let detail = matrix["objects"][0]["cells"]["delete"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("DELETE with no WHERE"), "{detail}");
}

#[tokio::test]
async fn a_partition_without_its_own_policies_leaks_when_read_directly() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__events.sql",
        "CREATE TABLE events (
             id uuid NOT NULL DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             kind text NOT NULL,
             PRIMARY KEY (tenant_id, id)
         ) PARTITION BY HASH (tenant_id);
         CREATE TABLE events_all PARTITION OF events FOR VALUES WITH (MODULUS 1, REMAINDER 0);",
    );
    db.spec(&simple_spec(&role, &["events"]));
    db.rlsctl(&["apply"]).success();
    // apply covers the partition like its parent; someone turns that off.
    db.execute(&format!(
        "ALTER TABLE events_all DISABLE ROW LEVEL SECURITY; GRANT SELECT ON events_all TO {role}"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.events", "read"), "PROVEN");
    assert_eq!(verdict(&matrix, "public.events_all", "read"), "LEAK");
}

#[tokio::test]
async fn a_role_default_for_the_tenant_setting_is_reported_on_the_pooled_connection() {
    let (db, role) = applied_projects().await;
    db.execute(&format!(
        "ALTER ROLE {role} SET app.current_tenant_id = '00000000-0000-0000-0000-000000000001'"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        verdict(
            &matrix,
            "pooled connection (next transaction)",
            "unbound-read"
        ),
        "LEAK"
    );
    db.execute(&format!("ALTER ROLE {role} RESET ALL")).await;
}

#[tokio::test]
async fn without_a_spec_flags_name_the_role_and_every_tenant_column_table_is_probed() {
    let (db, role) = applied_projects().await;
    std::fs::remove_dir_all(db.path().join("policies")).unwrap();
    let (code, matrix) = verify(&db, &["--role", &role, "--table", "projects"]);
    assert_eq!(code, 0);
    assert_eq!(unproven(&matrix), vec![]);
    let objects: Vec<&str> = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        ["public.projects", "pooled connection (next transaction)"]
    );
}

#[tokio::test]
async fn jwt_claim_binding_is_used_to_act_as_the_tenant() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&format!(
        "tenancy:\n  source:\n    jwt_claim: tenant_id\n  when_unbound: error\n{}",
        simple_spec(&role, &["projects"])
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    let unbound = &matrix["objects"][0]["cells"]["unbound-read"]["detail"];
    assert!(
        unbound.as_str().unwrap().contains("raises as declared"),
        "{unbound}"
    );
}

#[tokio::test]
async fn parents_are_made_through_foreign_keys_and_unmakeable_rows_are_not_proven() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE accounts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                                tenant_id uuid GENERATED ALWAYS AS (id) STORED NOT NULL UNIQUE,
                                plan text NOT NULL);
         CREATE TABLE boards (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                              tenant_id uuid NOT NULL REFERENCES accounts (id),
                              title varchar(40) NOT NULL, kind text NOT NULL CHECK (kind ~ '^kanban$'),
                              UNIQUE (tenant_id, id));
         CREATE TABLE cards (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                             tenant_id uuid NOT NULL, board_id bigint NOT NULL,
                             position integer NOT NULL, due date NOT NULL,
                             FOREIGN KEY (tenant_id, board_id) REFERENCES boards (tenant_id, id));",
    );
    db.spec(&simple_spec(&role, &["accounts", "boards", "cards"]));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 0, "NOT PROVEN alone does not fail without --strict");
    // accounts' tenant is computed from id: the foreign key from boards says so.
    assert_eq!(verdict(&matrix, "public.accounts", "read"), "PROVEN");
    // A pattern CHECK on boards.kind rejects the made-up value (equalities,
    // lists and ranges are solved; patterns are not): said, never passed silently.
    let boards = verdict(&matrix, "public.boards", "read");
    assert_eq!(boards, "NOT_PROVEN");
    let reason = &matrix["objects"][1]["cells"]["read"]["detail"];
    assert!(reason.as_str().unwrap().contains("kind"), "{reason}");
    let run = db.rlsctl(&["verify", "--strict"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("NOT PROVEN public.boards"),
        "{}",
        run.stdout
    );
}

/// A correct hand-written policy that fails closed by raising when no tenant
/// is bound (`current_setting` without missing_ok, `''::uuid`) is a refusal:
/// `--strict` passes. A policy that opens when unbound is still a LEAK.
#[tokio::test]
async fn a_policy_that_raises_when_unbound_is_refused_not_unproven() {
    let (db, role) = applied_projects().await;
    for table in ["projects", "tasks"] {
        db.execute(&format!(
            "DROP POLICY tenant_isolation ON {table};
             CREATE POLICY tenant_isolation ON {table} TO {role}
               USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
               WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);"
        ))
        .await;
    }
    let (code, matrix) = verify(&db, &["--strict"]);
    assert_eq!(code, 0, "{matrix:#}");
    for probe in ["unbound-read", "unbound-write"] {
        assert_eq!(verdict(&matrix, "public.projects", probe), "PROVEN");
    }
    let detail = matrix["objects"][0]["cells"]["unbound-read"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("fails closed"), "{detail}");

    db.execute(&format!(
        "DROP POLICY tenant_isolation ON projects;
         CREATE POLICY tenant_isolation ON projects TO {role}
           USING (coalesce(current_setting('app.current_tenant_id', true), '') = ''
                  OR tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.projects", "unbound-read"), "LEAK");
}
