-- Status events get their session's tenant, and keys that agree with it.
-- On a live database run `rlsctl migrate-existing --table message_status_events`
-- first (batched, no long lock, writers keep inserting); the first three
-- statements then change nothing.
ALTER TABLE message_status_events ADD COLUMN IF NOT EXISTS tenant_id uuid;

UPDATE message_status_events e
   SET tenant_id = s.tenant_id
  FROM whatsapp_sessions s
 WHERE s.session_id = e.session_id
   AND e.tenant_id IS NULL;

ALTER TABLE message_status_events ALTER COLUMN tenant_id SET NOT NULL;

-- The key on the session gains the tenant. migrate-existing (`via:
-- [session_id]`) already did this on a live database, without a long lock,
-- under PostgreSQL's own name for the key; a fresh database gets it here.
ALTER TABLE message_status_events DROP CONSTRAINT IF EXISTS message_status_events_session_id_fkey;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint
                    WHERE conrelid = 'message_status_events'::regclass
                      AND conname = 'message_status_events_tenant_id_session_id_fkey') THEN
        ALTER TABLE message_status_events ADD CONSTRAINT message_status_events_tenant_id_session_id_fkey
            FOREIGN KEY (tenant_id, session_id) REFERENCES whatsapp_sessions (tenant_id, session_id);
    END IF;
END
$$;

-- Keys scoped by tenant, like every other table's. (migrate-existing batches
-- by the single-column key, so it changes only now.)
ALTER TABLE message_status_events
    DROP CONSTRAINT message_status_events_pkey,
    ADD PRIMARY KEY (tenant_id, id);
