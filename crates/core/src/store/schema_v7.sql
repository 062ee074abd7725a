-- v7: a reservation knows the file it was made for. An upload that a crash
-- (or a lost answer) left unconfirmed is taken up again under the same name
-- by that file, instead of being deleted from the destination and sent again
-- or numbered beside its own earlier copy.
ALTER TABLE entries ADD COLUMN file_id INTEGER REFERENCES files(id) ON DELETE SET NULL;
CREATE INDEX entries_by_file ON entries (file_id) WHERE file_id IS NOT NULL;
