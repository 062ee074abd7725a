-- v16: Immich destinations.
--
-- Immich keeps assets, not named files. An entry on an Immich destination
-- is a name in an album that this table maps to the asset holding it
-- (dest/immich.rs). Several names may share one asset (the same content
-- under two names, or in two albums); an asset belongs to an album while a
-- name of it is there.
CREATE TABLE asset_names (
    dest_id  INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
    album    TEXT NOT NULL,
    name     TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    PRIMARY KEY (dest_id, album, name)
);
CREATE INDEX asset_names_by_asset ON asset_names (dest_id, asset_id);
