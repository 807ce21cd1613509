-- Two customers, loaded by the admin: Northwind (A) and Contoso (B). Both have
-- a dataset with the slug "pageviews", and events in every monthly partition.
INSERT INTO schemas (id, tenant_id, name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-000000000001', 'web'),
    ('bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-000000000002', 'web');

INSERT INTO datasets (id, tenant_id, schema_id, slug) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000d1', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'pageviews'),
    ('bbbbbbbb-0000-4000-8000-0000000000d2', 'bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'pageviews');

INSERT INTO events (tenant_id, dataset_id, occurred_at, payload)
SELECT t.tenant_id, t.dataset_id, m.at, jsonb_build_object('path', '/')
  FROM (VALUES ('aaaaaaaa-0000-4000-8000-000000000001'::uuid, 'aaaaaaaa-0000-4000-8000-0000000000d1'::uuid),
               ('bbbbbbbb-0000-4000-8000-000000000002'::uuid, 'bbbbbbbb-0000-4000-8000-0000000000d2'::uuid))
       AS t (tenant_id, dataset_id)
 CROSS JOIN (VALUES ('2026-10-15 12:00+00'::timestamptz), ('2026-11-15 12:00+00'), ('2026-12-15 12:00+00'))
       AS m (at);

INSERT INTO lake_tables (tenant_id, dataset_id, location) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', 's3://northwind-lake/pageviews'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000d2', 's3://contoso-lake/pageviews');
