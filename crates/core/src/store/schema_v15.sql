-- v15: Live Photo identifiers.
--
-- The identifier Apple writes into both halves of a Live Photo (the
-- still's MakerNote, the motion's QuickTime metadata; see live_photo.rs),
-- upper case, set when the file is hashed; NULL when the file carries
-- none or was hashed before. The index finds a folder's other half.
ALTER TABLE files ADD COLUMN live_id TEXT;
CREATE INDEX files_by_live_id ON files (dir_id, live_id) WHERE live_id IS NOT NULL;
