-- The worker's outbox: a lease on messages being sent, so a crashed worker's messages are picked up again
-- (and looked up at Notify by reference before any resend).
ALTER TABLE outbox_messages ADD COLUMN claimed_until TEXT;
ALTER TABLE outbox_messages ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox_messages ADD COLUMN check_first INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox_messages ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox_messages ADD COLUMN delivery_status TEXT;
ALTER TABLE outbox_messages ADD COLUMN pdf_letter_id BIGINT REFERENCES letters (id);
CREATE INDEX outbox_lease ON outbox_messages (status, claimed_until);
CREATE INDEX outbox_notify_id ON outbox_messages (notify_id);
CREATE INDEX outbox_recipient ON outbox_messages (recipient, sent_at);

-- Every request made to Notify, for the per-minute limit that all workers share.
CREATE TABLE notify_requests (
    id {id},
    at TEXT NOT NULL
);
CREATE INDEX notify_requests_at ON notify_requests (at);

-- A channel held back after Notify's daily limit answer, until the limit resets.
CREATE TABLE channel_holds (
    channel TEXT PRIMARY KEY,
    held_until TEXT NOT NULL
);

-- Reminders and escalation steps, due at a time; the sweep reads only what is due.
CREATE TABLE scheduled_notices (
    id {id},
    appointment_id BIGINT NOT NULL REFERENCES appointments (id),
    kind TEXT NOT NULL,
    due_at TEXT NOT NULL,
    done_at TEXT,
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX scheduled_notices_due ON scheduled_notices (due_at) WHERE done_at IS NULL;
CREATE INDEX scheduled_notices_appointment ON scheduled_notices (appointment_id);

-- Texts patients send us (other than STOP and START), kept for the booking centre.
CREATE TABLE inbound_messages (
    id {id},
    notify_id TEXT NOT NULL UNIQUE,
    patient_id BIGINT REFERENCES patients (id),
    source_number TEXT NOT NULL,
    content TEXT NOT NULL,
    received_at TEXT NOT NULL,
    action TEXT NOT NULL DEFAULT ''
);

ALTER TABLE patients ADD COLUMN sms_opted_out INTEGER NOT NULL DEFAULT 0;
ALTER TABLE appointments ADD COLUMN first_viewed_at TEXT;
