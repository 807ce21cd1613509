//! Tenants that are database roles: policies keyed on the role itself
//! (`owner = current_user`), declared with `tenancy.source: current_user`.
//! apply writes the policy, audit takes the tables as tenant tables, and
//! verify proves the isolation with two tenant roles it makes up inside its
//! rolled-back transactions, then catches a broader policy as a LEAK.

use serde_json::Value;

use crate::harness::{TestDb, unique};

fn spec(role: &str, column_type: &str, table: &str) -> String {
    format!(
        "tenancy:\n  column: owner\n  type: {column_type}\n  source: current_user\nroles:\n  - name: {role}\ntables:\n  - {table}\n"
    )
}

/// A database with `table (id, owner <type>, body)` declared for a new role, applied.
async fn applied(column_type: &str, table: &str) -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        &format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, owner {column_type} NOT NULL, body text);"
        ),
    );
    db.spec(&spec(&role, column_type, table));
    db.rlsctl(&["apply"]).success();
    (db, role)
}

fn verify(db: &TestDb) -> (i32, Value) {
    let run = db.rlsctl(&["verify", "--format", "json"]);
    assert!(
        run.code == 0 || run.code == 2,
        "verify failed: {}\n{}",
        run.stderr,
        run.stdout
    );
    (run.code, run.json())
}

