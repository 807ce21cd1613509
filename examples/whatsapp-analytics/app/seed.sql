-- Two businesses, loaded by the admin: Bloom Florist (A) owns session sess-a,
-- Atlas Travel (B) owns sess-b. Three webhooks wait in the staging table, one
-- for a session nobody has claimed yet.
INSERT INTO whatsapp_sessions (session_id, tenant_id) VALUES
    ('sess-a', 'aaaaaaaa-0000-4000-8000-000000000001'),
    ('sess-b', 'bbbbbbbb-0000-4000-8000-000000000002');

INSERT INTO whatsapp_template_analytics (tenant_id, template_name, language, status, metadata) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'spring_sale', 'en', 'sent', '{"cost": 0.01}'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'spring_sale', 'en', 'sent', '{"cost": 0.01}');

INSERT INTO raw_webhooks (session_id, payload) VALUES
    ('sess-a', '{"template": "spring_sale", "language": "en", "status": "delivered", "metadata": {"wamid": "a1"}}'),
    ('sess-a', '{"template": "spring_sale", "language": "en", "status": "read", "metadata": {"wamid": "a1"}}'),
    ('sess-b', '{"template": "spring_sale", "language": "en", "status": "failed", "metadata": {"wamid": "b1"}}'),
    ('sess-x', '{"template": "hello", "language": "de", "status": "sent", "metadata": {}}');
