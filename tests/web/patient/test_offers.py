"""Earlier appointments in the patient's pages: asking for one, the offer on the list, taking it or saying no, and
the offer someone else took first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.db import Transaction
from hub.store.offers import end_offers, run_offers
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.holding import held_write
from tests.web.patient.test_appointments import location, text_of
from tests.web.patient.test_slots import SELF_SERVICE, clinic, post

pytestmark = pytest.mark.anyio


async def test_asking_for_an_earlier_time_and_taking_the_offer(
    make_hub: MakeHub, new_browser: Callable[..., Harness]
) -> None:
    hub = await make_hub(**SELF_SERVICE)
    _, mine = await clinic(hub, days=0)
    other = new_browser(hub)
    _, theirs = await clinic(other, days=0, mobile="+447700900002")
    await hub.sign_in()
    await other.sign_in("07700 900002")
    for browser, appointment in ((hub, mine), (other, theirs)):
        detail = await browser.get_page(f"/appointments/{appointment}")
        assert "Tell me if an earlier time comes up" in detail.text
        done = location(await post(browser, f"/appointments/{appointment}/earlier", {"wanted": "yes"}))
        assert done == f"/appointments/{appointment}?done=earlier_on"
        assert "Stop telling me about earlier times" in (await browser.get_page(done)).text

    # Someone cancels: their slot is free again, and the worker offers it to both.
    freed = await hub.create_slot(starts_at=hub.clock.now() + timedelta(days=4), ref="FREED")
    assert (await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())).offered == 2
    listing = await hub.get_page("/appointments")
    assert "You can have an earlier appointment on Wednesday 25 November 2026 at 10am" in text_of(listing.text)
    offer_ids = [r["id"] for r in await hub.db.fetch_all("SELECT id FROM slot_offers ORDER BY id")]
    offer = await hub.get_page(f"/offers/{offer_ids[0]}")
    assert "An earlier appointment for you" in offer.text
    assert (await hub.client.get(f"/offers/{offer_ids[1]}")).status_code == 404  # not theirs

    taken = location(await post(hub, f"/offers/{offer_ids[0]}", {"answer": "accept"}))
    assert taken == f"/appointments/{mine}?done=moved"
    row = await hub.db.fetch_one("SELECT status, appointment_id FROM slots WHERE id = ?", (freed,))
    assert row == {"status": "busy", "appointment_id": mine}
    ics = (await hub.client.get(f"/appointments/{mine}.ics")).text
    assert "SEQUENCE:1" in ics and "DTSTART;TZID=Europe/London:20261125T100000" in ics
    late = await post(other, f"/offers/{offer_ids[1]}", {"answer": "accept"})
    assert late.status_code == 409 and "This earlier appointment has gone" in text_of(late.text)
    gone = await other.get_page(f"/offers/{offer_ids[1]}")
    assert "has not changed" in text_of(gone.text)


async def test_saying_no_thanks_and_stopping(make_hub: MakeHub) -> None:
    hub = await make_hub(**SELF_SERVICE)
    _, mine = await clinic(hub, days=0)
    await hub.sign_in()
    await post(hub, f"/appointments/{mine}/earlier", {"wanted": "yes"})
    await hub.create_slot(starts_at=hub.clock.now() + timedelta(days=4))
    await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())
    [offer] = await hub.db.fetch_all("SELECT id FROM slot_offers")
    declined = location(await post(hub, f"/offers/{offer['id']}", {"answer": "decline"}))
    assert declined == "/appointments?done=offer_declined"
    assert "Your appointment has not changed" in text_of((await hub.get_page(declined)).text)
    stopped = location(await post(hub, f"/appointments/{mine}/earlier", {"wanted": "no"}))
    assert stopped.endswith("done=earlier_off")
    assert await hub.db.fetch_all("SELECT appointment_id FROM earlier_requests") == []


async def test_clinics_without_self_service_cannot_ask(hub: Harness) -> None:
    _, mine = await clinic(hub, days=0)
    await hub.sign_in()
    assert "earlier" not in (await hub.get_page(f"/appointments/{mine}")).text.lower()
    refused = location(await post(hub, f"/appointments/{mine}/earlier", {"wanted": "yes"}))
    assert "refused=" in refused
    assert await hub.db.fetch_all("SELECT appointment_id FROM earlier_requests") == []


async def test_an_offer_that_lapses_while_its_acceptance_waits_is_not_taken(make_hub: MakeHub) -> None:
    # The patient presses "Take this appointment" a second before the offer ends; the worker's round, a moment
    # later, lapses it while the acceptance waits for its turn to write. The acceptance read the offer open before
    # then: its write must find it ended. Before, it took the slot and marked the lapsed offer accepted.
    hub = await make_hub(**SELF_SERVICE, **{"slots.earlier_offer_minutes": 10})
    _, mine = await clinic(hub, days=0)
    await hub.sign_in()
    await post(hub, f"/appointments/{mine}/earlier", {"wanted": "yes"})
    freed = await hub.create_slot(starts_at=hub.clock.now() + timedelta(days=4), ref="FREED")
    assert (await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())).offered == 1
    [offer] = await hub.db.fetch_all("SELECT id FROM slot_offers")
    assert "An earlier appointment for you" in (await hub.get_page(f"/offers/{offer['id']}")).text
    hub.clock.advance(minutes=9, seconds=59)
    token = await hub.csrf(f"/offers/{offer['id']}")  # still open: the page has the button
    before = await hub.db.fetch_all("SELECT starts_at, sequence, moved_at FROM appointments WHERE id = ?", (mine,))

    async def worker_round(tx: Transaction) -> None:  # its clock read a moment after the patient's
        await end_offers(tx, now=hub.clock.now() + timedelta(seconds=2))

    async with held_write(hub.db, doing=worker_round):
        taking = asyncio.create_task(
            hub.client.post(f"/offers/{offer['id']}", data={"csrf_token": token, "answer": "accept"})
        )
        await asyncio.sleep(0.3)
        assert not taking.done()  # the offer read open; its write waits for the worker's
    answer = await asyncio.wait_for(taking, timeout=10)
    assert answer.status_code == 409, answer.text
    said = text_of(answer.text)
    assert "This earlier appointment has gone" in said and "has not changed" in said

    # Nothing of the acceptance was written: the offer lapsed, the slot free, the appointment where it was.
    assert await hub.db.fetch_all("SELECT status FROM slot_offers") == [{"status": "lapsed"}]
    assert await hub.db.fetch_all("SELECT status, appointment_id FROM slots WHERE id = ?", (freed,)) == [
        {"status": "free", "appointment_id": None}
    ]
    assert await hub.db.fetch_all("SELECT starts_at, sequence, moved_at FROM appointments WHERE id = ?", (mine,)) == (
        before
    )
    assert await hub.db.fetch_all("SELECT id FROM slot_moves") == []
    assert await hub.db.fetch_all("SELECT appointment_id FROM earlier_requests") == [{"appointment_id": mine}]
    actions = {r["action"] for r in await hub.db.fetch_all("SELECT action FROM audit_events")}
    assert "earlier_accepted" not in actions and "earlier_lapsed" in actions
    kinds = {r["kind"] for r in await hub.db.fetch_all("SELECT kind FROM events")}
    assert "appointment.rescheduled_by_patient" not in kinds
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages WHERE kind = 'changed'") == []
