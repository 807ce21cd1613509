-- The compliance console, logged in as b2b_compliance (a declared cross-tenant
-- reader): it reads every customer's audit log and invoices, and changes nothing.
-- Run: psql "postgres://b2b_compliance@…/db" -v ON_ERROR_STOP=1 -f app/compliance_paths.sql

BEGIN;
DO $$ BEGIN
    IF (SELECT count(DISTINCT tenant_id) FROM security_audit_log) <> 2 THEN
        RAISE EXCEPTION 'compliance must read both customers'' audit logs';
    END IF;
    IF (SELECT count(DISTINCT tenant_id) FROM invoices) <> 2 THEN
        RAISE EXCEPTION 'compliance must read both customers'' invoices';
    END IF;
END $$;
COMMIT;

-- Append-only even for compliance: no rewriting, no deleting.
BEGIN;
DO $$ BEGIN
    UPDATE security_audit_log SET action = 'redacted';
    RAISE EXCEPTION 'compliance rewrote the audit log';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    DELETE FROM security_audit_log;
    RAISE EXCEPTION 'compliance deleted the audit log';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
DO $$ BEGIN
    INSERT INTO security_audit_log (tenant_id, actor, action)
    VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'compliance', 'forged');
    RAISE EXCEPTION 'compliance forged an audit entry';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
COMMIT;
