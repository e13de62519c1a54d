-- Integration API keys: stored as a SHA-256 of the key (the key itself has 256 bits of randomness), one trust each.
CREATE TABLE api_keys (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT,
    UNIQUE (organisation_id, name)
);

-- What the hospital last sent for each record, so the same body twice changes nothing and sends nothing.
ALTER TABLE patients ADD COLUMN source_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE appointments ADD COLUMN source_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN source_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE letters ADD COLUMN source_hash TEXT NOT NULL DEFAULT '';
