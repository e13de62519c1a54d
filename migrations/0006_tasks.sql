-- The booking centre's work items are tasks, in code and in the schema. SQLite cannot rename an index, so the
-- indexes are made again under their new names (the table is small: open and recent work).
ALTER TABLE callback_tasks RENAME TO tasks;
DROP INDEX callback_tasks_open;
DROP INDEX callback_tasks_appointment;
DROP INDEX callback_tasks_patient;
CREATE INDEX tasks_open ON tasks (status, created_at);
CREATE INDEX tasks_appointment ON tasks (appointment_id, kind);
CREATE INDEX tasks_patient ON tasks (patient_id);
