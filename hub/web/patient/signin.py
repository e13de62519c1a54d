"""Sign-in pages: details, security code, the twins' verification code, sign-out.

A GET never sends or uses anything up (phones prefetch links); only a POST acts.
"""

from __future__ import annotations

from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.clock import london
from hub.links import read_link_token
from hub.notify.sender import send_decoy, send_immediate
from hub.rules.codes import clean_code, is_well_formed
from hub.rules.contacts import parse_contact, parse_date_of_birth
from hub.store.audit import record_audit
from hub.store.links import patient_for_link
from hub.store.sessions import end_patient_sessions, end_session
from hub.store.signin import Issued, consume_code, create_code_challenge, reissue_code_challenge
from hub.store.verification_codes import awaiting_verification_code, choose_record_by_verification_code
from hub.vocabulary import ActorType, AuditAction, RecordType
from hub.web.common import (
    Hub,
    client_key,
    cookie_name,
    delete_cookie,
    hub_of,
    read_form,
    render,
    require_patient,
    set_cookie,
    signed_in_patient,
)

SIGNIN_COOKIE = "hub_signin"
SESSION_COOKIE = "hub_session"
# How the patient signs in, "mobile" or "email": what they typed, never what the record holds, so the code page says
# the same whether or not the details matched (the code itself goes by text whenever the record has a mobile).
SIGNIN_BY_COOKIE = "hub_signin_by"
_SIGNIN_COOKIE_AGE = 30 * 60

CODE_ERRORS = {
    "wrong": "The security code is not right. Check it and try again.",
    "expired": "This security code has expired. Ask for a new code.",
    "locked": "You have entered the wrong code too many times. Ask for a new code.",
    "too_many": "Too many wrong codes have been entered from this device. Try again in an hour.",
}


def _start_page(
    request: Request,
    *,
    link: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "views/patient/start.html",
        {
            "link": link,
            "values": values or {},
            "errors": errors or {},
            "timed_out": request.query_params.get("signed_out") == "timeout",
            "signed_out": request.query_params.get("signed_out") == "yes",
        },
        status=status,
    )


async def start(request: Request) -> Response:
    # Signed in already: asking for details again would only spend one of the hour's codes.
    if await signed_in_patient(request) is not None:
        return RedirectResponse("/appointments", status_code=303)
    return _start_page(request)


async def patient_link(request: Request) -> Response:
    token = request.path_params["token"]
    link_patient_id = await _link_patient(hub_of(request), token)
    if link_patient_id is None:
        return render(request, "views/patient/bad_link.html", status=404)
    session = await signed_in_patient(request)
    if session is not None and session.patient_id == link_patient_id:
        return RedirectResponse("/appointments", status_code=303)
    if session is not None:  # someone else's link, e.g. a child's: say who is signed in, and offer to switch
        return render(request, "views/patient/someone_else.html", {"link": token})
    return _start_page(request, link=token)


async def _link_patient(hub: Hub, token: str) -> int | None:
    """The patient a stable link reaches: None for a link not ours, an unknown link id or a rotated old link."""
    read = read_link_token(hub.settings, token)
    return None if read is None else await patient_for_link(hub.db, read)


def _sending(hub: Hub, issued: Issued) -> BackgroundTasks:
    # Sent after the answer goes back, so a match and a miss take the same time to answer. The outbox row is
    # already committed; the code itself lives only in this task's memory.
    tasks = BackgroundTasks()
    for message_id in issued.message_ids:
        tasks.add_task(send_immediate, hub.db, hub.notifier, hub.clock, message_id, {"code": issued.code})
    for decoy_id in issued.decoy_ids:  # details that matched nobody: the same work, nothing sent
        tasks.add_task(send_decoy, hub.db, hub.notifier, hub.clock, decoy_id)
    return tasks


