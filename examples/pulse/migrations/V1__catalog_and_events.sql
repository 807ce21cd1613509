-- Pulse: product analytics. Customers (tenants) declare event schemas and
-- datasets, send events, and export datasets to their data lake.
CREATE TABLE schemas (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    name       text NOT NULL,
    definition jsonb NOT NULL DEFAULT '{}',
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

-- A slug is unique within a customer, not across customers: two customers
-- both have a "pageviews" dataset.
CREATE TABLE datasets (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    schema_id  uuid NOT NULL,
    slug       text NOT NULL,
    UNIQUE (tenant_id, slug),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, schema_id) REFERENCES schemas (tenant_id, id)
);

-- Monthly partitions; a migration adds each new month ahead of time.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id   uuid NOT NULL,
    dataset_id  uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id, occurred_at),
    FOREIGN KEY (tenant_id, dataset_id) REFERENCES datasets (tenant_id, id)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE events_2026_10 PARTITION OF events
    FOR VALUES FROM ('2026-10-01 00:00+00') TO ('2026-11-01 00:00+00');
CREATE TABLE events_2026_11 PARTITION OF events
    FOR VALUES FROM ('2026-11-01 00:00+00') TO ('2026-12-01 00:00+00');

CREATE TABLE lake_tables (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    dataset_id uuid NOT NULL,
    location   text NOT NULL,
    format     text NOT NULL DEFAULT 'parquet',
    UNIQUE (tenant_id, location),
    FOREIGN KEY (tenant_id, dataset_id) REFERENCES datasets (tenant_id, id)
);
