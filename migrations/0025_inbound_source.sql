-- The last STOP or START a number texted, looked up when the hospital gives a patient that number (a new record, a
-- new mobile): a number that said STOP stays stopped for them too.
CREATE INDEX inbound_messages_source ON inbound_messages (source_number, received_at);
