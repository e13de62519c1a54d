-- Site codes are unique per organisation, not across the hub: a trust may use a code another trust uses, and
-- cannot learn (from a refusal) that another trust has one. Ids are kept: appointments, slots and site maps point
-- at them. This file may run after later ones (an upgraded hub): none of them changes the sites table.
-- SQLite cannot drop a UNIQUE constraint: the table is rebuilt (the runner turns foreign keys off for it and
-- checks them all before the commit). PostgreSQL swaps the constraint.
{sqlite} CREATE TABLE sites_new (
{sqlite}     id {id},
{sqlite}     organisation_id BIGINT NOT NULL REFERENCES organisations (id),
{sqlite}     code TEXT NOT NULL,
{sqlite}     name TEXT NOT NULL,
{sqlite}     address TEXT NOT NULL DEFAULT '',
{sqlite}     postcode TEXT NOT NULL DEFAULT '',
{sqlite}     latitude DOUBLE PRECISION,
{sqlite}     longitude DOUBLE PRECISION,
{sqlite}     directions TEXT NOT NULL DEFAULT '',
{sqlite}     parking TEXT NOT NULL DEFAULT '',
{sqlite}     phone TEXT NOT NULL DEFAULT '',
{sqlite}     map_file TEXT,
{sqlite}     source_hash TEXT NOT NULL DEFAULT '',
{sqlite}     UNIQUE (organisation_id, code)
{sqlite} );
{sqlite} INSERT INTO sites_new (id, organisation_id, code, name, address, postcode, latitude, longitude, directions,
{sqlite}     parking, phone, map_file, source_hash)
{sqlite}     SELECT id, organisation_id, code, name, address, postcode, latitude, longitude, directions, parking, phone,
{sqlite}     map_file, source_hash FROM sites ORDER BY id;
{sqlite} DROP TABLE sites;
{sqlite} ALTER TABLE sites_new RENAME TO sites;
{postgresql} ALTER TABLE sites DROP CONSTRAINT sites_code_key;
{postgresql} ALTER TABLE sites ADD CONSTRAINT sites_organisation_code UNIQUE (organisation_id, code);
-- The patient's site page and the console look sites up by code alone as well.
CREATE INDEX sites_code ON sites (code);
