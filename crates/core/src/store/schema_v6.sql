-- v6: names compared as the strictest destination compares them, a
-- destination's identity marker, and files' birth times.

-- album/name folded (NFC, lower case): see album::name_key. Filled for
-- existing rows by the migration's hook.
ALTER TABLE entries ADD COLUMN name_key TEXT;
CREATE INDEX entries_by_key ON entries (dest_id, name_key);

-- The id written in the destination's marker file at first use; a
-- destination whose marker is gone (an unmounted drive, a deleted library)
-- is not written to.
ALTER TABLE destinations ADD COLUMN marker TEXT;

-- Birth time (statx btime) where the file system records one: a file that
-- keeps its inode but not its birth time is a new file, not a move.
ALTER TABLE files ADD COLUMN btime_ns INTEGER;

-- Why a folder of a watch could not be read at the last scan (a path too
-- long for the system, no permission): counted and shown with the skipped
-- files, so that nothing the user has is left out without a word.
ALTER TABLE dirs ADD COLUMN unreachable TEXT;
