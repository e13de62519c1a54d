-- Staff belong to one or more organisations (trusts) and see only their patients, tasks and audit rows; a hub-wide
-- account (admins of the whole hub) sees every trust. New accounts are not hub-wide unless made so.
ALTER TABLE staff_users ADD COLUMN hub_wide INTEGER NOT NULL DEFAULT 0;

CREATE TABLE staff_organisations (
    staff_id BIGINT NOT NULL REFERENCES staff_users (id),
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    PRIMARY KEY (staff_id, organisation_id)
);
CREATE INDEX staff_organisations_organisation ON staff_organisations (organisation_id);

-- A migration cannot know a person's trust. Accounts that exist when this runs keep what they saw: on a hub of one
-- trust they become members of it (so a second trust added later is not shown to them); on a hub of several trusts
-- (or none yet) they are hub-wide until an admin assigns them their trusts (README, "Booking-centre console").
INSERT INTO staff_organisations (staff_id, organisation_id)
    SELECT u.id, o.id FROM staff_users u CROSS JOIN organisations o WHERE (SELECT COUNT(*) FROM organisations) = 1;
UPDATE staff_users SET hub_wide = 1 WHERE (SELECT COUNT(*) FROM organisations) != 1;
