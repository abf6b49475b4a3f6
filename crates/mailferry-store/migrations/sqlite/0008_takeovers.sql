-- Issue 17: how often a pass's lease ran out and another worker took the migration over
-- (a crashed or cut-off worker), for the operators' metrics.
ALTER TABLE migration ADD COLUMN lease_takeovers BIGINT NOT NULL DEFAULT 0;
-- Whether a migration copies the account's filters (Sieve scripts); 1 unless submitted with
-- `"filters": false`.
ALTER TABLE migration ADD COLUMN filters BIGINT NOT NULL DEFAULT 1;
