-- A tenant's own wording of a plugin's closeout template (`capdesk template set`);
-- without a row the plugin's shipped template is used.
CREATE TABLE template_overrides (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    plugin      TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant, plugin, name)
);
