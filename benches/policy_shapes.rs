//! Policy-shape benchmark: the policies rlsctl generates against a
//! hand-written `WHERE tenant_id = $1`, on 1,000,000 rows across 1,000 tenants,
//! as the runtime role, on a throwaway PostgreSQL, all in one run. Also the
//! slow shapes audit flags (a VOLATILE plpgsql context function called per row,
//! and the same wrapped in `(select …)`), to show why they are flagged, and a
//! large tenant's full-scan aggregate with the context function PARALLEL SAFE
//! (generated) and PARALLEL UNSAFE.
//!
//! For point lookup, aggregate, join and insert it prints both medians, the
//! ratio and the policy's overhead per statement in µs, judged against the
//! target: ≤ 1.05× on statements of 1 ms or more, ≤ 3 µs below that. It
//! also measures inserts with a cheaper WITH CHECK shape (the context
//! function called directly).
//!
//! `cargo bench --bench policy_shapes` (`-- 200000` for fewer rows).

mod common;

use std::time::{Duration, Instant};

use common::{results_table, rlsctl};
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

const TENANTS: i64 = 1000;
/// Rounds per workload; the two connections swap sides between rounds.
const ROUNDS: usize = 4;

async fn run(conn: &mut PgConnection, sql: &'static str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap();
}

/// Median time of `times` runs of `op`.
async fn median<F>(times: usize, mut op: F) -> Duration
where
    F: AsyncFnMut(usize),
{
    let mut samples = Vec::with_capacity(times);
    for i in 0..times {
        let start = Instant::now();
        op(i).await;
        samples.push(start.elapsed());
    }
    middle(samples)
}

