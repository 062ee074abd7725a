-- Schema version 4: S3-compatible destinations, and multipart uploads that
-- survive a restart. Secrets are never stored here.

-- S3: the bucket, its region, the key prefix albums go under, and whether
-- the bucket is addressed in the path (https://host/bucket/key) rather than
-- in the host name (https://bucket.host/key). `url` holds the endpoint and
-- `username` the access key id.
ALTER TABLE destinations ADD COLUMN bucket TEXT;
ALTER TABLE destinations ADD COLUMN region TEXT;
ALTER TABLE destinations ADD COLUMN prefix TEXT;
ALTER TABLE destinations ADD COLUMN path_style INTEGER NOT NULL DEFAULT 0;

-- A multipart upload in progress: which content it carries (so a restarted
-- engine continues it only for the very same content) and its part size.
CREATE TABLE multipart_uploads (
    upload_id  TEXT PRIMARY KEY,
    dest_id    INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
    object_key TEXT NOT NULL,
    content    BLOB NOT NULL,   -- BLAKE3 hash of the file being uploaded
    size       INTEGER NOT NULL,
    part_size  INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    UNIQUE (dest_id, object_key)
);

-- Parts the server has acknowledged.
CREATE TABLE multipart_parts (
    upload_id   TEXT NOT NULL REFERENCES multipart_uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    md5         BLOB NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
