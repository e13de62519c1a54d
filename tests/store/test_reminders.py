"""Reminders and escalation through the real app: the hospital's PUTs plan them, the sweep queues what is due,
the sender delivers it (quiet hours permitting), and the patient reading the letter stops the chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.clock import format_date, to_db
from hub.jobs.worker import send_policy
from hub.notify import OutgoingMessage
from hub.notify.dev import DevNotifier
from hub.notify.sender import claim_batch, drain_once
from hub.store.reminders import run_sweep
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pas import ESCALATION_KINDS, PDF, messages, pas_for, set_patient

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # the clock fixture's start: a Saturday morning, GMT


class RecordingNotifier(DevNotifier):
    """The dev outbox, keeping each OutgoingMessage too (dev_messages has no column for a PDF)."""

    def __init__(self, hub: Harness) -> None:
        super().__init__(hub.db, hub.clock)
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage, *, start_by: float | None = None) -> str:
        self.sent.append(message)
        return await super().send(message, start_by=start_by)


async def notices(hub: Harness, appointment_id: int, prefix: str = "") -> list[dict[str, Any]]:
    return await hub.db.fetch_all(
        "SELECT kind, due_at, done_at, outcome FROM scheduled_notices WHERE appointment_id = ? AND kind LIKE ?"
        " ORDER BY id",
        (appointment_id, f"{prefix}%"),
    )


async def sweep(hub: Harness) -> int:
    return await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())


async def drain(hub: Harness, notifier: DevNotifier | None = None) -> int:
    notifier = notifier or DevNotifier(hub.db, hub.clock)
    return await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings))


def at(hub: Harness, **after_t0: float) -> None:
    hub.clock.set(T0 + timedelta(**after_t0))


async def sign_in_and_get(hub: Harness, path: str) -> httpx.Response:
    await hub.sign_in()
    response = await hub.client.get(path)
    assert response.status_code == 200, response.text
    return response


# The escalation chain


async def test_an_unread_invitation_escalates_to_two_reminders_then_post_at_72h(make_hub: MakeHub) -> None:
    hub = await make_hub(
        **{
            "notify.templates.invitation_sms": "tpl-invitation-sms",
            "notify.templates.invitation_reminder_sms": "tpl-reminder-sms",
            "notify.templates.invitation_letter": "tpl-invitation-letter",
        }
    )
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + timedelta(days=20), expect="invitation")
    patient = await hub.db.fetch_one("SELECT id, verification_code FROM patients WHERE mrn = 'MRN1'")
    assert patient is not None

    [invitation] = await messages(hub)
    assert (invitation["kind"], invitation["channel"], invitation["recipient"], invitation["status"]) == (
        "invitation",
        "sms",
        "+447700900001",
        "queued",
    )
    assert invitation["template_id"] == "tpl-invitation-sms"
    assert invitation["personalisation"]["link"] == await hub.patient_link(patient["id"])
    assert invitation["personalisation"]["verification_code"] == patient["verification_code"]
    assert [(n["kind"], n["due_at"], n["done_at"]) for n in await notices(hub, appointment_id, "escalation_")] == [
        ("escalation_reminder_1", to_db(T0 + timedelta(hours=24)), None),
        ("escalation_reminder_2", to_db(T0 + timedelta(hours=48)), None),
        ("escalation_post", to_db(T0 + timedelta(hours=72)), None),
    ]
    assert await drain(hub) == 1

    at(hub, hours=23, minutes=59)
    assert await sweep(hub) == 0
    assert await messages(hub, *ESCALATION_KINDS) == []

    at(hub, hours=24)
    assert await sweep(hub) == 1
    [first] = await messages(hub, *ESCALATION_KINDS)
    assert (first["kind"], first["channel"], first["recipient"], first["template_id"]) == (
        "invitation_reminder",
        "sms",
        "+447700900001",
        "tpl-reminder-sms",
    )
    assert first["personalisation"]["link"] == invitation["personalisation"]["link"]
    assert first["personalisation"]["verification_code"] == patient["verification_code"]
    assert await drain(hub) == 1

    at(hub, hours=47, minutes=59)
    assert await sweep(hub) == 0
    at(hub, hours=48)
    assert await sweep(hub) == 1
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == ["invitation_reminder"] * 2
    assert await drain(hub) == 1

    at(hub, hours=71, minutes=59)
    assert await sweep(hub) == 0
    at(hub, hours=72)
    assert await sweep(hub) == 1
    *_, post = await messages(hub, *ESCALATION_KINDS)
    assert (post["kind"], post["channel"], post["recipient"], post["template_id"], post["status"]) == (
        "invitation_post",
        "letter",
        "post",
        "tpl-invitation-letter",
        "queued",
    )
    assert post["personalisation"]["verification_code"] == patient["verification_code"]
    events = await hub.db.fetch_all("SELECT * FROM events WHERE kind = 'letter.escalated_to_post'")
    assert [(e["appointment_id"], e["patient_id"], json.loads(e["data"])) for e in events] == [
        (appointment_id, patient["id"], {"message_id": post["id"]})
    ]
    assert events[0]["created_at"] == to_db(T0 + timedelta(hours=72))
    audit = await hub.db.fetch_all("SELECT * FROM audit_events WHERE action = 'escalated_to_post'")
    assert [(a["actor_type"], a["record_type"], a["record_id"], a["detail"]) for a in audit] == [
        ("system", "appointment", str(appointment_id), f"message {post['id']}")
    ]
    assert all(n["done_at"] is not None for n in await notices(hub, appointment_id, "escalation_"))

    at(hub, days=6)  # well past the chain, before the 7-day reminder
    assert await sweep(hub) == 0
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == [
        "invitation_reminder",
        "invitation_reminder",
        "invitation_post",
    ]
    assert len(await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'letter.escalated_to_post'")) == 1


async def test_escalation_hours_come_from_settings(make_hub: MakeHub) -> None:
    hub = await make_hub(escalation_hours=["12", "24", "36"])
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    sent = []
    for hours in (11.99, 12, 23.99, 24, 35.99, 36, 72):
        at(hub, hours=hours)
        await sweep(hub)
        sent.append(len(await messages(hub, *ESCALATION_KINDS)))
    assert sent == [0, 1, 1, 2, 2, 3, 3]
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == [
        "invitation_reminder",
        "invitation_reminder",
        "invitation_post",
    ]


# Reading the letter stops it


async def test_reading_the_letter_after_reminder_1_stops_reminder_2_and_the_post(hub: Harness) -> None:
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    letter_id = await pas.letter()
    at(hub, hours=24)
    assert await sweep(hub) == 1
    assert await drain(hub) == 2  # the invitation and reminder 1

    at(hub, hours=30)
    response = await sign_in_and_get(hub, f"/letters/{letter_id}")
    assert response.content == PDF
    assert [(n["kind"], n["outcome"]) for n in await notices(hub, appointment_id, "escalation_")] == [
        ("escalation_reminder_1", f"queued {(await messages(hub, 'invitation_reminder'))[0]['id']}"),
        ("escalation_reminder_2", "opened"),
        ("escalation_post", "opened"),
    ]

    for hours in (48, 72, 24 * 7):
        at(hub, hours=hours)
        await sweep(hub)
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == ["invitation_reminder"]
    assert await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'letter.escalated_to_post'") == []


async def test_reading_the_letter_cancels_a_reminder_held_by_quiet_hours(hub: Harness) -> None:
    hub.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))  # booked at 9pm: the invitation waits for 8am
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    letter_id = await pas.letter()
    assert await drain(hub) == 0
    hub.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1

    hub.clock.set(datetime(2026, 11, 22, 21, 0, tzinfo=UTC))  # reminder 1 is due, at night
    assert await sweep(hub) == 1
    assert await drain(hub) == 0
    [reminder] = await messages(hub, "invitation_reminder")
    assert reminder["status"] == "queued"

    hub.clock.set(datetime(2026, 11, 22, 22, 30, tzinfo=UTC))
    await sign_in_and_get(hub, f"/letters/{letter_id}")
    [reminder] = await messages(hub, "invitation_reminder")
    assert reminder["status"] == "cancelled"

    hub.clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 0
    hub.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    assert await sweep(hub) == 0
    assert await drain(hub) == 0
    sent = await hub.db.fetch_all("SELECT kind FROM dev_messages WHERE kind != 'security_code' ORDER BY id")
    assert [r["kind"] for r in sent] == ["invitation"]
    assert {n["outcome"] for n in await notices(hub, appointment_id, "escalation_reminder_2")} == {"opened"}


async def test_reading_the_letter_cancels_every_queued_step(hub: Harness) -> None:
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    letter_id = await pas.letter()
    for hours in (24, 48, 72):  # swept, but the sender is stuck (Notify down, say): all three wait in the outbox
        at(hub, hours=hours)
        assert await sweep(hub) == 1
    await sign_in_and_get(hub, f"/letters/{letter_id}")
    assert [(m["kind"], m["status"]) for m in await messages(hub, *ESCALATION_KINDS)] == [
        ("invitation_reminder", "cancelled"),
        ("invitation_reminder", "cancelled"),
        ("invitation_post", "cancelled"),
    ]


async def test_after_an_outage_only_the_latest_due_step_goes(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=start)
    hub.clock.set(start - timedelta(hours=12))  # the worker was down for nine days
    assert await sweep(hub) == 5
    assert [m["kind"] for m in await messages(hub, "appointment_reminder", *ESCALATION_KINDS)] == [
        "invitation_post",
        "appointment_reminder",
    ]
    assert [(n["kind"], n["outcome"].split()[0]) for n in await notices(hub, appointment_id)] == [
        ("reminder_7d", "skip:superseded"),
        ("reminder_1d", "queued"),
        ("escalation_reminder_1", "skip:superseded"),
        ("escalation_reminder_2", "skip:superseded"),
        ("escalation_post", "queued"),
    ]


async def test_with_no_letter_opening_the_appointment_stops_escalation(hub: Harness) -> None:
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    at(hub, hours=24)
    assert await sweep(hub) == 1
    at(hub, hours=30)
    await sign_in_and_get(hub, f"/appointments/{appointment_id}")
    assert [n["outcome"] for n in await notices(hub, appointment_id, "escalation_")][1:] == ["opened", "opened"]
    for hours in (48, 72):
        at(hub, hours=hours)
        assert await sweep(hub) == 0
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == ["invitation_reminder"]


async def test_with_an_unread_letter_opening_the_appointment_does_not_stop_escalation(hub: Harness) -> None:
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    await pas.letter()
    at(hub, hours=24)
    assert await sweep(hub) == 1
    at(hub, hours=30)
    await sign_in_and_get(hub, f"/appointments/{appointment_id}")
    for hours in (48, 72):
        at(hub, hours=hours)
        assert await sweep(hub) == 1
    assert [m["kind"] for m in await messages(hub, *ESCALATION_KINDS)] == [
        "invitation_reminder",
        "invitation_reminder",
        "invitation_post",
    ]


# Opted out, paper, and no digital contact


async def test_an_opted_out_patient_gets_the_invitation_by_post_and_nothing_escalates(hub: Harness) -> None:
    pas = await pas_for(hub)
    await set_patient(hub, opted_out=1)
    appointment_id = await pas.book(start=T0 + timedelta(days=20), expect="invitation")
    [invitation] = await messages(hub)
    assert (invitation["kind"], invitation["channel"], invitation["recipient"]) == ("invitation", "letter", "post")
    assert await notices(hub, appointment_id, "escalation_") == []
    at(hub, days=19)  # through the chain's hours and both reminders
    await sweep(hub)
    assert [m["kind"] for m in await messages(hub)] == ["invitation"]


async def test_a_paper_patient_gets_the_text_and_a_letter_straight_away_and_nothing_escalates(hub: Harness) -> None:
    pas = await pas_for(hub)
    await set_patient(hub, paperless=0)
    appointment_id = await pas.book(start=T0 + timedelta(days=20), expect="invitation")
    assert [(m["kind"], m["channel"], m["created_at"]) for m in await messages(hub)] == [
        ("invitation", "sms", to_db(T0)),
        ("invitation", "letter", to_db(T0)),
    ]
    assert await notices(hub, appointment_id, "escalation_") == []
    at(hub, hours=96)
    assert await sweep(hub) == 0
    assert await messages(hub, *ESCALATION_KINDS) == []


async def test_a_paper_patient_with_no_mobile_or_email_gets_one_letter_not_two(hub: Harness) -> None:
    pas = await pas_for(hub, mobile=None, email=None, contact_preference=None)
    await set_patient(hub, paperless=0)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    assert [(m["kind"], m["channel"]) for m in await messages(hub)] == [("invitation", "letter")]
    assert await notices(hub, appointment_id, "escalation_") == []


async def test_a_paper_patient_is_posted_changes_and_cancellations_too(hub: Harness) -> None:
    pas = await pas_for(hub)
    await set_patient(hub, paperless=0)
    await pas.book(start=T0 + timedelta(days=20), expect="invitation")
    await hub.send_queued()  # each message went before the next change
    at(hub, hours=1)
    await pas.book(start=T0 + timedelta(days=25), expect="changed")
    await hub.send_queued()
    at(hub, hours=2)
    await pas.book(start=T0 + timedelta(days=25), status="cancelled", expect="cancelled")
    sent = [(m["kind"], m["channel"]) for m in await messages(hub)]
    assert sent == [
        ("invitation", "sms"),
        ("invitation", "letter"),
        ("changed", "sms"),
        ("changed", "letter"),
        ("cancelled", "sms"),
        ("cancelled", "letter"),
    ]
    [changed_letter] = [m for m in await messages(hub, "changed") if m["channel"] == "letter"]
    assert changed_letter["recipient"] == "post"
    assert changed_letter["personalisation"]["date"] == format_date(T0 + timedelta(days=25))


async def test_a_paperless_patient_gets_changes_by_text_only(hub: Harness) -> None:
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20), expect="invitation")
    await hub.send_queued()
    await pas.book(start=T0 + timedelta(days=25), expect="changed")
    assert [(m["kind"], m["channel"]) for m in await messages(hub)] == [("invitation", "sms"), ("changed", "sms")]


async def test_a_paper_patient_with_no_mobile_or_email_is_posted_a_change_once(hub: Harness) -> None:
    pas = await pas_for(hub, mobile=None, email=None, contact_preference=None)
    await set_patient(hub, paperless=0)
    await pas.book(start=T0 + timedelta(days=20))
    await hub.send_queued()
    await pas.book(start=T0 + timedelta(days=25), expect="changed")
    assert [(m["kind"], m["channel"]) for m in await messages(hub)] == [("invitation", "letter"), ("changed", "letter")]


async def test_a_patient_with_no_mobile_or_email_is_not_posted_the_invitation_twice(hub: Harness) -> None:
    pas = await pas_for(hub, mobile=None, email=None, contact_preference=None)
    appointment_id = await pas.book(start=T0 + timedelta(days=20))
    assert [(m["kind"], m["channel"]) for m in await messages(hub)] == [("invitation", "letter")]
    assert await notices(hub, appointment_id, "escalation_") == []
    at(hub, hours=72)
    await sweep(hub)
    assert [m["kind"] for m in await messages(hub)] == ["invitation"]


# The posted letter


async def test_the_post_is_the_appointments_own_pdf_letter(hub: Harness) -> None:
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    await pas.letter()
    notifier = RecordingNotifier(hub)
    assert await drain(hub, notifier) == 1
    for hours in (24, 48, 72):
        at(hub, hours=hours)
        assert await sweep(hub) == 1
        assert await drain(hub, notifier) == 1
    post = notifier.sent[-1]
    assert (post.kind, post.channel, post.recipient, post.pdf) == ("invitation_post", "letter", "post", PDF)
    row = await hub.db.fetch_one("SELECT * FROM dev_messages WHERE reference = ?", (post.reference,))
    assert row is not None and (row["kind"], row["channel"]) == ("invitation_post", "letter")
    [message] = await messages(hub, "invitation_post")
    assert (message["status"], message["sent_at"]) == ("sent", to_db(T0 + timedelta(hours=72)))


async def test_without_a_pdf_the_post_is_a_templated_letter_to_the_address(hub: Harness) -> None:
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    assert await drain(hub) == 1
    at(hub, hours=72)
    assert await sweep(hub) == 3
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=send_policy(hub.settings))
    [post] = [c.message for c in claimed]
    assert post.pdf is None
    address = {k: v for k, v in post.personalisation.items() if k.startswith("address_line_")}
    assert address == {
        "address_line_1": "Margaret Jones",
        "address_line_2": "1 Pond Street",
        "address_line_3": "Hampstead",
        "address_line_4": "London",
        "address_line_5": "NW3 2QG",
    }
    assert post.personalisation["date"] == "Friday 11 December 2026"


async def test_the_templated_letter_keeps_the_postcode_last_within_seven_lines(hub: Harness) -> None:
    lines = [f"Line {i}" for i in range(1, 7)]
    pas = await pas_for(hub, postal_address={"lines": lines, "postcode": "NW3 2QG"})
    await pas.book(start=T0 + timedelta(days=20))
    at(hub, hours=72)
    await sweep(hub)
    notifier = RecordingNotifier(hub)
    assert await drain(hub, notifier) == 2  # the invitation, and the post
    [post] = [m for m in notifier.sent if m.kind == "invitation_post"]
    address = [v for k, v in sorted(post.personalisation.items()) if k.startswith("address_line_")]
    assert address == ["Margaret Jones", "Line 1", "Line 2", "Line 3", "Line 4", "Line 5", "NW3 2QG"]
    row = await hub.db.fetch_one("SELECT personalisation FROM dev_messages WHERE reference = ?", (post.reference,))
    assert row is not None and json.loads(row["personalisation"])["address_line_1"] == "Margaret Jones"


# Pre-appointment reminders


async def test_reminders_go_7_days_and_1_day_before(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # ten days out
    appointment_id = await pas.book(start=start)
    assert [(n["kind"], n["due_at"]) for n in await notices(hub, appointment_id, "reminder_")] == [
        ("reminder_7d", to_db(start - timedelta(days=7))),
        ("reminder_1d", to_db(start - timedelta(days=1))),
    ]
    seen = []
    for when in (
        start - timedelta(days=7, seconds=1),
        start - timedelta(days=7),
        start - timedelta(days=1, seconds=1),
        start - timedelta(days=1),
        start + timedelta(days=1),
    ):
        hub.clock.set(when)
        await sweep(hub)
        seen.append([m["created_at"] for m in await messages(hub, "appointment_reminder")])
    first, second = to_db(start - timedelta(days=7)), to_db(start - timedelta(days=1))
    assert seen == [[], [first], [first], [first, second], [first, second]]
    reminders = await messages(hub, "appointment_reminder")
    assert {(m["channel"], m["recipient"]) for m in reminders} == {("sms", "+447700900001")}
    assert reminders[0]["personalisation"]["date"] == "Tuesday 1 December 2026"
    assert reminders[0]["personalisation"]["time"] == "9:30am"


async def test_an_appointment_3_days_out_gets_only_the_day_before_reminder(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = T0 + timedelta(days=3)
    appointment_id = await pas.book(start=start)
    assert [n["kind"] for n in await notices(hub, appointment_id, "reminder_")] == ["reminder_1d"]
    hub.clock.set(start - timedelta(days=1))
    await sweep(hub)
    [reminder] = await messages(hub, "appointment_reminder")
    assert reminder["created_at"] == to_db(start - timedelta(days=1))
    hub.clock.set(start - timedelta(minutes=1))
    assert await sweep(hub) == 0


async def test_no_reminders_after_the_hospital_cancels(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=start)
    at(hub, hours=1)
    await pas.book(start=start, status="cancelled", expect="cancelled")
    assert {n["outcome"] for n in await notices(hub, appointment_id)} == {"appointment cancelled"}
    hub.clock.set(start - timedelta(minutes=1))
    assert await sweep(hub) == 0
    assert [m["kind"] for m in await messages(hub)] == ["invitation", "cancelled"]


async def test_no_reminders_after_the_patients_cancel_request(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=start)
    await hub.sign_in()
    response = await hub.post_form(f"/appointments/{appointment_id}/cancel", {"reason": "no_longer_needed"})
    assert response.status_code == 303, response.text
    handled = 0
    for when in sorted([T0 + timedelta(hours=h) for h in (24, 48, 72)] + [start - timedelta(days=d) for d in (7, 1)]):
        hub.clock.set(when)
        handled += await sweep(hub)
    assert handled == 0  # the request closed every reminder and escalation step at once
    assert await messages(hub, "appointment_reminder", *ESCALATION_KINDS) == []
    assert {n["outcome"] for n in await notices(hub, appointment_id)} == {"cancel requested"}


async def test_after_the_patient_confirms_only_the_day_before_reminder_goes(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=start)
    await hub.sign_in()
    response = await hub.post_form(
        f"/appointments/{appointment_id}/confirm", {}, csrf_from=f"/appointments/{appointment_id}"
    )
    assert response.status_code == 303, response.text
    for when in (start - timedelta(days=7), start - timedelta(days=1)):
        hub.clock.set(when)
        await sweep(hub)
    [reminder] = await messages(hub, "appointment_reminder")
    assert reminder["created_at"] == to_db(start - timedelta(days=1))
    assert [(n["kind"], n["outcome"]) for n in await notices(hub, appointment_id, "reminder_")] == [
        ("reminder_7d", "skip:confirmed"),
        ("reminder_1d", f"queued {reminder['id']}"),
    ]


async def test_the_reminders_kept_after_confirming_are_a_setting(make_hub: MakeHub) -> None:
    hub = await make_hub(reminder_days_after_confirm=["7", "1"])
    pas = await pas_for(hub)
    start = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=start)
    await hub.sign_in()
    await hub.post_form(f"/appointments/{appointment_id}/confirm", {}, csrf_from=f"/appointments/{appointment_id}")
    for when in (start - timedelta(days=7), start - timedelta(days=1)):
        hub.clock.set(when)
        await sweep(hub)
    assert len(await messages(hub, "appointment_reminder")) == 2


async def test_moving_the_appointment_replans_its_reminders(hub: Harness) -> None:
    pas = await pas_for(hub)
    old = T0 + timedelta(days=10)
    appointment_id = await pas.book(start=old)
    at(hub, hours=2)
    new = T0 + timedelta(days=15)
    await pas.book(start=new, expect="changed")
    planned = await notices(hub, appointment_id, "reminder_")
    assert [(n["kind"], n["due_at"], n["outcome"]) for n in planned] == [
        ("reminder_7d", to_db(old - timedelta(days=7)), "replanned"),
        ("reminder_1d", to_db(old - timedelta(days=1)), "replanned"),
        ("reminder_7d", to_db(new - timedelta(days=7)), ""),
        ("reminder_1d", to_db(new - timedelta(days=1)), ""),
    ]
    # The old times pass without a reminder; the new ones bring one each.
    times = (old - timedelta(days=7), new - timedelta(days=7), old - timedelta(days=1), new - timedelta(days=1))
    for when in sorted(times):
        hub.clock.set(when)
        await sweep(hub)
    reminders = await messages(hub, "appointment_reminder")
    assert [m["created_at"] for m in reminders] == [
        to_db(new - timedelta(days=7)),
        to_db(new - timedelta(days=1)),
    ]
    assert {m["personalisation"]["date"] for m in reminders} == {"Sunday 6 December 2026"}


# Channel choice


@pytest.mark.parametrize(
    ("fields", "columns", "channel", "recipient"),
    [
        ({}, {}, "sms", "+447700900001"),
        ({"contact_preference": "email"}, {}, "email", "margaret.jones@example.com"),
        ({"mobile": None, "contact_preference": None}, {}, "email", "margaret.jones@example.com"),
        ({"mobile": None, "email": None, "contact_preference": None}, {}, "letter", "post"),
        ({}, {"sms_opted_out": 1}, "email", "margaret.jones@example.com"),
    ],
    ids=["mobile", "prefers-email", "no-mobile", "neither", "texted-stop"],
)
async def test_the_invitation_and_its_reminders_use_the_chosen_channel(
    hub: Harness, fields: dict[str, Any], columns: dict[str, Any], channel: str, recipient: str
) -> None:
    pas = await pas_for(hub, **fields)
    await set_patient(hub, **columns)
    await pas.book(start=T0 + timedelta(days=10))
    at(hub, days=9, hours=23)  # through reminder 1 and the day-before reminder
    await sweep(hub)
    sent = {(m["kind"], m["channel"], m["recipient"]) for m in await messages(hub, "invitation", *ESCALATION_KINDS)}
    assert ("invitation", channel, recipient) in sent
    reminders = await messages(hub, "invitation_reminder", "appointment_reminder")
    if channel == "letter":
        assert reminders == []
    else:
        assert reminders and {(m["channel"], m["recipient"]) for m in reminders} == {(channel, recipient)}


# Quiet hours


@pytest.mark.parametrize(
    ("queued", "held", "sent"),
    [
        # 21:00 BST on 24 October 2026; the clocks go back overnight, so 8am is 08:00 UTC.
        (
            datetime(2026, 10, 24, 20, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 7, 59, tzinfo=UTC),
            datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
        # 21:00 GMT on 27 March 2027; the clocks go forward overnight, so 8am is 07:00 UTC.
        (
            datetime(2027, 3, 27, 21, 0, tzinfo=UTC),
            datetime(2027, 3, 28, 6, 59, tzinfo=UTC),
            datetime(2027, 3, 28, 7, 0, tzinfo=UTC),
        ),
    ],
    ids=["autumn", "spring"],
)
async def test_an_invitation_booked_at_night_waits_until_8am_across_the_clock_change(
    hub: Harness, queued: datetime, held: datetime, sent: datetime
) -> None:
    hub.clock.set(queued)
    pas = await pas_for(hub)
    await pas.book(start=queued + timedelta(days=20), expect="invitation")
    assert await drain(hub) == 0
    hub.clock.set(queued + timedelta(hours=2))
    assert await drain(hub) == 0
    hub.clock.set(held)
    assert await drain(hub) == 0
    assert await hub.db.fetch_all("SELECT id FROM dev_messages") == []
    hub.clock.set(sent)
    assert await drain(hub) == 1
    [invitation] = await messages(hub)
    assert (invitation["status"], invitation["sent_at"]) == ("sent", to_db(sent))


async def test_a_security_code_at_night_is_not_held(hub: Harness) -> None:
    hub.clock.set(datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    await hub.sign_in()  # fails unless the code arrived
    codes = await hub.db.fetch_all("SELECT kind, channel, created_at FROM dev_messages")
    assert [(c["kind"], c["channel"], c["created_at"]) for c in codes] == [
        ("security_code", "sms", to_db(hub.clock.now()))
    ]
    sent = await hub.db.fetch_all("SELECT status, sent_at FROM outbox_messages WHERE kind = 'security_code'")
    assert sent == [{"status": "sent", "sent_at": to_db(hub.clock.now())}]
    [invitation] = await messages(hub, "invitation")
    assert invitation["status"] == "queued"  # the invitation, meanwhile, waits for the morning


async def test_the_hospital_cancelling_withdraws_a_reminder_held_by_quiet_hours(hub: Harness) -> None:
    pas = await pas_for(hub)
    start = datetime(2026, 12, 11, 7, 30, tzinfo=UTC)  # 7:30am: the 7-day reminder falls in quiet hours
    appointment_id = await pas.book(start=start)
    at(hub, hours=72)
    assert await sweep(hub) == 3  # the escalation chain, out of the way
    assert await drain(hub) == 2
    hub.clock.set(start - timedelta(days=7))
    assert await sweep(hub) == 1
    assert await drain(hub) == 0
    hub.clock.set(start - timedelta(days=7) + timedelta(minutes=10))
    await pas.book(start=start, status="cancelled", expect="cancelled")
    [reminder] = await messages(hub, "appointment_reminder")
    assert reminder["status"] == "cancelled"
    hub.clock.set(start - timedelta(days=7) + timedelta(hours=1))
    assert await drain(hub) == 1  # the cancellation notice only
    sent = await hub.db.fetch_all("SELECT kind FROM dev_messages ORDER BY id")
    assert [r["kind"] for r in sent] == ["invitation", "invitation_post", "cancelled"]
    assert await notices(hub, appointment_id, "reminder_1d") == [
        {
            "kind": "reminder_1d",
            "due_at": to_db(start - timedelta(days=1)),
            "done_at": to_db(start - timedelta(days=7) + timedelta(minutes=10)),
            "outcome": "appointment cancelled",
        }
    ]


async def test_moving_the_appointment_withdraws_a_reminder_held_with_the_old_time(hub: Harness) -> None:
    pas = await pas_for(hub)
    old = datetime(2026, 12, 11, 7, 30, tzinfo=UTC)  # the 7-day reminder falls in quiet hours
    appointment_id = await pas.book(start=old)
    at(hub, hours=72)
    await sweep(hub)
    await drain(hub)
    hub.clock.set(old - timedelta(days=7))
    assert await sweep(hub) == 1
    [held] = await messages(hub, "appointment_reminder")
    assert (held["status"], held["personalisation"]["date"]) == ("queued", "Friday 11 December 2026")
    hub.clock.set(old - timedelta(days=7) + timedelta(minutes=15))
    new = old + timedelta(days=3)
    await pas.book(start=new, expect="changed")
    [held] = await messages(hub, "appointment_reminder")
    assert held["status"] == "cancelled"
    hub.clock.set(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1
    [changed] = await hub.db.fetch_all(
        "SELECT kind, personalisation FROM dev_messages WHERE kind != 'invitation'"
        " AND kind != 'invitation_post' ORDER BY id"
    )
    assert changed["kind"] == "changed"
    assert json.loads(changed["personalisation"])["date"] == "Monday 14 December 2026"
    hub.clock.set(new - timedelta(days=7))
    assert await sweep(hub) == 1
    [_, fresh] = await messages(hub, "appointment_reminder")
    assert (fresh["status"], fresh["personalisation"]["date"]) == ("queued", "Monday 14 December 2026")
    assert [n["outcome"].split(" ")[0] for n in await notices(hub, appointment_id, "reminder_")] == [
        "queued",  # the held one (its message since withdrawn)
        "replanned",
        "queued",
        "",
    ]
