"""The unread invitation's reminder and posted copy, held overnight by quiet hours, and the hospital moving the
appointment meanwhile: the change notice does not withdraw them (the invitation is still unread), so they are checked
when the appointment changes, as a retry checks them: the hospital's own PDF with the old time cannot go, so the posted
copy goes as the hub's own letter with the new time (or, with no address for that, is withdrawn and the booking centre
and the hospital are told); a reminder goes with the new time (found by a seam hunt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.harness import Harness
from tests.pas import SITE, Pas, messages, pas_for, set_patient
from tests.store.test_reminders import RecordingNotifier, drain, sweep

pytestmark = pytest.mark.anyio
EVENING = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 9 pm London: quiet hours
OLD = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
NEW_DATE = "Tuesday 15 December 2026"


async def posted_copy_held(hub: Harness) -> tuple[Pas, dict[str, Any]]:
    """Booked with the hospital's own PDF (giving 10 December); the invitation unread for 72 hours, so its posted
    copy is queued at 9 pm and held till 8 am."""
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    await pas.book(start=OLD)
    await pas.letter()
    hub.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1  # the invitation
    hub.clock.set(EVENING + timedelta(hours=72))
    assert await sweep(hub) >= 1
    [post] = await messages(hub, "invitation_post")
    assert post["status"] == "queued"
    return pas, post


async def send_all(hub: Harness) -> RecordingNotifier:
    hub.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    notifier = RecordingNotifier(hub)
    while await drain(hub, notifier):
        pass
    return notifier


async def tasks(hub: Harness) -> list[dict[str, Any]]:
    return await hub.db.fetch_all("SELECT kind, status, outcome, source_id FROM tasks ORDER BY id")


async def events(hub: Harness, kind: str) -> list[dict[str, Any]]:
    found = await hub.db.fetch_all("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))
    return [json.loads(e["data"]) for e in found]


async def test_a_posted_letter_held_overnight_goes_as_the_hubs_own_letter_with_the_new_time_after_a_move(
    hub: Harness,
) -> None:
    pas, post = await posted_copy_held(hub)
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await pas.book(start=OLD + timedelta(days=5), expect="changed")
    notifier = await send_all(hub)
    assert "changed" in [m.kind for m in notifier.sent]
    # Not the PDF, which says 10 December: the hub's letter template, with the new date, to the address on record.
    [letter] = [m for m in notifier.sent if m.kind == "invitation_post"]
    assert letter.pdf is None
    assert letter.personalisation["date"] == NEW_DATE
    assert letter.personalisation["address_line_1"] == "Margaret Jones"
    # The booking centre's "Letter sent by post" stays true, and so does the hospital's letter.escalated_to_post.
    assert await tasks(hub) == [{"kind": "letter_posted", "status": "open", "outcome": "", "source_id": post["id"]}]
    assert await events(hub, "letter.not_posted") == []
    detail = await hub.db.fetch_one(
        "SELECT detail FROM audit_events WHERE record_type = 'outbox_message' AND record_id = ?"
        " AND action = 'notification_queued' ORDER BY id DESC LIMIT 1",
        (str(post["id"]),),
    )
    assert detail is not None and "hub's own letter" in detail["detail"]


async def test_a_posted_letter_held_overnight_goes_as_the_hubs_own_letter_after_a_move_to_another_site(
    hub: Harness,
) -> None:
    # Same time, another hospital: the PDF sends the patient to the wrong place. Before, it went, as the time was right.
    pas, _ = await posted_copy_held(hub)
    assert (await pas.put("sites/BAR", {**SITE, "name": "Barnet Hospital", "postcode": "EN5 3DJ"})).status_code == 201
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await pas.book(start=OLD, site_code="BAR", expect="changed")
    notifier = await send_all(hub)
    [letter] = [m for m in notifier.sent if m.kind == "invitation_post"]
    assert letter.pdf is None
    assert letter.personalisation["site"] == "Barnet Hospital"


async def test_a_posted_letter_that_only_the_hospitals_pdf_could_take_is_withdrawn_and_the_task_says_so(
    hub: Harness,
) -> None:
    pas, post = await posted_copy_held(hub)
    await set_patient(hub, address_lines="[]", postcode="")  # the PDF carries its own address; the hub has none
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await pas.book(start=OLD + timedelta(days=5), expect="changed")
    notifier = await send_all(hub)
    assert "invitation_post" not in [m.kind for m in notifier.sent]  # the PDF says 10 December
    # No agent tells the patient a letter is on its way: that task is closed, and one to find an address opens.
    assert await tasks(hub) == [
        {"kind": "letter_posted", "status": "closed", "outcome": "not_posted", "source_id": post["id"]},
        {"kind": "no_postal_address", "status": "open", "outcome": "", "source_id": post["id"]},
    ]
    # The hospital, told the letter was posted, is told it was not.
    [escalated] = await events(hub, "letter.escalated_to_post")
    assert await events(hub, "letter.not_posted") == [
        {"kind": "invitation_post", "reason": "no_postal_address", "message_id": escalated["message_id"]}
    ]
    audited = await hub.db.fetch_all(
        "SELECT action FROM audit_events WHERE record_type = 'task' ORDER BY id",
    )
    assert [a["action"] for a in audited] == ["letter_not_posted"]


async def test_an_unread_letter_reminder_held_overnight_gives_the_new_date_after_a_move(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    await pas.book(start=OLD)
    hub.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1  # the invitation
    hub.clock.set(EVENING + timedelta(hours=24))
    assert await sweep(hub) >= 1
    [reminder] = await messages(hub, "invitation_reminder")
    assert reminder["status"] == "queued"
    hub.clock.set(EVENING + timedelta(hours=24, minutes=30))
    await pas.book(start=OLD + timedelta(days=5), expect="changed")
    hub.clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    notifier = RecordingNotifier(hub)
    while await drain(hub, notifier):
        pass
    sent = [m for m in notifier.sent if m.kind == "invitation_reminder"]
    assert all(m.personalisation["date"] == NEW_DATE for m in sent), [m.personalisation["date"] for m in sent]
