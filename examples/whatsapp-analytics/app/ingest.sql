-- The ingestion worker, logged in as wana_ingest: each raw webhook's session is
-- resolved to its tenant, the tenant is bound (transaction-locally), and the
-- event is inserted under it; a webhook for an unknown session waits.
-- Run: psql "postgres://wana_ingest@…/db" -v ON_ERROR_STOP=1 -f app/ingest.sql
BEGIN;
DO $$
DECLARE
    w      record;
    tenant uuid;
BEGIN
    FOR w IN SELECT id, session_id, payload FROM raw_webhooks ORDER BY id LOOP
        tenant := ingest.tenant_for_session(w.session_id);
        CONTINUE WHEN tenant IS NULL;
        PERFORM set_config('app.current_tenant_id', tenant::text, true);
        INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status, metadata)
        VALUES (tenant, w.payload ->> 'template', w.payload ->> 'language', w.payload ->> 'status',
                w.payload -> 'metadata');
        DELETE FROM raw_webhooks WHERE id = w.id;
    END LOOP;
END $$;
COMMIT;

-- Bound to one tenant, the worker cannot file an event under another.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'spring_sale', 'en', 'read');
    RAISE EXCEPTION 'LEAK: an event was filed under a tenant other than the bound one';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
