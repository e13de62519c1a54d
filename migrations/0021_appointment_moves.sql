-- The latest change of an appointment's time, which the patient's page shows ("The hospital changed this
-- appointment on ... It was on ..."): when, by whom (an actor type) and the time it had before.
ALTER TABLE appointments ADD COLUMN moved_at TEXT;
ALTER TABLE appointments ADD COLUMN moved_by TEXT;
ALTER TABLE appointments ADD COLUMN moved_from TEXT;
