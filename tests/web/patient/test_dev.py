"""/dev/outbox: a demo user reads the code the hub 'sent' them. It exists in demo mode only."""

from __future__ import annotations

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_the_dev_outbox_shows_what_was_sent_newest_first(make_hub: MakeHub) -> None:
    hub = await make_hub(demo=True)
    page = await hub.get_page("/dev/outbox")
    assert "No messages yet." in page.text
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    [code] = await hub.sent_codes()
    page = await hub.get_page("/dev/outbox")
    [shown] = [el.text for el in page.document.iter("span") if el.get("data-field") == "code"]
    assert shown == code
    assert "+447700900001 (sms)" in page.text and "security code" in page.text


async def test_outside_demo_mode_there_is_no_dev_outbox(hub: Harness) -> None:
    await hub.get_page("/dev/outbox", status=404)