fn middle(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The hand-written side: a role like the runtime role (not a superuser, the
/// same grants) that RLS does not apply to, so the comparison isolates what
/// the policy costs rather than what being a superuser saves.
const BASELINE_ROLE: &str = "bench_direct";
/// The role rlsctl's spec declares; the generated policies apply to it.
const RUNTIME_ROLE: &str = "bench_app";
/// The tenant predicate `rlsctl apply` generates (as the slow shapes restore it).
const GENERATED: &str = "tenant_id = (SELECT rls.current_tenant_id())";

/// The tenant predicate with the context function called directly.
const UNWRAPPED: &str = "tenant_id = rls.current_tenant_id()";

/// The restated target: a statement of 1 ms or more may take at most 5 %
/// longer through the policy; a shorter one at most 3 µs longer (the
/// measured cost of reading the tenant setting once).
const RATIO_TARGET: f64 = 1.05;
const ABSOLUTE_TARGET_US: f64 = 3.0;

/// The row of one workload: medians, ratio, the policy's overhead per
/// statement and whether it meets the target. Both sides send the same
/// messages and receive the same rows, so what the client and the socket
/// cost cancels out in the difference: the overhead is the server's.
fn judged(name: &str, hand: Duration, policy: Duration) -> [String; 6] {
    let (h, p) = (hand.as_secs_f64(), policy.as_secs_f64());
    let ratio = p / h;
    let overhead_us = (p - h) * 1e6;
    let verdict = if h >= 1e-3 {
        let met = if ratio <= RATIO_TARGET {
            "met"
        } else {
            "MISSED"
        };
        format!("≤ {RATIO_TARGET:.2}× (≥ 1 ms): {met}")
    } else {
        let met = if overhead_us <= ABSOLUTE_TARGET_US {
            "met"
        } else {
            "MISSED"
        };
        format!("≤ {ABSOLUTE_TARGET_US:.0} µs (< 1 ms): {met}")
    };
    [
        name.to_string(),
        format!("{:.3} ms", h * 1000.0),
        format!("{:.3} ms", p * 1000.0),
        format!("{ratio:.3}×"),
        format!("{overhead_us:+.1} µs"),
        verdict,
    ]
}

/// Medians of workload `w` hand-written and through the policy, the two
/// connections interleaved operation by operation.
async fn compare(
    connections: &mut [PgConnection; 2],
    w: &Workload,
    ids: &[sqlx::types::Uuid],
    tenant: &str,
) -> (Duration, Duration) {
    let mut hand = Vec::with_capacity(w.times);
    let mut policy = Vec::with_capacity(w.times);
    for round in 0..ROUNDS {
        let [first, second] = connections;
        let (baseline, app) = if round % 2 == 0 {
            (first, second)
        } else {
            (second, first)
        };
        begin_as(baseline, BASELINE_ROLE, tenant).await;
        begin_as(app, RUNTIME_ROLE, tenant).await;
        for i in 0..w.times / ROUNDS {
            let id = ids[i % ids.len()];
            let mut sides = [
                (&mut *baseline, w.hand_written, &mut hand),
                (&mut *app, w.through_policy, &mut policy),
            ];
            if i % 2 == 1 {
                sides.reverse();
            }
            for (side, sql, samples) in sides {
                let start = Instant::now();
                sqlx::query(sql)
                    .bind(id)
                    .bind(tenant)
                    .execute(&mut *side)
                    .await
                    .unwrap();
                samples.push(start.elapsed());
            }
        }
        run(baseline, "ROLLBACK").await;
        run(app, "ROLLBACK").await;
    }
    (middle(hand), middle(policy))
}

/// Opens a transaction acting as `role` with `tenant` bound, as the
/// application does; rolled back by the caller.
async fn begin_as(conn: &mut PgConnection, role: &str, tenant: &str) {
    run(conn, "BEGIN").await;
    sqlx::query(
        "SELECT set_config('role', $1, true), set_config('app.current_tenant_id', $2, true)",
    )
    .bind(role)
    .bind(tenant)
    .execute(&mut *conn)
    .await
    .unwrap();
}

struct Workload {
    name: &'static str,
    times: usize,
    /// As the baseline role (no RLS applies), with the tenant filter written by hand.
    hand_written: &'static str,
    /// As the runtime role: the policy supplies the filter.
    through_policy: &'static str,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "point lookup by id",
        times: 6000,
        hand_written: "SELECT amount FROM items WHERE id = $1 AND tenant_id = $2::uuid",
        through_policy: "SELECT amount FROM items WHERE id = $1 AND $2::text IS NOT NULL",
    },
    Workload {
        name: "tenant aggregate",
        times: 180,
        hand_written: "SELECT count(*), sum(amount) FROM items WHERE tenant_id = $2::uuid AND $1::uuid IS NOT NULL",
        through_policy: "SELECT count(*), sum(amount) FROM items WHERE $1::uuid IS NOT NULL AND $2::text IS NOT NULL",
    },
    Workload {
        name: "join of two tenant tables",
        times: 180,
        hand_written: "SELECT count(*) FROM items i JOIN notes n ON n.tenant_id = i.tenant_id AND n.item_id = i.id
                        WHERE i.tenant_id = $2::uuid AND n.tenant_id = $2::uuid AND $1::uuid IS NOT NULL",
        through_policy: "SELECT count(*) FROM items i JOIN notes n ON n.tenant_id = i.tenant_id AND n.item_id = i.id
                          WHERE $1::uuid IS NOT NULL AND $2::text IS NOT NULL",
    },
    Workload {
        name: "insert",
        times: 6000,
        hand_written: "INSERT INTO items (tenant_id, amount) SELECT $2::uuid, 1 WHERE $1::uuid IS NOT NULL",
        through_policy: "INSERT INTO items (tenant_id, amount) SELECT $2::uuid, 1 WHERE $1::uuid IS NOT NULL",
    },
];

// One client thread: the client's own scheduling stays out of the comparison.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let server = EphemeralServer::start().expect("start PostgreSQL");
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    run(&mut admin, "CREATE DATABASE shapes").await;
    let url = server.url_for("shapes");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    eprintln!("loading {rows} items and {rows} notes across {TENANTS} tenants…");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
                             amount integer NOT NULL, created date NOT NULL DEFAULT current_date);
         INSERT INTO items (tenant_id, amount)
              SELECT ('00000000-0000-4000-8000-' || lpad((g % {TENANTS})::text, 12, '0'))::uuid, g % 97
                FROM generate_series(1, {rows}) g;
         CREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
                             item_id uuid NOT NULL, body text NOT NULL);
         INSERT INTO notes (tenant_id, item_id, body) SELECT tenant_id, id, 'note' FROM items;
         CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL,
                              amount integer NOT NULL);
         INSERT INTO events (tenant_id, amount)
              SELECT ('00000000-0000-4000-8000-' || lpad((CASE WHEN g % 10 < 8 THEN 42 ELSE g % 10 END)::text, 12, '0'))::uuid, g % 97
                FROM generate_series(1, {rows}) g;"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    run(&mut conn, "VACUUM ANALYZE items").await;
    run(&mut conn, "VACUUM ANALYZE notes").await;
    run(&mut conn, "VACUUM ANALYZE events").await;

    // The policies, function, role, grants and indexes come from rlsctl itself.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/spec.yaml"),
        "roles:\n  - name: bench_app\ntables:\n  - items\n  - { name: notes, index: [item_id] }\n  - events\n",
    )
    .unwrap();
    rlsctl(dir.path(), &url, &["apply"]);
    run(
        &mut conn,
        "CREATE ROLE bench_direct BYPASSRLS; GRANT USAGE ON SCHEMA rls TO bench_direct;
         GRANT SELECT, INSERT ON items, notes, events TO bench_direct; ANALYZE",
    )
    .await;

    // One tenant for both sides, so both read the same rows and the same pages.
    let tenant = "00000000-0000-4000-8000-000000000042".to_string();
    let ids: Vec<sqlx::types::Uuid> =
        sqlx::query_scalar("SELECT id FROM items WHERE tenant_id = $1::uuid LIMIT 500")
            .bind(&tenant)
            .fetch_all(&mut conn)
            .await
            .unwrap();

    // Two connections and the operations interleaved one by one (alternating
    // which side goes first), so cache warmth, table growth and machine noise
    // land on both sides alike; the connections swap sides every round, so a
    // backend that the scheduler happens to favour favours neither side.
    let mut connections = [
        PgConnection::connect(&url).await.unwrap(),
        PgConnection::connect(&url).await.unwrap(),
    ];
    let mut table = results_table([
        "workload",
        "hand-written WHERE",
        "rlsctl policy",
        "ratio",
        "overhead per statement",
        "target",
    ]);
    for w in &WORKLOADS {
        let (h, p) = compare(&mut connections, w, &ids, &tenant).await;
        table.add_row(judged(w.name, h, p));
    }
    println!(
        "generated policies vs hand-written WHERE ({rows} rows, {TENANTS} tenants, as the runtime role)\n{table}"
    );

    // A cheaper shape for the WITH CHECK path: on a single-row insert the
    // InitPlan that `(SELECT …)` buys evaluates the tenant once anyway, so
    // the function is called directly (inlined, being SQL). The USING side
    // keeps the wrapped form, which reads need on sequential scans.
    let insert = &WORKLOADS[3];
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER POLICY tenant_isolation ON items USING ({GENERATED}) WITH CHECK ({UNWRAPPED})"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let (h, p) = compare(&mut connections, insert, &ids, &tenant).await;
    let mut cheaper = results_table([
        "insert, WITH CHECK shape",
        "hand-written",
        "policy",
        "ratio",
        "overhead per statement",
        "target",
    ]);
    cheaper.add_row(judged(UNWRAPPED, h, p));
    println!("{cheaper}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER POLICY tenant_isolation ON items USING ({GENERATED}) WITH CHECK ({GENERATED})"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    // The slow shapes, on the tenant aggregate, for contrast.
    run(
        &mut conn,
        "CREATE FUNCTION slow_tenant() RETURNS uuid LANGUAGE plpgsql AS
           $$ BEGIN RETURN nullif(current_setting('app.current_tenant_id', true), '')::uuid; END $$;
         GRANT EXECUTE ON FUNCTION slow_tenant() TO bench_app",
    )
    .await;
    let aggregate = "SELECT count(*), sum(amount) FROM items";
    let mut shapes = results_table(["policy shape", "tenant aggregate", "vs hand-written"]);
    begin_as(&mut connections[0], BASELINE_ROLE, &tenant).await;
    let hand = median(20, async |_| {
        sqlx::query("SELECT count(*), sum(amount) FROM items WHERE tenant_id = $1::uuid")
            .bind(&tenant)
            .execute(&mut connections[0])
            .await
            .unwrap();
    })
    .await;
    run(&mut connections[0], "ROLLBACK").await;
    for (shape, using, times) in [
        (
            "rlsctl: tenant_id = (SELECT rls.current_tenant_id())",
            GENERATED,
            20,
        ),
        (
            "VOLATILE plpgsql, wrapped: (SELECT slow_tenant())",
            "tenant_id = (SELECT slow_tenant())",
            20,
        ),
        (
            "VOLATILE plpgsql, called per row: slow_tenant()",
            "tenant_id = slow_tenant()",
            3,
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER POLICY tenant_isolation ON items USING ({using}) WITH CHECK ({using})"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        begin_as(&mut connections[1], RUNTIME_ROLE, &tenant).await;
        let t = median(times, async |_| {
            sqlx::query(aggregate)
                .execute(&mut connections[1])
                .await
                .unwrap();
        })
        .await;
        run(&mut connections[1], "ROLLBACK").await;
        shapes.add_row([
            shape.to_string(),
            format!("{:.2} ms", t.as_secs_f64() * 1000.0),
            format!("{:.2}×", t.as_secs_f64() / hand.as_secs_f64()),
        ]);
    }
    println!(
        "policy shapes, tenant aggregate (hand-written WHERE: {:.2} ms)\n{shapes}",
        hand.as_secs_f64() * 1000.0
    );

    // Parallel query: a tenant holding most of a table, whose aggregate is a
    // full scan on both sides (the tenant index cannot help).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER POLICY tenant_isolation ON items USING ({GENERATED}) WITH CHECK ({GENERATED})"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let mut parallel = results_table([
        "large tenant aggregate (full scan)",
        "time",
        "vs hand-written",
    ]);
    let mut hand = Duration::ZERO;
    for (label, role, sql, before) in [
        (
            "hand-written WHERE",
            BASELINE_ROLE,
            "SELECT count(*), sum(amount) FROM events WHERE tenant_id = $1::uuid",
            None,
        ),
        (
            "rlsctl policy (function PARALLEL SAFE)",
            RUNTIME_ROLE,
            "SELECT count(*), sum(amount) FROM events WHERE $1::text IS NOT NULL",
            None,
        ),
        (
            "same, function PARALLEL UNSAFE (CREATE FUNCTION's default)",
            RUNTIME_ROLE,
            "SELECT count(*), sum(amount) FROM events WHERE $1::text IS NOT NULL",
            Some("ALTER FUNCTION rls.current_tenant_id() PARALLEL UNSAFE"),
        ),
    ] {
        if let Some(before) = before {
            run(&mut conn, before).await;
        }
        begin_as(&mut connections[1], role, &tenant).await;
        let t = median(7, async |_| {
            sqlx::query(sql)
                .bind(&tenant)
                .execute(&mut connections[1])
                .await
                .unwrap();
        })
        .await;
        run(&mut connections[1], "ROLLBACK").await;
        if hand.is_zero() {
            hand = t;
        }
        parallel.add_row([
            label.to_string(),
            format!("{:.1} ms", t.as_secs_f64() * 1000.0),
            format!("{:.2}×", t.as_secs_f64() / hand.as_secs_f64()),
        ]);
    }
    println!(
        "parallel query ({} cores)\n{parallel}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
