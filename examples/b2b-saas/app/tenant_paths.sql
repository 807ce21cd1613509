-- The application's access paths, logged in as b2b_app (the API's role), each
-- request a transaction that binds its tenant with set_config(…, true).
-- Every expectation is checked: a broken isolation raises and stops the script.
-- Run: psql "postgres://b2b_app@…/db" -v ON_ERROR_STOP=1 -f app/tenant_paths.sql

-- Acme (tenant A) lists its projects: its two, none of Globex's.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM projects) <> 2
       OR EXISTS (SELECT FROM projects WHERE tenant_id <> 'aaaaaaaa-0000-4000-8000-000000000001') THEN
        RAISE EXCEPTION 'Acme must see exactly its two projects';
    END IF;
    IF (SELECT array_agg(name) FROM tenants) IS DISTINCT FROM ARRAY['Acme'] THEN
        RAISE EXCEPTION 'Acme must see its own tenant row only';
    END IF;
    IF (SELECT count(*) FROM documents WHERE title = 'Secret roadmap') <> 0 THEN
        RAISE EXCEPTION 'LEAK: Acme reads a Globex document';
    END IF;
END $$;
COMMIT;

-- Acme reads the comments of its task (two), and Globex's task shows none.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    IF (SELECT count(*) FROM comments WHERE task_id = 'aaaaaaaa-0000-4000-8000-0000000000d1') <> 2 THEN
        RAISE EXCEPTION 'Acme must see the two comments of its task';
    END IF;
    IF (SELECT count(*) FROM comments WHERE task_id = 'bbbbbbbb-0000-4000-8000-0000000000d2') <> 0 THEN
        RAISE EXCEPTION 'LEAK: Acme reads comments on a Globex task';
    END IF;
END $$;
COMMIT;

-- Acme aims writes at Globex's rows: nothing changes, nothing is returned.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$
DECLARE
    n bigint;
BEGIN
    UPDATE tasks SET done = true WHERE id = 'bbbbbbbb-0000-4000-8000-0000000000d2';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'LEAK: Acme updated a Globex task'; END IF;
    DELETE FROM documents WHERE tenant_id = 'bbbbbbbb-0000-4000-8000-000000000002';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'LEAK: Acme deleted a Globex document'; END IF;
END $$;
COMMIT;

-- Acme tries to create a task in Globex's tenant: the policy's WITH CHECK refuses it.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    INSERT INTO tasks (tenant_id, project_id, title)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'planted');
    RAISE EXCEPTION 'LEAK: Acme inserted a task for Globex';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- Acme comments on Globex's task under its own tenant: the composite foreign key
-- (tenant_id, task_id) -> tasks refuses it (RLS alone would have let it in).
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$ BEGIN
    INSERT INTO comments (tenant_id, task_id, author, body)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-0000000000d2', 'ann', 'hi');
    RAISE EXCEPTION 'LEAK: Acme commented on a Globex task';
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
COMMIT;

-- Archived projects are read-only (a restrictive policy); active ones are not.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
DO $$
DECLARE
    n bigint;
BEGIN
    UPDATE projects SET name = 'Renamed' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000a2';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 0 THEN RAISE EXCEPTION 'an archived project was renamed'; END IF;
    UPDATE projects SET name = 'Website v2' WHERE id = 'aaaaaaaa-0000-4000-8000-0000000000a1';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 1 THEN RAISE EXCEPTION 'Acme must be able to rename its active project'; END IF;
END $$;
COMMIT;

-- Invoices are issued, never edited: the app may insert and read, not update.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO invoices (tenant_id, contact_id, number, amount_cents)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000c1', 'INV-2', 5000);
DO $$ BEGIN
    UPDATE invoices SET amount_cents = 0 WHERE number = 'INV-1';
    RAISE EXCEPTION 'an invoice was edited';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- The security audit log: the app appends its own tenant's events, and can
-- neither rewrite nor delete them.
BEGIN;
SELECT set_config('app.current_tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO security_audit_log (tenant_id, actor, action)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'ann', 'export contacts');
DO $$ BEGIN
    UPDATE security_audit_log SET action = 'nothing';
    RAISE EXCEPTION 'the audit log was rewritten';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    DELETE FROM security_audit_log;
    RAISE EXCEPTION 'the audit log was deleted';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;

-- A request that forgot to bind a tenant sees nothing and writes nothing.
BEGIN;
DO $$ BEGIN
    IF (SELECT count(*) FROM projects) + (SELECT count(*) FROM comments)
       + (SELECT count(*) FROM security_audit_log) <> 0 THEN
        RAISE EXCEPTION 'LEAK: rows visible with no tenant bound';
    END IF;
END $$;
DO $$ BEGIN
    INSERT INTO tasks (tenant_id, project_id, title)
    VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'unbound');
    RAISE EXCEPTION 'LEAK: a task was written with no tenant bound';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
