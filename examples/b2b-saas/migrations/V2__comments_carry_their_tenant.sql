-- Comments get their tenant through tasks -> projects, then a composite foreign
-- key makes a comment and its task agree on the tenant, replacing the key on
-- task_id alone.
--
-- On a fresh database this does everything. On a live one, run
-- `rlsctl migrate-existing --table comments` first (batched, no long lock): the
-- column is then already there, filled and NOT NULL, and the first three
-- statements change nothing.
ALTER TABLE comments ADD COLUMN IF NOT EXISTS tenant_id uuid;

UPDATE comments c
   SET tenant_id = p.tenant_id
  FROM tasks t
  JOIN projects p ON p.id = t.project_id
 WHERE t.id = c.task_id
   AND c.tenant_id IS NULL;

ALTER TABLE comments ALTER COLUMN tenant_id SET NOT NULL;

ALTER TABLE comments
    ADD CONSTRAINT comments_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    ADD CONSTRAINT comments_task_same_tenant FOREIGN KEY (tenant_id, task_id)
        REFERENCES tasks (tenant_id, id),
    -- The composite key supersedes it: a key on task_id alone says nothing
    -- about the tenant (audit: FOREIGN_KEY_NOT_SCOPED_BY_TENANT).
    DROP CONSTRAINT comments_task_id_fkey;
