-- Guardrails: per-tenant policy and modes, approvals, and a write-ahead journal.

-- A call's place in the write-ahead journal: `intent` (recorded before the connector
-- was called; no result yet), `done` (result recorded), `waiting` (asked a person or
-- an approver; no answer yet), `approved` (an approver said yes; the call runs when
-- the run resumes).
ALTER TABLE run_calls ADD COLUMN state TEXT NOT NULL DEFAULT 'done';

-- Which process is executing a run (`host:pid:start`), and when it last wrote to the
-- run; a run left `running` by a process that is gone is resumed by `capdesk recover`.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN owner_seen_at TEXT;
-- The mode the run started in (auto, shadow, supervised); a resumed run keeps it.
ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'auto';
-- The plugin's ticket category, for policy conditions on resume.
ALTER TABLE runs ADD COLUMN category TEXT;
-- When a waiting run (a question or an approval) stops waiting and is escalated.
ALTER TABLE runs ADD COLUMN waiting_until TEXT;

-- A tenant's policy file (TOML rules over Cedar conditions). No row: the default policy.
CREATE TABLE policies (
    tenant      TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- How much autonomy a tenant gives each category ('*' = every category without a row
-- of its own). Tenants added from now on start with ('*', 'shadow'); tenants that
-- existed before this migration keep running as they did.
CREATE TABLE modes (
    tenant      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('off', 'shadow', 'supervised', 'auto')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant, category)
);
INSERT INTO modes (tenant, category, mode) SELECT id, '*', 'auto' FROM tenants;

-- An approval a run waits for: what the plugin wants to do, which rule asked, who may
-- answer (emails resolved when asked), and the answer.
CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    run          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    ticket       INTEGER NOT NULL,
    function     TEXT NOT NULL,
    args         TEXT NOT NULL,
    summary      TEXT NOT NULL,
    rule         TEXT NOT NULL,
    requester    TEXT NOT NULL,
    approvers    TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at   TEXT NOT NULL,
    answered_by  TEXT,
    answered_at  TEXT,
    comment      TEXT
);
CREATE INDEX approvals_pending ON approvals(status, tenant, id);
CREATE INDEX approvals_by_run ON approvals(run);
