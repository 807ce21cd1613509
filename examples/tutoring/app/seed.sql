-- Two schools, loaded by the admin: Harbor Tutors (A) and Summit Learning (B).
INSERT INTO students (id, tenant_id, full_name, email) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000e1', 'aaaaaaaa-0000-4000-8000-000000000001', 'Ada', 'ada@harbor.test'),
    ('aaaaaaaa-0000-4000-8000-0000000000e2', 'aaaaaaaa-0000-4000-8000-000000000001', 'Ben', 'ben@harbor.test'),
    ('bbbbbbbb-0000-4000-8000-0000000000e3', 'bbbbbbbb-0000-4000-8000-000000000002', 'Cy', 'cy@summit.test');

INSERT INTO teachers (id, tenant_id, full_name) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-000000000001', 'Ms Ortiz'),
    ('bbbbbbbb-0000-4000-8000-0000000000f2', 'bbbbbbbb-0000-4000-8000-000000000002', 'Mr Lee');

INSERT INTO lessons (id, tenant_id, teacher_id, student_id, starts_at) VALUES
    ('aaaaaaaa-0000-4000-8000-0000000000c1', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-0000000000e1', '2026-11-02 16:00+00'),
    ('aaaaaaaa-0000-4000-8000-0000000000c2', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000f1', 'aaaaaaaa-0000-4000-8000-0000000000e2', '2026-11-03 16:00+00'),
    ('bbbbbbbb-0000-4000-8000-0000000000c3', 'bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000f2', 'bbbbbbbb-0000-4000-8000-0000000000e3', '2026-11-02 17:00+00');

INSERT INTO attendance (tenant_id, lesson_id, student_id, status) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000c1', 'aaaaaaaa-0000-4000-8000-0000000000e1', 'present'),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000c3', 'bbbbbbbb-0000-4000-8000-0000000000e3', 'absent');

INSERT INTO payments (tenant_id, student_id, amount) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000e1', 120.50),
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000e2', 80.00),
    ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000e3', 99.99);
