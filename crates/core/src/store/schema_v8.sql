-- v8: how a per-folder watch names a folder's album: after the folder
-- ('leaf', passing over the folders a camera card makes) or after its path
-- below the watched folder ('path').
ALTER TABLE watches ADD COLUMN album_names TEXT NOT NULL DEFAULT 'leaf'
    CHECK (album_names IN ('leaf', 'path'));
