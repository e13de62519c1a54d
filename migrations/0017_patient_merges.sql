-- A patient record merged into another (HL7 ADT^A40): the row stays, so the old stable link still finds the
-- surviving record, but it holds nothing of its own any more (no contacts, no NHS number: sign-in and the NHS App
-- can never reach it).
ALTER TABLE patients ADD COLUMN merged_into BIGINT REFERENCES patients (id);
