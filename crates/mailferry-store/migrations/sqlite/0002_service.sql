-- The service: migrations submitted through the API or a list, worked on by leased workers.
-- Times are Unix seconds (UTC). Booleans are 0/1 BIGINTs, the same on both backends.
CREATE TABLE migration (
    id TEXT PRIMARY KEY,
    -- waiting, transferring, waiting_resync, resyncing, done, failed, cancelled
    state TEXT NOT NULL CHECK (state IN ('waiting', 'transferring', 'waiting_resync', 'resyncing', 'done', 'failed', 'cancelled')),
    -- personal data: set to NULL by a purge
    source_server_type TEXT,
    source_email TEXT,
    source_username TEXT,
    source_server TEXT,
    source_insecure BIGINT NOT NULL DEFAULT 0,
    target_server_type TEXT,
    target_email TEXT,
    target_username TEXT,
    target_server TEXT,
    target_insecure BIGINT NOT NULL DEFAULT 0,
    start_at BIGINT NOT NULL,
    resync_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    error TEXT,
    messages_total BIGINT NOT NULL DEFAULT 0,
    messages_done BIGINT NOT NULL DEFAULT 0,
    messages_copied BIGINT NOT NULL DEFAULT 0,
    messages_failed BIGINT NOT NULL DEFAULT 0,
    bytes_total BIGINT NOT NULL DEFAULT 0,
    bytes_done BIGINT NOT NULL DEFAULT 0,
    report_json TEXT,
    purged BIGINT NOT NULL DEFAULT 0,
    -- how many times a worker took it
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT
);
-- claim_due looks up by state and the time that makes it due
CREATE INDEX migration_state_start ON migration (state, start_at);
CREATE INDEX migration_state_resync ON migration (state, resync_at);
CREATE INDEX migration_state_lease ON migration (state, lease_until);
CREATE INDEX migration_created ON migration (created_at);

-- Sealed (encrypted) credentials, deleted as soon as they are no longer needed.
CREATE TABLE migration_secret (
    migration_id TEXT NOT NULL REFERENCES migration (id) ON DELETE CASCADE,
    side TEXT NOT NULL CHECK (side IN ('source', 'target')),
    sealed BLOB NOT NULL,
    PRIMARY KEY (migration_id, side)
);

CREATE TABLE setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_token (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
