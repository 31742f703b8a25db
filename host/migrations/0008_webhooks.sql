-- Shared secrets for signed PSA webhooks (`capdesk tenant webhook-secret`), one per
-- tenant. The server must hold the secret itself to check signatures, so it is stored
-- as issued; rotating replaces it.
CREATE TABLE webhook_secrets (
    tenant      TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Signatures of webhook deliveries already accepted, so a replay within the accepted
-- clock skew is refused. Rows older than the skew are purged as new ones arrive.
CREATE TABLE webhook_deliveries (
    tenant      TEXT NOT NULL,
    signature   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, signature)
);
