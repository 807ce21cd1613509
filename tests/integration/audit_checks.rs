//! One test per posture check: a correct setup audits clean; each breakage,
//! built on a real server, must produce its finding.

use crate::harness::{TestDb, unique};

/// A correct tenant-isolated setup for runtime role `{r}`.
const BASELINE: &str = r#"
CREATE ROLE {r} LOGIN;
CREATE SCHEMA rls;
CREATE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid $$;
REVOKE EXECUTE ON FUNCTION rls.current_tenant_id() FROM PUBLIC;
GRANT USAGE ON SCHEMA rls TO {r};
GRANT EXECUTE ON FUNCTION rls.current_tenant_id() TO {r};
CREATE TABLE projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
                       name text NOT NULL, UNIQUE (tenant_id, name));
CREATE INDEX projects_tenant_id_idx ON projects (tenant_id);
ALTER TABLE projects ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projects TO {r}
  USING (tenant_id = (SELECT rls.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT rls.current_tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO {r};
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;
"#;

/// Builds the baseline plus `breakage`, audits as `--role {r}`, returns (id, object) pairs.
async fn audit_after(breakage: &str) -> Vec<(String, String)> {
    audit_with_severity(breakage)
        .await
        .into_iter()
        .map(|(id, object, _)| (id, object))
        .collect()
}

/// As [`audit_after`], with each finding's severity.
async fn audit_with_severity(breakage: &str) -> Vec<(String, String, String)> {
    let db = TestDb::new().await;
    let role = unique("auditee");
    db.execute(&BASELINE.replace("{r}", &role)).await;
    if !breakage.is_empty() {
        db.execute(&breakage.replace("{r}", &role)).await;
    }
    let run = db.rlsctl(&[
        "audit",
        "--role",
        &role,
        "--format",
        "json",
        "--fail-on",
        "info",
    ]);
    let report = run.json();
    assert_eq!(report["schema_version"], 1);
    let findings: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let object = f["object"].as_str().unwrap().replace(&role, "{r}");
            (
                f["id"].as_str().unwrap().to_string(),
                object.replace(report["database"].as_str().unwrap(), "{db}"),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected_exit = if findings.is_empty() { 0 } else { 2 };
    assert_eq!(
        run.code, expected_exit,
        "exit code with --fail-on info: {findings:?}\n{}",
        run.stderr
    );
    // About the server, not the breakage: its own test covers it.
    findings
        .into_iter()
        .filter(|(id, _, _)| id != "SERVER_PAST_END_OF_LIFE")
        .collect()
}

/// A correct setup's only finding is the info that setting-based tenancy
/// rests on a setting the runtime role can change (see
/// `the_tenant_setting_is_on_record_until_the_tenant_comes_from_elsewhere`).
#[tokio::test]
async fn a_correct_setup_has_no_findings() {
    assert_eq!(
        audit_with_severity("").await,
        vec![(
            "TENANT_SETTING_SETTABLE".to_string(),
            "setting app.current_tenant_id".to_string(),
            "info".to_string()
        )]
    );
}

macro_rules! finds {
    ($test:ident, $id:literal, $object:literal, $breakage:literal) => {
        #[tokio::test]
        async fn $test() {
            let findings = audit_after($breakage).await;
            assert!(
                findings
                    .iter()
                    .any(|(id, object)| id == $id && object == $object),
                "expected {} on {}, got {findings:#?}",
                $id,
                $object
            );
        }
    };
}

finds!(
    superuser_runtime_role,
    "RUNTIME_SUPERUSER",
    "role {r}",
    "ALTER ROLE {r} SUPERUSER"
);
finds!(
    bypassrls_runtime_role,
    "RUNTIME_BYPASSRLS",
    "role {r}",
    "ALTER ROLE {r} BYPASSRLS"
);
finds!(
    runtime_role_owns_a_table,
    "RUNTIME_OWNS_TENANT_TABLE",
    "table public.projects",
    "ALTER TABLE projects OWNER TO {r}"
);
finds!(
    runtime_role_member_of_a_bypassing_role,
    "RUNTIME_CAN_BECOME_PRIVILEGED",
    "role {r}",
    "CREATE ROLE {r}_ops BYPASSRLS; GRANT {r}_ops TO {r}"
);
finds!(
    a_new_table_without_rls,
    "TABLE_WITHOUT_RLS",
    "table public.notes",
    "CREATE TABLE notes (id int, tenant_id uuid NOT NULL); GRANT SELECT ON notes TO {r}"
);
finds!(
    a_partition_queried_directly,
    "CHILD_TABLE_WITHOUT_RLS",
    "table public.events_2026",
    "CREATE TABLE events (tenant_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
     CREATE INDEX ON events (tenant_id);
     ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
     CREATE POLICY tenant_isolation ON events TO {r} USING (tenant_id = (SELECT rls.current_tenant_id()));
     CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
     GRANT SELECT ON events, events_2026 TO {r}"
);
finds!(
    rls_not_forced,
    "TABLE_RLS_NOT_FORCED",
    "table public.projects",
    "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY"
);
finds!(
    rls_without_policy,
    "TABLE_RLS_WITHOUT_POLICY",
    "table public.projects",
    "DROP POLICY tenant_isolation ON projects"
);
finds!(
    nullable_tenant_column,
    "TENANT_COLUMN_NULLABLE",
    "table public.projects",
    "ALTER TABLE projects ALTER tenant_id DROP NOT NULL"
);
finds!(
    missing_tenant_index,
    "TENANT_INDEX_MISSING",
    "table public.projects",
    "DROP INDEX projects_tenant_id_idx; ALTER TABLE projects DROP CONSTRAINT projects_tenant_id_name_key"
);
finds!(
    permissive_using_true,
    "POLICY_WITHOUT_TENANT_FILTER",
    "policy everything on public.projects",
    "CREATE POLICY everything ON projects FOR SELECT TO {r} USING (true)"
);
finds!(
    write_policy_without_tenant_check,
    "POLICY_WRITE_WITHOUT_TENANT_CHECK",
    "policy any_insert on public.projects",
    "CREATE POLICY any_insert ON projects FOR INSERT TO {r} WITH CHECK (true)"
);
finds!(
    policy_to_public,
    "POLICY_TO_PUBLIC",
    "policy for_everyone on public.projects",
    "CREATE POLICY for_everyone ON projects USING (tenant_id = (SELECT rls.current_tenant_id()))"
);
finds!(
    policy_calling_a_volatile_function,
    "POLICY_CALLS_VOLATILE_FUNCTION",
    "policy slow on public.projects",
    "CREATE FUNCTION rls.tenant_slow() RETURNS uuid LANGUAGE plpgsql AS $$ BEGIN RETURN current_setting('app.current_tenant_id', true)::uuid; END $$;
     CREATE POLICY slow ON projects AS RESTRICTIVE TO {r} USING (tenant_id = rls.tenant_slow())"
);
finds!(
    policy_calling_a_parallel_unsafe_function,
    "POLICY_BLOCKS_PARALLEL_QUERY",
    "policy tenant_isolation on public.projects",
    "ALTER FUNCTION rls.current_tenant_id() PARALLEL UNSAFE"
);
finds!(
    context_function_without_missing_ok_or_nullif,
    "CONTEXT_FUNCTION_UNSAFE",
    "function rls.current_tenant_id()",
    "CREATE OR REPLACE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE
       AS $$ SELECT current_setting('app.current_tenant_id')::uuid $$"
);
finds!(
    context_function_called_per_row,
    "CONTEXT_CALLED_PER_ROW",
    "policy tenant_isolation on public.projects",
    "ALTER POLICY tenant_isolation ON projects USING (tenant_id = rls.current_tenant_id())"
);
finds!(
    tenant_column_compared_through_a_cast,
    "POLICY_TENANT_COLUMN_WRAPPED",
    "policy tenant_isolation on public.projects",
    "ALTER POLICY tenant_isolation ON projects
       USING (tenant_id::text = current_setting('app.current_tenant_id', true))"
);
finds!(
    context_function_owned_by_the_runtime_role,
    "CONTEXT_FUNCTION_WRITABLE",
    "function rls.current_tenant_id()",
    "ALTER FUNCTION rls.current_tenant_id() OWNER TO {r}"
);
finds!(
    a_default_tenant_on_the_database,
    "TENANT_DEFAULT_SETTING",
    "database {db}",
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET app.current_tenant_id = %L', current_database(), '00000000-0000-0000-0000-000000000001'); END $$"
);
finds!(
    a_default_tenant_on_the_role,
    "TENANT_DEFAULT_SETTING",
    "role {r}",
    "ALTER ROLE {r} SET app.current_tenant_id = '00000000-0000-0000-0000-000000000001'"
);
finds!(
    a_view_running_as_a_superuser,
    "VIEW_BYPASSES_RLS",
    "view public.all_projects",
    "CREATE VIEW all_projects AS SELECT * FROM projects; GRANT SELECT ON all_projects TO {r}"
);
finds!(
    a_materialized_view_of_tenant_rows,
    "MATERIALIZED_VIEW_OF_TENANT_DATA",
    "materialized view public.project_names",
    "CREATE MATERIALIZED VIEW project_names AS SELECT tenant_id, name FROM projects; GRANT SELECT ON project_names TO {r}"
);
finds!(
    a_security_definer_function_executable_by_public,
    "SECURITY_DEFINER_EXECUTABLE",
    "function public.count_all()",
    "CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM projects $$"
);
finds!(
    a_security_definer_trigger,
    "TRIGGER_RUNS_AS_OWNER",
    "trigger stamp on public.projects",
    "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN NEW; END $$;
     CREATE TRIGGER stamp BEFORE INSERT ON projects FOR EACH ROW EXECUTE FUNCTION stamp()"
);
finds!(
    a_rule_on_a_tenant_table,
    "RULE_ON_TENANT_TABLE",
    "rule copy_names on public.projects",
    "CREATE TABLE name_log (name text);
     CREATE RULE copy_names AS ON INSERT TO projects DO ALSO INSERT INTO name_log VALUES (NEW.name)"
);
finds!(
    a_readable_foreign_table,
    "FOREIGN_TABLE_READABLE",
    "foreign table public.remote_projects",
    "CREATE EXTENSION postgres_fdw; CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw;
     CREATE FOREIGN TABLE remote_projects (id uuid, tenant_id uuid) SERVER elsewhere;
     GRANT SELECT ON remote_projects TO {r}"
);
finds!(
    truncate_granted,
    "TRUNCATE_GRANTED",
    "table public.projects",
    "GRANT TRUNCATE ON projects TO {r}"
);
finds!(
    trigger_privilege_granted,
    "EXCESS_TABLE_PRIVILEGE",
    "table public.projects",
    "GRANT TRIGGER ON projects TO {r}"
);
finds!(
    default_privileges_to_public,
    "DEFAULT_PRIVILEGES_TO_PUBLIC",
    "default privileges of postgres in schema public",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC"
);

/// A finding that appears on the broken setup and on no object of the fixed one.
macro_rules! finds_until_fixed {
    ($test:ident, $id:literal, $object:literal, broken: $broken:literal, fixed: $fixed:literal) => {
        #[tokio::test]
        async fn $test() {
            let broken = audit_after($broken).await;
            assert!(
                broken
                    .iter()
                    .any(|(id, object)| id == $id && object == $object),
                "expected {} on {} when broken, got {broken:#?}",
                $id,
                $object
            );
            let fixed = audit_after($fixed).await;
            assert!(
                !fixed.iter().any(|(id, _)| id == $id),
                "expected no {} once fixed, got {fixed:#?}",
                $id
            );
        }
    };
}

finds_until_fixed!(
    policy_open_when_the_setting_is_null,
    "POLICY_OPEN_WHEN_UNBOUND",
    "policy lenient on public.projects",
    broken: "CREATE POLICY lenient ON projects TO {r}
               USING (current_setting('app.tenant', true) IS NULL OR tenant_id = current_setting('app.tenant', true)::uuid)",
    fixed: "CREATE POLICY lenient ON projects TO {r}
               USING (tenant_id = nullif(current_setting('app.tenant', true), '')::uuid)"
);
finds_until_fixed!(
    policy_open_when_the_setting_is_empty,
    "POLICY_OPEN_WHEN_UNBOUND",
    "policy tenant_isolation on public.projects",
    broken: "ALTER POLICY tenant_isolation ON projects
               USING (tenant_id::text = current_setting('app.current_tenant_id')
                      OR current_setting('app.current_tenant_id') = '')",
    fixed: "ALTER POLICY tenant_isolation ON projects
               USING (tenant_id::text = current_setting('app.current_tenant_id'))"
);
finds_until_fixed!(
    policy_open_when_the_setting_coalesces_to_empty,
    "POLICY_OPEN_WHEN_UNBOUND",
    "policy tenant_isolation on public.projects",
    broken: "ALTER POLICY tenant_isolation ON projects
               WITH CHECK (tenant_id = (SELECT rls.current_tenant_id())
                           OR coalesce(current_setting('app.current_tenant_id', true), '') = '')",
    fixed: "ALTER POLICY tenant_isolation ON projects
               WITH CHECK (tenant_id = (SELECT rls.current_tenant_id())
                           AND coalesce(current_setting('app.current_tenant_id', true), '') <> '')"
);
finds_until_fixed!(
    policy_broader_than_the_tenant,
    "POLICY_BROADER_THAN_TENANT",
    "policy tenant_isolation on public.projects",
    broken: "ALTER POLICY tenant_isolation ON projects
               USING (tenant_id = (SELECT rls.current_tenant_id()) OR name IS NOT NULL)",
    fixed: "ALTER POLICY tenant_isolation ON projects
               USING (tenant_id = (SELECT rls.current_tenant_id()) AND name IS NOT NULL)"
);
finds_until_fixed!(
    write_policy_broader_than_the_tenant,
    "POLICY_BROADER_THAN_TENANT",
    "policy tenant_isolation on public.projects",
    broken: "ALTER POLICY tenant_isolation ON projects
               WITH CHECK (tenant_id = (SELECT rls.current_tenant_id()) OR true)",
    fixed: "ALTER POLICY tenant_isolation ON projects
               WITH CHECK (tenant_id = (SELECT rls.current_tenant_id()) OR false)"
);

/// Like `finds_until_fixed!`, and the broken setup's finding has `severity`.
macro_rules! finds_with_severity_until_fixed {
    ($test:ident, $id:literal, $object:literal, $severity:literal, broken: $broken:literal, fixed: $fixed:literal) => {
        #[tokio::test]
        async fn $test() {
            let broken = audit_with_severity($broken).await;
            assert!(
                broken.iter().any(|(id, object, severity)| id == $id
                    && object == $object
                    && severity == $severity),
                "expected {} ({}) on {} when broken, got {broken:#?}",
                $id,
                $severity,
                $object
            );
            let fixed = audit_with_severity($fixed).await;
            assert!(
                !fixed.iter().any(|(id, _, _)| id == $id),
                "expected no {} once fixed, got {fixed:#?}",
                $id
            );
        }
    };
}

finds_until_fixed!(
    a_leakproof_user_function,
    "LEAKPROOF_USER_FUNCTION",
    "function public.peek(text)",
    broken: "CREATE FUNCTION peek(text) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF AS $$ SELECT true $$",
    fixed: "CREATE FUNCTION peek(text) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF AS $$ SELECT true $$;
            ALTER FUNCTION peek(text) NOT LEAKPROOF"
);
finds_with_severity_until_fixed!(
    security_definer_without_search_path_while_the_runtime_role_can_create,
    "SECURITY_DEFINER_SEARCH_PATH",
    "function public.count_all()",
    "error",
    broken: "GRANT CREATE ON SCHEMA public TO {r};
             CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM projects $$",
    fixed: "GRANT CREATE ON SCHEMA public TO {r};
            CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
              AS $$ SELECT count(*) FROM public.projects $$"
);
finds_with_severity_until_fixed!(
    security_definer_without_search_path,
    "SECURITY_DEFINER_SEARCH_PATH",
    "function public.count_all()",
    "warning",
    broken: "CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM projects $$",
    fixed: "CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
              AS $$ SELECT count(*) FROM public.projects $$"
);
finds_with_severity_until_fixed!(
    security_definer_pinned_to_a_schema_the_runtime_role_can_create_in,
    "SECURITY_DEFINER_SEARCH_PATH",
    "function public.count_all()",
    "error",
    broken: "CREATE SCHEMA scratch; GRANT USAGE, CREATE ON SCHEMA scratch TO {r};
             CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = scratch, public
               AS $$ SELECT count(*) FROM projects $$",
    fixed: "CREATE SCHEMA scratch; GRANT USAGE, CREATE ON SCHEMA scratch TO {r};
            CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public
              AS $$ SELECT count(*) FROM projects $$"
);
finds_until_fixed!(
    create_on_public_for_everyone,
    "SCHEMA_CREATE_FOR_RUNTIME",
    "schema public",
    broken: "GRANT CREATE ON SCHEMA public TO PUBLIC",
    fixed: "GRANT CREATE ON SCHEMA public TO PUBLIC; REVOKE CREATE ON SCHEMA public FROM PUBLIC"
);
finds_until_fixed!(
    a_schema_owned_by_the_runtime_role,
    "SCHEMA_CREATE_FOR_RUNTIME",
    "schema scratch",
    broken: "CREATE SCHEMA scratch AUTHORIZATION {r}",
    fixed: "CREATE SCHEMA scratch; GRANT USAGE ON SCHEMA scratch TO {r}"
);

/// The severity of `id` on `object`, if found.
fn severity_of(findings: &[(String, String, String)], id: &str, object: &str) -> Option<String> {
    findings
        .iter()
        .find(|(i, o, _)| i == id && o == object)
        .map(|(_, _, s)| s.clone())
}

#[tokio::test]
async fn a_table_without_rls_is_an_error_once_a_runtime_role_can_reach_it() {
    let create = "CREATE TABLE notes (id int, tenant_id uuid NOT NULL);";
    let unreachable = audit_with_severity(create).await;
    assert_eq!(
        severity_of(&unreachable, "TABLE_WITHOUT_RLS", "table public.notes").as_deref(),
        Some("info"),
        "{unreachable:#?}"
    );
    for grant in [
        "GRANT SELECT ON notes TO {r}",
        "GRANT UPDATE (id) ON notes TO {r}",
        "GRANT SELECT ON notes TO PUBLIC",
        "CREATE ROLE {r}_readers; GRANT SELECT ON notes TO {r}_readers; GRANT {r}_readers TO {r}",
        "ALTER TABLE notes OWNER TO {r}",
    ] {
        let reachable = audit_with_severity(&format!("{create} {grant}")).await;
        assert_eq!(
            severity_of(&reachable, "TABLE_WITHOUT_RLS", "table public.notes").as_deref(),
            Some("error"),
            "{grant}: {reachable:#?}"
        );
    }
}

finds_until_fixed!(
    write_policy_without_tenant_check_matters_where_the_role_can_write,
    "POLICY_WRITE_WITHOUT_TENANT_CHECK",
    "policy any_write on public.projects",
    broken: "REVOKE INSERT ON projects FROM {r};
             CREATE POLICY any_write ON projects FOR UPDATE TO {r} USING (tenant_id = (SELECT rls.current_tenant_id())) WITH CHECK (true)",
    fixed: "REVOKE INSERT, UPDATE ON projects FROM {r};
            CREATE POLICY any_write ON projects FOR UPDATE TO {r} USING (tenant_id = (SELECT rls.current_tenant_id())) WITH CHECK (true)"
);

const PARTITIONED: &str = "CREATE TABLE events (tenant_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
     CREATE INDEX ON events (tenant_id);
     ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
     CREATE POLICY tenant_isolation ON events TO {r} USING (tenant_id = (SELECT rls.current_tenant_id()));
     CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
     GRANT SELECT ON events TO {r};";

#[tokio::test]
async fn a_partition_without_rls_is_reported_once() {
    let rls_findings = |findings: Vec<(String, String)>| -> Vec<String> {
        findings
            .into_iter()
            .filter(|(id, object)| {
                object == "table public.events_2026"
                    && (id == "TABLE_WITHOUT_RLS" || id == "CHILD_TABLE_WITHOUT_RLS")
            })
            .map(|(id, _)| id)
            .collect()
    };
    let queried_directly = audit_after(&format!(
        "{PARTITIONED} GRANT SELECT ON events_2026 TO {{r}}"
    ))
    .await;
    assert_eq!(
        rls_findings(queried_directly),
        vec!["CHILD_TABLE_WITHOUT_RLS".to_string()]
    );
    // Reached only through the parent, whose policies apply.
    assert_eq!(
        rls_findings(audit_after(PARTITIONED).await),
        Vec::<String>::new()
    );
}

/// The fix for a view that bypasses RLS is one the server can run: before
/// PostgreSQL 15 there is no security_invoker, so the advice is the owner.
#[tokio::test]
async fn the_fix_for_a_bypassing_view_fits_the_servers_major() {
    let db = TestDb::new().await;
    let role = unique("auditee");
    db.execute(&BASELINE.replace("{r}", &role)).await;
    db.execute(&format!(
        "CREATE VIEW all_projects AS SELECT * FROM projects; GRANT SELECT ON all_projects TO {role}"
    ))
    .await;
    let run = db.rlsctl(&["audit", "--role", &role, "--format", "json"]);
    let report = run.json();
    let fix = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "VIEW_BYPASSES_RLS")
        .expect("the view is found")["fix"]
        .as_str()
        .unwrap()
        .to_string();
    if db.server_version().await >= 150000 {
        assert!(fix.contains("security_invoker = true"), "{fix}");
    } else {
        assert!(fix.contains("OWNER TO"), "{fix}");
        assert!(
            !fix.starts_with("ALTER VIEW \"public\".\"all_projects\" SET"),
            "{fix}"
        );
    }
}

/// The baseline plus `breakage`, audited as `--role {r}`: (id, object, found)
/// with the role's name written `{r}`.
async fn findings_with_text(breakage: &str) -> Vec<(String, String, String)> {
    findings_with(breakage, "found").await
}

/// The baseline plus `breakage`, audited as `--role {r}`: each finding's id,
/// object and `field`, with the role's name written `{r}`.
async fn findings_with(breakage: &str, field: &str) -> Vec<(String, String, String)> {
    let db = TestDb::new().await;
    let role = unique("auditee");
    db.execute(&BASELINE.replace("{r}", &role)).await;
    db.execute(&breakage.replace("{r}", &role)).await;
    let report = db
        .rlsctl(&["audit", "--role", &role, "--format", "json"])
        .json();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().replace(&role, "{r}");
            (
                f["id"].as_str().unwrap().to_string(),
                text("object"),
                text(field),
            )
        })
        .collect()
}

