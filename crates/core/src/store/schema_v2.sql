-- Schema version 2: live sync (settling, held deletions, watcher health).

-- When the file's current fingerprint was first seen (unix ms): a file is
-- taken only once this is a settle window old.
ALTER TABLE files ADD COLUMN fp_since_ms INTEGER NOT NULL DEFAULT 0;
-- When the file was found gone (unix seconds).
ALTER TABLE files ADD COLUMN gone_since INTEGER NOT NULL DEFAULT 0;

-- How a running engine watches the folder: 'ok', 'degraded: …', 'polling: …'.
ALTER TABLE watches ADD COLUMN watcher TEXT;
-- Deletions held because too many files vanished at once (their count).
ALTER TABLE watches ADD COLUMN deletions_held INTEGER NOT NULL DEFAULT 0;
-- The user confirmed the held deletions.
ALTER TABLE watches ADD COLUMN release_deletions INTEGER NOT NULL DEFAULT 0;
