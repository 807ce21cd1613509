//! Default privileges grant on objects as they are created — EXECUTE on the
//! context function rlsctl creates included (Supabase grants it to its API
//! roles). One apply still converges: the next plan is empty.

use crate::harness::{TestDb, cluster_execute, unique};

#[tokio::test]
async fn default_privileges_on_functions_tables_and_sequences_leave_no_drift() {
    let db = TestDb::new().await;
    let role = unique("app");
    let anon = unique("anon");
    let api = unique("api");
    cluster_execute(&format!("CREATE ROLE {anon}; CREATE ROLE {api}")).await;
    db.migration(
        "V1__defaults.sql",
        &format!(
            "ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO {anon};
             ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {anon};
             ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {anon};
             ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {role};
             ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {role};
             CREATE SCHEMA rls;
             ALTER DEFAULT PRIVILEGES IN SCHEMA rls GRANT EXECUTE ON FUNCTIONS TO {api};
             CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text);"
        ),
    );
    db.spec(&format!("roles:\n  - name: {role}\ntables:\n  - notes\n"));

    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    for revoked in [&anon, &api] {
        let revoke =
            format!(r#"REVOKE EXECUTE ON FUNCTION "rls"."current_tenant_id"() FROM "{revoked}""#);
        assert!(plan.contains(&revoke), "{revoke} missing from {plan:#?}");
    }

    db.rlsctl(&["apply"]).success();
    db.assert_converged();

    let mut conn = db.connect().await;
    let (anon_may, api_may, role_may, truncate): (bool, bool, bool, bool) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT has_function_privilege('{anon}', 'rls.current_tenant_id()', 'EXECUTE'),
                    has_function_privilege('{api}', 'rls.current_tenant_id()', 'EXECUTE'),
                    has_function_privilege('{role}', 'rls.current_tenant_id()', 'EXECUTE'),
                    has_table_privilege('{role}', 'notes', 'TRUNCATE')"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (anon_may, api_may, role_may, truncate),
        (false, false, true, false)
    );
}
