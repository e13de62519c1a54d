"""A message that failed for now goes back in the queue; while it was out (claimed by a worker, or sent and awaiting
Notify's receipt) the hospital may have cancelled or moved the appointment, or the patient texted STOP, read the
letter or asked to cancel. Those withdraw only what is queued, so they passed it by: going round again, it is
checked first. Before, an invitation to a cancelled appointment went out after the cancellation notice, a text went
after STOP, and an invitation went with the old time."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from typing import Any

import pytest

from hub.jobs.worker import send_policy
from hub.links import patient_link
from hub.notify import NotifyError
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import Claimed, Outcome, SendPolicy, claim_batch, deliver, drain_once, record_outcomes
from hub.store.links import send_new_link
from hub.store.offers import run_offers, set_earlier_request
from hub.store.rerouting import reroute_waiting
from hub.store.stale_messages import withdraw_ended_offers
from hub.vocabulary import ActorType, Channel
from tests.conftest import MakeHub
from tests.fake_notify import FakeNotify, Fault
from tests.harness import Harness
from tests.holding import held_write
from tests.notify_callbacks import CALLBACKS, post, send_status, text
from tests.seams.conftest import EARLIER, rows
from tests.staff_harness import set_up_staff
from tests.web.api.test_handlers import APPOINTMENT, PATIENT, Api

pytestmark = pytest.mark.anyio
SERVER_ERROR = NotifyError("500", status=500, error="Exception")


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    # Template ids as Notify's, for the fake Notify of the test end to end.
    templates = {f"notify.templates.{kind}_sms": str(uuid.uuid4()) for kind in ("invitation", "cancelled")}
    return await make_hub(**CALLBACKS, **templates)


@pytest.fixture
async def trust_offer(make_hub: MakeHub) -> Harness:
    """A patient booked for 14 December who will be offered an earlier time; the invitation has gone."""
    hub = await make_hub(**CALLBACKS, **{"slots.earlier_batch": 1})
    pas = Api(hub, await hub.create_api_key(), "pas")
    await pas.setup()
    booked = {**APPOINTMENT, "clinician": "Dr Anita Patel", "start": "2026-12-14T09:30:00+00:00"}
    assert (await pas.put("appointments/A1", booked)).status_code in (200, 201)
    await hub.send_queued()
    return hub


@pytest.fixture
async def pas(hub: Harness) -> Api:
    pas = Api(hub, await hub.create_api_key(), "pas")
    await pas.setup()
    return pas


def _policy(hub: Harness) -> SendPolicy:
    # The worker's own policy, quiet hours off: what is checked here is not when messages may go.
    return dataclasses.replace(send_policy(hub.settings), quiet_start=0, quiet_end=0)


async def _stop(hub: Harness) -> None:
    answer = await post(hub, "inbound", text("STOP", source="447700900001"))
    assert answer.status_code == 200, answer.text


async def _receipt(hub: Harness, claimed: Claimed, status: str) -> None:
    answer = await send_status(hub, "n-1", status, reference=str(claimed.id))
    assert answer.json() == {"outcome": "recorded"}


async def _book(pas: Api) -> None:
    assert (await pas.put("appointments/A1", APPOINTMENT)).status_code in (200, 201)


async def _cancel(pas: Api) -> None:
    answer = await pas.put("appointments/A1", {**APPOINTMENT, "status": "cancelled"})
    assert answer.status_code == 200, answer.text


async def _claim(hub: Harness, kind: str) -> Claimed:
    """Claim what is due; the text of this kind."""
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub))
    [mine] = [c for c in claimed if c.message.kind == kind and c.message.channel == "sms"]
    return mine


async def _fail_for_now(hub: Harness, claimed: Claimed) -> None:
    outcome = Outcome(claimed, error=SERVER_ERROR)
    await record_outcomes(hub.db, [outcome], now=hub.clock.now(), policy=_policy(hub), rng=random.Random(1))


async def _sent_invitation(hub: Harness, pas: Api) -> Claimed:
    """Booked, and the invitation text handed to Notify: its receipt is to come."""
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await record_outcomes(
        hub.db, [Outcome(invitation, notify_id="n-1")], now=hub.clock.now(), policy=_policy(hub), rng=random.Random(1)
    )
    return invitation


async def _messages(hub: Harness) -> list[tuple[str, str, str, str]]:
    found = await rows(hub, "SELECT kind, channel, status, error FROM outbox_messages WHERE lane = 'bulk' ORDER BY id")
    return [(m["kind"], m["channel"], m["status"], m["error"]) for m in found]


async def test_an_invitation_failing_while_the_hospital_cancels_is_not_sent_after_the_cancellation(
    hub: Harness, pas: Api
) -> None:
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _cancel(pas)  # the invitation is out with the worker: the cancellation passes it by
    await _fail_for_now(hub, invitation)
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "appointment cancelled") in messages
    assert [m[:3] for m in messages if m[0] == "cancelled"] == [("cancelled", "sms", "queued")]
    audit = await rows(
        hub,
        "SELECT action, detail FROM audit_events WHERE record_type = 'outbox_message' AND record_id = ?",
        (str(invitation.id),),
    )
    assert {"action": "notification_cancelled", "detail": "appointment cancelled"} in audit


async def test_a_text_failing_while_the_patient_texts_stop_goes_by_email_instead(hub: Harness, pas: Api) -> None:
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _stop(hub)
    await _fail_for_now(hub, invitation)
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "sms opted out") in messages
    assert ("invitation", "email", "queued", "") in messages
    assert not [m for m in messages if m[1] == "sms" and m[2] == "queued"]


async def test_a_posted_copy_failing_after_the_patient_read_the_appointment_is_not_posted(
    hub: Harness, pas: Api
) -> None:
    # The unread-letter escalation's last step: by then nothing of the escalation is left to close, so only the
    # appointment itself says it was read.
    await _book(pas)
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    posted = await hub.create_message(
        kind="invitation_post", channel="letter", patient_id=appointment["patient_id"], appointment_id=appointment["id"]
    )
    [copy] = [c for c in await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)) if c.id == posted]
    await hub.sign_in()
    await hub.get_page(f"/appointments/{appointment['id']}")
    await _fail_for_now(hub, copy)
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (posted,))
    assert (row["status"], row["error"]) == ("cancelled", "letter opened")


async def test_a_reminder_failing_after_the_patient_asks_to_cancel_is_not_sent(hub: Harness, pas: Api) -> None:
    await _book(pas)
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    reminder_id = await hub.create_message(
        kind="appointment_reminder", patient_id=appointment["patient_id"], appointment_id=appointment["id"]
    )
    [reminder] = [c for c in await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)) if c.id == reminder_id]
    await hub.sign_in()
    answer = await hub.post_form(f"/appointments/{appointment['id']}/cancel", {"reason": "no_longer_needed"})
    assert answer.status_code == 303, answer.text
    await _fail_for_now(hub, reminder)
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (reminder_id,))
    assert (row["status"], row["error"]) == ("cancelled", "cancel requested")


async def test_an_invitation_failing_while_the_hospital_moves_it_goes_with_the_new_time(hub: Harness, pas: Api) -> None:
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-04T14:00:00+00:00"})
    assert moved.status_code == 200, moved.text
    await _fail_for_now(hub, invitation)
    [row] = await rows(hub, "SELECT status, personalisation FROM outbox_messages WHERE id = ?", (invitation.id,))
    said = json.loads(row["personalisation"])
    assert (row["status"], said["date"], said["time"]) == ("queued", "Friday 4 December 2026", "2pm")
    [changed] = await rows(hub, "SELECT kind, status FROM outbox_messages WHERE kind = 'changed'")
    assert changed["status"] == "queued"  # the change says so itself as well


async def test_a_posted_copy_failing_while_the_hospital_moves_it_goes_again_as_the_hubs_own_letter(
    hub: Harness, pas: Api
) -> None:
    # The hospital's PDF gives the old time: going round again, the unread invitation's posted copy goes as the hub's
    # letter template with the new time instead. Before, it was withdrawn, and the patient got no letter at all.
    await _book(pas)
    assert (await pas.put_letter("L1")).status_code == 201
    [invitation] = await rows(hub, "SELECT personalisation FROM outbox_messages WHERE kind = 'invitation'")
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    posted = await hub.create_message(
        kind="invitation_post",
        channel="letter",
        recipient="post",
        personalisation=json.loads(invitation["personalisation"]),
        patient_id=appointment["patient_id"],
        appointment_id=appointment["id"],
    )
    [copy] = [c for c in await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)) if c.id == posted]
    assert copy.message.pdf is not None  # the hospital's own letter, while it was true
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-04T14:00:00+00:00"})
    assert moved.status_code == 200, moved.text
    await _fail_for_now(hub, copy)
    [row] = await rows(hub, "SELECT status FROM outbox_messages WHERE id = ?", (posted,))
    assert row == {"status": "queued"}
    assert await rows(hub, "SELECT message_id FROM templated_letters") == [{"message_id": posted}]
    hub.clock.advance(hours=2)
    [again] = [c for c in await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)) if c.id == posted]
    assert again.message.pdf is None
    said = again.message.personalisation
    assert (said["date"], said["time"], said["address_line_1"]) == ("Friday 4 December 2026", "2pm", "Margaret Jones")


async def test_a_time_change_failing_by_text_is_not_withdrawn_by_its_own_posted_copy(hub: Harness, pas: Api) -> None:
    # A patient who chose paper gets each message by text and by post; the copy is the same news, not later news.
    await _book(pas)
    assert (await pas.put("patients/MRN1", {**PATIENT, "paper_letters": True})).status_code == 200
    await hub.send_queued()
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-04T14:00:00+00:00"})
    assert moved.status_code == 200, moved.text
    change = await _claim(hub, "changed")
    await _fail_for_now(hub, change)
    changes = await rows(hub, "SELECT channel, status FROM outbox_messages WHERE kind = 'changed' ORDER BY id")
    assert [(c["channel"], c["status"]) for c in changes] == [("sms", "queued"), ("letter", "sending")]


async def test_a_failure_for_now_with_nothing_changed_still_goes_round_again(hub: Harness, pas: Api) -> None:
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _fail_for_now(hub, invitation)
    [row] = await rows(hub, "SELECT status FROM outbox_messages WHERE id = ?", (invitation.id,))
    assert row["status"] == "queued"


async def test_a_temporary_failure_receipt_after_the_cancellation_does_not_send_the_invitation_again(
    hub: Harness, pas: Api
) -> None:
    # Notify keeps trying a text for up to 72 hours before it says "temporary-failure": the hospital may have
    # cancelled the appointment long since.
    invitation = await _sent_invitation(hub, pas)
    await _cancel(pas)
    await _receipt(hub, invitation, "temporary-failure")
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (invitation.id,))
    assert (row["status"], row["error"]) == ("cancelled", "appointment cancelled")


async def test_a_permanent_failure_receipt_after_the_cancellation_sends_the_invitation_no_other_way(
    hub: Harness, pas: Api
) -> None:
    # A text Notify could not deliver at all goes by email (or post) instead; not one about an appointment the
    # hospital has cancelled since it went: the cancellation notice is what the patient must have.
    invitation = await _sent_invitation(hub, pas)
    await _cancel(pas)
    await _receipt(hub, invitation, "permanent-failure")
    messages = await _messages(hub)
    assert ("invitation", "sms", "failed", "notify permanent-failure") in messages
    assert [m for m in messages if m[0] == "invitation" and m[1] != "sms"] == []
    # Nothing for the booking centre to chase either: the patient is told of the cancellation.
    assert await rows(hub, "SELECT kind FROM tasks WHERE kind = 'failed_notification'") == []
    events = [r["kind"] for r in await rows(hub, "SELECT kind FROM events ORDER BY id")]
    assert "notification.failed" in events and "notification.failed_over" not in events


async def test_a_permanent_failure_receipt_after_a_move_goes_another_way_with_the_new_time(
    hub: Harness, pas: Api
) -> None:
    invitation = await _sent_invitation(hub, pas)
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-15T14:00:00+00:00"})
    assert moved.status_code == 200
    await _receipt(hub, invitation, "permanent-failure")
    [email] = await rows(
        hub, "SELECT personalisation FROM outbox_messages WHERE kind = 'invitation' AND channel = 'email'"
    )
    said = json.loads(email["personalisation"])
    assert (said["date"], said["time"]) == ("Tuesday 15 December 2026", "2pm")


async def test_a_temporary_failure_receipt_after_stop_goes_by_email(hub: Harness, pas: Api) -> None:
    invitation = await _sent_invitation(hub, pas)
    await _stop(hub)
    await _receipt(hub, invitation, "temporary-failure")
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "sms opted out") in messages
    assert ("invitation", "email", "queued", "") in messages


async def test_through_notify_a_timed_out_invitation_is_not_sent_again_after_the_cancellation(
    hub: Harness, pas: Api
) -> None:
    # End to end through the real client: the send times out (it may or may not have reached Notify) while the
    # hospital cancels; the worker neither sends the invitation again nor looks it up to send it.
    with FakeNotify(timeout_delay=1.5) as fake:
        notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=1)
        fake.inject(Fault("timeout"))
        await _book(pas)
        sending = asyncio.create_task(drain_once(hub.db, notifier, hub.clock, policy=_policy(hub)))

        async def out() -> None:
            while not await rows(hub, "SELECT id FROM outbox_messages WHERE status = 'sending' AND lane = 'bulk'"):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(out(), timeout=5)
        await _cancel(pas)
        assert not sending.done()  # the cancellation came while the send was out
        await sending
        hub.clock.advance(minutes=30)
        while await drain_once(hub.db, notifier, hub.clock, policy=_policy(hub)):
            pass
        sent = [m.personalisation for m in fake.messages]
    kinds = [m["kind"] for m in await rows(hub, "SELECT kind FROM outbox_messages WHERE status = 'sent'")]
    assert kinds == ["cancelled"], sent


async def test_through_notify_an_invitation_refused_after_the_cancellation_goes_no_other_way(
    hub: Harness, pas: Api
) -> None:
    # Notify refuses the number of an invitation that was out with the worker while the hospital cancelled. A
    # refused text goes by email (the patient has one), but not this one: the patient must have the cancellation,
    # and there is nothing for the booking centre to chase. The hospital still hears it failed.
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _cancel(pas)
    with FakeNotify() as fake:
        notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=1)
        fake.inject("refused")
        outcome = await deliver(hub.db, notifier, hub.clock, invitation, _policy(hub))
        await record_outcomes(hub.db, [outcome], now=hub.clock.now(), policy=_policy(hub), rng=random.Random(1))
    messages = await _messages(hub)
    assert ("invitation", "sms", "failed", "notify 400 ValidationError") in messages
    assert [m for m in messages if m[0] == "invitation" and m[1] != "sms"] == []
    assert await rows(hub, "SELECT kind FROM tasks WHERE kind = 'failed_notification'") == []
    events = [r["kind"] for r in await rows(hub, "SELECT kind FROM events ORDER BY id")]
    assert "notification.failed" in events and "notification.failed_over" not in events
    failed = await rows(hub, "SELECT record_id, detail FROM audit_events WHERE action = 'notification_failed'")
    assert failed == [
        {
            "record_id": str(invitation.id),
            "detail": "sms refused: notify 400 ValidationError; appointment cancelled: not sent another way",
        }
    ]


async def test_an_invitation_whose_worker_died_is_not_sent_after_the_cancellation(hub: Harness, pas: Api) -> None:
    # The worker died mid-send: its lease runs out and the next claim puts the message back, as after a failure.
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _cancel(pas)
    hub.clock.advance(seconds=_policy(hub).held_for.total_seconds() + 1)
    again = await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub))
    assert invitation.id not in [c.id for c in again]
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (invitation.id,))
    assert (row["status"], row["error"]) == ("cancelled", "appointment cancelled")


async def test_an_invitation_whose_worker_died_waits_for_a_cancellation_committing_as_it_goes_back(
    hub: Harness, pas: Api, backend: str
) -> None:
    # On PostgreSQL the claim that puts a lapsed message back checks it under its patient's lock: a cancellation in
    # flight at that moment is waited for and seen (before, the check read the appointment as booked and the
    # invitation went again after the cancellation).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: nothing commits during the check")
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    hub.clock.advance(seconds=_policy(hub).held_for.total_seconds() + 1)
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")

    async def cancelling(tx: Any) -> None:
        await tx.execute("UPDATE appointments SET status = 'cancelled' WHERE id = ?", (appointment["id"],))

    async with held_write(hub.db, patient=appointment["patient_id"], doing=cancelling):
        claiming = asyncio.create_task(claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)))
        await asyncio.sleep(0.3)
        assert not claiming.done()
    assert invitation.id not in [c.id for c in await claiming]
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (invitation.id,))
    assert (row["status"], row["error"]) == ("cancelled", "appointment cancelled")


async def test_a_reminder_failing_while_the_hospital_moves_the_appointment_gives_way_to_the_new_plan(
    hub: Harness, pas: Api
) -> None:
    # The move plans the reminders again for the new time: the old one, with the old time, does not go.
    await _book(pas)
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    reminder_id = await hub.create_message(
        kind="appointment_reminder",
        patient_id=appointment["patient_id"],
        appointment_id=appointment["id"],
        personalisation={"date": "Thursday 3 December 2026", "time": "9:30am", "site": "x", "clinic": "y"},
    )
    [reminder] = [c for c in await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub)) if c.id == reminder_id]
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-04T14:00:00+00:00"})
    assert moved.status_code == 200, moved.text
    await _fail_for_now(hub, reminder)
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (reminder_id,))
    assert (row["status"], row["error"]) == ("cancelled", "appointment changed")
    planned = await rows(
        hub,
        "SELECT due_at FROM scheduled_notices WHERE appointment_id = ? AND done_at IS NULL AND kind LIKE 'reminder%'",
        (appointment["id"],),
    )
    assert planned  # the new time's reminders


async def _no_texts_or_emails(hub: Harness) -> None:
    await hub.sign_in()
    answer = await hub.post_form("/preferences", {"contact_preference": "sms", "paper": "no", "digital": "no"})
    assert answer.status_code == 303, answer.text


async def test_no_more_texts_and_emails_posts_what_was_waiting_to_go(hub: Harness, pas: Api) -> None:
    # Before, the patient's choice on /preferences left a waiting invitation to go by text all the same.
    await _book(pas)
    await _no_texts_or_emails(hub)
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "digital messages opted out") in messages
    assert ("invitation", "letter", "queued", "") in messages


async def test_a_text_failing_after_the_patient_stops_texts_and_emails_goes_by_post(hub: Harness, pas: Api) -> None:
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    await _no_texts_or_emails(hub)
    await _fail_for_now(hub, invitation)
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "digital messages opted out") in messages
    assert [m[:3] for m in messages if m[2] == "queued"] == [("invitation", "letter", "queued")]  # not by email


@pytest.mark.parametrize("back_by", ["worker", "receipt"])
async def test_a_message_going_round_again_after_a_new_link_carries_the_new_link(
    hub: Harness, pas: Api, back_by: str
) -> None:
    # The old link no longer works. Out with a worker, or sent and then refused for now by the phone network.
    await _book(pas)
    invitation = await _claim(hub, "invitation")
    if back_by == "receipt":
        sent = Outcome(invitation, notify_id="n-1")
        await record_outcomes(hub.db, [sent], now=hub.clock.now(), policy=_policy(hub), rng=random.Random(1))
    [patient] = await rows(hub, "SELECT id FROM patients")
    new = await send_new_link(
        hub.db,
        patient_id=patient["id"],
        actor_type=ActorType.AGENT,
        actor_id=1,
        settings=hub.settings,
        now=hub.clock.now(),
    )
    assert new is not None
    if back_by == "receipt":
        await _receipt(hub, invitation, "temporary-failure")
    else:
        await _fail_for_now(hub, invitation)
    [row] = await rows(hub, "SELECT status, personalisation FROM outbox_messages WHERE id = ?", (invitation.id,))
    assert row["status"] == "queued"
    assert json.loads(row["personalisation"])["link"] == patient_link(hub.settings, new.link_id)


async def test_a_change_failing_while_the_appointment_moves_again_gives_way_to_the_later_change(
    hub: Harness, pas: Api
) -> None:
    # Brought up to date, it would say what the later change says: the patient would have it twice.
    await _book(pas)
    await _claim(hub, "invitation")
    moved = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-04T14:00:00+00:00"})
    assert moved.status_code == 200, moved.text
    first = await _claim(hub, "changed")
    again = await pas.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-05T10:00:00+00:00"})
    assert again.status_code == 200, again.text
    await _fail_for_now(hub, first)
    changes = await rows(hub, "SELECT status, error FROM outbox_messages WHERE kind = 'changed' ORDER BY id")
    assert [(c["status"], c["error"]) for c in changes] == [
        ("cancelled", "superseded by a later change"),
        ("queued", ""),
    ]


async def test_an_agent_stopping_texts_sends_what_was_waiting_another_way(hub: Harness, pas: Api) -> None:
    # Before, the console's "stop texts" left a waiting invitation to go by text all the same.
    await _book(pas)
    [patient] = await rows(hub, "SELECT id FROM patients")
    await set_up_staff(hub, "alice", "agent")
    token = await hub.csrf(f"/staff/patients/{patient['id']}")
    answer = await hub.client.post(f"/staff/patients/{patient['id']}/stop-texts", data={"csrf_token": token})
    assert answer.status_code == 303, answer.text
    messages = await _messages(hub)
    assert ("invitation", "sms", "cancelled", "sms opted out by booking centre") in messages
    assert ("invitation", "email", "queued", "") in messages


async def _offered_earlier(hub: Harness) -> Claimed:
    """The patient asks for an earlier time, a slot frees on 28 November, the offer's text is out with a worker."""
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    assert await set_earlier_request(
        hub.db, patient_id=appointment["patient_id"], appointment_id=appointment["id"], wanted=True, now=hub.clock.now()
    )
    await hub.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert (await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())).offered == 1
    return await _claim(hub, "earlier_offer")


