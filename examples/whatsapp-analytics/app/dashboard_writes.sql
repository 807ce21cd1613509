-- The embedded dashboard, as wana_dashboard with Bloom (A) bound: even its
-- own tenant's event is refused; it only reads.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'spring_sale', 'en', 'read');
    RAISE EXCEPTION 'the dashboard wrote an event';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
