-- A letter that goes as the hub's own letter template even where the hospital's PDF of the appointment exists: the
-- unread invitation's posted copy, queued and then overtaken by a move (the PDF gives the old time or place).
ALTER TABLE outbox_messages ADD COLUMN templated INTEGER NOT NULL DEFAULT 0;
