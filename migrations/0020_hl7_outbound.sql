-- Outbound HL7 v2 (issue 17): the hospital's events sent to the PAS's MLLP endpoint as SRM^S03 / SRM^S04.
-- hl7_outbound: one row per organisation sending: the newest event answered (an AA, AE or AR, or an event with no
-- HL7 form), the claim of the worker sending (a lease, and `claims` as its fencing token), and the backoff after
-- a connection that dropped or an answer that never came.
CREATE TABLE hl7_outbound (
    organisation_id BIGINT PRIMARY KEY REFERENCES organisations (id),
    last_event_id BIGINT NOT NULL DEFAULT 0,
    claims INTEGER NOT NULL DEFAULT 0,
    claimed_until TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT NOT NULL DEFAULT ''
);

-- Every event sent and answered: its control id (MSH-10, the same on every resend), the message type, the PAS's
-- acknowledgement code and (for AE/AR) its MSA-3 / ERR text. Never the message itself.
CREATE TABLE hl7_deliveries (
    event_id BIGINT PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    control_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    ack_code TEXT NOT NULL,
    ack_text TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL,
    answered_at TEXT NOT NULL
);

-- The placer (SCH-1) and filler (SCH-2) appointment ids an appointment came in with over HL7, as sent (all their
-- components): an SRM names the appointment as the PAS does.
CREATE TABLE hl7_appointment_ids (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    ref TEXT NOT NULL,
    placer_id TEXT NOT NULL,
    filler_id TEXT NOT NULL,
    PRIMARY KEY (organisation_id, ref)
);

-- SQLite cannot alter a CHECK: tasks are rebuilt with one more kind, a message the PAS refused (AE or AR). Ids are
-- kept: the audit trail and the hospital's events name tasks by id.
CREATE TABLE tasks_new (
    id {id},
    kind TEXT NOT NULL CHECK (kind IN ('rebook', 'cancel', 'failed_notification', 'inbound_text', 'letter_posted',
        'conflict', 'no_postal_address', 'hl7_refused')),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    appointment_id BIGINT REFERENCES appointments (id),
    reason TEXT NOT NULL DEFAULT '',
    preferred_times TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'closed')),
    created_at TEXT NOT NULL,
    closed_at TEXT,
    source_id BIGINT,
    claimed_by BIGINT REFERENCES staff_users (id),
    claimed_until TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TEXT,
    outcome TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    closed_by BIGINT REFERENCES staff_users (id),
    prior_request_state TEXT NOT NULL DEFAULT 'none'
);
INSERT INTO tasks_new (id, kind, patient_id, appointment_id, reason, preferred_times, status, created_at, closed_at,
    source_id, claimed_by, claimed_until, attempts, not_before, outcome, note, closed_by, prior_request_state)
    SELECT id, kind, patient_id, appointment_id, reason, preferred_times, status, created_at, closed_at, source_id,
    claimed_by, claimed_until, attempts, not_before, outcome, note, closed_by, prior_request_state FROM tasks ORDER BY id;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_open ON tasks (status, created_at);
CREATE INDEX tasks_appointment ON tasks (appointment_id, kind);
CREATE INDEX tasks_patient ON tasks (patient_id);
{postgresql} SELECT setval(pg_get_serial_sequence('tasks', 'id'), COALESCE((SELECT MAX(id) FROM tasks), 0) + 1, false)
