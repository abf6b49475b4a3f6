-- Engine checkpoints: what has been copied, so that a rerun copies nothing again and a
-- crash resumes. RFC 3501 §2.3.1.1: a UID only means something next to its UIDVALIDITY.
CREATE TABLE folder_checkpoint (
    job_id TEXT NOT NULL,
    source_folder TEXT NOT NULL,
    source_uidvalidity BIGINT NOT NULL,
    target_folder TEXT NOT NULL,
    target_uidvalidity BIGINT,
    -- every source UID below this was handled by a completed pass
    source_uidnext BIGINT NOT NULL,
    -- HIGHESTMODSEQ at the start of the last completed pass, when the server has one
    source_modseq BIGINT,
    PRIMARY KEY (job_id, source_folder)
);

CREATE TABLE message_map (
    job_id TEXT NOT NULL,
    source_folder TEXT NOT NULL,
    source_uidvalidity BIGINT NOT NULL,
    source_uid BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- 0 append sent, outcome unknown; 1 copied; 2 already on the target; 3 failed
    state INTEGER NOT NULL,
    target_uid BIGINT,
    -- the flags last set on the target, sorted, space separated
    flags TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (job_id, source_folder, source_uidvalidity, source_uid)
);
