-- The bot's paths, logged in as wabot_app. The ORM's middleware binds the
-- tenant per transaction: set_config('app.current_tenant', $1, true).
-- Every expectation raises if broken.
-- Run: psql "postgres://wabot_app@…/db" -v ON_ERROR_STOP=1 -f app/paths.sql

-- Lumen (A) lists its contacts: its two; the number Riverside also has is Lumen's own row.
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM contacts) <> 2 THEN
        RAISE EXCEPTION 'Lumen must see exactly its two contacts';
    END IF;
    IF (SELECT array_agg(name) FROM contacts WHERE phone = '+15551234') IS DISTINCT FROM ARRAY['Mia'] THEN
        RAISE EXCEPTION 'LEAK: Lumen sees Riverside''s contact with the same number';
    END IF;
    IF (SELECT count(*) FROM webhooks) <> 1 OR (SELECT count(*) FROM messages_history) <> 2 THEN
        RAISE EXCEPTION 'Lumen must see its own webhook and message history only';
    END IF;
END $$;
COMMIT;

-- A campaign's life: created as a draft, started, completed; then it is final.
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO campaigns (id, tenant_id, instance_id, template_id, group_id, name)
VALUES ('aaaaaaaa-0000-4000-8000-0000000000f3', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1',
        'aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'Black Friday');
COMMIT;
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$
DECLARE
    n bigint;
BEGIN
    UPDATE campaigns SET status = 'running' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000f3';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 1 THEN RAISE EXCEPTION 'Lumen must be able to start its draft'; END IF;
    INSERT INTO messages_history (tenant_id, campaign_id, contact_id, body)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000f3',
            'aaaaaaaa-0000-4000-8000-0000000000c1', 'Black Friday: two for one');
    UPDATE campaigns SET status = 'completed' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000f3';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 1 THEN RAISE EXCEPTION 'Lumen must be able to complete its running campaign'; END IF;
    UPDATE campaigns SET name = 'Renamed' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000f3';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'a completed campaign was changed'; END IF;
END $$;
COMMIT;

-- A draft cannot skip to completed, and a campaign cannot start as running.
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO campaigns (id, tenant_id, instance_id, template_id, group_id, name)
VALUES ('aaaaaaaa-0000-4000-8000-0000000000f4', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1',
        'aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'Christmas');
DO $$ BEGIN
    UPDATE campaigns SET status = 'completed' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000f4';
    RAISE EXCEPTION 'a draft skipped to completed';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO campaigns (tenant_id, instance_id, template_id, group_id, name, status)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1',
            'aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'Sneaky', 'running');
    RAISE EXCEPTION 'a campaign started as running';
EXCEPTION WHEN check_violation THEN NULL;
END $$;
COMMIT;

-- Lumen aims at Riverside: completing its running campaign changes nothing, and
-- a campaign naming Riverside's template is refused by the composite key.
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$
DECLARE
    n bigint;
BEGIN
    UPDATE campaigns SET status = 'completed' WHERE name = 'Spin class';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'LEAK: Lumen completed Riverside''s campaign'; END IF;
END $$;
DO $$ BEGIN
    INSERT INTO campaigns (tenant_id, instance_id, template_id, group_id, name)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1',
            'bbbbbbbb-0000-4000-8000-0000000000e2', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'Borrowed');
    RAISE EXCEPTION 'LEAK: Lumen used Riverside''s template';
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
COMMIT;

-- The message history is a log: the bot appends, and never rewrites or deletes.
BEGIN;
SELECT set_config('app.current_tenant', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    UPDATE messages_history SET body = '';
    RAISE EXCEPTION 'the message history was rewritten';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    DELETE FROM messages_history;
    RAISE EXCEPTION 'the message history was deleted';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- No tenant bound, or the '' a pooled connection keeps after a transaction
-- that bound one: nothing visible, no error. (The ORM's own policy raised on
-- the first and failed with "invalid input syntax for type uuid" on the second.)
BEGIN;
DO $$ BEGIN
    IF (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM contacts) <> 0 THEN
        RAISE EXCEPTION 'LEAK: rows visible with no tenant bound';
    END IF;
END $$;
SELECT set_config('app.current_tenant', '', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM campaigns) <> 0 THEN
        RAISE EXCEPTION 'LEAK: rows visible with an empty tenant';
    END IF;
END $$;
COMMIT;
