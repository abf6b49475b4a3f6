-- Issue 18: what the target folder looked like at the end of the last completed pass, so
-- that a pass skips a folder only when neither side changed. A target emptied, recreated
-- or thinned out since then is looked at again instead of trusted.
ALTER TABLE folder_checkpoint ADD COLUMN target_uidnext BIGINT;
ALTER TABLE folder_checkpoint ADD COLUMN target_messages BIGINT;
-- The same for calendars and address books: the target collection's sync token (else ctag)
-- at the end of the last completed pass, `sync:<token>` or `ctag:<ctag>`.
ALTER TABLE dav_collection_map ADD COLUMN target_state TEXT;
