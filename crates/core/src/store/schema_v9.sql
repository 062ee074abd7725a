-- v9: the entries a scan left out on purpose (junk, hidden, not a photo),
-- each with its reason, so that `status --ignored` and the window can name
-- them. A folder's rows are replaced each time it is scanned.
CREATE TABLE ignored (
    watch_id INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    dir_rel  BLOB NOT NULL,     -- the folder holding it, as dirs.rel
    name     BLOB NOT NULL,
    reason   TEXT NOT NULL,
    PRIMARY KEY (watch_id, dir_rel, name)
) STRICT, WITHOUT ROWID;
