"""The patient's letters and preferences."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.store.letters import list_letters_for_patient, open_letter
from hub.store.messages import list_messages_for_patient
from hub.store.patients import get_patient, update_preferences
from hub.vocabulary import ContactPreference
from hub.web.common import hub_of, read_form, render, require_patient
from hub.web.patient.nhs_login import forget_opening, opened_through_nhs_login


async def letter_list(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    letters = await list_letters_for_patient(hub.db, session.patient_id)
    return render(request, "views/patient/letters.html", {"letters": letters})


async def message_list(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    messages = await list_messages_for_patient(hub.db, session.patient_id)
    return render(request, "views/patient/messages.html", {"messages": messages})


async def letter_view(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    letter_id = int(request.path_params["id"])
    # A page on another site can open this URL in the patient's browser (SameSite=Lax lets the cookie go):
    # that is not the patient reading the letter, and a "viewed" would stop the reminders and the posted copy.
    # The one cross-site request that is the patient's own: the end of their NHS login from the NHS App's link to
    # the letter. Browsers too old to send Sec-Fetch-Site are taken at their word.
    cross_site = request.headers.get("sec-fetch-site", "same-origin") == "cross-site"
    from_nhs_app = cross_site and opened_through_nhs_login(request, letter_id)
    found = await open_letter(
        hub.db,
        patient_id=session.patient_id,
        letter_id=letter_id,
        at=hub.clock.now(),
        record_view=not cross_site or from_nhs_app,
    )
    if found is None:
        raise HTTPException(404)
    _, content = found
    response = Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="letter-{letter_id}.pdf"',
            "Cache-Control": "no-store",
        },
    )
    if from_nhs_app:
        forget_opening(request, response)
    return response


async def _preferences_page(
    request: Request, patient_id: int, *, errors: dict[str, str], status: int = 200, saved: bool = False
) -> Response:
    patient = await get_patient(hub_of(request).db, patient_id)
    return render(
        request,
        "views/patient/preferences.html",
        {"patient": patient, "errors": errors, "saved": saved},
        status=status,
    )


async def preferences_page(request: Request) -> Response:
    session = await require_patient(request)
    return await _preferences_page(
        request, session.patient_id, errors={}, saved=request.query_params.get("saved") == "1"
    )


async def save_preferences(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    form = await read_form(request)
    patient = request.state.patient
    errors: dict[str, str] = {}
    # The page asks only what there is a choice about: with one way to reach the patient (or none) it states the
    # way and posts no answer, and the way on record stands.
    reachable = [
        c
        for c, have in ((ContactPreference.SMS, patient["mobile"]), (ContactPreference.EMAIL, patient["email"]))
        if have
    ]
    channel = form.get("contact_preference", "") if reachable else patient["contact_preference"]
    if not channel and len(reachable) == 1:
        channel = reachable[0]
    if not reachable:
        pass  # post only: the preference on record stands until a mobile or email is added
    elif channel not in tuple(ContactPreference):
        errors["contact_preference"] = "Select how you would like us to contact you"
    elif channel == ContactPreference.SMS and not patient["mobile"]:
        errors["contact_preference"] = "We do not have a mobile number for you. Choose email, or call us to add one"
    elif channel == ContactPreference.EMAIL and not patient["email"]:
        errors["contact_preference"] = "We do not have an email address for you. Choose text, or call us to add one"
    paper = form.get("paper", "")
    digital = form.get("digital", "") if reachable else ("no" if patient["opted_out"] else "yes")
    if paper not in ("yes", "no"):
        errors["paper"] = "Select whether you want letters by post as well"
    if digital not in ("yes", "no"):
        errors["digital"] = "Select whether you want texts and emails from us"
    if errors:
        return await _preferences_page(request, session.patient_id, errors=errors, status=422)
    await update_preferences(
        hub.db,
        session.patient_id,
        contact_preference=channel,
        paperless=paper == "no",
        opted_out=digital == "no",
        templates=hub.settings.notify.templates,
        at=hub.clock.now(),
    )
    return RedirectResponse("/preferences?saved=1", status_code=303)
