-- v12: SFTP destinations.
--
-- `url` holds `sftp://host:port`, `username` the account and `path` the
-- folder on the server. How the destination signs in: with a password or
-- a private key (either kept in the keyring, never here), or through the
-- user's ssh-agent.
ALTER TABLE destinations ADD COLUMN ssh_auth TEXT
    CHECK (ssh_auth IN ('password', 'key', 'agent'));
-- The server's host key, pinned when the destination was added (OpenSSH
-- public key text): any other key is refused.
ALTER TABLE destinations ADD COLUMN host_key TEXT;
