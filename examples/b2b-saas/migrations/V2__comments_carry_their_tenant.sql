-- Comments get their tenant through tasks -> projects, then a composite foreign
-- key makes a comment and its task agree on the tenant, replacing the key on
-- task_id alone.
--
-- On a fresh database this does everything. On a live one, run
-- `rlsctl migrate-existing --table comments` first (batched, no long lock): the
-- column is then already there, filled and NOT NULL, the composite key is in
-- place, and only the key to tenants is added here.
ALTER TABLE comments ADD COLUMN IF NOT EXISTS tenant_id uuid;

UPDATE comments c
   SET tenant_id = p.tenant_id
  FROM tasks t
  JOIN projects p ON p.id = t.project_id
 WHERE t.id = c.task_id
   AND c.tenant_id IS NULL;

ALTER TABLE comments ALTER COLUMN tenant_id SET NOT NULL;

ALTER TABLE comments
    ADD CONSTRAINT comments_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);

-- The composite key supersedes the key on task_id alone, which says nothing
-- about the tenant (audit: FOREIGN_KEY_NOT_SCOPED_BY_TENANT). migrate-existing
-- builds it without a long lock under PostgreSQL's own name for it,
-- comments_tenant_id_task_id_fkey, and drops the old key; a fresh database
-- gets both changes here.
ALTER TABLE comments DROP CONSTRAINT IF EXISTS comments_task_id_fkey;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint
                    WHERE conrelid = 'comments'::regclass
                      AND conname = 'comments_tenant_id_task_id_fkey') THEN
        ALTER TABLE comments ADD CONSTRAINT comments_tenant_id_task_id_fkey
            FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id);
    END IF;
END
$$;
