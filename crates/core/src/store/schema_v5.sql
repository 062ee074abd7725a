-- Schema version 5: a remote destination may trust exactly one server
-- certificate of its own (DER), for a server with a self-signed one.
-- A certificate is public; it is not a secret.
ALTER TABLE destinations ADD COLUMN tls_cert BLOB;
