-- Global analytics as wana_reporting (a declared cross-tenant reader): every
-- business's events, no tenant bound, and no writes.
BEGIN;
DO $$ BEGIN
    IF (SELECT count(DISTINCT tenant_id) FROM whatsapp_template_analytics) <> 2 THEN
        RAISE EXCEPTION 'reporting must read both businesses';
    END IF;
END $$;
DO $$ BEGIN
    INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'spring_sale', 'en', 'read');
    RAISE EXCEPTION 'reporting wrote an event';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
