"""Rate-limit counters: counted by key over a window, several at once, noted together."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.rate_limits import count_recent, note, reserve, take_back
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


async def test_a_reservation_is_refused_at_the_limit_and_freed_by_taking_one_back(hub: Harness) -> None:
    start = hub.clock.now()
    hour_ago = start - timedelta(hours=1)
    async with hub.db.write() as tx:
        await note(tx, ["guess:old"], hour_ago)  # outside the window: not counted
    reserved = [await reserve(hub.db, "guess:old", limit=3, since=hour_ago, now=start) for _ in range(4)]
    assert [r is not None for r in reserved] == [True, True, True, False]
    assert await reserve(hub.db, "guess:other", limit=3, since=hour_ago, now=start) is not None  # its own count
    async with hub.db.write() as tx:
        assert reserved[0] is not None
        await take_back(tx, reserved[0])
    assert await reserve(hub.db, "guess:old", limit=3, since=hour_ago, now=start) is not None
    assert await reserve(hub.db, "guess:old", limit=3, since=hour_ago, now=start) is None
