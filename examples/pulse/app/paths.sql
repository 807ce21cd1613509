-- The API and the ingestion worker, logged in as pulse_app. Each request is a
-- transaction that binds the tenant from its X-Tenant-ID header with
-- set_config('pulse.tenant_id', $1, true). Every expectation raises if broken.
-- Run: psql "postgres://pulse_app@…/db" -v ON_ERROR_STOP=1 -f app/paths.sql

-- GET /datasets/pageviews as Northwind: one dataset, Northwind's, though
-- Contoso has one with the same slug.
BEGIN;
SELECT set_config('pulse.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT array_agg(id) FROM datasets WHERE slug = 'pageviews')
       IS DISTINCT FROM ARRAY['aaaaaaaa-0000-4000-8000-0000000000d1'::uuid] THEN
        RAISE EXCEPTION 'Northwind must resolve "pageviews" to its own dataset only';
    END IF;
    IF (SELECT count(*) FROM lake_tables WHERE location LIKE 's3://contoso-%') <> 0 THEN
        RAISE EXCEPTION 'LEAK: Northwind sees where Contoso keeps its lake';
    END IF;
END $$;
COMMIT;

-- The same request as Contoso resolves the slug to Contoso's dataset.
BEGIN;
SELECT set_config('pulse.tenant_id', 'bbbbbbbb-0000-4000-8000-000000000002', true);
DO $$ BEGIN
    IF (SELECT array_agg(id) FROM datasets WHERE slug = 'pageviews')
       IS DISTINCT FROM ARRAY['bbbbbbbb-0000-4000-8000-0000000000d2'::uuid] THEN
        RAISE EXCEPTION 'Contoso must resolve "pageviews" to its own dataset only';
    END IF;
END $$;
COMMIT;

-- POST /datasets: a new slug that Contoso uses too is fine for Northwind;
-- the same slug twice within Northwind is not.
BEGIN;
SELECT set_config('pulse.tenant_id', 'bbbbbbbb-0000-4000-8000-000000000002', true);
INSERT INTO datasets (tenant_id, schema_id, slug)
VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'signups');
COMMIT;
BEGIN;
SELECT set_config('pulse.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO datasets (tenant_id, schema_id, slug)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'signups');
DO $$ BEGIN
    INSERT INTO datasets (tenant_id, schema_id, slug)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'pageviews');
    RAISE EXCEPTION 'a second "pageviews" dataset within Northwind was accepted';
EXCEPTION WHEN unique_violation THEN NULL;
END $$;
COMMIT;

-- The ingestion worker writes a batch for Northwind into three months.
BEGIN;
SELECT set_config('pulse.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO events (tenant_id, dataset_id, occurred_at, payload)
SELECT 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', at, '{"path": "/pricing"}'
  FROM unnest(ARRAY['2026-10-20 08:00+00', '2026-11-20 08:00+00', '2026-12-20 08:00+00']::timestamptz[]) AS at;
COMMIT;

-- A batch that names Contoso's dataset under Northwind's tenant is refused by
-- the composite key; one written as Contoso is refused by the policy.
BEGIN;
SELECT set_config('pulse.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    INSERT INTO events (tenant_id, dataset_id, occurred_at)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-0000000000d2', '2026-11-02 00:00+00');
    RAISE EXCEPTION 'LEAK: Northwind wrote into Contoso''s dataset';
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO events (tenant_id, dataset_id, occurred_at)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000d2', '2026-11-02 00:00+00');
    RAISE EXCEPTION 'LEAK: Northwind wrote an event as Contoso';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- Dashboards: Northwind counts its own events, 3 seeded + 3 ingested, through
-- the parent and through each month's partition queried directly, December's
-- (added by the later migration V2) included.
BEGIN;
SELECT set_config('pulse.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM events) <> 6 THEN
        RAISE EXCEPTION 'Northwind must count exactly its 6 events, not %', (SELECT count(*) FROM events);
    END IF;
    IF (SELECT count(*) FROM events_2026_10) <> 2 OR (SELECT count(*) FROM events_2026_11) <> 2
       OR (SELECT count(*) FROM events_2026_12) <> 2 THEN
        RAISE EXCEPTION 'each month''s partition must show Northwind its own 2 events only';
    END IF;
END $$;
COMMIT;

-- Contoso's dashboard is unchanged by all of the above: its 3 events.
BEGIN;
SELECT set_config('pulse.tenant_id', 'bbbbbbbb-0000-4000-8000-000000000002', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM events) <> 3 OR (SELECT count(*) FROM events_2026_12) <> 1 THEN
        RAISE EXCEPTION 'Contoso must count exactly its own 3 events';
    END IF;
END $$;
COMMIT;

-- A request without X-Tenant-ID binds nothing: no rows, no writes.
BEGIN;
DO $$ BEGIN
    IF (SELECT count(*) FROM datasets) + (SELECT count(*) FROM events)
       + (SELECT count(*) FROM events_2026_12) <> 0 THEN
        RAISE EXCEPTION 'LEAK: rows visible with no tenant bound';
    END IF;
END $$;
DO $$ BEGIN
    INSERT INTO events (tenant_id, dataset_id, occurred_at)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', '2026-12-02 00:00+00');
    RAISE EXCEPTION 'LEAK: an event was written with no tenant bound';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
