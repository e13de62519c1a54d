-- A move out of a slot into none: an agent's rebook to a time typed in (or the hospital's version of a conflict
-- accepted) frees the slot the hub had moved the appointment into, and the move records the slot it left
-- (from_slot_id), so that the hospital's version, accepted later, can take that slot back. to_slot_id may be NULL.
-- PostgreSQL alters the column in place. SQLite cannot drop a NOT NULL: the table is rebuilt with every column and
-- index it has, ids kept. Every line of the rebuild runs on SQLite only.
{postgresql} ALTER TABLE slot_moves ALTER COLUMN to_slot_id DROP NOT NULL;
{sqlite} CREATE TABLE slot_moves_new (
{sqlite}     id {id},
{sqlite}     appointment_id BIGINT NOT NULL REFERENCES appointments (id),
{sqlite}     from_slot_id BIGINT REFERENCES slots (id),
{sqlite}     to_slot_id BIGINT REFERENCES slots (id),
{sqlite}     previous_start TEXT NOT NULL,
{sqlite}     actor_type TEXT NOT NULL,
{sqlite}     actor_id TEXT NOT NULL,
{sqlite}     how TEXT NOT NULL CHECK (how IN ('patient', 'earlier_offer', 'agent')),
{sqlite}     at TEXT NOT NULL
{sqlite} );
{sqlite} INSERT INTO slot_moves_new (id, appointment_id, from_slot_id, to_slot_id, previous_start, actor_type, actor_id,
{sqlite}     how, at)
{sqlite}     SELECT id, appointment_id, from_slot_id, to_slot_id, previous_start, actor_type, actor_id, how, at
{sqlite}     FROM slot_moves ORDER BY id;
{sqlite} DROP TABLE slot_moves;
{sqlite} ALTER TABLE slot_moves_new RENAME TO slot_moves;
{sqlite} CREATE INDEX slot_moves_appointment ON slot_moves (appointment_id, at);
