"""An appointment's slots in the console: the history of its moves between slots, and booking it into a free slot of
its clinic with the same conditional write as patients use."""

from __future__ import annotations

from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.clock import from_db
from hub.store.slot_moves import book_slot_by_agent
from hub.store.slots import get_appointment_place, list_clinic_free_slots, slot_history
from hub.store.staff_scope import appointment_in_scope
from hub.vocabulary import WhyNot
from hub.web.common import hub_of, read_form
from hub.web.staff.common import require_staff, scope_of, see_other, staff_page

NOTICES = {
    "booked": "The appointment is booked into the slot. The patient has been sent the new time.",
    WhyNot.GONE: "That slot has just been taken. Choose another.",
    WhyNot.CLOSED: "The appointment is not booked, so it cannot be moved.",
}


async def appointment_slots(request: Request, *, status: int = 200, notice: str = "") -> Response:
    hub = hub_of(request)
    await require_staff(request)
    appointment_id = request.path_params["id"]
    place = await get_appointment_place(hub.db, appointment_id)
    if place is None or not await appointment_in_scope(hub.db, appointment_id, scope_of(request)):
        raise HTTPException(404)
    row = await hub.db.fetch_one(
        "SELECT a.ref, a.starts_at, a.patient_id, a.status FROM appointments a WHERE a.id = ?", (appointment_id,)
    )
    assert row is not None
    now = hub.clock.now()
    free = await list_clinic_free_slots(
        hub.db, place, first=now, last=now + timedelta(days=hub.settings.slots.window_days)
    )
    context = {
        "appointment": {**place, **row, "starts_at": from_db(row["starts_at"])},
        "history": await slot_history(hub.db, appointment_id),
        "free": free,
        "window_days": hub.settings.slots.window_days,
        "notice": notice or NOTICES.get(request.query_params.get("done", ""), ""),
    }
    return staff_page(request, "slots.html", context, status=status)


async def book_slot(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    form = await read_form(request)
    appointment_id = request.path_params["id"]
    if not await appointment_in_scope(hub.db, appointment_id, scope_of(request)):
        raise HTTPException(404)
    chosen = form.get("slot", "")
    if not (chosen.isascii() and chosen.isdigit() and len(chosen) < 18):
        return await appointment_slots(request, status=422, notice="Choose a slot.")
    moved = await book_slot_by_agent(
        hub.db,
        staff_id=staff["id"],
        appointment_id=appointment_id,
        slot_id=int(chosen),
        now=hub.clock.now(),
        settings=hub.settings,
    )
    if moved.why_not == WhyNot.MISSING:
        raise HTTPException(404)
    if not moved.done:
        return await appointment_slots(request, status=409, notice=NOTICES.get(moved.why_not, NOTICES[WhyNot.GONE]))
    return see_other(f"/staff/appointments/{appointment_id}/slots?done=booked")
