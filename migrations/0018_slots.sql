-- Bookable times the hospital offers (PUT /api/v1/slots/{slot_ref}, the import's slots file). status: free, busy
-- (an appointment is in it), blocked (not bookable), withdrawn (the hospital took it back; kept for history).
-- appointment_id: the appointment the hub knows is in the slot (the hospital's, or one the hub moved there).
CREATE TABLE slots (
    id {id},
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    ref TEXT NOT NULL,
    site_id BIGINT NOT NULL REFERENCES sites (id),
    clinic TEXT NOT NULL DEFAULT '',
    specialty TEXT NOT NULL DEFAULT '',
    clinician TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    mode TEXT NOT NULL CHECK (mode IN ('in_person', 'telephone', 'video')),
    status TEXT NOT NULL CHECK (status IN ('free', 'busy', 'blocked', 'withdrawn')),
    appointment_id BIGINT REFERENCES appointments (id),
    source_hash TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organisation_id, ref)
);
CREATE INDEX slots_free ON slots (site_id, clinic, clinician, status, starts_at);
CREATE INDEX slots_appointment ON slots (appointment_id);

-- Every move of an appointment from one slot to another, by whom: the console's slot history, and the count of a
-- patient's own moves against the rebook limit.
CREATE TABLE slot_moves (
    id {id},
    appointment_id BIGINT NOT NULL REFERENCES appointments (id),
    from_slot_id BIGINT REFERENCES slots (id),
    to_slot_id BIGINT NOT NULL REFERENCES slots (id),
    previous_start TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    how TEXT NOT NULL CHECK (how IN ('patient', 'earlier_offer', 'agent')),
    at TEXT NOT NULL
);
CREATE INDEX slot_moves_appointment ON slot_moves (appointment_id, at);
