-- Issue 18: what the target folder looked like at the end of the last completed pass, so
-- that a pass skips a folder only when neither side changed. A target emptied, recreated
-- or thinned out since then is looked at again instead of trusted.
ALTER TABLE folder_checkpoint ADD COLUMN target_uidnext BIGINT;
ALTER TABLE folder_checkpoint ADD COLUMN target_messages BIGINT;
