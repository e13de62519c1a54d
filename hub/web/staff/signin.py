"""Staff sign-in: username and password, then a code from the authenticator app (or enrolling one first).
Set-up links from `python -m hub create-staff` choose the password. Sign-out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.rules.staff import new_totp_secret, password_problem, provisioning_uri
from hub.store.staff import (
    check_password,
    check_totp,
    enrol_totp,
    get_staff,
    get_staff_by_setup_token,
    set_password_from_setup,
)
from hub.store.staff_sessions import StaffSession, end_staff_session, start_staff_session
from hub.vocabulary import StaffSessionStage
from hub.web.common import client_key, hub_of, read_form
from hub.web.staff.common import (
    current_session,
    delete_staff_cookie,
    qr_data_uri,
    require_staff,
    see_other,
    set_staff_cookie,
    staff_page,
    staff_token,
)

# One answer for a wrong password, an unknown username and a locked account: the message says how lockout
# works, so a locked-out agent knows to wait, and nobody learns which usernames exist.
WRONG_DETAILS = (
    "The username or password is not right, or the account is locked. After {attempts} wrong attempts an account"
    " is locked for {minutes} minutes."
)
WRONG_CODE = "The code is not right, or it has been used already. Wait for the next code and try again."
LOCKED = "There have been too many failed attempts. Your account is locked for {minutes} minutes."
TOO_MANY = "There have been too many wrong passwords from your network. Try again in an hour."


def _locked(request: Request) -> str:
    return LOCKED.format(minutes=hub_of(request).settings.staff.lockout_minutes)


async def sign_in_page(request: Request) -> Response:
    return staff_page(
        request, "sign_in.html", {"errors": {}, "values": {}, "timed_out": "timed_out" in request.query_params}
    )


async def sign_in(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    username = form.get("username", "").strip()
    checked = await check_password(
        hub.db,
        username=username,
        password=form.get("password", ""),
        now=hub.clock.now(),
        policy=hub.policies.lockout,
        client_key=client_key(request),
    )
    if checked.too_many:
        return staff_page(
            request,
            "sign_in.html",
            {"errors": {"username": TOO_MANY}, "values": {"username": username}, "timed_out": False},
            status=429,
        )
    if not checked.ok or checked.staff is None:
        settings = hub.settings
        message = WRONG_DETAILS.format(attempts=settings.staff.lockout_attempts, minutes=settings.staff.lockout_minutes)
        return staff_page(
            request,
            "sign_in.html",
            {"errors": {"username": message}, "values": {"username": username}, "timed_out": False},
            status=400,
        )
    staff = checked.staff
    enrolled = bool(staff["totp_secret"])
    token = await start_staff_session(
        hub.db,
        secret=hub.settings.secret_key,
        staff_id=staff["id"],
        stage=StaffSessionStage.TOTP if enrolled else StaffSessionStage.ENROL,
        pending_secret=None if enrolled else new_totp_secret(),
        at=hub.clock.now(),
        replaces=staff_token(request) or None,
    )
    response = see_other("/staff/sign-in/code" if enrolled else "/staff/enrol")
    set_staff_cookie(response, request, token)
    return response


async def _pending(request: Request, stage: StaffSessionStage) -> StaffSession | None:
    found = await current_session(request)
    return found if isinstance(found, StaffSession) and found.stage == stage else None


async def code_page(request: Request) -> Response:
    if await _pending(request, StaffSessionStage.TOTP) is None:
        return see_other("/staff/sign-in")
    return staff_page(request, "code.html", {"errors": {}})


async def _signed_in(request: Request, session: StaffSession) -> Response:
    hub = hub_of(request)
    token = await start_staff_session(
        hub.db,
        secret=hub.settings.secret_key,
        staff_id=session.staff_id,
        stage=StaffSessionStage.ACTIVE,
        at=hub.clock.now(),
        replaces=staff_token(request),
    )
    response = see_other("/staff")
    set_staff_cookie(response, request, token)
    return response


async def _refused(request: Request, template: str, locked: bool, context: dict[str, object]) -> Response:
    hub = hub_of(request)
    if locked:  # the half-finished sign-in ends: start again after the lock
        await end_staff_session(hub.db, secret=hub.settings.secret_key, token=staff_token(request), at=hub.clock.now())
        response = staff_page(
            request,
            "sign_in.html",
            {"errors": {"username": _locked(request)}, "values": {}, "timed_out": False},
            status=400,
        )
        delete_staff_cookie(response, request)
        return response
    return staff_page(request, template, {"errors": {"code": WRONG_CODE}, **context}, status=400)


async def submit_code(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    session = await _pending(request, StaffSessionStage.TOTP)
    if session is None:
        return see_other("/staff/sign-in")
    checked = await check_totp(
        hub.db, staff_id=session.staff_id, code=form.get("code", ""), now=hub.clock.now(), policy=hub.policies.lockout
    )
    if not checked.ok:
        return await _refused(request, "code.html", checked.locked, {})
    return await _signed_in(request, session)


async def _enrol_context(request: Request, session: StaffSession) -> dict[str, object]:
    hub = hub_of(request)
    staff = await get_staff(hub.db, session.staff_id)
    assert staff is not None and session.pending_secret is not None
    uri = provisioning_uri(session.pending_secret, username=staff["username"], issuer=hub.settings.service_name)
    secret = session.pending_secret
    return {"qr": qr_data_uri(uri), "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))}


async def enrol_page(request: Request) -> Response:
    session = await _pending(request, StaffSessionStage.ENROL)
    if session is None:
        return see_other("/staff/sign-in")
    return staff_page(request, "enrol.html", {"errors": {}, **await _enrol_context(request, session)})


async def submit_enrol(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    session = await _pending(request, StaffSessionStage.ENROL)
    if session is None or session.pending_secret is None:
        return see_other("/staff/sign-in")
    checked = await enrol_totp(
        hub.db,
        staff_id=session.staff_id,
        secret=session.pending_secret,
        code=form.get("code", ""),
        now=hub.clock.now(),
        policy=hub.policies.lockout,
    )
    if not checked.ok:
        return await _refused(request, "enrol.html", checked.locked, await _enrol_context(request, session))
    return await _signed_in(request, session)


async def setup_page(request: Request) -> Response:
    hub = hub_of(request)
    token = request.path_params["token"]
    staff = await get_staff_by_setup_token(hub.db, secret=hub.settings.secret_key, token=token, now=hub.clock.now())
    if staff is None:
        return staff_page(request, "setup_expired.html", status=404)
    return staff_page(request, "setup.html", {"token": token, "username": staff["username"], "errors": {}})


async def submit_setup(request: Request) -> Response:
    hub = hub_of(request)
    form = await read_form(request)
    token = request.path_params["token"]
    now = hub.clock.now()
    staff = await get_staff_by_setup_token(hub.db, secret=hub.settings.secret_key, token=token, now=now)
    if staff is None:
        return staff_page(request, "setup_expired.html", status=404)
    problem = password_problem(form.get("password", ""), form.get("confirm", ""))
    if problem:
        return staff_page(
            request,
            "setup.html",
            {"token": token, "username": staff["username"], "errors": {"password": problem}},
            status=400,
        )
    await set_password_from_setup(hub.db, staff_id=staff["id"], password=form["password"], now=now)
    session = await start_staff_session(
        hub.db,
        secret=hub.settings.secret_key,
        staff_id=staff["id"],
        stage=StaffSessionStage.ENROL,
        pending_secret=new_totp_secret(),
        at=now,
        replaces=staff_token(request) or None,
    )
    response = see_other("/staff/enrol")
    set_staff_cookie(response, request, session)
    return response


async def sign_out_page(request: Request) -> Response:
    await require_staff(request)
    return staff_page(request, "sign_out.html")


async def sign_out(request: Request) -> Response:
    hub = hub_of(request)
    await read_form(request)
    token = staff_token(request)
    if token:
        await end_staff_session(hub.db, secret=hub.settings.secret_key, token=token, at=hub.clock.now())
    response = see_other("/staff/sign-in?signed_out=1")
    delete_staff_cookie(response, request)
    return response
