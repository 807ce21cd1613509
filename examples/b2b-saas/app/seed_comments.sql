-- Comments, once V2 has given them a tenant column (after app/seed.sql).
INSERT INTO comments (tenant_id, task_id, author, body) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'ann', 'Ready on Monday'),
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000d1', 'ann', 'Shipped'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000d2', 'bob', 'Blocked by legal');

