-- Jobs that run once a day whichever worker gets there first: the worker that moves last_run_at runs it.
CREATE TABLE job_runs (
    name TEXT PRIMARY KEY,
    last_run_at TEXT NOT NULL
);
INSERT INTO job_runs (name, last_run_at) VALUES ('retention', '2000-01-01T00:00:00.000000Z');

-- Retention reads records by age.
CREATE INDEX appointments_starts_at ON appointments (starts_at);
CREATE INDEX letters_created_at ON letters (created_at);
CREATE INDEX outbox_created_at ON outbox_messages (created_at);
CREATE INDEX events_created_at ON events (created_at);
