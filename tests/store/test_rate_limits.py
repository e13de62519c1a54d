"""Rate-limit counters: counted by key over a window, several at once, noted together."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.rate_limits import count_recent, note
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_each_key_is_counted_apart_and_only_inside_the_window(hub: Harness) -> None:
    start = hub.clock.now()
    async with hub.db.write() as tx:
        await note(tx, ["code:a", "code:b"], start)
        await note(tx, ["code:a"], start + timedelta(minutes=30))
    async with hub.db.write() as tx:
        assert await count_recent(tx, ["code:a", "code:b", "code:c"], start - timedelta(seconds=1)) == {
            "code:a": 2,
            "code:b": 1,
            "code:c": 0,
        }
        # After the first notes: only the later one counts.
        assert await count_recent(tx, ["code:a", "code:b"], start) == {"code:a": 1, "code:b": 0}


async def test_notes_come_back_with_their_ids_so_one_can_be_taken_back(hub: Harness) -> None:
    async with hub.db.write() as tx:
        first, second = await note(tx, ["guess:x", "guess:y"], hub.clock.now())
        await tx.execute("DELETE FROM rate_events WHERE id = ?", (first,))
        assert await count_recent(tx, ["guess:x", "guess:y"], hub.clock.now() - timedelta(hours=1)) == {
            "guess:x": 0,
            "guess:y": 1,
        }
    assert second != first
