-- A move out of a slot by a cancel (how 'cancelled'): the hub's cancel frees the slot the appointment held, and the
-- move records it (from_slot_id, to_slot_id NULL), so that the appointment, booked again at that time (the hospital's
-- version accepted, or its own booking again), takes it back while still free. Not a move of the patient's: it does
-- not count against their rebook limit.
-- PostgreSQL replaces the check in place. SQLite cannot alter a check: the table is rebuilt with every column and
-- index it has, ids kept. Every line of the rebuild runs on SQLite only.
{postgresql} ALTER TABLE slot_moves DROP CONSTRAINT slot_moves_how_check;
{postgresql} ALTER TABLE slot_moves ADD CONSTRAINT slot_moves_how_check
{postgresql}     CHECK (how IN ('patient', 'earlier_offer', 'agent', 'cancelled'));
{sqlite} CREATE TABLE slot_moves_new (
{sqlite}     id {id},
{sqlite}     appointment_id BIGINT NOT NULL REFERENCES appointments (id),
{sqlite}     from_slot_id BIGINT REFERENCES slots (id),
{sqlite}     to_slot_id BIGINT REFERENCES slots (id),
{sqlite}     previous_start TEXT NOT NULL,
{sqlite}     actor_type TEXT NOT NULL,
{sqlite}     actor_id TEXT NOT NULL,
{sqlite}     how TEXT NOT NULL CHECK (how IN ('patient', 'earlier_offer', 'agent', 'cancelled')),
{sqlite}     at TEXT NOT NULL
{sqlite} );
{sqlite} INSERT INTO slot_moves_new (id, appointment_id, from_slot_id, to_slot_id, previous_start, actor_type, actor_id,
{sqlite}     how, at)
{sqlite}     SELECT id, appointment_id, from_slot_id, to_slot_id, previous_start, actor_type, actor_id, how, at
{sqlite}     FROM slot_moves ORDER BY id;
{sqlite} DROP TABLE slot_moves;
{sqlite} ALTER TABLE slot_moves_new RENAME TO slot_moves;
{sqlite} CREATE INDEX slot_moves_appointment ON slot_moves (appointment_id, at);
