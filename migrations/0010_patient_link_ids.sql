-- The patient's stable link carries an opaque random id, not the sequential patient id. Existing patients get one
-- here; old links (signed patient id) keep working until link_rotated_at is set.
ALTER TABLE patients ADD COLUMN link_id TEXT;
ALTER TABLE patients ADD COLUMN link_rotated_at TEXT;
UPDATE patients SET link_id = {random_hex} WHERE link_id IS NULL;
CREATE UNIQUE INDEX patients_link_id ON patients (link_id);
