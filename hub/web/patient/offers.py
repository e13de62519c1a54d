"""Earlier appointments: asking to be offered one, and answering an offer (take it, or no thanks)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.rules.slots import offer_open, shown_start
from hub.store.appointments import actions_for, get_appointment_for_patient
from hub.store.offers import accept_offer, decline_offer, get_offer, set_earlier_request
from hub.vocabulary import WhyNot
from hub.web.common import hub_of, read_form, render, require_patient
from hub.web.patient.slots import may_change_time, window_of


async def earlier(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    form = await read_form(request)
    appointment = await get_appointment_for_patient(hub.db, session.patient_id, request.path_params["id"])
    if appointment is None:
        raise HTTPException(404)
    wanted = form.get("wanted") == "yes"
    allowed = await actions_for(hub.db, appointment, now=hub.clock.now(), policy=hub.policies.action)
    if wanted and not await may_change_time(hub, appointment, allowed):
        return RedirectResponse(f"/appointments/{appointment['id']}?refused={allowed.why_not or WhyNot.CLOSED}", 303)
    await set_earlier_request(
        hub.db, patient_id=session.patient_id, appointment_id=appointment["id"], wanted=wanted, now=hub.clock.now()
    )
    return RedirectResponse(f"/appointments/{appointment['id']}?done=earlier_{'on' if wanted else 'off'}", 303)


async def offer_page(request: Request, *, status: int = 200, gone: bool = False) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    offer = await get_offer(hub.db, session.patient_id, request.path_params["id"])
    if offer is None:
        raise HTTPException(404)
    open_ = offer_open(offer, now=hub.clock.now()) and not gone
    return render(request, "views/patient/offer.html", {"offer": offer, "open": open_}, status=status)


async def answer_offer(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    form = await read_form(request)
    offer_id = request.path_params["id"]
    if form.get("answer") == "decline":
        await decline_offer(hub.db, patient_id=session.patient_id, offer_id=offer_id, now=hub.clock.now())
        return RedirectResponse("/appointments?done=offer_declined", 303)
    # The time the offer's page showed: a slot the hospital has given another time since is gone, not taken at that.
    raw = form.get("start", "")
    shown = shown_start(raw) if raw else None
    if raw and shown is None:
        return await offer_page(request, status=409, gone=True)
    moved = await accept_offer(
        hub.db,
        patient_id=session.patient_id,
        offer_id=offer_id,
        now=hub.clock.now(),
        policy=hub.policies.action,
        window=window_of(hub),
        settings=hub.settings,
        shown_start=shown,
    )
    if moved.done:
        offer = await get_offer(hub.db, session.patient_id, offer_id)
        assert offer is not None
        return RedirectResponse(f"/appointments/{offer['appointment_id']}?done=moved", 303)
    if moved.why_not == WhyNot.MISSING:
        raise HTTPException(404)
    return await offer_page(request, status=409, gone=True)