/// (probe, verdict, detail) of every cell of `object`.
fn cells(matrix: &Value, object: &str) -> Vec<(String, String, String)> {
    let found = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
        .unwrap_or_else(|| panic!("no {object} in {matrix:#}"));
    found["cells"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(probe, cell)| {
            (
                probe.clone(),
                cell["verdict"].as_str().unwrap().to_string(),
                cell["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict(matrix: &Value, object: &str, probe: &str) -> String {
    cells(matrix, object)
        .into_iter()
        .find(|(p, _, _)| p == probe)
        .unwrap_or_else(|| panic!("no {probe} cell on {object}"))
        .1
}

#[tokio::test]
async fn tenants_that_are_roles_get_a_policy_on_current_user_and_verify_proves_it() {
    let (db, role) = applied("text", "notes").await;
    let policy = db
        .scalar_text(
            "SELECT qual || ' / ' || with_check FROM pg_policies WHERE tablename = 'notes' AND policyname = 'tenant_isolation'",
        )
        .await;
    assert_eq!(policy, "(owner = CURRENT_USER) / (owner = CURRENT_USER)");
    db.assert_converged();
    // No context function: nothing reads a setting.
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_proc WHERE proname = 'current_tenant_id'")
            .await,
        0
    );

    // audit examines the table as a tenant table, and finds nothing wrong
    // with its isolation (the id key shared across tenants is another matter).
    let report = db.rlsctl(&["audit", "--format", "json"]).json();
    assert_eq!(report["summary"]["tenant_tables"], 1, "{report:#}");
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    // Keys are judged against the tenant column `owner`.
    let scoped = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "UNIQUE_NOT_SCOPED_BY_TENANT")
        .expect("the id key is not scoped by owner");
    assert!(
        scoped["found"].as_str().unwrap().contains("without owner"),
        "{scoped:#}"
    );

    let (code, matrix) = verify(&db);
    let unproven: Vec<_> = cells(&matrix, "public.notes")
        .into_iter()
        .filter(|(_, v, _)| v != "PROVEN")
        .collect();
    assert_eq!(unproven, vec![]);
    assert_eq!(code, 0);
    // No setting, so no pooled-connection row about one.
    let objects: Vec<&str> = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects, ["public.notes"]);
    let tenant_a = matrix["tenant_a"].as_str().unwrap().to_string();
    assert!(tenant_a.starts_with("rlsctl_verify_a_"), "{tenant_a}");
    // The tenant roles lived only inside verify's rolled-back transactions.
    let mut conn = db.connect().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(&tenant_a)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(db.row_counts(&["notes"]).await, vec![0]);

    // A policy that lets every role read every row.
    db.execute(&format!(
        "CREATE POLICY everyone_reads ON notes FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.notes", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.notes", "insert"), "PROVEN");
}

#[tokio::test]
async fn a_name_column_compared_with_itself_instead_of_current_user_is_a_leak() {
    let (db, _) = applied("name", "inboxes").await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 0, "{matrix:#}");

    db.execute(
        "ALTER POLICY tenant_isolation ON inboxes USING (owner = owner) WITH CHECK (owner = owner)",
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    for probe in ["read", "update", "delete", "insert", "move"] {
        assert_eq!(verdict(&matrix, "public.inboxes", probe), "LEAK", "{probe}");
    }
}

#[tokio::test]
async fn an_admin_subject_to_row_level_security_cannot_prove_tenants_that_are_roles() {
    let (db, admin) = TestDb::for_managed_admin().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE notes (id bigserial PRIMARY KEY, owner text NOT NULL, body text);",
    );
    db.spec(&spec(&role, "text", "notes"));
    db.rlsctl_as(&admin, &["apply"]).success();
    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    for (probe, verdict, detail) in cells(&matrix, "public.notes") {
        assert_eq!(verdict, "NOT_PROVEN", "{probe}");
        assert!(detail.contains("superuser or a BYPASSRLS role"), "{detail}");
    }
}

#[tokio::test]
async fn a_bypassrls_admin_proves_tenants_that_are_roles_only_with_createrole() {
    let (db, role) = applied("text", "notes").await;
    // Not a superuser: it may act as the runtime role and grant it, and
    // RLS filters nothing it plants, but it may not create roles.
    let admin = unique("bypass_admin");
    crate::harness::cluster_execute(&format!(
        "CREATE ROLE {admin} LOGIN BYPASSRLS NOSUPERUSER NOCREATEROLE"
    ))
    .await;
    db.execute(&format!("GRANT {role} TO {admin} WITH ADMIN OPTION"))
        .await;

    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    for (probe, verdict, detail) in cells(&matrix, "public.notes") {
        assert_eq!(verdict, "NOT_PROVEN", "{probe}");
        assert!(detail.contains("permission denied"), "{detail}");
        assert!(detail.contains("CREATEROLE"), "{detail}");
    }

    crate::harness::cluster_execute(&format!("ALTER ROLE {admin} CREATEROLE")).await;
    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let unproven: Vec<_> = cells(&run.json(), "public.notes")
        .into_iter()
        .filter(|(_, v, _)| v != "PROVEN")
        .collect();
    assert_eq!(unproven, vec![]);

    // session_user is switched with SET SESSION AUTHORIZATION: superuser only.
    db.spec(&spec(&role, "text", "notes").replace("current_user", "session_user"));
    db.rlsctl(&["apply"]).success();
    let run = db.rlsctl_as(&admin, &["verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    for (probe, verdict, detail) in cells(&run.json(), "public.notes") {
        assert_eq!(verdict, "NOT_PROVEN", "{probe}");
        assert!(detail.contains("only a superuser"), "{detail}");
    }
}

#[tokio::test]
async fn a_policy_on_session_user_is_proven_by_switching_the_session_user() {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE notes (id bigserial PRIMARY KEY, owner text NOT NULL, body text);",
    );
    db.spec(&spec(&role, "text", "notes").replace("current_user", "session_user"));
    db.rlsctl(&["apply"]).success();
    db.assert_converged();
    let (code, matrix) = verify(&db);
    assert_eq!(code, 0, "{matrix:#}");
    let unproven: Vec<_> = cells(&matrix, "public.notes")
        .into_iter()
        .filter(|(_, v, _)| v != "PROVEN")
        .collect();
    assert_eq!(unproven, vec![]);

    // A broader policy is caught the same way.
    db.execute(&format!(
        "CREATE POLICY everyone_reads ON notes FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.notes", "read"), "LEAK");
}

#[tokio::test]
async fn init_from_db_describes_policies_on_current_user_as_tenants_that_are_roles() {
    let db = TestDb::new().await;
    let app = unique("app");
    crate::harness::cluster_execute(&format!("CREATE ROLE {app} NOLOGIN")).await;
    db.execute(&format!(
        "CREATE TABLE mailboxes (id bigserial PRIMARY KEY, owner name NOT NULL, subject text);
         CREATE INDEX ON mailboxes (owner);
         ALTER TABLE mailboxes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE mailboxes FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant_isolation ON mailboxes TO {app}
             USING (owner = current_user) WITH CHECK (owner = current_user);
         GRANT SELECT, INSERT, UPDATE, DELETE ON mailboxes TO {app};
         GRANT USAGE ON SEQUENCE mailboxes_id_seq TO {app};"
    ))
    .await;
    let spec = crate::init_from_db_hand_built_setups::init(&db);
    assert!(spec.contains("source: current_user"), "{spec}");
    assert!(!spec.contains("inline:"), "{spec}");
    crate::init_from_db_hand_built_setups::assert_described_exactly(&db, &spec);
    let (code, matrix) = verify(&db);
    assert_eq!(code, 0, "{matrix:#}");
    let unproven: Vec<_> = cells(&matrix, "public.mailboxes")
        .into_iter()
        .filter(|(_, v, _)| v != "PROVEN")
        .collect();
    assert_eq!(unproven, vec![]);
}

#[tokio::test]
async fn a_cross_tenant_reader_beside_tenants_that_are_roles_is_probed_as_itself() {
    let db = TestDb::new().await;
    let (role, reader) = (unique("app"), unique("reporting"));
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE notes (id bigserial PRIMARY KEY, owner text NOT NULL, body text);",
    );
    let roles = spec(&role, "text", "notes").replace("tables:\n  - notes\n", "");
    db.spec(&format!(
        "{roles}  - name: {reader}\n    cross_tenant: read\n    reason: Monthly totals across customers.\ntables:\n  - notes\n"
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db);
    assert_eq!(code, 0, "{matrix:#}");
    let rows: Vec<&Value> = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["role"] == reader.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "{matrix:#}");
    for (probe, cell) in rows[0]["cells"].as_object().unwrap() {
        assert_eq!(cell["verdict"], "PROVEN", "{probe}: {cell:#}");
    }

    // The reader may write after all: its declared read-only access is broken.
    db.execute(&format!("GRANT UPDATE ON notes TO {reader}; CREATE POLICY reader_writes ON notes FOR UPDATE TO {reader} USING (true)"))
        .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2, "{matrix:#}");
    let reader_leaks = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["role"] == reader.as_str())
        .flat_map(|o| o["cells"].as_object().unwrap().values())
        .filter(|c| c["verdict"] == "LEAK")
        .count();
    assert!(reader_leaks > 0, "{matrix:#}");
}

