-- v13: encrypted destinations.
--
-- `encryption` holds the age recipient (`age1…`, the public key) every
-- object is encrypted to; NULL for a plain destination. The identity (the
-- secret key) is kept in the keyring only. `key_exported_at` is when the
-- user last exported the key file (`shoebox dest export-key`); until then,
-- Shoebox keeps warning that losing the key loses the backup.
ALTER TABLE destinations ADD COLUMN encryption TEXT;
ALTER TABLE destinations ADD COLUMN key_exported_at INTEGER;
