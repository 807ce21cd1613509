//! Policy-shape benchmark: the policies rlsctl generates against a
//! hand-written `WHERE tenant_id = $1`, on 1,000,000 rows across 1,000 tenants,
//! as the runtime role, on a throwaway PostgreSQL, all in one run. Also the
//! slow shapes audit flags (a VOLATILE plpgsql context function called per row,
//! and the same wrapped in `(select …)`), to show why they are flagged.
//!
//! `cargo bench --bench policy_shapes` (`-- 200000` for fewer rows).

mod common;

use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use common::rlsctl;
use rlsctl::ephemeral::EphemeralServer;
use sqlx::{Connection, PgConnection};

const TENANTS: i64 = 1000;

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
    samples.sort();
    samples[times / 2]
}

/// Opens a transaction acting as the runtime role with `tenant` bound, as
/// the application does; rolled back by the caller.
async fn as_tenant(conn: &mut PgConnection, tenant: &str) {
    run(conn, "BEGIN; SET LOCAL ROLE bench_app").await;
    sqlx::query("SELECT set_config('app.current_tenant_id', $1, true)")
        .bind(tenant)
        .execute(&mut *conn)
        .await
        .unwrap();
}

struct Workload {
    name: &'static str,
    times: usize,
    /// As the admin (no RLS applies), with the tenant filter written by hand.
    hand_written: &'static str,
    /// As the runtime role: the policy supplies the filter.
    through_policy: &'static str,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "point lookup by id",
        times: 2000,
        hand_written: "SELECT amount FROM items WHERE id = $1 AND tenant_id = $2::uuid",
        through_policy: "SELECT amount FROM items WHERE id = $1 AND $2::text IS NOT NULL",
    },
    Workload {
        name: "tenant aggregate",
        times: 60,
        hand_written: "SELECT count(*), sum(amount) FROM items WHERE tenant_id = $2::uuid AND $1::uuid IS NOT NULL",
        through_policy: "SELECT count(*), sum(amount) FROM items WHERE $1::uuid IS NOT NULL AND $2::text IS NOT NULL",
    },
    Workload {
        name: "join of two tenant tables",
        times: 60,
        hand_written: "SELECT count(*) FROM items i JOIN notes n ON n.tenant_id = i.tenant_id AND n.item_id = i.id
                        WHERE i.tenant_id = $2::uuid AND n.tenant_id = $2::uuid AND $1::uuid IS NOT NULL",
        through_policy: "SELECT count(*) FROM items i JOIN notes n ON n.tenant_id = i.tenant_id AND n.item_id = i.id
                          WHERE $1::uuid IS NOT NULL AND $2::text IS NOT NULL",
    },
    Workload {
        name: "insert",
        times: 2000,
        hand_written: "INSERT INTO items (tenant_id, amount) SELECT $2::uuid, 1 WHERE $1::uuid IS NOT NULL",
        through_policy: "INSERT INTO items (tenant_id, amount) SELECT $2::uuid, 1 WHERE $1::uuid IS NOT NULL",
    },
];

#[tokio::main]
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
         INSERT INTO notes (tenant_id, item_id, body) SELECT tenant_id, id, 'note' FROM items;"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    run(&mut conn, "VACUUM ANALYZE items").await;
    run(&mut conn, "VACUUM ANALYZE notes").await;

    // The policies, function, role, grants and indexes come from rlsctl itself.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/spec.yaml"),
        "roles:\n  - name: bench_app\ntables:\n  - items\n  - { name: notes, index: [item_id] }\n",
    )
    .unwrap();
    rlsctl(dir.path(), &url, &["apply"]);
    run(&mut conn, "ANALYZE").await;

    // One tenant for both sides, so both read the same rows and the same pages.
    let tenant = "00000000-0000-4000-8000-000000000042".to_string();
    let ids: Vec<sqlx::types::Uuid> =
        sqlx::query_scalar("SELECT id FROM items WHERE tenant_id = $1::uuid LIMIT 500")
            .bind(&tenant)
            .fetch_all(&mut conn)
            .await
            .unwrap();

    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["workload", "hand-written WHERE", "rlsctl policy", "ratio"]);
    for w in &WORKLOADS {
        // Alternating rounds so cache warmth and drift favour neither side.
        let mut hand = Vec::new();
        let mut policy = Vec::new();
        for _ in 0..3 {
            run(&mut conn, "BEGIN").await;
            hand.push(
                median(w.times, async |i| {
                    sqlx::query(w.hand_written)
                        .bind(ids[i % ids.len()])
                        .bind(&tenant)
                        .execute(&mut conn)
                        .await
                        .unwrap();
                })
                .await,
            );
            run(&mut conn, "ROLLBACK").await;
            as_tenant(&mut conn, &tenant).await;
            policy.push(
                median(w.times, async |i| {
                    sqlx::query(w.through_policy)
                        .bind(ids[i % ids.len()])
                        .bind(&tenant)
                        .execute(&mut conn)
                        .await
                        .unwrap();
                })
                .await,
            );
            run(&mut conn, "ROLLBACK").await;
        }
        hand.sort();
        policy.sort();
        let (h, p) = (hand[1], policy[1]);
        table.add_row([
            w.name.to_string(),
            format!("{:.3} ms", h.as_secs_f64() * 1000.0),
            format!("{:.3} ms", p.as_secs_f64() * 1000.0),
            format!("{:.2}×", p.as_secs_f64() / h.as_secs_f64()),
        ]);
    }
    println!(
        "generated policies vs hand-written WHERE ({rows} rows, {TENANTS} tenants, as the runtime role)\n{table}"
    );

    // The slow shapes, on the tenant aggregate, for contrast.
    run(
        &mut conn,
        "CREATE FUNCTION slow_tenant() RETURNS uuid LANGUAGE plpgsql AS
           $$ BEGIN RETURN nullif(current_setting('app.current_tenant_id', true), '')::uuid; END $$;
         GRANT EXECUTE ON FUNCTION slow_tenant() TO bench_app",
    )
    .await;
    let aggregate = "SELECT count(*), sum(amount) FROM items";
    let mut shapes = Table::new();
    shapes.load_style(UTF8_FULL_CONDENSED);
    shapes.set_header(["policy shape", "tenant aggregate", "vs hand-written"]);
    run(&mut conn, "BEGIN").await;
    let hand = median(20, async |_| {
        sqlx::query("SELECT count(*), sum(amount) FROM items WHERE tenant_id = $1::uuid")
            .bind(&tenant)
            .execute(&mut conn)
            .await
            .unwrap();
    })
    .await;
    run(&mut conn, "ROLLBACK").await;
    for (shape, using, times) in [
        (
            "rlsctl: tenant_id = (SELECT rls.current_tenant_id())",
            "tenant_id = (SELECT rls.current_tenant_id())",
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
        as_tenant(&mut conn, &tenant).await;
        let t = median(times, async |_| {
            sqlx::query(aggregate).execute(&mut conn).await.unwrap();
        })
        .await;
        run(&mut conn, "ROLLBACK").await;
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
}
