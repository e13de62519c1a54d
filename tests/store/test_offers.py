"""Earlier appointments: a freed slot offered to a batch of the patients asking, in order; the first to accept gets
it, the others find it gone; offers lapse and the next batch is offered; quiet hours, the cut-off and limits."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.jobs.worker import work
from hub.notify.dev import DevNotifier
from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.store.appointments import cancel_appointment
from hub.store.offers import OfferRound, accept_offer, decline_offer, run_offers, set_earlier_request
from hub.store.slot_moves import Moved
from hub.vocabulary import CancelMode, WhyNot
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
WINDOW = Window(cutoff=timedelta(hours=24), days=42)


async def waiting(hub: Harness, n: int) -> list[tuple[int, int]]:
    """n patients with appointments 20, 21, ... days away who asked for an earlier time: (patient, appointment)."""
    made = []
    for i in range(n):
        patient = await hub.create_patient(mrn=f"MRN{i}", mobile=f"+4477009000{i:02d}")
        appointment = await hub.create_appointment(patient_id=patient, starts_at=NOW + (20 + i) * DAY)
        assert await set_earlier_request(hub.db, patient_id=patient, appointment_id=appointment, wanted=True, now=NOW)
        made.append((patient, appointment))
    return made


async def offers(hub: Harness) -> list[dict[str, Any]]:
    return await hub.db.fetch_all("SELECT id, appointment_id, patient_id, status, batch FROM slot_offers ORDER BY id")


async def accept(hub: Harness, patient: int, offer: int) -> Moved:
    return await accept_offer(
        hub.db,
        patient_id=patient,
        offer_id=offer,
        now=hub.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=hub.settings,
    )


async def round_(hub: Harness) -> OfferRound:
    return await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())


async def test_an_offer_chain_two_decline_or_ignore_and_the_third_accepts(make_hub: MakeHub) -> None:
    hub = await make_hub(**{"slots.earlier_batch": 1, "slots.earlier_offer_minutes": 120})
    (a, a_appt), (b, b_appt), (c, c_appt) = await waiting(hub, 3)
    slot = await hub.create_slot(starts_at=NOW + 5 * DAY, ref="FREED")

    assert await round_(hub) == OfferRound(lapsed=0, offered=1)
    [first] = await offers(hub)
    assert (first["patient_id"], first["status"], first["batch"]) == (a, "offered", 1)  # earliest appointment first
    assert await round_(hub) == OfferRound(0, 0)  # an open offer holds the slot's next batch back
    assert await decline_offer(hub.db, patient_id=a, offer_id=first["id"], now=hub.clock.now())

    assert await round_(hub) == OfferRound(0, 1)
    second = (await offers(hub))[-1]
    assert (second["patient_id"], second["batch"]) == (b, 2)
    hub.clock.advance(minutes=121)  # B ignores it
    assert await round_(hub) == OfferRound(lapsed=1, offered=1)
    third = (await offers(hub))[-1]
    assert (third["patient_id"], third["batch"]) == (c, 3)

    assert await accept(hub, c, third["id"]) == Moved(True)
    assert [o["status"] for o in await offers(hub)] == ["declined", "lapsed", "accepted"]
    row = await hub.db.fetch_one("SELECT status, appointment_id FROM slots WHERE id = ?", (slot,))
    assert row == {"status": "busy", "appointment_id": c_appt}
    events = await hub.db.fetch_all("SELECT kind, data FROM events WHERE kind != 'appointment.earlier_requested'")
    kinds = [e["kind"] for e in events]
    assert kinds == ["appointment.earlier_offered"] * 3 + ["appointment.rescheduled_by_patient"]
    moved = json.loads(events[-1]["data"])
    assert (moved["slot_ref"], moved["how"]) == ("FREED", "earlier_offer")
    sent = await hub.db.fetch_all("SELECT kind, patient_id FROM outbox_messages ORDER BY id")
    assert [(m["kind"], m["patient_id"]) for m in sent] == [
        ("earlier_offer", a),
        ("earlier_offer", b),
        ("earlier_offer", c),
        ("changed", c),
    ]
    audit = await hub.db.fetch_all("SELECT action FROM audit_events WHERE record_type = 'slot_offer' ORDER BY id")
    assert [r["action"] for r in audit] == [
        "earlier_offered",
        "earlier_declined",
        "earlier_offered",
        "earlier_lapsed",
        "earlier_offered",
        "earlier_accepted",
    ]
    assert await hub.db.fetch_all("SELECT appointment_id FROM earlier_requests ORDER BY appointment_id") == [
        {"appointment_id": a_appt},
        {"appointment_id": b_appt},
    ]


async def test_the_first_of_a_batch_to_accept_gets_it(hub: Harness) -> None:
    patients = await waiting(hub, 4)
    await hub.create_slot(starts_at=NOW + 5 * DAY)
    assert await round_(hub) == OfferRound(0, 3)  # the batch is three
    made = await offers(hub)
    assert [o["patient_id"] for o in made] == [p for p, _ in patients[:3]]
    results = await asyncio.gather(*(accept(hub, o["patient_id"], o["id"]) for o in made))
    assert sorted(r.done for r in results) == [False, False, True]
    assert {r.why_not for r in results if not r.done} == {WhyNot.GONE}
    assert sorted(o["status"] for o in await offers(hub)) == ["accepted", "gone", "gone"]
    moved = await hub.db.fetch_all("SELECT id FROM appointments WHERE sequence > 0")
    assert len(moved) == 1


async def test_quiet_hours_the_cut_off_and_limits(make_hub: MakeHub) -> None:
    hub = await make_hub(rebook_limit=1)
    (p1, a1), (p2, a2), (p3, a3) = await waiting(hub, 3)
    # p2 has used their one online change; p3's appointment is inside the cut-off.
    await hub.create_task(patient_id=p2, appointment_id=a2, kind="rebook", status="closed")
    async with hub.db.write() as tx:
        await tx.execute("UPDATE appointments SET starts_at = ? WHERE id = ?", ("2026-11-22T09:00:00.000000Z", a3))
    await hub.create_slot(starts_at=NOW + 12 * timedelta(hours=1))  # inside the cut-off: never offered
    await hub.create_slot(starts_at=NOW + 5 * DAY)
    hub.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))  # 9pm in London
    assert await round_(hub) == OfferRound(0, 0)
    hub.clock.set(datetime(2026, 11, 22, 8, 30, tzinfo=UTC))
    assert await round_(hub) == OfferRound(0, 1)
    assert [o["patient_id"] for o in await offers(hub)] == [p1]
    # Stopped asking: no more offers.
    assert await set_earlier_request(hub.db, patient_id=p1, appointment_id=a1, wanted=False, now=hub.clock.now())
    hub.clock.advance(hours=3)
    assert await round_(hub) == OfferRound(1, 0)


async def test_asking_declining_and_accepting_wait_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    # On PostgreSQL each is the patient's own write: it locks them, not the whole hub.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    (a, a_appt), (b, _), (c, _) = await waiting(hub, 3)
    await hub.create_slot(starts_at=NOW + 5 * DAY)
    assert await round_(hub) == OfferRound(0, 3)
    made = {o["patient_id"]: o["id"] for o in await offers(hub)}
    async with held_write(hub.db, patient=c, doing=touch_patient(c)):
        now = hub.clock.now()
        assert await asyncio.wait_for(decline_offer(hub.db, patient_id=b, offer_id=made[b], now=now), timeout=5)
        assert await asyncio.wait_for(accept(hub, a, made[a]), timeout=5) == Moved(True)
        asked = set_earlier_request(hub.db, patient_id=a, appointment_id=a_appt, wanted=True, now=now)
        assert await asyncio.wait_for(asked, timeout=5)
    assert sorted(o["status"] for o in await offers(hub)) == ["accepted", "declined", "gone"]


async def test_an_offer_declined_in_another_tab_while_its_acceptance_waited_is_not_taken(hub: Harness) -> None:
    # Two tabs: "No thanks" in one, "Take this appointment" in the other, a moment after. Both wait behind another
    # write of the patient's; the acceptance has read the offer open by then. The decline goes first: the
    # acceptance must find the offer ended. Before, it took the slot and turned the declined offer into accepted.
    [(patient, appointment)] = await waiting(hub, 1)
    slot = await hub.create_slot(starts_at=NOW + 5 * DAY, ref="FREED")
    assert await round_(hub) == OfferRound(0, 1)
    [offer] = await offers(hub)
    before = await hub.db.fetch_all("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment,))
    async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
        declining = asyncio.create_task(
            decline_offer(hub.db, patient_id=patient, offer_id=offer["id"], now=hub.clock.now())
        )
        await asyncio.sleep(0.2)
        accepting = asyncio.create_task(accept(hub, patient, offer["id"]))
        await asyncio.sleep(0.3)
        assert not declining.done() and not accepting.done()
    assert await asyncio.wait_for(declining, timeout=10)
    assert await asyncio.wait_for(accepting, timeout=10) == Moved(False, WhyNot.GONE)
    assert [o["status"] for o in await offers(hub)] == ["declined"]
    assert await hub.db.fetch_all("SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "free", "appointment_id": None}
    ]
    assert await hub.db.fetch_all("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment,)) == before
    assert await hub.db.fetch_all("SELECT id FROM slot_moves") == []
    actions = [r["action"] for r in await hub.db.fetch_all("SELECT action FROM audit_events ORDER BY id")]
    assert "earlier_declined" in actions and "earlier_accepted" not in actions


async def test_offers_answered_taken_or_lapsed_before_their_texts_went_are_not_sent(make_hub: MakeHub) -> None:
    # Offer texts wait in the queue behind an invitation run; meanwhile the patients answer on the site (the list
    # page shows the offer) or the slot goes. Their texts would offer what is no longer there.
    hub = await make_hub(**{"slots.earlier_batch": 3, "slots.earlier_offer_minutes": 120})
    (a, _), (b, _), (c, _), (d, _), (e, _) = await waiting(hub, 5)
    await hub.create_slot(starts_at=NOW + 5 * DAY, ref="FIRST")
    await hub.create_slot(starts_at=NOW + 6 * DAY, ref="SECOND")
    assert await round_(hub) == OfferRound(0, 5)  # three for the first slot, the other two for the second
    made = {o["patient_id"]: o["id"] for o in await offers(hub)}

    async def waiting_texts() -> list[tuple[int, str]]:
        rows = await hub.db.fetch_all(
            "SELECT patient_id, status, error FROM outbox_messages WHERE kind = 'earlier_offer' ORDER BY id"
        )
        return [(r["patient_id"], r["error"] or r["status"]) for r in rows]

    assert await waiting_texts() == [(p, "queued") for p in (a, b, c, d, e)]
    assert await decline_offer(hub.db, patient_id=b, offer_id=made[b], now=hub.clock.now())
    assert await accept(hub, a, made[a]) == Moved(True)  # C's offer of the same slot is gone
    hub.clock.advance(minutes=121)  # D's and E's lapse
    assert await round_(hub) == OfferRound(lapsed=2, offered=2)  # the second slot, to B and C now
    assert await waiting_texts() == [(p, "offer ended") for p in (a, b, c, d, e)] + [(b, "queued"), (c, "queued")]
    audit = await hub.db.fetch_all(
        "SELECT detail FROM audit_events WHERE record_type = 'outbox_message' AND action = 'notification_cancelled'"
    )
    assert [r["detail"] for r in audit] == ["offer ended"] * 5


async def test_the_worker_offers_freed_slots_and_sends_the_offers(hub: Harness) -> None:
    [(patient, _)] = await waiting(hub, 1)
    await hub.create_slot(starts_at=NOW + 5 * DAY)
    await work(hub.db, DevNotifier(hub.db, hub.clock), hub.settings, hub.clock, asyncio.Event(), once=True)
    assert [o["patient_id"] for o in await offers(hub)] == [patient]
    sent = await hub.db.fetch_all("SELECT kind, personalisation FROM dev_messages WHERE kind = 'earlier_offer'")
    assert len(sent) == 1 and json.loads(sent[0]["personalisation"])["date"] == "Thursday 26 November 2026"


async def test_a_patient_waiting_for_the_cancellation_they_asked_for_is_not_offered_an_earlier_time(
    make_hub: MakeHub,
) -> None:
    # They could not take it (a change is refused while their cancel request is open): the batch's one offer went to
    # them, and the patient who could take it was not asked (found by a seam hunt).
    hub = await make_hub(**{"slots.earlier_batch": 1})
    hub.clock.set(NOW)
    [(leaving, theirs), (_, other)] = await waiting(hub, 2)
    done = await cancel_appointment(
        hub.db,
        patient_id=leaving,
        appointment_id=theirs,
        reason="Feeling better",
        details="",
        now=NOW,
        policy=POLICY,
        settings=hub.settings,
    )
    assert done.done
    await hub.create_slot(starts_at=NOW + 7 * DAY, ref="FREED")
    assert await round_(hub) == OfferRound(0, 1)
    assert [o["appointment_id"] for o in await offers(hub)] == [other]


async def test_a_slot_beyond_the_window_is_not_offered_until_it_can_be_taken(hub: Harness) -> None:
    # A patient may move only into a slot inside the window (`slots.window_days`): an offer of one further ahead was
    # made, and taking it answered "This earlier appointment has gone" and used up one of their offers (found by a
    # seam hunt).
    patient = await hub.create_patient(mrn="MRN0", mobile="+447700900000")
    appointment = await hub.create_appointment(patient_id=patient, starts_at=NOW + 60 * DAY)
    assert await set_earlier_request(hub.db, patient_id=patient, appointment_id=appointment, wanted=True, now=NOW)
    slot = await hub.create_slot(starts_at=NOW + 50 * DAY, ref="LATER")
    assert await round_(hub) == OfferRound(0, 0)
    assert await offers(hub) == []
    hub.clock.advance(days=9)  # the slot is 41 days ahead now
    assert await round_(hub) == OfferRound(0, 1)
    [offer] = await offers(hub)
    assert await accept(hub, patient, offer["id"]) == Moved(True)
    assert await hub.db.fetch_all("SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "busy", "appointment_id": appointment}
    ]
