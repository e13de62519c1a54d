"""The dev notifier: in the demo and in tests, 'sending' writes the message where /dev/outbox shows it."""

from __future__ import annotations

import pytest

from hub.notify import OutgoingMessage
from hub.notify.dev import DevNotifier, list_dev_messages
from tests.harness import Harness

pytestmark = pytest.mark.anyio


def outgoing(
    reference: str, kind: str = "security_code", personalisation: dict[str, str] | None = None
) -> OutgoingMessage:
    return OutgoingMessage(
        reference=reference,
        kind=kind,
        channel="sms",
        recipient="+447700900001",
        template_id="t",
        personalisation=personalisation or {"code": "123456"},
    )


async def test_a_sent_message_is_listed_newest_first_and_found_by_its_reference(hub: Harness) -> None:
    notifier = DevNotifier(hub.db, hub.clock)
    first = await notifier.send(outgoing("1"))
    hub.clock.advance(seconds=5)
    second = await notifier.send(outgoing("2", kind="invitation", personalisation={"link": "https://x/p/y"}))
    assert first != second
    listed = await list_dev_messages(hub.db)
    assert [(m["reference"], m["kind"], m["personalisation"]) for m in listed] == [
        ("2", "invitation", {"link": "https://x/p/y"}),
        ("1", "security_code", {"code": "123456"}),
    ]
    assert listed[0]["created_at"] == "2026-11-21T10:00:05.000000Z"
    assert [m["reference"] for m in await list_dev_messages(hub.db, limit=1)] == ["2"]
    assert await notifier.find("1") == f"dev-{listed[1]['id']}"
    assert await notifier.find("3") is None
