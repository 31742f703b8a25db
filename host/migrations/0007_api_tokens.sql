-- Bearer tokens for the HTTP API (`capdesk token create`). Only a SHA-256 of the token
-- is kept: the token itself is shown once, at creation. A token is an MSP admin (every
-- tenant), a technician (one tenant, or every tenant without one) or a tenant approver
-- (one tenant). `person` is whose approvals and answers the token gives.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'technician', 'approver')),
    tenant      TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    person      TEXT,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at  TEXT,
    CHECK (role <> 'approver' OR (tenant IS NOT NULL AND person IS NOT NULL))
);
