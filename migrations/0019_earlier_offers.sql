-- Earlier appointments. earlier_requests: a patient asking to be offered an earlier time for one appointment.
-- slot_offers: a freed slot offered to one such patient, open until it lapses, they answer, or someone takes it.
CREATE TABLE earlier_requests (
    appointment_id BIGINT PRIMARY KEY REFERENCES appointments (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    created_at TEXT NOT NULL
);

CREATE TABLE slot_offers (
    id {id},
    slot_id BIGINT NOT NULL REFERENCES slots (id),
    appointment_id BIGINT NOT NULL REFERENCES appointments (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    batch INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('offered', 'accepted', 'declined', 'lapsed', 'gone')),
    offered_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    answered_at TEXT,
    UNIQUE (slot_id, appointment_id)
);
CREATE INDEX slot_offers_open ON slot_offers (status, expires_at);
CREATE INDEX slot_offers_patient ON slot_offers (patient_id, status);
CREATE INDEX slot_offers_appointment ON slot_offers (appointment_id, status);
