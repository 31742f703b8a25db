-- A person's verdict on what a shadow run proposed: would it have been the right fix?
-- The share judged correct per category is what an MSP weighs before letting the
-- category act (supervised or auto). One verdict per run; a second review replaces it.
CREATE TABLE shadow_reviews (
    run         INTEGER PRIMARY KEY REFERENCES runs(id),
    tenant      TEXT NOT NULL REFERENCES tenants(id),
    verdict     TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect')),
    note        TEXT NOT NULL DEFAULT '',
    reviewed_by TEXT NOT NULL,
    reviewed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX shadow_reviews_tenant ON shadow_reviews (tenant);
