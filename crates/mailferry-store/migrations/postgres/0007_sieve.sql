-- Filters (issue 14): which target script each source Sieve script was stored as, and the
-- SHA-256 of what we stored. A later pass updates its own copy when the source changed and
-- the target's copy is still what we wrote; a copy someone edited on the target is kept.
CREATE TABLE sieve_script_map (
    job_id TEXT NOT NULL,
    source_name TEXT NOT NULL,
    target_name TEXT NOT NULL,
    stored_sha256 TEXT NOT NULL,
    PRIMARY KEY (job_id, source_name)
);
