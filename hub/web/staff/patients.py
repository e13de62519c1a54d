"""Patient look-up and the patient's record for agents, with its actions: stop texts, resend the link, and (admins)
send a new link, which stops the old one working."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.clock import london
from hub.rules.codes import keyed_hash
from hub.rules.contacts import parse_date_of_birth
from hub.rules.text import printable
from hub.store.audit import record_staff_read
from hub.store.links import send_new_link
from hub.store.staff_lookup import (
    SEARCH_LIMIT,
    find_patients,
    get_patient_record,
    opt_out_of_texts,
    resend_link,
    survivor_of,
)
from hub.store.staff_scope import patient_in_scope
from hub.vocabulary import ActorType, AuditAction, RecordType
from hub.web.common import hub_of, read_form
from hub.web.staff.common import require_admin, require_staff, scope_of, see_other, staff_page

DONE = {
    "opted_out": "Texts are stopped for this patient. Messages go by email or post.",
    "link_sent": "The patient's link is on its way.",
    "no_contact": "The link was not sent: we have no mobile number or email address we may use for this patient"
    " (none on record, or they chose post only).",
    "new_link_sent": "A new link is on its way to the patient. Their old link no longer works.",
    "new_link_not_sent": "Their old link no longer works. The new link was not sent: we have no mobile number or email"
    " address we may use for this patient. The next message the hub sends them carries it.",
}


async def search(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    q = request.query_params
    values = {
        k: printable(q.get(k, "")).strip()[:100]
        for k in ("nhs_number", "mrn", "family_name", "dob-day", "dob-month", "dob-year")
    }
    errors: dict[str, str] = {}
    dob = ""
    if values["family_name"] or any(values[k] for k in ("dob-day", "dob-month", "dob-year")):
        parsed = parse_date_of_birth(
            values["dob-day"], values["dob-month"], values["dob-year"], today=london(hub.clock.now()).date()
        )
        if isinstance(parsed, str):
            errors["dob"] = parsed.replace("your ", "the patient's ")
        else:
            dob = parsed.isoformat()
        if not values["family_name"]:
            errors["family_name"] = "Enter the family name with the date of birth"
    searched = any(values.values())
    results = (
        []
        if errors
        else await find_patients(
            hub.db,
            scope=scope_of(request),
            nhs_number=values["nhs_number"].replace(" ", ""),
            mrn=values["mrn"],
            family_name=values["family_name"],
            date_of_birth=dob,
        )
    )
    if searched and not errors:
        # What was searched for is kept only as a keyed hash (it can be matched, not read); who was shown, by id.
        terms = keyed_hash(hub.settings.secret_key, "staff-search", json.dumps(values, sort_keys=True))[:16]
        shown = ",".join(str(r["id"]) for r in results[:SEARCH_LIMIT])
        await record_staff_read(
            hub.db,
            at=hub.clock.now(),
            staff_id=staff["id"],
            action=AuditAction.PATIENTS_SEARCHED,
            record_type=RecordType.PATIENT,
            record_id="search",
            detail=f"terms {terms}; shown {shown or 'none'}",
        )
    return staff_page(
        request,
        "patients.html",
        {
            "values": values,
            "errors": errors,
            "results": results[:SEARCH_LIMIT],
            "more": len(results) > SEARCH_LIMIT,
            "searched": searched,
        },
        status=400 if errors else 200,
    )


async def _patient_id(request: Request) -> int:
    """The record in the path, or the one it was merged into: everything of the patient's is there now. Another
    trust's record stays as it is (not found, as any of theirs)."""
    patient_id = int(request.path_params["id"])
    db = hub_of(request).db
    if not await patient_in_scope(db, patient_id, scope_of(request)):
        return patient_id
    return await survivor_of(db, patient_id) or patient_id


async def patient_record(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    if (survivor := await _patient_id(request)) != request.path_params["id"]:
        return see_other(f"/staff/patients/{survivor}")
    record = await get_patient_record(hub.db, request.path_params["id"], scope=scope_of(request))
    if record is None:
        raise HTTPException(404)
    await record_staff_read(
        hub.db,
        at=hub.clock.now(),
        staff_id=staff["id"],
        action=AuditAction.PATIENT_RECORD_VIEWED,
        record_type=RecordType.PATIENT,
        record_id=request.path_params["id"],
    )
    return staff_page(request, "patient.html", {**record, "notice": DONE.get(request.query_params.get("done", ""), "")})


async def stop_texts(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    await read_form(request)
    patient_id = await _patient_id(request)
    done = await opt_out_of_texts(
        hub.db,
        patient_id=patient_id,
        staff_id=staff["id"],
        scope=scope_of(request),
        templates=hub.settings.notify.templates,
        now=hub.clock.now(),
    )
    if not done:
        raise HTTPException(404)
    return see_other(f"/staff/patients/{patient_id}?done=opted_out")


async def send_link(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    await read_form(request)
    patient_id = await _patient_id(request)
    sent = await resend_link(
        hub.db,
        patient_id=patient_id,
        staff_id=staff["id"],
        scope=scope_of(request),
        settings=hub.settings,
        now=hub.clock.now(),
    )
    if sent is None:
        raise HTTPException(404)
    return see_other(f"/staff/patients/{patient_id}?done={'link_sent' if sent else 'no_contact'}")


async def new_link_page(request: Request) -> Response:
    """Asks first: a new link cannot be undone, and the patient's old one stops working."""
    hub = hub_of(request)
    await require_admin(request)
    if (survivor := await _patient_id(request)) != request.path_params["id"]:
        return see_other(f"/staff/patients/{survivor}")
    record = await get_patient_record(hub.db, request.path_params["id"], scope=scope_of(request))
    if record is None:
        raise HTTPException(404)
    return staff_page(request, "new_link.html", {"patient": record["patient"]})


async def send_new_link_now(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_admin(request)
    await read_form(request)
    patient_id = await _patient_id(request)
    if not await patient_in_scope(hub.db, patient_id, scope_of(request)):
        raise HTTPException(404)
    sent = await send_new_link(
        hub.db,
        patient_id=patient_id,
        actor_type=ActorType.AGENT,
        actor_id=staff["id"],
        settings=hub.settings,
        now=hub.clock.now(),
    )
    if sent is None:
        raise HTTPException(404)
    done = "new_link_sent" if sent.channel else "new_link_not_sent"
    return see_other(f"/staff/patients/{patient_id}?done={done}")