/// The `found` text of `id` on `object`, if reported.
fn found_text(findings: &[(String, String, String)], id: &str, object: &str) -> Option<String> {
    findings
        .iter()
        .find(|(i, o, _)| i == id && o == object)
        .map(|(_, _, found)| found.clone())
}

/// PostgreSQL 16 gives each membership its own INHERIT and SET options:
/// SUPERUSER and BYPASSRLS are never inherited, so only a membership that
/// allows `SET ROLE` makes the runtime role privileged. Before 16 every
/// membership allows it.
#[tokio::test]
async fn runtime_role_can_become_privileged_only_through_set() {
    let db = TestDb::new().await;
    let id = "RUNTIME_CAN_BECOME_PRIVILEGED";
    let privileged = "CREATE ROLE {r}_ops BYPASSRLS;";
    if db.server_version().await < 160000 {
        let plain = findings_with_text(&format!("{privileged} GRANT {{r}}_ops TO {{r}}")).await;
        let found = found_text(&plain, id, "role {r}").expect("a plain grant before 16");
        assert!(found.contains("can SET ROLE {r}_ops"), "{found}");
        eprintln!(
            "PostgreSQL before 16: no INHERIT/SET grant options; only the plain grant is tested"
        );
        return;
    }
    let set_only = findings_with_text(&format!(
        "{privileged} GRANT {{r}}_ops TO {{r}} WITH INHERIT FALSE, SET TRUE"
    ))
    .await;
    let found = found_text(&set_only, id, "role {r}").expect("SET TRUE is a way in");
    assert!(
        found.contains("can SET ROLE {r}_ops (membership with SET)"),
        "{found}"
    );
    for options in ["INHERIT FALSE, SET FALSE", "INHERIT TRUE, SET FALSE"] {
        let closed = findings_with_text(&format!(
            "{privileged} GRANT {{r}}_ops TO {{r}} WITH {options}"
        ))
        .await;
        assert_eq!(
            found_text(&closed, id, "role {r}"),
            None,
            "{options}: {closed:#?}"
        );
    }
}

