-- The schema as the team first shipped it: every table carries tenant_id except
-- comments, which hung off tasks and trusted the application to join.
CREATE TABLE tenants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid GENERATED ALWAYS AS (id) STORED NOT NULL UNIQUE,
    name       text NOT NULL
);

CREATE TABLE projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    name       text NOT NULL,
    archived   boolean NOT NULL DEFAULT false,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE contacts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    email      text NOT NULL,
    full_name  text NOT NULL,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);

CREATE TABLE documents (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    project_id uuid NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id)
);

CREATE TABLE tasks (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    project_id uuid NOT NULL,
    title      text NOT NULL,
    done       boolean NOT NULL DEFAULT false,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id)
);

-- No tenant column: V2 adds it (or `rlsctl migrate-existing --table comments`
-- on a database that already holds comments).
CREATE TABLE comments (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id    uuid NOT NULL REFERENCES tasks (id),
    author     text NOT NULL,
    body       text NOT NULL
);

CREATE TABLE invoices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    contact_id   uuid NOT NULL,
    number       text NOT NULL,
    amount_cents bigint NOT NULL,
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);

-- Who did what, per customer: written by the application, read by compliance,
-- never changed afterwards.
CREATE TABLE security_audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    actor       text NOT NULL,
    action      text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)   -- keys scoped by tenant, like every other table's
);

-- Append-only for everyone, the table owner included: privileges alone do not
-- bind an owner or a superuser, a trigger does.
CREATE FUNCTION refuse_audit_log_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'security_audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER security_audit_log_append_only
    BEFORE UPDATE OR DELETE ON security_audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_log_change();
