-- v10: copies now keep their source's modification time. The destinations
-- that exist at this upgrade hold copies made before, which carry the time
-- they were made: each is marked for one pass that dates them (see
-- transfer::date_old_copies). Destinations added later need none.
INSERT INTO settings (key, value)
    SELECT 'dates_pending.' || id, 'true' FROM destinations;
