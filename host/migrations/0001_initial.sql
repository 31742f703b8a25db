-- capdesk's own records: tenants, installed plugins, grants, limits, runs and their journal.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    category     TEXT NOT NULL,
    description  TEXT NOT NULL,
    hash         TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    imports      TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    installed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE grants (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    plugin      TEXT NOT NULL,
    capability  TEXT NOT NULL,
    granted_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant, plugin, capability)
);

-- Resource limits; '*' in tenant or plugin applies to all. The most specific row wins.
CREATE TABLE limits (
    tenant      TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    memory_mib  INTEGER,
    guest_ms    INTEGER,
    PRIMARY KEY (tenant, plugin)
);

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    ticket         INTEGER NOT NULL,
    plugin         TEXT,
    plugin_version TEXT,
    plugin_hash    TEXT,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    scores         TEXT NOT NULL DEFAULT '[]',
    seed           INTEGER NOT NULL,
    guest_us       INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at    TEXT
);
CREATE INDEX runs_by_ticket ON runs(ticket);

-- Every host call a run made, in order: what was asked, what was decided, what came back.
CREATE TABLE run_calls (
    run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    function    TEXT NOT NULL,
    capability  TEXT,
    args        TEXT NOT NULL,
    decision    TEXT NOT NULL,
    result      TEXT NOT NULL,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run, seq)
);

-- The sandbox PSA: the ticket store of the embedded default.
CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    requester_email TEXT NOT NULL,
    requester_name  TEXT NOT NULL,
    channel         TEXT NOT NULL,
    verified        INTEGER NOT NULL,
    fields          TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL DEFAULT 'new',
    parent          INTEGER,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX tickets_by_tenant ON tickets(tenant, id);

CREATE TABLE ticket_notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket      INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    visibility  TEXT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX ticket_notes_by_ticket ON ticket_notes(ticket, id);

-- The sandbox identity provider: a directory per tenant.
CREATE TABLE sandbox_users (
    tenant               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    enabled              INTEGER NOT NULL DEFAULT 1,
    locked               INTEGER NOT NULL DEFAULT 0,
    privileged           INTEGER NOT NULL DEFAULT 0,
    manager              TEXT,
    department           TEXT,
    password_hash        TEXT,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    failed_signins       INTEGER NOT NULL DEFAULT 0,
    sessions             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, email)
);

-- Set-valued attributes of a user: kind is group, license, mfa or mailbox.
CREATE TABLE sandbox_user_attrs (
    tenant  TEXT NOT NULL,
    email   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (tenant, email, kind, value),
    FOREIGN KEY (tenant, email) REFERENCES sandbox_users(tenant, email) ON DELETE CASCADE
);

-- Every change the sandbox directory made, in order.
CREATE TABLE sandbox_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant  TEXT NOT NULL,
    email   TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '',
    at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sandbox_events_by_user ON sandbox_events(tenant, email, id);

-- The sandbox chat: every message capdesk sent.
CREATE TABLE sandbox_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    text       TEXT NOT NULL,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sandbox_outbox_by_tenant ON sandbox_outbox(tenant, id);
