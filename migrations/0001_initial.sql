-- Portable SQL: {id} and {blob} are filled in per database by hub/db/migrate.py; times are UTC text.

CREATE TABLE organisations (
    id {id},
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT ''
);

CREATE TABLE sites (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    postcode TEXT NOT NULL DEFAULT '',
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    directions TEXT NOT NULL DEFAULT '',
    parking TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    map_file TEXT
);

CREATE TABLE patients (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    mrn TEXT NOT NULL,
    nhs_number TEXT,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    mobile TEXT,
    email TEXT,
    address_lines TEXT NOT NULL DEFAULT '[]',
    postcode TEXT NOT NULL DEFAULT '',
    contact_preference TEXT NOT NULL DEFAULT 'sms' CHECK (contact_preference IN ('sms', 'email')),
    paperless INTEGER NOT NULL DEFAULT 1,
    opted_out INTEGER NOT NULL DEFAULT 0,
    verification_code TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organisation_id, mrn)
);
CREATE INDEX patients_mobile ON patients (mobile, date_of_birth);
CREATE INDEX patients_email ON patients (email, date_of_birth);

CREATE TABLE appointments (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    ref TEXT NOT NULL,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    site_id BIGINT NOT NULL REFERENCES sites (id),
    clinic TEXT NOT NULL DEFAULT '',
    specialty TEXT NOT NULL DEFAULT '',
    clinician TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    mode TEXT NOT NULL CHECK (mode IN ('in_person', 'telephone', 'video')),
    transport_booked INTEGER NOT NULL DEFAULT 0,
    interpreter_booked INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'attended', 'did_not_attend')),
    request_state TEXT NOT NULL DEFAULT 'none'
        CHECK (request_state IN ('none', 'confirmed', 'rebook_requested', 'cancel_requested')),
    sequence INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organisation_id, ref)
);
CREATE INDEX appointments_patient ON appointments (patient_id, starts_at);

CREATE TABLE letters (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    ref TEXT NOT NULL,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    appointment_id BIGINT REFERENCES appointments (id),
    kind TEXT NOT NULL CHECK (kind IN ('appointment_letter', 'clinic_letter', 'discharge_summary')),
    title TEXT NOT NULL,
    content {blob} NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    first_viewed_at TEXT,
    UNIQUE (organisation_id, ref)
);
CREATE INDEX letters_patient ON letters (patient_id, created_at);
CREATE INDEX letters_appointment ON letters (appointment_id);

CREATE TABLE callback_tasks (
    id {id},
    kind TEXT NOT NULL CHECK (kind IN ('rebook', 'cancel')),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    appointment_id BIGINT REFERENCES appointments (id),
    reason TEXT NOT NULL DEFAULT '',
    preferred_times TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'closed')),
    created_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE INDEX callback_tasks_open ON callback_tasks (status, created_at);
CREATE INDEX callback_tasks_appointment ON callback_tasks (appointment_id, kind);

-- Patient and system actions for the hospital system, read in id order through the integration API.
CREATE TABLE events (
    id {id},
    kind TEXT NOT NULL,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    patient_id BIGINT REFERENCES patients (id),
    appointment_id BIGINT REFERENCES appointments (id),
    data TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);

-- Who did what to which record. Never message bodies, codes or contact details.
CREATE TABLE audit_events (
    id {id},
    at TEXT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('patient', 'agent', 'system', 'api_key')),
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_record ON audit_events (record_type, record_id);

CREATE TABLE outbox_messages (
    id {id},
    kind TEXT NOT NULL,
    lane TEXT NOT NULL DEFAULT 'bulk' CHECK (lane IN ('immediate', 'bulk')),
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'letter')),
    patient_id BIGINT REFERENCES patients (id),
    appointment_id BIGINT REFERENCES appointments (id),
    recipient TEXT NOT NULL,
    template_id TEXT NOT NULL DEFAULT '',
    personalisation TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    notify_id TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox_messages (status, next_attempt_at);
CREATE INDEX outbox_patient ON outbox_messages (patient_id, created_at);

-- What the dev notifier "sent": demo mode and tests only, shown at /dev/outbox.
CREATE TABLE dev_messages (
    id {id},
    reference TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    personalisation TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- One sign-in attempt. The browser holds the token; we keep its hash. code_hash is keyed: a database
-- copy alone cannot be turned back into codes.
CREATE TABLE code_challenges (
    id TEXT PRIMARY KEY,
    contact_key TEXT NOT NULL,
    link_patient_id BIGINT REFERENCES patients (id),
    code_hash TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    failed_guesses INTEGER NOT NULL DEFAULT 0,
    consumed_at TEXT,
    superseded_at TEXT,
    uvc_failures INTEGER NOT NULL DEFAULT 0,
    finished_at TEXT
);
CREATE INDEX code_challenges_issued ON code_challenges (issued_at);

CREATE TABLE code_challenge_candidates (
    challenge_id TEXT NOT NULL REFERENCES code_challenges (id) ON DELETE CASCADE,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (challenge_id, patient_id)
);

-- Counters for rate limits, keyed by a keyed hash (never a raw contact or address).
CREATE TABLE rate_events (
    id {id},
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (key, at);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX sessions_patient ON sessions (patient_id);
