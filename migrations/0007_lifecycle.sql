-- The appointment lifecycle (hub/rules/lifecycle.py).
-- hub_change: a change the hub made and told the hospital about (an immediate cancel, an agent's rebook or cancel),
-- as JSON, until a hospital update reflects it. held_update: a hospital update that did not, held back as a
-- conflict for the booking centre (JSON of its facts).
ALTER TABLE appointments ADD COLUMN hub_change TEXT;
ALTER TABLE appointments ADD COLUMN held_update TEXT;

-- The hospital can stop emails as well as texts. hospital_choices: what it last sent of contact_opt_out and
-- paper_letters, so that only a change of its mind is applied (a resend never undoes the patient's own STOP).
ALTER TABLE patients ADD COLUMN email_opted_out INTEGER NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN hospital_choices TEXT NOT NULL DEFAULT '{}';

-- SQLite cannot alter a CHECK: tasks are rebuilt with two more kinds (a conflict with the hospital's record, a
-- letter with no address to go to) and the patient's request state before a request, which closing the request
-- returns to. Ids are kept: the audit trail and the hospital's events name tasks by id.
CREATE TABLE tasks_new (
    id {id},
    kind TEXT NOT NULL CHECK (kind IN ('rebook', 'cancel', 'failed_notification', 'inbound_text', 'letter_posted',
        'conflict', 'no_postal_address')),
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
    source_id, claimed_by, claimed_until, attempts, not_before, outcome, note, closed_by)
    SELECT id, kind, patient_id, appointment_id, reason, preferred_times, status, created_at, closed_at, source_id,
    claimed_by, claimed_until, attempts, not_before, outcome, note, closed_by FROM tasks ORDER BY id;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_open ON tasks (status, created_at);
CREATE INDEX tasks_appointment ON tasks (appointment_id, kind);
CREATE INDEX tasks_patient ON tasks (patient_id);
{postgresql} SELECT setval(pg_get_serial_sequence('tasks', 'id'), COALESCE((SELECT MAX(id) FROM tasks), 0) + 1, false)
