"""Earlier appointments in the patient's pages: asking for one, the offer on the list, taking it or saying no, and
the offer someone else took first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.store.offers import run_offers
from tests.conftest import MakeHub
from tests.harness import Harness
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
