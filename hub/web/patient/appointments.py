"""Appointment pages: the list, one appointment, confirm / rebook / cancel, and calendar files."""

from __future__ import annotations

from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.db import Row
from hub.ics import CalendarEvent, build_calendar
from hub.links import patient_link
from hub.rules.appointments import group_of, past_horizon
from hub.store.appointments import (
    ActionResult,
    actions_for,
    cancel_appointment,
    confirm_appointment,
    get_appointment_for_patient,
    get_last_move,
    get_open_rebook_task_id,
    list_appointments_for_patient,
    record_appointment_view,
    request_rebook,
)
from hub.store.letters import list_letters_for_patient
from hub.store.nhs_app import mark_letters_seen
from hub.store.offers import list_open_offers, wants_earlier
from hub.vocabulary import CANCEL_REASON_LABELS, CancelMode, HospitalStatus, Mode, WhyNot
from hub.web.common import Hub, hub_of, read_form, render, require_patient
from hub.web.patient.slots import may_change_time

_REASON_MAX = 500


async def _patient_and_appointments(request: Request) -> tuple[Row, list[Row]]:
    hub = hub_of(request)
    session = await require_patient(request)
    patient: Row = request.state.patient
    since = past_horizon(hub.clock.now(), hub.settings.past_months)
    return patient, await list_appointments_for_patient(hub.db, session.patient_id, since=since)


async def appointment_list(request: Request) -> Response:
    hub = hub_of(request)
    patient, appointments = await _patient_and_appointments(request)
    now = hub.clock.now()
    groups: dict[str, list[Row]] = {"upcoming": [], "past": [], "cancelled": []}
    for appointment in appointments:
        group = group_of(
            status=appointment["status"],
            starts_at=appointment["starts_at"],
            duration_minutes=appointment["duration_minutes"],
            now=now,
        )
        groups[group].append(appointment)
    groups["past"].reverse()  # most recent first
    letters = await list_letters_for_patient(hub.db, patient["id"])
    offers = await list_open_offers(hub.db, patient["id"], now=now)
    context = {"patient": patient, "groups": groups, "letters": letters, "offers": offers}
    # The one notice this page shows; any other value would only make another copy of the same page to remember.
    context["done"] = "offer_declined" if request.query_params.get("done") == "offer_declined" else ""
    return render(request, "views/patient/appointments.html", context, remember=True)


async def _own_appointment(request: Request) -> tuple[Hub, int, Row]:
    hub = hub_of(request)
    session = await require_patient(request)
    appointment = await get_appointment_for_patient(hub.db, session.patient_id, request.path_params["id"])
    if appointment is None:
        raise HTTPException(404)
    return hub, session.patient_id, appointment


async def appointment_detail(request: Request) -> Response:
    hub, patient_id, appointment = await _own_appointment(request)
    await record_appointment_view(hub.db, appointment, now=hub.clock.now())
    allowed = await actions_for(hub.db, appointment, now=hub.clock.now(), policy=hub.policies.action)
    letters = await list_letters_for_patient(hub.db, patient_id, appointment_id=appointment["id"])
    if letters:  # the NHS App shows them as Seen
        await mark_letters_seen(hub.db, patient_id=patient_id, appointment_id=appointment["id"], now=hub.clock.now())
    return render(
        request,
        "views/patient/appointment.html",
        {
            "appointment": appointment,
            "allowed": allowed,
            "change_time": await may_change_time(hub, appointment, allowed),
            "wants_earlier": await wants_earlier(hub.db, appointment["id"]),
            "letters": letters,
            "move": await get_last_move(hub.db, appointment["id"]),
            "rebook_open": await get_open_rebook_task_id(hub.db, appointment["id"]) is not None,
            "done": request.query_params.get("done", ""),
            "refused": request.query_params.get("refused", ""),
        },
    )


def _after(appointment_id: int, result: ActionResult, done: str) -> Response:
    query = f"done={done}" if result.done else f"refused={result.why_not}"
    return RedirectResponse(f"/appointments/{appointment_id}?{query}", status_code=303)


async def confirm(request: Request) -> Response:
    hub, patient_id, appointment = await _own_appointment(request)
    await read_form(request)
    result = await confirm_appointment(
        hub.db,
        patient_id=patient_id,
        appointment_id=appointment["id"],
        now=hub.clock.now(),
        policy=hub.policies.action,
    )
    return _after(appointment["id"], result, "confirmed")


