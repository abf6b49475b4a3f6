-- Groupware checkpoints (issue 8). Which source calendar or address book goes to which
-- target collection and how far it was copied: the RFC 6578 sync token, else the ctag,
-- taken at the start of the last completed pass.
CREATE TABLE dav_collection_map (
    job_id TEXT NOT NULL,
    source_href TEXT NOT NULL,
    -- calendar or addressbook
    kind TEXT NOT NULL,
    target_href TEXT NOT NULL,
    sync_token TEXT,
    ctag TEXT,
    PRIMARY KEY (job_id, source_href)
);

-- What became of each source object, keyed by its href in its collection. A row in state 0
-- is written before the PUT is sent: after a crash it means "maybe written", and the
-- engine looks at the target href before writing again.
CREATE TABLE dav_object_map (
    job_id TEXT NOT NULL,
    source_collection TEXT NOT NULL,
    source_href TEXT NOT NULL,
    uid TEXT NOT NULL,
    -- event, task, journal, contact, other
    kind TEXT NOT NULL,
    source_etag TEXT,
    target_href TEXT,
    -- the target's ETag when we last wrote or saw it: a change there is never overwritten
    target_etag TEXT,
    -- 0 PUT sent, outcome unknown; 1 copied; 2 already on the target; 3 failed
    state BIGINT NOT NULL,
    detail TEXT,
    PRIMARY KEY (job_id, source_collection, source_href)
);

-- The service's explicit CalDAV/CardDAV address per side of a migration (optional
-- `source.dav` / `target.dav`); erased with the migration's personal data.
CREATE TABLE migration_dav (
    migration_id TEXT NOT NULL,
    side TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (migration_id, side)
);
