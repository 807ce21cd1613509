-- Two customers, run by the admin that applied the migrations (the data an
-- onboarding job would create). Tenant A = Acme, tenant B = Globex.
INSERT INTO tenants (id, name) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'Acme'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'Globex');

INSERT INTO projects (id, tenant_id, name, archived) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-000000000001', 'Website', false),
    ('aaaaaaaa-0000-4000-8000-0000000000a2', 'aaaaaaaa-0000-4000-8000-000000000001', 'Old CRM', true),
    ('bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-000000000002', 'Website', false);

INSERT INTO contacts (id, tenant_id, email, full_name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000c1', 'aaaaaaaa-0000-4000-8000-000000000001', 'ann@acme.test', 'Ann'),
    ('bbbbbbbb-0000-4000-8000-0000000000c2', 'bbbbbbbb-0000-4000-8000-000000000002', 'bob@globex.test', 'Bob');

INSERT INTO documents (tenant_id, project_id, title) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'Brief'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'Secret roadmap');

INSERT INTO tasks (id, tenant_id, project_id, title) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000d1', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'Launch'),
    ('bbbbbbbb-0000-4000-8000-0000000000d2', 'bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'Launch');

INSERT INTO invoices (tenant_id, contact_id, number, amount_cents) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000c1', 'INV-1', 120000),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000c2', 'INV-1', 99000);

INSERT INTO security_audit_log (tenant_id, actor, action) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'ann', 'login'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bob', 'login');
