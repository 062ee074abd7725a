-- v14: encrypted destinations that hide names.
--
-- `hide_names` is 1 when album and file names are stored as tokens
-- (`--encrypt-names`, seal/names.rs), 0 when they are kept readable.
ALTER TABLE destinations ADD COLUMN hide_names INTEGER NOT NULL DEFAULT 0;
