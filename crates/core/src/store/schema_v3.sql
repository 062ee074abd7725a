-- Schema version 3: remote destinations. Secrets are never stored here:
-- they live in the OS keyring (or an environment variable).

-- The server's address (WebDAV: the collection albums go into).
ALTER TABLE destinations ADD COLUMN url TEXT;
-- The account name, if the server wants one.
ALTER TABLE destinations ADD COLUMN username TEXT;
-- 1 when the user explicitly allowed credentials over plain HTTP.
ALTER TABLE destinations ADD COLUMN insecure_http INTEGER NOT NULL DEFAULT 0;
