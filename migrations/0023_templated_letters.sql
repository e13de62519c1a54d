-- Letters that go as the hub's own letter template even where the hospital's PDF of the appointment exists: the
-- unread invitation's posted copy, queued and then overtaken by a move (the PDF gives the old time or place). A table
-- of its own, not a column of outbox_messages: migration 0013 rebuilds that table on SQLite with the columns it knew,
-- and every file must work whichever of the others have run before it.
CREATE TABLE templated_letters (
    message_id BIGINT PRIMARY KEY REFERENCES outbox_messages (id) ON DELETE CASCADE
);
