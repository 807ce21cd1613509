-- Next month's partition, added by a later migration. It is covered because
-- `events` is declared: rlsctl gives it RLS, FORCE, the tenant policy and the
-- parent's grants, since the API could query it directly.
CREATE TABLE events_2026_12 PARTITION OF events
    FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2027-01-01 00:00+00');