/// Without a spec, `verify --role` reads the policies: when they compare a
/// column with the acting role, the tenants are roles and verify proves them
/// as such instead of binding a setting nobody reads.
#[tokio::test]
async fn verify_without_a_spec_finds_tenants_that_are_roles_in_the_policies() {
    let db = TestDb::new().await;
    let role = unique("app");
    crate::harness::cluster_execute(&format!("CREATE ROLE {role}")).await;
    let hand_built = |using: &str| {
        format!(
            "CREATE TABLE notes (id bigserial PRIMARY KEY, author name NOT NULL DEFAULT current_user, body text);
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
             CREATE POLICY own_notes ON notes USING ({using}) WITH CHECK (author = current_user);
             GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO {role};
             GRANT USAGE ON SEQUENCE notes_id_seq TO {role};"
        )
    };
    db.execute(&hand_built("author = current_user")).await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("tenants are roles"), "{}", run.stderr);
    let matrix = run.json();
    assert_eq!(verdict(&matrix, "public.notes", "read"), "PROVEN");
    assert_eq!(verdict(&matrix, "public.notes", "update"), "PROVEN");

    db.execute("DROP TABLE notes").await;
    db.execute(&hand_built("author = current_user OR author IS NOT NULL"))
        .await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(verdict(&run.json(), "public.notes", "read"), "LEAK");
    db.execute(&format!("DROP OWNED BY {role}")).await;
    crate::harness::cluster_execute(&format!("DROP ROLE {role}")).await;
}
