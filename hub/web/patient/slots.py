"""Choosing a new time: the free slots of the appointment's clinic, site and clinician, by day and paged; a check
page; and the confirmation, which takes the slot in one conditional write (or says it has just gone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.db import Row
from hub.rules.appointments import Allowed
from hub.rules.slots import SelfService, Window, page_number, paged_by_day, shown_start
from hub.store.appointments import actions_for, count_rebook_requests, get_appointment_for_patient
from hub.store.slot_moves import reschedule_by_patient, same_place
from hub.store.slots import get_appointment_place, get_slot, list_free_slots
from hub.vocabulary import WhyNot
from hub.web.common import Hub, hub_of, read_form, render, require_patient


def window_of(hub: Hub) -> Window:
    return Window(cutoff=hub.policies.action.cutoff, days=hub.settings.slots.window_days)


def self_service_of(hub: Hub) -> SelfService:
    s = hub.settings.slots
    return SelfService.from_settings(s.self_service_clinics, s.self_service_specialties)


async def may_change_time(hub: Hub, appointment: Row, allowed: Allowed) -> bool:
    """Whether the appointment's page offers "Change the date or time" rather than the call-back request."""
    if not allowed.rebook:
        return False
    place = await get_appointment_place(hub.db, appointment["id"])
    return place is not None and self_service_of(hub).allows(
        place["organisation_code"], place["clinic"], place["specialty"]
    )


@dataclass(frozen=True)
class _Movable:
    hub: Hub
    patient_id: int
    appointment: Row
    place: Row
    form: dict[str, str]


async def _movable(request: Request) -> _Movable | Response:
    """The signed-in patient's appointment and its place (and a POST's form, its CSRF token checked first), when they
    may move it themselves; otherwise back to the appointment."""
    hub = hub_of(request)
    session = await require_patient(request)
    form = await read_form(request) if request.method == "POST" else {}
    appointment = await get_appointment_for_patient(hub.db, session.patient_id, request.path_params["id"])
    if appointment is None:
        raise HTTPException(404)
    allowed = await actions_for(hub.db, appointment, now=hub.clock.now(), policy=hub.policies.action)
    place = await get_appointment_place(hub.db, appointment["id"])
    if place is None or not await may_change_time(hub, appointment, allowed):
        why = allowed.why_not or (WhyNot.LIMIT if not allowed.rebook else WhyNot.CLOSED)
        return RedirectResponse(f"/appointments/{appointment['id']}?refused={why}", 303)
    return _Movable(hub, session.patient_id, appointment, place, form)


async def _list(
    request: Request, hub: Hub, appointment: Row, place: Row, *, page: int, context: dict[str, Any], status: int = 200
) -> Response:
    first, last = window_of(hub).bounds(hub.clock.now())
    free = await list_free_slots(hub.db, place, first=first, last=last)
    shown = paged_by_day(free, page=page, days_per_page=hub.settings.slots.days_per_page)
    values = {"appointment": appointment, "page": shown, "window_days": hub.settings.slots.window_days}
    return render(request, "views/patient/change_time.html", {**values, "errors": {}, **context}, status=status)


async def change_time_page(request: Request) -> Response:
    found = await _movable(request)
    if isinstance(found, Response):
        return found
    hub, appointment, place = found.hub, found.appointment, found.place
    page = page_number(request.query_params.get("page", "1"))
    return await _list(request, hub, appointment, place, page=page, context={})


async def choose_time(request: Request) -> Response:
    found = await _movable(request)
    if isinstance(found, Response):
        return found
    hub, appointment, place, form = found.hub, found.appointment, found.place, found.form
    page = page_number(form.get("page", "1"))
    chosen = form.get("slot", "")
    slot = await get_slot(hub.db, int(chosen)) if chosen.isascii() and chosen.isdigit() and len(chosen) < 18 else None
    if slot is None or not same_place(place, slot):
        errors = {"slot": "Select a new date and time"}
        return await _list(request, hub, appointment, place, page=page, context={"errors": errors}, status=422)
    return RedirectResponse(f"/appointments/{appointment['id']}/change-time/{slot['id']}", 303)


async def _chosen(hub: Hub, place: Row, request: Request) -> Row | None:
    slot = await get_slot(hub.db, request.path_params["slot"])
    return slot if slot is not None and same_place(place, slot) else None


async def check_page(request: Request) -> Response:
    found = await _movable(request)
    if isinstance(found, Response):
        return found
    hub, appointment, place = found.hub, found.appointment, found.place
    slot = await _chosen(hub, place, request)
    if slot is None or slot["status"] != "free" or not window_of(hub).holds(slot["starts_at"], hub.clock.now()):
        return await _gone(request, hub, appointment, place)
    left = hub.policies.action.rebook_limit - await count_rebook_requests(hub.db, appointment["id"]) - 1
    context = {"appointment": appointment, "chosen": slot, "left": left}
    return render(request, "views/patient/change_time_check.html", context)


async def _gone(request: Request, hub: Hub, appointment: Row, place: Row) -> Response:
    return await _list(request, hub, appointment, place, page=1, context={"gone": True}, status=409)


async def confirm_time(request: Request) -> Response:
    found = await _movable(request)
    if isinstance(found, Response):
        return found
    hub, patient_id, appointment, place = found.hub, found.patient_id, found.appointment, found.place
    slot = await _chosen(hub, place, request)
    # The time the check page showed: a slot the hospital has given another time since is gone, not taken at that.
    raw = found.form.get("start", "")
    shown = shown_start(raw) if raw else None
    if slot is None or (raw and shown is None):
        return await _gone(request, hub, appointment, place)
    moved = await reschedule_by_patient(
        hub.db,
        patient_id=patient_id,
        appointment_id=appointment["id"],
        slot_id=slot["id"],
        now=hub.clock.now(),
        policy=hub.policies.action,
        window=window_of(hub),
        settings=hub.settings,
        shown_start=shown,
    )
    if moved.done:
        return RedirectResponse(f"/appointments/{appointment['id']}?done=moved", 303)
    if moved.why_not == WhyNot.GONE:
        return await _gone(request, hub, appointment, place)
    return RedirectResponse(f"/appointments/{appointment['id']}?refused={moved.why_not}", 303)
