-- Shoebox store, schema version 1. Migrations are append-only: never edit
-- this file once released; add schema_v2.sql instead.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Where albums are stored. path NULL = the embedded library <home>/Library.
CREATE TABLE destinations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    path       BLOB,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE watches (
    id           INTEGER PRIMARY KEY,
    root         BLOB NOT NULL UNIQUE,      -- canonical absolute path, OS bytes
    mode         TEXT NOT NULL CHECK (mode IN ('single', 'per-folder')),
    album        TEXT NOT NULL,             -- single: the album; per-folder: the root's album
    dest_id      INTEGER NOT NULL REFERENCES destinations(id),
    on_delete    TEXT NOT NULL CHECK (on_delete IN ('keep', 'remove')),
    all_files    INTEGER NOT NULL,
    root_dev     INTEGER NOT NULL,
    root_ino     INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'ok', 'missing')),
    state_detail TEXT,
    ignored      INTEGER NOT NULL DEFAULT 0, -- entries left out by the filters at the last scan
    scan_gen     INTEGER NOT NULL DEFAULT 0, -- number of completed full scans
    last_scan    INTEGER,                    -- unix seconds
    created_at   INTEGER NOT NULL
) STRICT;

-- Every directory seen under a watch; rel is '/'-joined OS bytes, '' = root.
CREATE TABLE dirs (
    id       INTEGER PRIMARY KEY,
    watch_id INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    rel      BLOB NOT NULL,
    scan_gen INTEGER NOT NULL,
    UNIQUE (watch_id, rel)
) STRICT;

-- What the store believes is in a destination: one row per stored object.
CREATE TABLE entries (
    id        INTEGER PRIMARY KEY,
    dest_id   INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
    album     TEXT NOT NULL,
    name      TEXT NOT NULL,
    base_name TEXT NOT NULL,               -- the name before any " (n)" suffix
    hash      BLOB,                        -- BLAKE3 of the content
    size      INTEGER NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('reserved', 'present', 'deleting')),
    -- set while the object is being moved here from another place
    from_album TEXT,
    from_name  TEXT,
    UNIQUE (dest_id, album, name)
) STRICT;
CREATE INDEX entries_by_hash ON entries (dest_id, album, hash);
CREATE INDEX entries_by_state ON entries (state) WHERE state != 'present';

-- The file index and upload queue: one row per file under a watch.
CREATE TABLE files (
    id              INTEGER PRIMARY KEY,
    dir_id          INTEGER NOT NULL REFERENCES dirs(id) ON DELETE CASCADE,
    name            BLOB NOT NULL,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    ctime_ns        INTEGER NOT NULL,
    ino             INTEGER NOT NULL,
    dev             INTEGER NOT NULL,
    hash            BLOB,                  -- BLAKE3 of the version described by the fingerprint
    state           TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'uploaded', 'failed', 'skipped')),
    gone            INTEGER NOT NULL DEFAULT 0, -- vanished at the last scan, not yet resolved
    entry_id        INTEGER REFERENCES entries(id) ON DELETE SET NULL,
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (dir_id, name)
) STRICT;
CREATE INDEX files_by_state ON files (state) WHERE state != 'uploaded';
CREATE INDEX files_by_ino ON files (ino, size, mtime_ns);
CREATE INDEX files_by_entry ON files (entry_id);
CREATE INDEX files_gone ON files (gone) WHERE gone = 1;
