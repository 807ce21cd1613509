-- The API as wana_app, the embedded dashboard as wana_dashboard, both with
-- Bloom (A) bound; every expectation raises if broken. Run this file once as
-- each role: psql "postgres://wana_app@…/db" -v ON_ERROR_STOP=1 -f app/paths.sql
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM whatsapp_template_analytics) <> 3
       OR EXISTS (SELECT FROM whatsapp_template_analytics
                   WHERE tenant_id <> 'aaaaaaaa-0000-4000-8000-000000000001') THEN
        RAISE EXCEPTION 'Bloom must see exactly its 3 template events';
    END IF;
    IF (SELECT array_agg(session_id) FROM whatsapp_sessions) IS DISTINCT FROM ARRAY['sess-a'] THEN
        RAISE EXCEPTION 'Bloom must see its own session only';
    END IF;
END $$;
-- Events are facts: nobody edits or deletes them.
DO $$ BEGIN
    UPDATE whatsapp_template_analytics SET status = 'read';
    RAISE EXCEPTION 'an event was edited';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    DELETE FROM whatsapp_template_analytics;
    RAISE EXCEPTION 'an event was deleted';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
-- Writing for Atlas is refused.
DO $$ BEGIN
    INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'spring_sale', 'en', 'read');
    RAISE EXCEPTION 'LEAK: Bloom wrote an event for Atlas';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- Nothing bound, nothing visible.
BEGIN;
DO $$ BEGIN
    IF (SELECT count(*) FROM whatsapp_template_analytics) <> 0 THEN
        RAISE EXCEPTION 'LEAK: events visible with no tenant bound';
    END IF;
END $$;
COMMIT;
