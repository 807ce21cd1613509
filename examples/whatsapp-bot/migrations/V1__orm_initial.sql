-- The ORM's first migration, as generated: every table carries tenant_id, RLS
-- is enabled, and each table gets `tenant_isolation_policy` for PUBLIC,
-- reading the tenant straight from the setting the ORM's middleware sets.
CREATE TABLE whatsapp_instances (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL,
    phone_number text NOT NULL UNIQUE,        -- a number connects to one account only
    status       text NOT NULL DEFAULT 'disconnected',
    UNIQUE (tenant_id, id)
);

CREATE TABLE contacts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    phone      text NOT NULL,
    name       text NOT NULL DEFAULT '',
    UNIQUE (tenant_id, phone),
    UNIQUE (tenant_id, id)
);

CREATE TABLE groups (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    name       text NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE message_templates (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    name       text NOT NULL,
    language   text NOT NULL DEFAULT 'en',
    body       text NOT NULL,
    UNIQUE (tenant_id, name, language),
    UNIQUE (tenant_id, id)
);

CREATE TABLE campaigns (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL,
    instance_id uuid NOT NULL,
    template_id uuid NOT NULL,
    group_id    uuid NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'draft',
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES whatsapp_instances (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES message_templates (tenant_id, id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id)
);

CREATE TABLE webhooks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL,
    instance_id uuid NOT NULL,
    url         text NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES whatsapp_instances (tenant_id, id)
);

CREATE TABLE messages_history (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id   uuid NOT NULL,
    campaign_id uuid NOT NULL,
    contact_id  uuid NOT NULL,
    body        text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);

ALTER TABLE whatsapp_instances ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON whatsapp_instances
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON contacts
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON groups
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON message_templates
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON campaigns
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON webhooks
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
ALTER TABLE messages_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON messages_history
    USING (tenant_id = current_setting('app.current_tenant')::uuid);