async def submit_details(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    link = form.get("link", "")
    link_patient_id = await _link_patient(hub, link) if link else None
    if link and link_patient_id is None:
        return render(request, "views/patient/bad_link.html", status=404)
    errors: dict[str, str] = {}
    contact = parse_contact(form.get("contact", ""))
    if contact is None:
        errors["contact"] = "Enter a UK mobile number, like 07700 900 982, or an email address, like name@example.com"
    born = parse_date_of_birth(
        form.get("dob-day", ""),
        form.get("dob-month", ""),
        form.get("dob-year", ""),
        today=london(hub.clock.now()).date(),
    )
    if isinstance(born, str):
        errors["dob"] = born
    if errors or contact is None or isinstance(born, str):
        return _start_page(request, link=link, values=form, errors=errors, status=422)
    issued = await create_code_challenge(
        hub.db,
        secret=hub.settings.secret_key,
        contact=contact,
        date_of_birth=born,
        link_patient_id=link_patient_id,
        client_key=client_key(request),
        limits=hub.policies.limits,
        templates=hub.policies.code_templates,
        now=hub.clock.now(),
        current_token=_signin_token(request),
        policy=hub.policies.code,
    )
    if issued.token is None:
        return render(request, "views/patient/too_many_codes.html", status=429)
    response = RedirectResponse("/sign-in/code", status_code=303, background=_sending(hub, issued))
    set_cookie(response, request, SIGNIN_COOKIE, issued.token, max_age=_SIGNIN_COOKIE_AGE)
    set_cookie(response, request, SIGNIN_BY_COOKIE, contact.kind, max_age=_SIGNIN_COOKIE_AGE)
    return response


def _signin_token(request: Request) -> str:
    return request.cookies.get(cookie_name(request, SIGNIN_COOKIE), "")[:100]


def _by(request: Request) -> str:
    """ "mobile", "email", or "" when the browser does not say."""
    by = request.cookies.get(cookie_name(request, SIGNIN_BY_COOKIE), "")
    return by if by in ("mobile", "email") else ""


def _code_page(request: Request, *, error: str = "", resent: bool = False, status: int = 200) -> Response:
    context = {"error": error, "resent": resent, "by": _by(request)}
    return render(request, "views/patient/code.html", context, status=status)


async def code_page(request: Request) -> Response:
    if not _signin_token(request):
        return RedirectResponse("/", status_code=303)
    return _code_page(request, resent=request.query_params.get("resent") == "1")


async def code_not_received_page(request: Request) -> Response:
    if not _signin_token(request):
        return RedirectResponse("/", status_code=303)
    return render(request, "views/patient/code_not_received.html", {"by": _by(request)})


async def submit_code(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    token = _signin_token(request)
    if not token:
        return RedirectResponse("/", status_code=303)
    code = clean_code(form.get("code", ""))
    if not is_well_formed(code):
        message = "Enter the security code" if not code else "The security code must be 6 numbers"
        return _code_page(request, error=message, status=422)
    result = await consume_code(
        hub.db,
        secret=hub.settings.secret_key,
        token=token,
        code=code,
        client_key=client_key(request),
        policy=hub.policies.code,
        limits=hub.policies.limits,
        now=hub.clock.now(),
    )
    if result.outcome == "signed_in":
        return await _signed_in(request, result.session_token)
    if result.outcome == "choose_record":
        return RedirectResponse("/sign-in/verification-code", status_code=303)
    if result.outcome == "gone":
        return RedirectResponse("/", status_code=303)
    error = CODE_ERRORS[result.outcome]
    if result.outcome == "wrong":
        error += {0: " That was the last try: ask for a new code.", 1: " You have 1 more try."}.get(
            result.tries_left, f" You have {result.tries_left} more tries."
        )
    return _code_page(request, error=error, status=422)


async def _signed_in(request: Request, session_token: str) -> Response:
    hub = hub_of(request)
    previous = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if previous:
        # Signing in again in one browser (say, the parent's other child) ends the browser's last session.
        async with hub.db.write(keys=()) as tx:  # one session's row, by a conditional UPDATE
            await end_session(tx, secret=hub.settings.secret_key, token=previous, at=hub.clock.now())
    response = RedirectResponse("/appointments", status_code=303)
    delete_cookie(response, request, SIGNIN_COOKIE)
    delete_cookie(response, request, SIGNIN_BY_COOKIE)
    set_cookie(response, request, SESSION_COOKIE, session_token)
    return response


async def resend_code(request: Request) -> Response:
    hub = hub_of(request)
    await read_form(request)
    token = _signin_token(request)
    issued = (
        await reissue_code_challenge(
            hub.db,
            secret=hub.settings.secret_key,
            token=token,
            client_key=client_key(request),
            limits=hub.policies.limits,
            templates=hub.policies.code_templates,
            now=hub.clock.now(),
        )
        if token
        else None
    )
    if issued is None:
        return RedirectResponse("/", status_code=303)
    if issued.token is None:
        return render(request, "views/patient/too_many_codes.html", status=429)
    response = RedirectResponse("/sign-in/code?resent=1", status_code=303, background=_sending(hub, issued))
    set_cookie(response, request, SIGNIN_COOKIE, issued.token, max_age=_SIGNIN_COOKIE_AGE)
    return response


async def verification_code_page(request: Request) -> Response:
    hub = hub_of(request)
    token = _signin_token(request)
    if not token or not await awaiting_verification_code(
        hub.db, secret=hub.settings.secret_key, token=token, now=hub.clock.now()
    ):
        return RedirectResponse("/", status_code=303)
    return render(request, "views/patient/verification_code.html")


async def submit_verification_code(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    token = _signin_token(request)
    typed = form.get("verification_code", "").strip()
    if not typed:
        return render(
            request,
            "views/patient/verification_code.html",
            {"error": "Enter the verification code from your letter or message"},
            status=422,
        )
    result = await choose_record_by_verification_code(
        hub.db, secret=hub.settings.secret_key, token=token, verification_code=typed[:20], now=hub.clock.now()
    )
    if result.outcome == "signed_in":
        return await _signed_in(request, result.session_token)
    if result.outcome == "wrong":
        return render(
            request,
            "views/patient/verification_code.html",
            {"error": "The verification code is not right. Check your letter or message and try again."},
            status=422,
        )
    return RedirectResponse("/", status_code=303)


async def sign_out_page(request: Request) -> Response:
    await require_patient(request)
    return render(request, "views/patient/sign_out.html")


async def sign_out(request: Request) -> Response:
    hub = hub_of(request)
    session = await require_patient(request)
    form = await read_form(request)
    async with hub.db.write(patient=session.patient_id) as tx:
        await end_patient_sessions(tx, patient_id=session.patient_id, at=hub.clock.now())
        await record_audit(
            tx,
            at=hub.clock.now(),
            actor_type=ActorType.PATIENT,
            actor_id=session.patient_id,
            action=AuditAction.SIGNED_OUT,
            record_type=RecordType.PATIENT,
            record_id=session.patient_id,
        )
    # "Sign out and continue as someone else" carries that person's link: their sign-in page comes next.
    link = form.get("link", "")
    switching = bool(link) and read_link_token(hub.settings, link) is not None
    response = RedirectResponse(f"/p/{link}?signed_out=yes" if switching else "/?signed_out=yes", status_code=303)
    delete_cookie(response, request, SESSION_COOKIE)
    return response
