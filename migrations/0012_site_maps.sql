-- A site map sent through the integration API (PUT /api/v1/sites/{code}/map), for sites the demo did not seed
-- with a file in static/maps. One per site; a new one replaces it.
CREATE TABLE site_maps (
    site_id BIGINT PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    content {blob} NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
