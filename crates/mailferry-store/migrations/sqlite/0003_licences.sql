-- The migration allowance: a free allowance (in the code) plus licence keys, each worth a
-- number of migrations. A key counts once (its id is the key). A migration is counted when
-- it is stored; the counter is one row, raised by a conditional UPDATE in the same
-- transaction as the inserts, so concurrent submissions cannot overshoot on either backend.
CREATE TABLE licence_key (
    id TEXT PRIMARY KEY,
    migrations BIGINT NOT NULL CHECK (migrations > 0),
    issued_to TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    -- the key as entered, so that it can be shown and checked again
    key_text TEXT NOT NULL
);

CREATE TABLE allowance (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    used BIGINT NOT NULL
);
-- migrations stored before allowances existed count as used
INSERT INTO allowance (id, used) SELECT 1, COUNT(*) FROM migration;
