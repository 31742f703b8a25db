-- Outages of the sandbox systems, switched on by `capdesk sandbox fail` to see how
-- plugins and the engine behave when a connected system fails: every call to
-- `function` (a host function name like `idp.assign-license`, or '*') for the tenant
-- fails as `upstream` with `message` until `capdesk sandbox heal`.
CREATE TABLE sandbox_faults (
    tenant    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    function  TEXT NOT NULL,
    message   TEXT NOT NULL,
    PRIMARY KEY (tenant, function)
);
