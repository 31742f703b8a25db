-- The chat a tenant's people are reached on. Without a row the tenant uses the built-in
-- (sandbox) chat. `settings` holds what is not secret (API base URL, app id, OpenID
-- metadata and token URLs) as JSON; `sealed` holds the secrets (bot token, signing
-- secret, app password) sealed with the data dir's key (see src/vault.rs), never in
-- clear text.
CREATE TABLE chat_channels (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('slack', 'teams')),
    settings    TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant, kind)
);

-- Which configured chat a tenant uses now (absent: the built-in one).
CREATE TABLE chat_choice (
    tenant      TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('slack', 'teams'))
);

-- Where a directory user is reached in a tenant's chat: the Slack user id, or the Teams
-- conversation reference (service URL, conversation id, user id) as JSON. Written when
-- the person messages the bot (Teams can message only people it has a reference for).
CREATE TABLE chat_people (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    email       TEXT NOT NULL,
    address     TEXT NOT NULL,
    seen_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant, kind, email)
);

-- Messages with buttons that capdesk posted for an approval (`A-12`) or a question
-- (`R-7`), so the decision can be shown on them afterwards (Slack `chat.update`, Teams
-- activity update). `place` is the channel id or the conversation reference as JSON,
-- `message` the Slack `ts` or the Teams activity id.
CREATE TABLE chat_messages (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    place       TEXT NOT NULL,
    message     TEXT NOT NULL,
    posted_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX chat_messages_subject ON chat_messages (tenant, subject);

-- Inbound chat events already taken (Slack `event_id`, Teams activity id), so a
-- vendor's retry of the same event does nothing twice. Old rows are purged as new
-- ones arrive.
CREATE TABLE chat_events (
    tenant      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    event       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, event)
);
