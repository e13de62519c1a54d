-- HL7 v2 messages the listener answered, by sending facility (MSH-4) and control id (MSH-10): a repeated message
-- gets the same acknowledgement again, word for word, and changes nothing. Only the ACK is kept (control ids,
-- codes and field names), never the message itself.
CREATE TABLE hl7_messages (
    facility TEXT NOT NULL,
    control_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    received_at TEXT NOT NULL,
    ack_code TEXT NOT NULL,
    ack TEXT NOT NULL,
    PRIMARY KEY (facility, control_id)
);

-- The time (MSH-7, as UTC) of the newest HL7 message applied to each patient and appointment: an older message
-- that arrives late is acknowledged but never undoes the newer one.
CREATE TABLE hl7_record_times (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    -- a RecordType: patient or appointment
    record TEXT NOT NULL,
    ref TEXT NOT NULL,
    message_at TEXT NOT NULL,
    PRIMARY KEY (organisation_id, record, ref)
);