/// Ownership reaches a runtime role by inheriting the owner's rights or by
/// `SET ROLE` to it, and the finding says which; a membership with neither
/// (16+) is no way in.
#[tokio::test]
async fn runtime_owns_tenant_table_names_the_membership_path() {
    let db = TestDb::new().await;
    let id = "RUNTIME_OWNS_TENANT_TABLE";
    let table = "table public.projects";
    let owner = "CREATE ROLE {r}_owner; ALTER TABLE projects OWNER TO {r}_owner;";
    let (inherit, set_only, neither) = if db.server_version().await >= 160000 {
        (
            "GRANT {r}_owner TO {r} WITH INHERIT TRUE, SET FALSE",
            "GRANT {r}_owner TO {r} WITH INHERIT FALSE, SET TRUE",
            Some("GRANT {r}_owner TO {r} WITH INHERIT FALSE, SET FALSE"),
        )
    } else {
        eprintln!(
            "PostgreSQL before 16: INHERIT is the member's attribute and SET is always allowed"
        );
        (
            "GRANT {r}_owner TO {r}",
            "ALTER ROLE {r} NOINHERIT; GRANT {r}_owner TO {r}",
            None,
        )
    };
    let found = found_text(
        &findings_with_text(&format!("{owner} {inherit}")).await,
        id,
        table,
    )
    .expect("inherited ownership");
    assert!(
        found.contains(
            "{r} inherits the rights of {r}_owner (membership with INHERIT), which owns it"
        ),
        "{found}"
    );
    let found = found_text(
        &findings_with_text(&format!("{owner} {set_only}")).await,
        id,
        table,
    )
    .expect("ownership by SET ROLE");
    assert!(
        found.contains("{r} can SET ROLE {r}_owner (membership with SET), which owns it"),
        "{found}"
    );
    if let Some(neither) = neither {
        let closed = findings_with_text(&format!("{owner} {neither}")).await;
        assert_eq!(found_text(&closed, id, table), None, "{closed:#?}");
    }
}