async def rebook_page(request: Request) -> Response:
    hub, _, appointment = await _own_appointment(request)
    allowed = await actions_for(hub.db, appointment, now=hub.clock.now(), policy=hub.policies.action)
    # An open request may be updated (request_rebook does that) even at the limit, but only while changes are open.
    may_update = allowed.why_not == WhyNot.NONE and await get_open_rebook_task_id(hub.db, appointment["id"]) is not None
    if not allowed.rebook and not may_update:
        return RedirectResponse(f"/appointments/{appointment['id']}?refused={allowed.why_not or WhyNot.LIMIT}", 303)
    return render(request, "views/patient/rebook.html", {"appointment": appointment, "values": {}, "errors": {}})


async def rebook(request: Request) -> Response:
    hub, patient_id, appointment = await _own_appointment(request)
    form = await read_form(request)
    reason, preferred = form.get("reason", "").strip(), form.get("preferred_times", "").strip()
    errors = {
        name: f"{label} must be {_REASON_MAX} characters or fewer"
        for name, label, value in (
            ("reason", "Reason", reason),
            ("preferred_times", "Preferred times", preferred),
        )
        if len(value) > _REASON_MAX
    }
    if errors:
        context = {"appointment": appointment, "values": form, "errors": errors}
        return render(request, "views/patient/rebook.html", context, status=422)
    result = await request_rebook(
        hub.db,
        patient_id=patient_id,
        appointment_id=appointment["id"],
        reason=reason,
        preferred_times=preferred,
        now=hub.clock.now(),
        policy=hub.policies.action,
    )
    return _after(appointment["id"], result, "rebook")


async def cancel_page(request: Request) -> Response:
    hub, _, appointment = await _own_appointment(request)
    allowed = await actions_for(hub.db, appointment, now=hub.clock.now(), policy=hub.policies.action)
    if not allowed.cancel:
        return RedirectResponse(f"/appointments/{appointment['id']}?refused={allowed.why_not or WhyNot.CLOSED}", 303)
    context = {"appointment": appointment, "reasons": CANCEL_REASON_LABELS, "values": {}, "errors": {}}
    return render(request, "views/patient/cancel.html", context)


async def cancel(request: Request) -> Response:
    hub, patient_id, appointment = await _own_appointment(request)
    form = await read_form(request)
    reason, details = form.get("reason", ""), form.get("details", "").strip()
    errors = {}
    if reason not in CANCEL_REASON_LABELS:
        errors["reason"] = "Select why you want to cancel"
    if len(details) > _REASON_MAX:
        errors["details"] = f"Details must be {_REASON_MAX} characters or fewer"
    if errors:
        context = {"appointment": appointment, "reasons": CANCEL_REASON_LABELS, "values": form, "errors": errors}
        return render(request, "views/patient/cancel.html", context, status=422)
    result = await cancel_appointment(
        hub.db,
        patient_id=patient_id,
        appointment_id=appointment["id"],
        reason=reason,
        details=details,
        now=hub.clock.now(),
        policy=hub.policies.action,
    )
    return _after(
        appointment["id"], result, "cancelled" if hub.settings.cancel_mode == CancelMode.IMMEDIATE else "cancel"
    )


def _event(hub: Hub, appointment: Row, link_id: str) -> CalendarEvent:
    s = hub.settings
    summary = "Hospital appointment"
    if s.calendar_show_clinic and appointment["clinic"]:
        summary = f"Hospital appointment: {appointment['clinic']}"
    location = ", ".join(
        p for p in (appointment["site_name"], appointment["site_address"], appointment["site_postcode"]) if p
    )
    if appointment["mode"] != Mode.IN_PERSON:
        location = ""
    host = s.base_url.split("://", 1)[1].split("/")[0].split(":")[0]
    return CalendarEvent(
        uid=f"appointment-{appointment['id']}@{host}",
        sequence=appointment["sequence"],
        start=appointment["starts_at"],
        duration_minutes=appointment["duration_minutes"],
        summary=summary,
        description=f"See the details or change this appointment: {patient_link(s, link_id)}",
        location=location,
        url=patient_link(s, link_id),
        cancelled=appointment["status"] == HospitalStatus.CANCELLED,
    )


def _calendar_response(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


async def appointment_calendar(request: Request) -> Response:
    hub, _, appointment = await _own_appointment(request)
    body = build_calendar([_event(hub, appointment, request.state.patient["link_id"])], now=hub.clock.now())
    return _calendar_response(body, f"appointment-{appointment['id']}.ics")


async def all_calendar(request: Request) -> Response:
    hub = hub_of(request)
    patient, appointments = await _patient_and_appointments(request)
    now = hub.clock.now()
    # "Add all your upcoming appointments": a cancelled one is not coming (its own .ics still says CANCELLED).
    coming = [
        a
        for a in appointments
        if a["starts_at"] + timedelta(minutes=a["duration_minutes"]) > now and a["status"] != HospitalStatus.CANCELLED
    ]
    return _calendar_response(
        build_calendar([_event(hub, a, patient["link_id"]) for a in coming], now=now), "appointments.ics"
    )
