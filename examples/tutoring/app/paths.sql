-- Requests as PostgREST serves them: logged in as tutoring_authenticator, each
-- request a transaction that switches to the request's role and binds the
-- verified JWT's claims transaction-locally. Every expectation raises if broken.
-- Run: psql "postgres://tutoring_authenticator@…/db" -v ON_ERROR_STOP=1 -f app/paths.sql

-- A teacher at Harbor (A) sees the whole school and nothing of Summit (B).
BEGIN;
SET LOCAL ROLE tutoring_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "aaaaaaaa-0000-4000-8000-0000000000f1", "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001", "user_role": "teacher"}', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM students) <> 2 OR (SELECT count(*) FROM lessons) <> 2 THEN
        RAISE EXCEPTION 'a Harbor teacher must see Harbor''s 2 students and 2 lessons';
    END IF;
    IF (SELECT sum(amount) FROM payments) IS DISTINCT FROM 200.50 THEN
        RAISE EXCEPTION 'a Harbor teacher must total Harbor''s payments only, 200.50';
    END IF;
END $$;
COMMIT;

-- The teacher marks attendance: for Harbor's lesson it works; aimed at Summit
-- it is refused, by the policy (as Summit) or by the composite key (as Harbor).
BEGIN;
SET LOCAL ROLE tutoring_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "aaaaaaaa-0000-4000-8000-0000000000f1", "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001", "user_role": "teacher"}', true);
INSERT INTO attendance (tenant_id, lesson_id, student_id, status)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000c2', 'aaaaaaaa-0000-4000-8000-0000000000e2', 'late');
DO $$ BEGIN
    INSERT INTO attendance (tenant_id, lesson_id, student_id)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000c3', 'bbbbbbbb-0000-4000-8000-0000000000e3');
    RAISE EXCEPTION 'LEAK: a Harbor teacher wrote Summit''s attendance';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO attendance (tenant_id, lesson_id, student_id)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-0000000000c3', 'aaaaaaaa-0000-4000-8000-0000000000e1');
    RAISE EXCEPTION 'LEAK: Harbor attendance recorded against a Summit lesson';
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
DO $$
DECLARE
    n bigint;
BEGIN
    UPDATE payments SET amount = 0.01 WHERE student_id = 'bbbbbbbb-0000-4000-8000-0000000000e3';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'LEAK: a Harbor teacher changed a Summit payment'; END IF;
END $$;
COMMIT;

-- A student (Ada) sees only her own rows, even within her school.
BEGIN;
SET LOCAL ROLE tutoring_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "aaaaaaaa-0000-4000-8000-0000000000e1", "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001", "user_role": "student"}', true);
DO $$ BEGIN
    IF (SELECT array_agg(full_name) FROM students) IS DISTINCT FROM ARRAY['Ada'] THEN
        RAISE EXCEPTION 'Ada must see herself only among students';
    END IF;
    IF (SELECT count(*) FROM lessons) <> 1 OR (SELECT count(*) FROM attendance) <> 1 THEN
        RAISE EXCEPTION 'Ada must see her own lesson and attendance only';
    END IF;
    IF (SELECT sum(amount) FROM payments) IS DISTINCT FROM 120.50 THEN
        RAISE EXCEPTION 'Ada must see her own payment only';
    END IF;
    IF (SELECT count(*) FROM teachers) <> 1 THEN
        RAISE EXCEPTION 'Ada sees her school''s teachers';
    END IF;
END $$;
DO $$ BEGIN
    INSERT INTO payments (tenant_id, student_id, amount)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000e2', 10.00);
    RAISE EXCEPTION 'Ada recorded a payment for Ben';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- Platform staff (no school in the token) read every school, and write nothing.
BEGIN;
SET LOCAL ROLE tutoring_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-00000000005f", "user_role": "staff"}', true);
DO $$
DECLARE
    n bigint;
BEGIN
    IF (SELECT count(DISTINCT tenant_id) FROM students) <> 2
       OR (SELECT sum(amount) FROM payments) IS DISTINCT FROM 300.49 THEN
        RAISE EXCEPTION 'staff must read both schools';
    END IF;
    UPDATE payments SET amount = 1.00;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'staff changed % payments', n; END IF;
END $$;
DO $$ BEGIN
    INSERT INTO teachers (tenant_id, full_name) VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'planted');
    RAISE EXCEPTION 'staff added a teacher';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- A signed-in user without a school in the token sees nothing.
BEGIN;
SET LOCAL ROLE tutoring_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000099", "user_role": "teacher"}', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM students) + (SELECT count(*) FROM payments) <> 0 THEN
        RAISE EXCEPTION 'LEAK: rows visible without a school in the token';
    END IF;
END $$;
COMMIT;

-- anon (no JWT, or a token PostgREST maps to anon) has no access to any
-- school's tables, whatever claims it carries.
BEGIN;
SET LOCAL ROLE tutoring_anon;
SELECT set_config('request.jwt.claims', '{"tenant_id": "aaaaaaaa-0000-4000-8000-000000000001"}', true);
DO $$ BEGIN
    PERFORM count(*) FROM students;
    RAISE EXCEPTION 'LEAK: anon read students';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    PERFORM count(*) FROM payments;
    RAISE EXCEPTION 'LEAK: anon read payments';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- service_role (the backend's key) bypasses RLS by design: the accepted
-- exception. It sees every school.
BEGIN;
SET LOCAL ROLE tutoring_service_role;
DO $$ BEGIN
    IF (SELECT count(*) FROM students) <> 3 THEN
        RAISE EXCEPTION 'service_role is expected to see every school';
    END IF;
END $$;
COMMIT;
