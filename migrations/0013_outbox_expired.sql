-- Issue 15: a security code the web process never sent (it died after issuing it) ends 'expired' once its 150 s are
-- up, rather than 'cancelled' like a message withdrawn because it was no longer needed. The status CHECK allows it.
-- PostgreSQL alters the constraint in place. SQLite cannot alter a CHECK: the table is rebuilt with every column
-- and index it has, ids kept (they are Notify's references). Every line of the rebuild runs on SQLite only.
{postgresql} ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check;
{postgresql} ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check
{postgresql}     CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'expired'));
{sqlite} CREATE TABLE outbox_messages_new (
{sqlite}     id {id},
{sqlite}     kind TEXT NOT NULL,
{sqlite}     lane TEXT NOT NULL DEFAULT 'bulk' CHECK (lane IN ('immediate', 'bulk')),
{sqlite}     channel TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'letter')),
{sqlite}     patient_id BIGINT REFERENCES patients (id),
{sqlite}     appointment_id BIGINT REFERENCES appointments (id),
{sqlite}     recipient TEXT NOT NULL,
{sqlite}     template_id TEXT NOT NULL DEFAULT '',
{sqlite}     personalisation TEXT NOT NULL DEFAULT '{}',
{sqlite}     status TEXT NOT NULL DEFAULT 'queued'
{sqlite}         CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'expired')),
{sqlite}     attempts INTEGER NOT NULL DEFAULT 0,
{sqlite}     next_attempt_at TEXT NOT NULL,
{sqlite}     notify_id TEXT,
{sqlite}     error TEXT NOT NULL DEFAULT '',
{sqlite}     created_at TEXT NOT NULL,
{sqlite}     sent_at TEXT,
{sqlite}     claimed_until TEXT,
{sqlite}     claimed_by TEXT,
{sqlite}     check_first INTEGER NOT NULL DEFAULT 0,
{sqlite}     urgent INTEGER NOT NULL DEFAULT 0,
{sqlite}     delivery_status TEXT,
{sqlite}     pdf_letter_id BIGINT REFERENCES letters (id),
{sqlite}     claims INTEGER NOT NULL DEFAULT 0
{sqlite} );
{sqlite} INSERT INTO outbox_messages_new (id, kind, lane, channel, patient_id, appointment_id, recipient, template_id,
{sqlite}     personalisation, status, attempts, next_attempt_at, notify_id, error, created_at, sent_at, claimed_until,
{sqlite}     claimed_by, check_first, urgent, delivery_status, pdf_letter_id, claims)
{sqlite}     SELECT id, kind, lane, channel, patient_id, appointment_id, recipient, template_id, personalisation, status,
{sqlite}     attempts, next_attempt_at, notify_id, error, created_at, sent_at, claimed_until, claimed_by, check_first,
{sqlite}     urgent, delivery_status, pdf_letter_id, claims FROM outbox_messages ORDER BY id;
{sqlite} DROP TABLE outbox_messages;
{sqlite} ALTER TABLE outbox_messages_new RENAME TO outbox_messages;
{sqlite} CREATE INDEX outbox_due ON outbox_messages (status, next_attempt_at);
{sqlite} CREATE INDEX outbox_patient ON outbox_messages (patient_id, created_at);
{sqlite} CREATE INDEX outbox_lease ON outbox_messages (status, claimed_until);
{sqlite} CREATE INDEX outbox_notify_id ON outbox_messages (notify_id);
{sqlite} CREATE INDEX outbox_recipient ON outbox_messages (recipient, sent_at);
{sqlite} CREATE INDEX outbox_created_at ON outbox_messages (created_at);
{sqlite} CREATE INDEX outbox_open_codes ON outbox_messages (created_at)
{sqlite}     WHERE lane = 'immediate' AND status IN ('queued', 'sending');
