-- The built-in web chat: an end user signs in with a one-time code sent to a contact
-- method their directory holds, then talks to capdesk in a session. Only hashes of the
-- codes and session ids are kept.
CREATE TABLE webchat_codes (
    tenant     TEXT NOT NULL REFERENCES tenants(id),
    email      TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    contact    TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, email)
);

CREATE TABLE webchat_sessions (
    id_hash    TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL REFERENCES tenants(id),
    email      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- What the end user said in the web chat (capdesk's side is the tenant's chat outbox).
CREATE TABLE webchat_messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant  TEXT NOT NULL REFERENCES tenants(id),
    email   TEXT NOT NULL,
    text    TEXT NOT NULL,
    at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX webchat_messages_by_person ON webchat_messages (tenant, email, id);
