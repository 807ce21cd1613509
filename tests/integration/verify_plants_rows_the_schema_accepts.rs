//! verify makes up probe rows that the schema accepts — CHECK constraints,
//! numeric precision, varchar lengths, domains, enums, generated and identity
//! columns, chains of NOT NULL foreign keys, partition bounds, explicit
//! `probe_values` — so ordinary schemas get no NOT PROVEN cell, and a broken
//! policy on such a table is still caught as a LEAK.

use serde_json::Value;

use crate::harness::{TestDb, simple_spec, unique};

/// Runs `verify --format json`; returns the exit code and the matrix.
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

fn cell<'m>(matrix: &'m Value, object: &str, probe: &str) -> &'m Value {
    let found = matrix["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
        .unwrap_or_else(|| panic!("no {object} in {matrix:#}"));
    &found["cells"][probe]
}

fn verdict(matrix: &Value, object: &str, probe: &str) -> String {
    cell(matrix, object, probe)["verdict"]
        .as_str()
        .unwrap_or_else(|| panic!("no {probe} cell for {object}"))
        .to_string()
}

/// Every cell that is not PROVEN, as (object, probe, detail).
fn unproven(matrix: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for object in matrix["objects"].as_array().unwrap() {
        for (probe, cell) in object["cells"].as_object().unwrap() {
            if cell["verdict"] != "PROVEN" {
                out.push((
                    object["object"].as_str().unwrap().to_string(),
                    probe.clone(),
                    cell["detail"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// A database with `schema` migrated and `tables` declared for a fresh role, applied.
async fn applied(schema: &str, tables: &[&str]) -> (TestDb, String) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", schema);
    db.spec(&simple_spec(&role, tables));
    db.rlsctl(&["apply"]).success();
    (db, role)
}

#[tokio::test]
async fn verify_proves_table_with_check_in_list_numeric_scale_and_varchar_length() {
    let (db, role) = applied(
        "CREATE TABLE transfers (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             tenant_id uuid NOT NULL,
             direction text NOT NULL CHECK (direction IN ('in', 'out')),
             channel varchar(8) NOT NULL CHECK (channel IN ('wire', 'card')),
             amount numeric(10,2) NOT NULL CHECK (amount > 0 AND amount <= 50000),
             fee numeric(4,2) NOT NULL,
             currency char(3) NOT NULL,
             code varchar(5) NOT NULL,
             priority int NOT NULL CHECK (priority BETWEEN 1 AND 5),
             note text NOT NULL CHECK (length(note) >= 12),
             pin text NOT NULL CHECK (length(pin) = 4),
             active boolean NOT NULL CHECK (active),
             UNIQUE (tenant_id, code));",
        &["transfers"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);

    // The same rows still catch a policy that opens reads.
    db.execute(&format!(
        "CREATE POLICY everyone_reads ON transfers FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.transfers", "read"), "LEAK");
}

#[tokio::test]
async fn verify_proves_tables_with_domains_enums_generated_and_identity_columns() {
    let (db, role) = applied(
        "CREATE DOMAIN quantity AS integer CHECK (VALUE > 0 AND VALUE < 100);
         CREATE DOMAIN sku AS varchar(6) CHECK (char_length(VALUE) >= 4);
         CREATE TYPE state AS ENUM ('draft', 'sent', 'paid');
         CREATE TABLE orders (
             id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             tenant_id uuid NOT NULL,
             qty quantity NOT NULL,
             item sku NOT NULL,
             state state NOT NULL CHECK (state <> 'draft'),
             double_qty int GENERATED ALWAYS AS (qty * 2) STORED);",
        &["orders"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);

    db.execute("ALTER POLICY tenant_isolation ON orders WITH CHECK (true)")
        .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.orders", "insert"), "LEAK");
    let _ = role;
}

#[tokio::test]
async fn verify_plants_parents_through_a_chain_of_not_null_foreign_keys() {
    let (db, _) = applied(
        "CREATE TABLE accounts (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             kind text NOT NULL CHECK (kind IN ('asset', 'liability')),
             UNIQUE (tenant_id, id));
         CREATE TABLE ledgers (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             account_id uuid NOT NULL,
             year int NOT NULL CHECK (year BETWEEN 2000 AND 2100),
             UNIQUE (tenant_id, id),
             FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id));
         CREATE TABLE entries (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             ledger_id uuid NOT NULL,
             amount numeric(8,2) NOT NULL CHECK (amount <> 0),
             FOREIGN KEY (tenant_id, ledger_id) REFERENCES ledgers (tenant_id, id));",
        &["accounts", "ledgers", "entries"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    assert_eq!(
        db.row_counts(&["accounts", "ledgers", "entries"]).await,
        vec![0, 0, 0]
    );
}

const PARTITIONED: &str = "
CREATE TABLE events (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id, at)
) PARTITION BY RANGE (at);
CREATE TABLE events_2001 PARTITION OF events FOR VALUES FROM ('2001-01-01') TO ('2002-01-01');
CREATE TABLE events_2002 PARTITION OF events FOR VALUES FROM ('2002-01-01') TO ('2003-01-01');
CREATE TABLE readings (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    region text NOT NULL
) PARTITION BY LIST (region);
CREATE TABLE readings_eu PARTITION OF readings FOR VALUES IN ('eu-west', 'eu-north');
CREATE TABLE readings_us PARTITION OF readings FOR VALUES IN ('us-east');
CREATE TABLE readings_rest PARTITION OF readings DEFAULT;
CREATE TABLE logs (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    body text
) PARTITION BY HASH (id);
CREATE TABLE logs_0 PARTITION OF logs FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE logs_1 PARTITION OF logs FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE logs_2 PARTITION OF logs FOR VALUES WITH (MODULUS 3, REMAINDER 2);
";

#[tokio::test]
async fn verify_plants_rows_in_every_range_list_and_hash_partition() {
    let (db, role) = applied(PARTITIONED, &["events", "readings", "logs"]).await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    let partitions = [
        "public.events_2001",
        "public.events_2002",
        "public.readings_eu",
        "public.readings_us",
        "public.readings_rest",
        "public.logs_0",
        "public.logs_1",
        "public.logs_2",
    ];
    for partition in partitions {
        assert_eq!(verdict(&matrix, partition, "read"), "PROVEN", "{partition}");
    }

    // A partition whose range excludes now() is tested too: it leaks.
    db.execute(&format!(
        "ALTER TABLE events_2002 DISABLE ROW LEVEL SECURITY; GRANT SELECT ON events_2002 TO {role};
         ALTER TABLE readings_rest DISABLE ROW LEVEL SECURITY; GRANT SELECT ON readings_rest TO {role};
         ALTER TABLE logs_2 DISABLE ROW LEVEL SECURITY; GRANT SELECT ON logs_2 TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    for leaking in [
        "public.events_2002",
        "public.readings_rest",
        "public.logs_2",
    ] {
        assert_eq!(verdict(&matrix, leaking, "read"), "LEAK", "{leaking}");
    }
    assert_eq!(verdict(&matrix, "public.events_2001", "read"), "PROVEN");
    assert_eq!(
        db.row_counts(&["events", "readings", "logs"]).await,
        vec![0, 0, 0]
    );
}

const CODED: &str = "CREATE TABLE vouchers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    code text NOT NULL CHECK (code ~ '^[A-Z]{3}-[0-9]{4}$'));";

#[tokio::test]
async fn verify_uses_probe_values_from_the_spec_where_nothing_can_be_derived() {
    let (db, role) = applied(CODED, &["vouchers"]).await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 0);
    let read = cell(&matrix, "public.vouchers", "read");
    assert_eq!(read["verdict"], "NOT_PROVEN");
    let detail = read["detail"].as_str().unwrap();
    assert!(detail.contains("probe_values"), "{detail}");

    db.spec(&format!(
        "roles:\n  - name: {role}\ntables:\n  - name: vouchers\n    probe_values:\n      code: ABC-1234\n"
    ));
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
}

#[tokio::test]
async fn verify_names_the_spec_line_of_a_probe_value_for_a_missing_column() {
    let (db, role) = applied(CODED, &["vouchers"]).await;
    let before = db.state(&[&role]).await;
    db.spec(&format!(
        "roles:\n  - name: {role}\ntables:\n  - name: vouchers\n    probe_values:\n      coode: ABC-1234\n"
    ));
    let run = db.rlsctl(&["verify"]).failure();
    assert!(
        run.stderr.contains("spec.yaml:6:7") && run.stderr.contains("no column coode"),
        "{}",
        run.stderr
    );
    assert_eq!(db.state(&[&role]).await, before);
}

#[tokio::test]
async fn verify_makes_up_tenant_ids_every_tenant_column_accepts() {
    let db = TestDb::new().await;
    let role = unique("app");
    // Text tenant ids limited in length by a CHECK: the long made-up text ids
    // and uuids do not fit.
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE shops (id bigserial PRIMARY KEY, tenant_id text NOT NULL);
         CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL
             CHECK (char_length(tenant_id) <= 12 AND tenant_id <> ''));",
    );
    db.spec(&format!(
        "tenancy:\n  type: text\nroles:\n  - name: {role}\ntables:\n  - shops\n  - orders\n"
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);

    let db = TestDb::new().await;
    let role = unique("app");
    db.migration(
        "V1__schema.sql",
        "CREATE TABLE counters (id bigserial PRIMARY KEY,
             tenant_id integer NOT NULL CHECK (tenant_id > 0));",
    );
    db.spec(&format!(
        "tenancy:\n  type: integer\nroles:\n  - name: {role}\ntables:\n  - counters\n"
    ));
    db.rlsctl(&["apply"]).success();
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    let a: i64 = matrix["tenant_a"].as_str().unwrap().parse().unwrap();
    assert!(a > 0, "{a}");
}

#[tokio::test]
async fn verify_plants_rows_in_inheritance_children_and_sub_partitions() {
    let (db, role) = applied(
        "CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text);
         CREATE TABLE legacy_notes (archived_at timestamptz NOT NULL) INHERITS (notes);
         CREATE TABLE metrics (
             id bigint NOT NULL,
             tenant_id uuid NOT NULL,
             kind text NOT NULL,
             day date NOT NULL
         ) PARTITION BY LIST (kind);
         CREATE TABLE metrics_cpu PARTITION OF metrics FOR VALUES IN ('cpu')
             PARTITION BY RANGE (day);
         CREATE TABLE metrics_cpu_1999 PARTITION OF metrics_cpu
             FOR VALUES FROM ('1999-01-01') TO ('2000-01-01');
         CREATE TABLE metrics_mem PARTITION OF metrics FOR VALUES IN ('mem');",
        &["notes", "metrics"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    for child in [
        "public.legacy_notes",
        "public.metrics_cpu",
        "public.metrics_mem",
    ] {
        assert_eq!(verdict(&matrix, child, "read"), "PROVEN", "{child}");
    }

    db.execute(&format!(
        "ALTER TABLE legacy_notes DISABLE ROW LEVEL SECURITY; GRANT SELECT ON legacy_notes TO {role};
         ALTER TABLE metrics_cpu DISABLE ROW LEVEL SECURITY; GRANT SELECT ON metrics_cpu TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.legacy_notes", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.metrics_cpu", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.metrics_mem", "read"), "PROVEN");
}

#[tokio::test]
async fn verify_chooses_tenant_ids_that_tenant_columns_of_different_types_all_parse() {
    // A database rlsctl did not build: a text tenant column (sorted first)
    // beside a uuid one, each with its own hand-written policy.
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&format!(
        "CREATE ROLE {role};
         CREATE TABLE a_notes (id bigserial PRIMARY KEY, tenant_id text NOT NULL, body text);
         CREATE TABLE b_docs (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text);
         ALTER TABLE a_notes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE b_docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY tenant ON a_notes TO {role}
             USING (tenant_id = current_setting('app.current_tenant_id', true));
         CREATE POLICY tenant ON b_docs TO {role}
             USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
         GRANT SELECT, INSERT, UPDATE, DELETE ON a_notes, b_docs TO {role};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ))
    .await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    assert_eq!(unproven(&matrix), vec![]);

    // Still a real test: open one table's reads.
    db.execute(&format!(
        "CREATE POLICY everyone ON b_docs FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(verdict(&run.json(), "public.b_docs", "read"), "LEAK");
}

#[tokio::test]
async fn verify_proves_table_whose_check_compares_two_columns() {
    let (db, role) = applied(
        "CREATE TABLE bookings (
             id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             tenant_id uuid NOT NULL,
             ends_at timestamptz NOT NULL,
             starts_at timestamptz NOT NULL,
             max_guests int NOT NULL,
             min_guests int NOT NULL,
             CHECK (ends_at > starts_at),
             CHECK (starts_at <= now()),
             CHECK (min_guests < max_guests));",
        &["bookings"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);

    db.execute(&format!(
        "CREATE POLICY cleanup ON bookings FOR DELETE TO {role} USING (true)"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.bookings", "delete"), "LEAK");
}

#[tokio::test]
async fn verify_plants_rows_in_every_partition_of_a_table_partitioned_by_tenant() {
    let (db, role) = applied(
        "CREATE TABLE messages (id bigint NOT NULL, tenant_id uuid NOT NULL, body text)
             PARTITION BY HASH (tenant_id);
         CREATE TABLE messages_0 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 0);
         CREATE TABLE messages_1 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 1);
         CREATE TABLE messages_2 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 2);
         CREATE TABLE messages_3 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 3);
         CREATE TABLE files (id bigint NOT NULL, tenant_id uuid NOT NULL)
             PARTITION BY LIST (tenant_id);
         CREATE TABLE files_big_customer PARTITION OF files
             FOR VALUES IN ('6f1c3a52-0000-4000-8000-000000000001');
         CREATE TABLE files_rest PARTITION OF files DEFAULT;",
        &["messages", "files"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);

    db.execute(&format!(
        "ALTER TABLE messages_3 DISABLE ROW LEVEL SECURITY; GRANT SELECT ON messages_3 TO {role};
         ALTER TABLE files_big_customer DISABLE ROW LEVEL SECURITY;
         GRANT SELECT ON files_big_customer TO {role};"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.messages_3", "read"), "LEAK");
    assert_eq!(
        verdict(&matrix, "public.files_big_customer", "read"),
        "LEAK"
    );
    assert_eq!(verdict(&matrix, "public.messages_0", "read"), "PROVEN");
}

#[tokio::test]
async fn verify_makes_up_tenant_ids_of_a_type_beyond_uuid_text_and_integers() {
    // Tenants keyed by network address, with a hand-written policy.
    let db = TestDb::new().await;
    let role = unique("app");
    db.execute(&format!(
        "CREATE ROLE {role};
         CREATE TABLE leases (id bigserial PRIMARY KEY, tenant_id inet NOT NULL, host text);
         ALTER TABLE leases ENABLE ROW LEVEL SECURITY;
         CREATE POLICY tenant ON leases TO {role}
             USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::inet);
         GRANT SELECT, INSERT, UPDATE, DELETE ON leases TO {role};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ))
    .await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let matrix = run.json();
    assert_eq!(unproven(&matrix), vec![]);
    assert!(
        matrix["tenant_a"].as_str().unwrap().starts_with("192.0.2."),
        "{}",
        matrix["tenant_a"]
    );
}

#[tokio::test]
async fn verify_plants_rows_in_partitions_of_a_two_column_range() {
    let (db, _) = applied(
        "CREATE TABLE usage (id bigint NOT NULL, tenant_id uuid NOT NULL,
                             year int NOT NULL, month int NOT NULL CHECK (month BETWEEN 1 AND 12))
             PARTITION BY RANGE (year, month);
         CREATE TABLE usage_2020_h1 PARTITION OF usage FOR VALUES FROM (2020, 1) TO (2020, 7);
         CREATE TABLE usage_2020_h2 PARTITION OF usage FOR VALUES FROM (2020, 7) TO (2021, 1);",
        &["usage"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
}

#[tokio::test]
async fn verify_proves_table_whose_columns_have_not_null_domains() {
    // Nullable columns typed by domains that refuse NULL (with a CHECK too):
    // a row template leaving them NULL fails, so each needs a value the
    // domain takes.
    let (db, role) = applied(
        "CREATE DOMAIN required_label AS text NOT NULL CHECK (VALUE IN ('low', 'high'));
         CREATE DOMAIN required_count AS integer NOT NULL CHECK (VALUE BETWEEN 1 AND 9);
         CREATE TABLE alarms (
             id bigserial PRIMARY KEY,
             tenant_id uuid NOT NULL,
             level required_label,
             repeats required_count,
             note text);",
        &["alarms"],
    )
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(unproven(&matrix), vec![]);
    assert_eq!(code, 0);
    assert_eq!(db.row_counts(&["alarms"]).await, vec![0]);

    db.execute(&format!(
        "CREATE POLICY everyone_reads ON alarms FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let (code, matrix) = verify(&db);
    assert_eq!(code, 2);
    assert_eq!(verdict(&matrix, "public.alarms", "read"), "LEAK");
}

#[tokio::test]
async fn verify_makes_up_tenant_ids_per_table_when_tenant_columns_share_no_value() {
    // Hand-written policies on tenant columns of types no single text parses
    // as all of: uuid, inet, date, macaddr, and name and citext (an
    // extension's type) beside them. Each table gets tenants of its own type.
    let db = TestDb::new().await;
    let role = unique("app");
    let mut sql = format!("CREATE EXTENSION citext; CREATE ROLE {role};");
    for (table, ty) in [
        ("docs", "uuid"),
        ("leases", "inet"),
        ("shifts", "date"),
        ("inboxes", "name"),
        ("handles", "citext"),
        ("devices", "macaddr"),
    ] {
        sql.push_str(&format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, tenant_id {ty} NOT NULL, body text);
             ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
             CREATE POLICY tenant ON {table} TO {role}
                 USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::{ty});
             GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role};"
        ));
    }
    sql.push_str(&format!(
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ));
    db.execute(&sql).await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert_eq!(unproven(&run.json()), vec![]);

    db.execute(&format!(
        "CREATE POLICY everyone ON shifts FOR SELECT TO {role} USING (true)"
    ))
    .await;
    let run = db.rlsctl(&["verify", "--role", &role, "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let matrix = run.json();
    assert_eq!(verdict(&matrix, "public.shifts", "read"), "LEAK");
    assert_eq!(verdict(&matrix, "public.leases", "read"), "PROVEN");
}
