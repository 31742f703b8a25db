-- Temporary passwords waiting to be picked up through a one-time link. Each is sealed
-- (XChaCha20-Poly1305) with a key that exists only in the link sent to its owner, so
-- this table never holds a readable secret; the row is deleted when the link is opened
-- or once it has expired.
CREATE TABLE one_time_secrets (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
