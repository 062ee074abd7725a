-- v11: capture dates, and albums by capture date.
--
-- Each file's capture date (local wall-clock time, 'YYYY-MM-DDTHH:MM:SS')
-- and where it was read (see capture.rs), set when the file is hashed.
-- Files hashed before have none; they get one when next read.
ALTER TABLE files ADD COLUMN captured TEXT;
ALTER TABLE files ADD COLUMN captured_from TEXT
    CHECK (captured_from IN ('metadata', 'takeout', 'file-name', 'modified'));
-- The album mode moves to a column that allows 'by-date': `mode`'s CHECK
-- cannot be changed without rebuilding the table (whose rows other tables
-- reference), so `mode` keeps 'single' for a by-date watch and is no longer
-- read.
ALTER TABLE watches ADD COLUMN album_mode TEXT NOT NULL DEFAULT 'single'
    CHECK (album_mode IN ('single', 'per-folder', 'by-date'));
UPDATE watches SET album_mode = mode;
-- A by-date watch's album name pattern (strftime, as `--date-format`).
ALTER TABLE watches ADD COLUMN date_format TEXT NOT NULL DEFAULT '%Y-%m';
