-- Run as the admin that owns the tables (what migrations and on-call use).
-- FORCE makes the owner subject to the policies, but a superuser is not, and
-- privileges never bind an owner: the trigger keeps the log append-only anyway.
BEGIN;
DO $$ BEGIN
    DELETE FROM security_audit_log;
    RAISE EXCEPTION 'the admin deleted the audit log';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    UPDATE security_audit_log SET actor = 'someone else';
    RAISE EXCEPTION 'the admin rewrote the audit log';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
