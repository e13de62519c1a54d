"""The burst bench's code reader on PostgreSQL, where rows can become visible out of id order: a transaction
takes its id when it inserts and is seen when it commits, so a reader that only asks for ids above the highest it
has seen steps over a code committed late. It did: a few patients a run waited 30 seconds and were counted as
errors of the hub's (TimeoutError), though the hub had sent every code."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from bench.burst_bench import Codes
from tests.databases import postgres_url

pytestmark = pytest.mark.anyio

_INSERT = "INSERT INTO dev_messages (recipient, personalisation) VALUES ($1, $2)"


async def test_a_code_committed_after_a_later_row_still_reaches_its_patient() -> None:
    url = await postgres_url("burst_codes", bare=True)
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE dev_messages (id SERIAL PRIMARY KEY, recipient TEXT, personalisation TEXT)")
    codes = Codes(url)
    await codes.start()
    slow, fast = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        late = codes.expect("+447700900001")
        early = codes.expect("+447700900002")
        slow_tx = slow.transaction()
        await slow_tx.start()
        await slow.execute(_INSERT, "+447700900001", json.dumps({"code": "111111"}))  # the lower id, not yet seen
        await fast.execute(_INSERT, "+447700900002", json.dumps({"code": "222222"}))  # the higher id, seen first
        assert await asyncio.wait_for(early, 2) == "222222"
        await asyncio.sleep(0.1)  # the reader has moved past both ids
        await slow_tx.commit()
        assert await asyncio.wait_for(late, 3) == "111111"
        assert codes.found_late == 1
    finally:
        await codes.stop()
        for conn in (slow, fast, setup):
            await conn.close()
