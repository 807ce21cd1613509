//! What `rlsctl init --from-db` cannot express, or what apply would still
//! change, is written as a `# TODO:` comment, never dropped in silence.

use crate::harness::{TestDb, cluster_execute, unique};
use crate::init_from_db_hand_built_setups::init;

#[tokio::test]
async fn what_the_spec_cannot_say_is_a_todo_and_plan_does_only_what_the_todos_announce() {
    let db = TestDb::new().await;
    let (app, backup) = (unique("app"), unique("backup"));
    cluster_execute(&format!(
        "CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS; CREATE ROLE {backup} NOLOGIN BYPASSRLS"
    ))
    .await;
    let tenant = "org_id = current_setting('app.org', true)::uuid";
    db.execute(&format!(
        "CREATE TABLE projects (id bigint PRIMARY KEY, org_id uuid NOT NULL);
CREATE INDEX ON projects (org_id);
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON projects TO {app} USING ({tenant}) WITH CHECK ({tenant});
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON projects TO {app};
GRANT SELECT ON projects TO {backup};
CREATE POLICY support_sees_all ON projects FOR SELECT TO {app} USING (true);

-- One policy per command, as Supabase guides write them: not one FOR ALL policy.
CREATE TABLE notes (id bigint PRIMARY KEY, org_id uuid NOT NULL, body text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_read ON notes FOR SELECT TO {app} USING ({tenant} AND body IS NOT NULL);
CREATE POLICY notes_write ON notes FOR INSERT TO {app} WITH CHECK ({tenant});
GRANT SELECT, INSERT ON notes TO {app};

-- No tenant index; a partition without its parent's policy.
CREATE TABLE tasks (id bigint PRIMARY KEY, org_id uuid NOT NULL);
CREATE TABLE events (org_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE INDEX ON events (org_id);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON tasks TO {app} USING ({tenant}) WITH CHECK ({tenant});
CREATE POLICY org_isolation ON events TO {app} USING ({tenant}) WITH CHECK ({tenant});
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks, events TO {app};

-- A lookup table the application reads: not tenant data.
CREATE TABLE countries (code text PRIMARY KEY);
GRANT SELECT ON countries TO {app};

-- A table that is not tenant data, with a policy of its own.
CREATE TABLE plans (id bigint PRIMARY KEY, public boolean NOT NULL);
ALTER TABLE plans ENABLE ROW LEVEL SECURITY;
CREATE POLICY plans_visible ON plans FOR SELECT USING (public);"
    ))
    .await;

    let spec = init(&db);
    for expected in [
        "# TODO: table public.notes is not declared: its policies notes_read, notes_write compare a column with the tenant",
        "# TODO: policies plans_visible on public.plans are kept as they are",
        "  # TODO: apply will FORCE ROW LEVEL SECURITY here\n",
        &format!(
            "  # TODO: {app} holds TRUNCATE on public.projects, which the spec does not grant: apply will revoke it\n"
        ),
        "  # TODO: no index leads with org_id: apply will create tasks_org_id_idx\n",
        &format!(
            "# TODO: {backup} bypasses row-level security (SUPERUSER or BYPASSRLS) and holds privileges on public.projects"
        ),
        &format!("#       bypass_roles: [{{role: {backup}, reason: …}}]\n"),
        &format!(
            "# TODO: {app} holds SELECT on public.countries, which is not a tenant table. To have apply keep exactly that (and audit watch it), declare it:\n#       grants:\n#         - table: public.countries\n#           roles: [{app}]\n#           privileges: [select]\n"
        ),
        &format!(
            "  # TODO: policy support_sees_all opens every tenant's rows to {app}: kept as an extra policy"
        ),
        "  # TODO: public.events_2026 is covered by declaring public.events: apply will add ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, policy org_isolation there",
    ] {
        assert!(spec.contains(expected), "`{expected}` missing from\n{spec}");
    }
    assert!(!spec.contains("- notes"), "{spec}");
    db.offline_command(&["validate"])
        .output()
        .map(|o| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)))
        .unwrap();

    // Exactly what the TODOs announced, nothing else.
    let plan = db
        .rlsctl(&["plan", "--format", "json"])
        .success()
        .planned_sql();
    let on = |table: &str| -> Vec<&String> {
        plan.iter()
            .filter(|s| s.contains(&format!("\"public\".\"{table}\"")))
            .collect()
    };
    assert_eq!(
        on("projects"),
        [
            "ALTER TABLE \"public\".\"projects\" FORCE ROW LEVEL SECURITY",
            &format!("REVOKE TRUNCATE ON TABLE \"public\".\"projects\" FROM \"{app}\""),
        ],
        "{spec}"
    );
    assert!(on("countries").is_empty(), "{plan:#?}");
    let tasks = on("tasks");
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert!(tasks[0].starts_with("CREATE INDEX"), "{tasks:#?}");
    let partition = on("events_2026");
    for statement in [
        "ENABLE ROW LEVEL SECURITY",
        "FORCE ROW LEVEL SECURITY",
        "CREATE POLICY \"org_isolation\"",
    ] {
        assert!(
            partition.iter().any(|s| s.contains(statement)),
            "{statement}: {partition:#?}"
        );
    }
    assert!(
        on("notes").is_empty() && on("plans").is_empty(),
        "{plan:#?}"
    );
    assert_eq!(
        plan.len(),
        on("projects").len() + tasks.len() + partition.len(),
        "{plan:#?}"
    );
}