async def test_an_earlier_time_offered_failing_after_the_offer_lapsed_is_not_sent(trust_offer: Harness) -> None:
    # An offer stands for two hours; a text refused for now by the phone network may come back long after.
    hub = trust_offer
    offer = await _offered_earlier(hub)
    hub.clock.advance(hours=3)
    await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())  # the offer lapses
    await _fail_for_now(hub, offer)
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (offer.id,))
    assert (row["status"], row["error"]) == ("cancelled", "offer ended")


async def test_an_earlier_time_offered_failing_while_another_patient_takes_the_slot_is_not_sent(
    trust_offer: Harness, backend: str
) -> None:
    # Another patient's acceptance ends this offer under their own lock (PostgreSQL): the check of the failed text
    # waits for it to commit and sees the offer gone (before, it read the offer as open and the text went again).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: nothing commits during the check")
    hub = trust_offer
    offer = await _offered_earlier(hub)
    [mine] = await rows(hub, "SELECT id FROM slot_offers")
    taker = await hub.create_patient(mrn="TAKER", mobile="+447700900555")

    async def taking(tx: Any) -> None:  # the other patient's accept, in flight: this offer of the slot is gone
        await tx.execute("UPDATE slot_offers SET status = 'gone' WHERE id = ?", (mine["id"],))

    async with held_write(hub.db, patient=taker, doing=taking):
        failing = asyncio.create_task(_fail_for_now(hub, offer))
        await asyncio.sleep(0.3)
        assert not failing.done()
    await failing
    [row] = await rows(hub, "SELECT status, error FROM outbox_messages WHERE id = ?", (offer.id,))
    assert (row["status"], row["error"]) == ("cancelled", "offer ended")


