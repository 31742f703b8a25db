-- Every new one-time link deletes the expired ones; without an index that delete read
-- the whole table once per password reset.
CREATE INDEX one_time_secrets_by_expiry ON one_time_secrets (expires_at);