/// PostgreSQL 17's MAINTAIN lets a runtime role lock every tenant out of a
/// table: audit reports it like TRIGGER and REFERENCES.
#[tokio::test]
async fn maintain_on_a_tenant_table_is_an_excess_privilege() {
    let db = TestDb::new().await;
    if db.server_version().await < 170000 {
        eprintln!("PostgreSQL before 17: no MAINTAIN privilege; skipped");
        return;
    }
    let findings = findings_with_text("GRANT MAINTAIN ON projects TO {r}").await;
    assert_eq!(
        found_text(&findings, "EXCESS_TABLE_PRIVILEGE", "table public.projects").as_deref(),
        Some("{r} may MAINTAIN it (granted to {r})"),
        "{findings:#?}"
    );
}

/// A major past its community end of life gets no more security fixes: an
/// info finding, present on 13 (ended 2025-11-13), absent on a supported
/// major such as 15 (until 2027-11-11).
#[tokio::test]
async fn server_past_end_of_life() {
    let db = TestDb::new().await;
    let major = u32::try_from(db.server_version().await / 10000).unwrap();
    let findings = findings_with_text("").await;
    let found = found_text(
        &findings,
        "SERVER_PAST_END_OF_LIFE",
        &format!("server PostgreSQL {major}"),
    );
    let today = time::OffsetDateTime::now_utc().date();
    let ended = rlsctl::audit::checks::server::end_of_life(major).is_some_and(|eol| today > eol);
    if major == 13 {
        let found = found.expect("13 ended in November 2025");
        assert!(
            found.contains("reached its community end of life on 2025-11-13"),
            "{found}"
        );
    } else {
        assert_eq!(found.is_some(), ended, "PostgreSQL {major}: {findings:#?}");
    }
    let explain = db
        .offline_command(&["explain", "SERVER_PAST_END_OF_LIFE"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(
        explain.status.success() && text.contains("end of life") && text.contains("Fix:"),
        "{text}"
    );
}

/// Severity follows reach: the broken setup lets the runtime role reach
/// another tenant's rows and the finding is an error (audit fails with the
/// default `--fail-on error`); the fixed one may keep the finding, but not
/// as an error.
macro_rules! error_until_fixed {
    ($test:ident, $id:literal, $object:literal, broken: $broken:literal, fixed: $fixed:literal) => {
        #[tokio::test]
        async fn $test() {
            let broken = audit_with_severity($broken).await;
            assert_eq!(
                severity_of(&broken, $id, $object).as_deref(),
                Some("error"),
                "expected {} as an error on {} when broken, got {broken:#?}",
                $id,
                $object
            );
            let fixed = audit_with_severity($fixed).await;
            assert!(
                !fixed
                    .iter()
                    .any(|(id, _, severity)| id == $id && severity == "error"),
                "expected no {} error once fixed, got {fixed:#?}",
                $id
            );
        }
    };
}

error_until_fixed!(
    a_nullable_tenant_column_whose_null_rows_every_tenant_shares,
    "TENANT_COLUMN_NULLABLE",
    "table public.projects",
    broken: "ALTER TABLE projects ALTER tenant_id DROP NOT NULL;
             ALTER POLICY tenant_isolation ON projects
               USING (tenant_id IS NULL OR tenant_id = (SELECT rls.current_tenant_id()))
               WITH CHECK (tenant_id IS NULL OR tenant_id = (SELECT rls.current_tenant_id()))",
    fixed: "ALTER TABLE projects ALTER tenant_id DROP NOT NULL"
);
error_until_fixed!(
    a_security_definer_function_that_reads_a_tenant_table,
    "SECURITY_DEFINER_EXECUTABLE",
    "function public.count_all()",
    broken: "CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
               AS $$ SELECT count(*) FROM public.projects $$",
    fixed: "CREATE FUNCTION count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
              AS $$ SELECT 0::bigint $$"
);
error_until_fixed!(
    a_security_definer_trigger_that_copies_other_tenants_rows,
    "TRIGGER_RUNS_AS_OWNER",
    "trigger copy on public.projects",
    broken: "CREATE TABLE name_log (name text);
             CREATE FUNCTION copy() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
               BEGIN INSERT INTO name_log SELECT name FROM projects; RETURN NEW; END $$;
             CREATE TRIGGER copy AFTER INSERT ON projects FOR EACH ROW EXECUTE FUNCTION copy()",
    fixed: "CREATE TABLE name_log (name text);
            CREATE FUNCTION copy() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
              BEGIN INSERT INTO name_log VALUES (NEW.name); RETURN NEW; END $$;
            CREATE TRIGGER copy AFTER INSERT ON projects FOR EACH ROW EXECUTE FUNCTION copy()"
);
error_until_fixed!(
    a_rule_that_changes_another_tenants_rows,
    "RULE_ON_TENANT_TABLE",
    "rule touch on public.projects",
    broken: "CREATE TABLE tasks (id int, tenant_id uuid NOT NULL, title text);
             CREATE RULE touch AS ON INSERT TO projects DO ALSO UPDATE tasks SET title = NEW.name",
    fixed: "CREATE TABLE name_log (name text);
            CREATE RULE touch AS ON INSERT TO projects DO ALSO INSERT INTO name_log VALUES (NEW.name)"
);
error_until_fixed!(
    a_foreign_table_the_runtime_role_reaches_through_a_user_mapping,
    "FOREIGN_TABLE_READABLE",
    "foreign table public.remote_projects",
    broken: "CREATE EXTENSION postgres_fdw; CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw;
             CREATE USER MAPPING FOR PUBLIC SERVER elsewhere OPTIONS (user 'reporting');
             CREATE FOREIGN TABLE remote_projects (id uuid, tenant_id uuid) SERVER elsewhere;
             GRANT SELECT ON remote_projects TO {r}",
    fixed: "CREATE EXTENSION postgres_fdw; CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw;
            CREATE FOREIGN TABLE remote_projects (id uuid, tenant_id uuid) SERVER elsewhere;
            GRANT SELECT ON remote_projects TO {r}"
);
error_until_fixed!(
    a_trigger_privilege_on_a_tenant_table,
    "EXCESS_TABLE_PRIVILEGE",
    "table public.projects",
    broken: "GRANT TRIGGER ON projects TO {r}",
    fixed: "GRANT REFERENCES ON projects TO {r}"
);

/// Not only the runtime role: any LOGIN role that is subject to RLS and
/// may TRUNCATE a tenant table empties every tenant's rows.
#[tokio::test]
async fn truncate_by_any_login_role_is_found() {
    let findings =
        findings_with_text("CREATE ROLE {r}_etl LOGIN; GRANT TRUNCATE ON projects TO {r}_etl")
            .await;
    assert_eq!(
        found_text(&findings, "TRUNCATE_GRANTED", "table public.projects").as_deref(),
        Some("{r}_etl may TRUNCATE it (granted to {r}_etl)"),
        "{findings:#?}"
    );
    let quiet =
        findings_with_text("CREATE ROLE {r}_etl NOLOGIN; GRANT TRUNCATE ON projects TO {r}_etl")
            .await;
    assert_eq!(
        found_text(&quiet, "TRUNCATE_GRANTED", "table public.projects"),
        None,
        "a role nobody logs in as or reaches: {quiet:#?}"
    );
    // The owner holds every privilege (its ACL entry says so): that is
    // ownership, not a grant to report here.
    let owner =
        findings_with_text("CREATE ROLE {r}_admin LOGIN; ALTER TABLE projects OWNER TO {r}_admin")
            .await;
    assert_eq!(
        found_text(&owner, "TRUNCATE_GRANTED", "table public.projects"),
        None,
        "{owner:#?}"
    );
    let public = findings_with_text("GRANT TRUNCATE ON projects TO PUBLIC").await;
    assert_eq!(
        found_text(&public, "TRUNCATE_GRANTED", "table public.projects").as_deref(),
        Some("PUBLIC (every role) may TRUNCATE it"),
        "{public:#?}"
    );
}

/// The (id, object, fix) of each finding after `breakage`, role written `{r}`.
async fn fixes(breakage: &str) -> Vec<(String, String, String)> {
    findings_with(breakage, "fix").await
}

/// A privilege that comes through a membership is reported with the
/// membership, and the fix revokes the membership, not the group's grant.
#[tokio::test]
async fn a_privilege_through_a_membership_names_the_path_and_fixes_the_membership() {
    let breakage =
        "CREATE ROLE {r}_grp; GRANT TRUNCATE ON projects TO {r}_grp; GRANT {r}_grp TO {r}";
    let findings = findings_with_text(breakage).await;
    let found = found_text(&findings, "TRUNCATE_GRANTED", "table public.projects")
        .expect("TRUNCATE through the group");
    assert!(
        found.contains("{r} may TRUNCATE it: {r} inherits the rights of {r}_grp (membership with INHERIT), which is granted TRUNCATE"),
        "{found}"
    );
    let fix = found_text(
        &fixes(breakage).await,
        "TRUNCATE_GRANTED",
        "table public.projects",
    )
    .expect("a fix");
    assert!(fix.starts_with("REVOKE \"{r}_grp\" FROM \"{r}\";"), "{fix}");

    let owner =
        "CREATE ROLE {r}_owner; ALTER TABLE projects OWNER TO {r}_owner; GRANT {r}_owner TO {r}";
    let fix = found_text(
        &fixes(owner).await,
        "RUNTIME_OWNS_TENANT_TABLE",
        "table public.projects",
    )
    .expect("ownership through the membership");
    assert_eq!(fix, "REVOKE \"{r}_owner\" FROM \"{r}\";");
}

/// Without a spec, audit does not assume `rls.current_tenant_id`: the
/// context function is the one the policies compare the tenant column with.
#[tokio::test]
async fn spec_less_audit_finds_the_context_function_from_the_policies() {
    let setup = "CREATE SCHEMA app;
        CREATE FUNCTION app.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
          AS $$ SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid $$;
        GRANT USAGE ON SCHEMA app TO {r};";
    let sub_select = findings_with_text(&format!(
        "{setup} ALTER POLICY tenant_isolation ON projects
           USING (tenant_id = (SELECT app.current_tenant_id()))
           WITH CHECK (tenant_id = (SELECT app.current_tenant_id()))"
    ))
    .await;
    assert!(
        !sub_select
            .iter()
            .any(|(id, _, _)| id == "CONTEXT_CALLED_PER_ROW"),
        "{sub_select:#?}"
    );
    let per_row = findings_with_text(&format!(
        "{setup} ALTER POLICY tenant_isolation ON projects
           USING (tenant_id = app.current_tenant_id())
           WITH CHECK (tenant_id = (SELECT app.current_tenant_id()))"
    ))
    .await;
    assert_eq!(
        found_text(
            &per_row,
            "CONTEXT_CALLED_PER_ROW",
            "policy tenant_isolation on public.projects"
        )
        .as_deref(),
        Some("calls app.current_tenant_id() outside a sub-select"),
        "{per_row:#?}"
    );
}

finds_until_fixed!(
    a_unique_key_without_the_tenant_the_runtime_role_can_insert_into,
    "UNIQUE_NOT_SCOPED_BY_TENANT",
    "constraint projects_name_key on public.projects",
    broken: "ALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name)",
    fixed: "ALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name);
            REVOKE INSERT, UPDATE ON projects FROM {r}"
);
finds_until_fixed!(
    a_foreign_key_without_the_tenant_the_runtime_role_can_insert_through,
    "FOREIGN_KEY_NOT_SCOPED_BY_TENANT",
    "constraint tasks_project_id_fkey on public.tasks",
    broken: "CREATE TABLE tasks (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, project_id uuid REFERENCES projects (id));
             GRANT SELECT, INSERT ON tasks TO {r}",
    fixed: "CREATE TABLE tasks (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, project_id uuid REFERENCES projects (id));
            GRANT SELECT ON tasks TO {r}"
);

/// A key whose one column defaults to a call of `gen_random_uuid()` (cast or
/// not) holds values no one can guess, so it is no existence oracle; a key
/// numbered by a sequence is, and so is one whose default is only text that
/// looks like the call. The audit reads what the default calls, it does not
/// print the default.
#[tokio::test]
async fn a_unique_key_of_random_uuids_is_no_oracle_but_a_numbered_one_is() {
    let findings = audit_after(
        "ALTER TABLE projects ADD COLUMN token uuid DEFAULT gen_random_uuid() UNIQUE;
         ALTER TABLE projects ADD COLUMN ref text DEFAULT gen_random_uuid()::text UNIQUE;
         ALTER TABLE projects ADD COLUMN ticket bigserial UNIQUE;
         ALTER TABLE projects ADD COLUMN code text DEFAULT 'gen_random_uuid()' UNIQUE",
    )
    .await;
    let reported = |key: &str| {
        findings.iter().any(|(id, object)| {
            id == "UNIQUE_NOT_SCOPED_BY_TENANT"
                && *object == format!("constraint {key} on public.projects")
        })
    };
    for random in ["projects_pkey", "projects_token_key", "projects_ref_key"] {
        assert!(!reported(random), "{random}: {findings:#?}");
    }
    for guessable in ["projects_ticket_key", "projects_code_key"] {
        assert!(reported(guessable), "{guessable}: {findings:#?}");
    }
}

/// The oracle names the way the runtime role probes the key.
#[tokio::test]
async fn an_existence_oracle_says_how_it_is_probed() {
    let findings = findings_with_text(
        "REVOKE INSERT, UPDATE ON projects FROM {r};
         ALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name);
         CREATE TABLE tags (id int, tenant_id uuid NOT NULL, project_name text REFERENCES projects (name));
         GRANT INSERT ON tags TO {r}",
    )
    .await;
    assert_eq!(
        found_text(
            &findings,
            "UNIQUE_NOT_SCOPED_BY_TENANT",
            "constraint projects_name_key on public.projects"
        )
        .as_deref(),
        Some(
            "unique (name) without tenant_id: the runtime role learns whether another tenant uses a value through foreign key tags_project_name_fkey from public.tags"
        ),
        "{findings:#?}"
    );
}

finds_until_fixed!(
    a_function_a_policy_calls_owned_by_the_runtime_role,
    "POLICY_FUNCTION_WRITABLE",
    "function public.is_member()",
    broken: "CREATE FUNCTION is_member() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT true $$;
             ALTER FUNCTION is_member() OWNER TO {r};
             CREATE POLICY member ON projects AS RESTRICTIVE TO {r} USING ((SELECT is_member()))",
    fixed: "CREATE FUNCTION is_member() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT true $$;
            CREATE POLICY member ON projects AS RESTRICTIVE TO {r} USING ((SELECT is_member()))"
);
finds_until_fixed!(
    a_lookup_table_a_policy_reads_that_the_runtime_role_can_write,
    "POLICY_LOOKUP_WRITABLE",
    "policy via_membership on public.projects",
    broken: "CREATE TABLE memberships (tenant uuid NOT NULL, member text NOT NULL);
             GRANT SELECT, INSERT ON memberships TO {r};
             CREATE POLICY via_membership ON projects TO {r}
               USING (tenant_id IN (SELECT tenant FROM memberships WHERE member = current_user))",
    fixed: "CREATE TABLE memberships (tenant uuid NOT NULL, member text NOT NULL);
            GRANT SELECT ON memberships TO {r};
            CREATE POLICY via_membership ON projects TO {r}
              USING (tenant_id IN (SELECT tenant FROM memberships WHERE member = current_user))"
);

finds_until_fixed!(
    a_sequence_every_tenant_draws_from,
    "SEQUENCE_SHARED_ACROSS_TENANTS",
    "sequence public.orders_id_seq",
    broken: "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id uuid NOT NULL);
             GRANT SELECT, INSERT ON orders TO {r}",
    fixed: "CREATE TABLE orders (id uuid DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL);
            GRANT SELECT, INSERT ON orders TO {r}"
);
finds_until_fixed!(
    other_sessions_query_text_readable,
    "STAT_ACTIVITY_READABLE",
    "view pg_catalog.pg_stat_activity",
    broken: "GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC",
    fixed: "GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC;
            REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC"
);
finds_until_fixed!(
    the_tenant_setting_is_on_record_until_the_tenant_comes_from_elsewhere,
    "TENANT_SETTING_SETTABLE",
    "setting app.current_tenant_id",
    broken: "",
    fixed: "CREATE TABLE rls.tenant_of_role (role_name name PRIMARY KEY, tenant uuid NOT NULL);
            GRANT SELECT ON rls.tenant_of_role TO {r};
            CREATE OR REPLACE FUNCTION rls.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
              AS $$ SELECT tenant FROM rls.tenant_of_role WHERE role_name = current_user $$"
);
