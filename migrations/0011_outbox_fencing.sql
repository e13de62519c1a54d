-- Fencing for the sender (issue 15): every claim of a message adds one to `claims`, and the claim's number is its
-- token. A worker records a result, or makes a request to Notify, only while its token is still the message's.
ALTER TABLE outbox_messages ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
-- Security codes a web process left unsent (it died after issuing them), found by the worker every round.
CREATE INDEX outbox_open_codes ON outbox_messages (created_at) WHERE lane = 'immediate' AND status IN ('queued', 'sending');
