"""Notify callbacks with text that is no text and dates at the ends of the calendar: never a 500 (F6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.clock import from_db
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, auth, patient, receipt, sent_message, snapshot, text

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    return await make_hub(**CALLBACKS)


async def _post(hub: Harness, path: str, body: dict[str, Any]) -> int:
    # json.dumps writes a lone surrogate as the escape \ud800: valid JSON, but no character.
    response = await hub.client.post(
        f"/notify/callbacks/{path}",
        content=json.dumps(body).encode(),
        headers={**auth(), "content-type": "application/json"},
    )
    return response.status_code


@pytest.mark.parametrize(
    "body",
    [
        {**text("STOP"), "id": "in-\ud800"},
        {**text("ST\ud800OP")},
        {**text("STOP"), "source_number": "44770090\ud800"},
        {**text("hello\x00")},
    ],
)
async def test_a_text_that_is_no_text_is_refused_and_changes_nothing(hub: Harness, body: dict[str, Any]) -> None:
    await patient(hub)
    before = await snapshot(hub)
    assert await _post(hub, "inbound", body) == 422
    assert await snapshot(hub) == before


@pytest.mark.parametrize("received", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "99999-01-01T00:00"])
async def test_a_text_received_at_the_ends_of_the_calendar_is_kept_at_our_time(hub: Harness, received: str) -> None:
    # A STOP is never lost for an odd date: the text is kept, received now by our clock.
    await patient(hub)
    assert await _post(hub, "inbound", {**text("hello"), "date_received": received}) == 200
    [row] = await hub.db.fetch_all("SELECT received_at FROM inbound_messages")
    assert from_db(row["received_at"]) == hub.clock.now()


@pytest.mark.parametrize(
    "body",
    [
        receipt("n-\ud800", "delivered"),
        {**receipt("n-1", "delivered"), "reference": "\ud800"},
        {**receipt("n-1", "delivered"), "completed_at": "9999-12-31T23:59:59-05:00"},
        {**receipt("n-1", "delivered"), "sent_at": "0001-01-01T00:00:00+05:00"},
    ],
)
async def test_a_receipt_that_is_no_text_or_out_of_range_is_not_a_server_error(
    hub: Harness, body: dict[str, Any]
) -> None:
    await sent_message(hub, patient_id=await patient(hub))
    assert await _post(hub, "status", body) in (200, 204, 422)
