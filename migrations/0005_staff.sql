-- Booking-centre staff: accounts (argon2id password + TOTP), their sessions, and the widened call-back queue.

CREATE TABLE staff_users (
    id {id},
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT,
    totp_secret TEXT,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    enrolled_at TEXT,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    disabled_at TEXT,
    setup_token_hash TEXT,
    setup_expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX staff_users_setup ON staff_users (setup_token_hash);

-- stage: 'totp' (password right, code still to come), 'enrol' (choosing an authenticator), 'active'.
CREATE TABLE staff_sessions (
    id TEXT PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES staff_users (id),
    stage TEXT NOT NULL CHECK (stage IN ('totp', 'enrol', 'active')),
    pending_secret TEXT,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- SQLite cannot alter a CHECK: the call-back queue is rebuilt with more kinds and the claim columns. Rows are
-- copied without their ids so both databases hand out the next id from their own counter.
CREATE TABLE callback_tasks_new (
    id {id},
    kind TEXT NOT NULL
        CHECK (kind IN ('rebook', 'cancel', 'failed_notification', 'inbound_text', 'letter_posted')),
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
    closed_by BIGINT REFERENCES staff_users (id)
);
INSERT INTO callback_tasks_new (kind, patient_id, appointment_id, reason, preferred_times, status, created_at, closed_at)
    SELECT kind, patient_id, appointment_id, reason, preferred_times, status, created_at, closed_at
    FROM callback_tasks ORDER BY id;
DROP TABLE callback_tasks;
ALTER TABLE callback_tasks_new RENAME TO callback_tasks;
CREATE INDEX callback_tasks_open ON callback_tasks (status, created_at);
CREATE INDEX callback_tasks_appointment ON callback_tasks (appointment_id, kind);
CREATE INDEX callback_tasks_patient ON callback_tasks (patient_id);