async def test_an_earlier_time_offered_failing_while_the_offer_stands_goes_round_again(trust_offer: Harness) -> None:
    hub = trust_offer
    offer = await _offered_earlier(hub)
    await _fail_for_now(hub, offer)
    [row] = await rows(hub, "SELECT status FROM outbox_messages WHERE id = ?", (offer.id,))
    assert row["status"] == "queued"


async def test_opting_out_while_another_patient_takes_the_offered_slot_neither_deadlocks_nor_reroutes_the_offer(
    trust_offer: Harness, backend: str
) -> None:
    # Another patient's acceptance ends this patient's offer of the slot (its offer row first), then withdraws its
    # text (the message row). The patient opting out of texts at that moment (under their own lock; a STOP takes the
    # whole hub's) withdraws their waiting texts and judges each before sending it another way: taking the message
    # row first and the offer row second, the two deadlocked.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no row locks")
    hub = trust_offer
    [appointment] = await rows(hub, "SELECT id, patient_id FROM appointments")
    assert await set_earlier_request(
        hub.db, patient_id=appointment["patient_id"], appointment_id=appointment["id"], wanted=True, now=hub.clock.now()
    )
    await hub.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert (await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())).offered == 1
    assert (
        len(await rows(hub, "SELECT id FROM outbox_messages WHERE kind = 'earlier_offer' AND status = 'queued'")) == 1
    )
    taker = await hub.create_patient(mrn="TAKER", mobile="+447700900555")
    offer_gone, go_on = asyncio.Event(), asyncio.Event()

    async def accepting() -> None:  # as accept_offer's settle runs it, under the taker's lock
        async with hub.db.write(patient=taker) as tx:
            await tx.execute("UPDATE slot_offers SET status = 'gone' WHERE status = 'offered'")
            offer_gone.set()
            await go_on.wait()
            await withdraw_ended_offers(tx, [appointment["id"]], now=hub.clock.now(), actor="worker")

    async def opting_out() -> None:  # the patient's own "no more texts or emails" (or the hospital's), as it runs it
        async with hub.db.write(patient=appointment["patient_id"]) as tx:
            await reroute_waiting(
                tx,
                appointment["patient_id"],
                Channel.SMS,
                templates=hub.settings.notify.templates,
                now=hub.clock.now(),
                why="digital messages opted out",
                actor="patient",
            )

    taking = asyncio.create_task(accepting())
    await asyncio.wait_for(offer_gone.wait(), timeout=5)
    stopping = asyncio.create_task(opting_out())
    await asyncio.sleep(0.3)
    go_on.set()
    await asyncio.wait_for(asyncio.gather(taking, stopping), timeout=10)  # before: a deadlock ended one of them
    messages = await rows(hub, "SELECT kind, channel, status, error FROM outbox_messages WHERE kind = 'earlier_offer'")
    # The offer ended: its text withdrawn (by whichever came first) and not sent by email instead.
    assert [(m["channel"], m["status"]) for m in messages] == [("sms", "cancelled")], messages
