-- Two businesses using the bot, loaded by the admin: Lumen Cafe (A) and
-- Riverside Gym (B). Both have a contact with the same phone number, a "vip"
-- group and a "welcome" template.
INSERT INTO whatsapp_instances (id, tenant_id, phone_number, status) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-000000000001', '+15550001', 'connected'),
    ('bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-000000000002', '+15550002', 'connected');

INSERT INTO contacts (id, tenant_id, phone, name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000c1', 'aaaaaaaa-0000-4000-8000-000000000001', '+15551234', 'Mia'),
    ('aaaaaaaa-0000-4000-8000-0000000000c2', 'aaaaaaaa-0000-4000-8000-000000000001', '+15559876', 'Noah'),
    ('bbbbbbbb-0000-4000-8000-0000000000c3', 'bbbbbbbb-0000-4000-8000-000000000002', '+15551234', 'Mia R.');

INSERT INTO groups (id, tenant_id, name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000d1', 'aaaaaaaa-0000-4000-8000-000000000001', 'vip'),
    ('bbbbbbbb-0000-4000-8000-0000000000d2', 'bbbbbbbb-0000-4000-8000-000000000002', 'vip');

INSERT INTO message_templates (id, tenant_id, name, body) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-000000000001', 'welcome', 'Your coffee is on us today!'),
    ('bbbbbbbb-0000-4000-8000-0000000000e2', 'bbbbbbbb-0000-4000-8000-000000000002', 'welcome', 'First spin class free.');

INSERT INTO campaigns (id, tenant_id, instance_id, template_id, group_id, name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1',
     'aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'October promo'),
    ('bbbbbbbb-0000-4000-8000-0000000000f2', 'bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1',
     'bbbbbbbb-0000-4000-8000-0000000000e2', 'bbbbbbbb-0000-4000-8000-0000000000d2', 'Spin class');
UPDATE campaigns SET status = 'running';
UPDATE campaigns SET status = 'completed' WHERE name = 'October promo';

INSERT INTO webhooks (tenant_id, instance_id, url) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'https://lumen.test/hooks/wa'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'https://riverside.test/hooks/wa');

INSERT INTO messages_history (tenant_id, campaign_id, contact_id, body) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-0000000000c1', 'Your coffee is on us today!'),
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-0000000000c2', 'Your coffee is on us today!'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000f2', 'bbbbbbbb-0000-4000-8000-0000000000c3', 'First spin class free.');
