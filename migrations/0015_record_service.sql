-- The NHS numbers the Aggregator's Record Service has been told of, one list per resource type. A row with no
-- sent_at is still to go (new, failed, or asked to be resent); next_attempt_at holds retries back, and is moved
-- ahead while a worker is sending it, so two workers never send the same number at once.
CREATE TABLE record_service_numbers (
    resource TEXT NOT NULL CHECK (resource IN ('appointments', 'documents')),
    nhs_number TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at TEXT,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (resource, nhs_number)
);
CREATE INDEX record_service_due ON record_service_numbers (next_attempt_at) WHERE sent_at IS NULL;

-- How far the worker has looked through appointments and letters for patients to add (their ids only grow), and
-- when it last looked through everything (daily). A row is made on first use.
CREATE TABLE record_service_marks (
    resource TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL DEFAULT 0,
    full_pass_at TEXT
);
