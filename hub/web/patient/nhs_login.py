"""Continue with NHS login: OpenID Connect's authorization code flow with private_key_jwt client authentication,
identity proofed to P9, the patient matched by NHS number and date of birth. The NHS App's deep links start it with
the asserted identity, so a patient coming from the app is not asked again.

These GETs write only an attempt (a state and a nonce): nothing is sent and nothing used up if a phone prefetches.
"""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.rules.nhs_login import ID_TOKEN_ALGORITHMS, SCOPES, VECTORS_OF_TRUST, identity, safe_return_path
from hub.store.nhs_login import (
    create_login_attempt,
    find_patient_for_nhs_login,
    start_nhs_login_session,
    take_login_attempt,
)
from hub.store.sessions import end_session
from hub.web.common import Hub, cookie_name, delete_cookie, hub_of, render, require_patient, set_cookie
from hub.web.oidc import Oidc, ProviderError, TokenError, client_assertion

log = logging.getLogger(__name__)
STATE_COOKIE = "hub_nhs_login"
SESSION_COOKIE = "hub_session"
OPENING_COOKIE = "hub_opening"
_STATE_AGE = 10 * 60
_OPENING_AGE = 2 * 60
_TRACKING = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ASSERTION_MAX = 8000
# A deep link from the NHS App names the record to sign in as when the patient is known to several trusts.
_DEEP_LINKED = re.compile(r"/(?P<kind>appointments|letters)/(?P<id>[0-9]{1,18})")

# What each way NHS login can fail tells the patient; every page offers the security code instead.
PROBLEMS = {
    "no_match": "We could not find your hospital appointments from your NHS login details",
    "not_p9": "You need to prove who you are in NHS login first",
    "declined": "You chose not to share your NHS login information",
    "expired": "Your sign-in took too long",
    "unavailable": "NHS login is not working at the moment",
}


def _oidc(hub: Hub) -> Oidc:
    assert hub.oidc is not None  # made at start-up when NHS login is on
    return hub.oidc


def _redirect_uri(hub: Hub) -> str:
    return f"{hub.settings.base_url}/nhs-login/callback"


async def _begin(request: Request, return_to: str) -> Response:
    hub = hub_of(request)
    if not hub.settings.nhs_login.enabled:
        return RedirectResponse(return_to, status_code=303)  # the page asks for the code sign-in
    tracking = request.query_params.get("trackingId", "")
    tracking = tracking if _TRACKING.fullmatch(tracking) else ""
    asserted = request.query_params.get("assertedLoginIdentity", "")
    asserted = asserted if len(asserted) <= _ASSERTION_MAX and _JWT.fullmatch(asserted) else ""
    try:
        provider = await _oidc(hub).discovery(hub.settings.nhs_login.issuer)
    except ProviderError as exc:
        log.warning("NHS login discovery failed: %s", exc)
        return _problem(request, "unavailable", status=503)
    state, nonce = await create_login_attempt(
        hub.db, secret=hub.settings.secret_key, return_to=return_to, tracking_id=tracking, now=hub.clock.now()
    )
    params = {
        "response_type": "code",
        "client_id": hub.settings.nhs_login.client_id,
        "redirect_uri": _redirect_uri(hub),
        "scope": SCOPES,
        "state": state,
        "nonce": nonce,
        "vtr": VECTORS_OF_TRUST,
    }
    if asserted:
        # Single sign-on from the NHS App: NHS login signs the patient in without asking again.
        params |= {"asserted_login_identity": asserted, "prompt": "none"}
    if tracking:
        # A deep link's jump-off, counted for the standard's volumetrics (WF-NFR-11); the id is the Aggregator's.
        log.info("nhs app deep link to %s trackingId=%s", return_to.split("/")[1], tracking)
    response = RedirectResponse(f"{provider['authorization_endpoint']}?{urlencode(params)}", status_code=303)
    set_cookie(response, request, STATE_COOKIE, state, max_age=_STATE_AGE)
    return response


async def start(request: Request) -> Response:
    return await _begin(request, safe_return_path(request.query_params.get("return_to", "/appointments")))


async def deep_link_appointment(request: Request) -> Response:
    return await _begin(request, f"/appointments/{request.path_params['id']}")


async def deep_link_letter(request: Request) -> Response:
    return await _begin(request, f"/letters/{request.path_params['id']}")


def _problem(request: Request, problem: str, *, status: int = 200) -> Response:
    response = render(
        request, "views/patient/nhs_login_problem.html", {"problem": problem, "heading": PROBLEMS[problem]}, status
    )
    delete_cookie(response, request, STATE_COOKIE)
    return response


async def callback(request: Request) -> Response:
    hub = hub_of(request)
    settings = hub.settings.nhs_login
    state = request.query_params.get("state", "")[:100]
    if not state or state != request.cookies.get(cookie_name(request, STATE_COOKIE), ""):
        return _problem(request, "expired", status=400)  # not this browser's attempt, or its cookie has gone
    attempt = await take_login_attempt(hub.db, secret=hub.settings.secret_key, state=state, now=hub.clock.now())
    if attempt is None:
        return _problem(request, "expired", status=400)
    error = request.query_params.get("error", "")
    if error:
        log.info("NHS login answered %s", error if error.isidentifier() else "an error")
        if error in ("login_required", "interaction_required", "consent_required"):
            # The NHS App's session did not carry over: sign in at NHS login itself.
            return RedirectResponse(f"/nhs-login/start?return_to={attempt['return_to']}", status_code=303)
        return _problem(request, "declined" if error == "access_denied" else "unavailable")
    code = request.query_params.get("code", "")
    if not code or len(code) > 2000:
        return _problem(request, "expired", status=400)
    try:
        provider = await _oidc(hub).discovery(settings.issuer)
        claims = await _exchange(hub, provider, code, attempt["nonce"])
    except (ProviderError, TokenError) as exc:
        # Neither carries a token or a personal detail: the kind of failure and where from.
        log.warning("NHS login sign-in failed: %s", exc)
        return _problem(request, "unavailable", status=502)
    person = identity(claims)
    if person == "not_p9":
        return _problem(request, "not_p9")
    if isinstance(person, str):
        return _problem(request, "no_match")
    linked = _DEEP_LINKED.fullmatch(urlsplit(str(attempt["return_to"])).path)
    patient = await find_patient_for_nhs_login(
        hub.db,
        nhs_number=person.nhs_number,
        born=person.born,
        appointment_id=int(linked["id"]) if linked and linked["kind"] == "appointments" else 0,
        letter_id=int(linked["id"]) if linked and linked["kind"] == "letters" else 0,
    )
    if patient is None:
        return _problem(request, "no_match")
    previous = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if previous:
        async with hub.db.write(keys=()) as tx:  # one session's row, by a conditional UPDATE
            await end_session(tx, secret=hub.settings.secret_key, token=previous, at=hub.clock.now())
    token = await start_nhs_login_session(
        hub.db,
        secret=hub.settings.secret_key,
        patient_id=int(patient["id"]),
        idle=hub.policies.nhs_login_idle,
        now=hub.clock.now(),
    )
    response = RedirectResponse(safe_return_path(attempt["return_to"]), status_code=303)
    delete_cookie(response, request, STATE_COOKIE)
    set_cookie(response, request, SESSION_COOKIE, token)
    if linked and linked["kind"] == "letters":
        opening = _openings(hub).dumps([int(linked["id"]), _session_hash(token)])
        set_cookie(response, request, OPENING_COOKIE, opening, max_age=_OPENING_AGE)
    return response


def _openings(hub: Hub) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(hub.settings.secret_keys, salt="nhs-login-letter-opening")


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def opened_through_nhs_login(request: Request, letter_id: int) -> bool:
    """Whether this request for a letter ends the patient's own sign-in with NHS login from the NHS App's link to it
    (moments ago, in this browser, with the session that sign-in made). That request is cross-site by nature (it
    comes through NHS login's redirects), yet it is the patient opening the letter."""
    mark = request.cookies.get(cookie_name(request, OPENING_COOKIE))
    if not mark:
        return False
    try:
        opened = _openings(hub_of(request)).loads(mark, max_age=_OPENING_AGE)
    except BadSignature:
        return False
    session = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
    return bool(opened == [letter_id, _session_hash(session)])


def forget_opening(request: Request, response: Response) -> None:
    """The mark is used once: the next cross-site request for the letter is another site's again."""
    delete_cookie(response, request, OPENING_COOKIE)


async def _exchange(hub: Hub, provider: dict[str, object], code: str, nonce: str) -> dict[str, object]:
    """The code for tokens at the token endpoint, the ID token checked, then the person from userinfo."""
    settings, oidc = hub.settings.nhs_login, _oidc(hub)
    token_endpoint, userinfo = str(provider["token_endpoint"]), str(provider["userinfo_endpoint"])
    assert hub.nhs_login_key is not None
    assertion = client_assertion(
        key=hub.nhs_login_key, client_id=settings.client_id, audience=token_endpoint, now=hub.clock.now()
    )
    tokens = await oidc.post_form(
        token_endpoint,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": _redirect_uri(hub),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
        raise ProviderError("no id_token in the token response")
    claims = await oidc.verify(
        tokens["id_token"],
        jwks_url=str(provider["jwks_uri"]),
        issuer=str(provider.get("issuer", settings.issuer)),
        audience=settings.client_id,
        algorithms=ID_TOKEN_ALGORITHMS,
        nonce=nonce,
    )
    info = await oidc.get_json(userinfo, headers={"Authorization": f"Bearer {tokens.get('access_token', '')}"})
    if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
        raise TokenError("userinfo is for another subject")
    return {**claims, **info}


async def keep_alive(request: Request) -> Response:
    """The warning's "stay signed in": any signed-in request keeps the session; this one answers nothing."""
    await require_patient(request)
    return Response(status_code=204)


async def signed_out(request: Request) -> Response:
    """Where an idle NHS login session ends, with or without the script: the session is over either way."""
    hub = hub_of(request)
    token = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if token:
        async with hub.db.write(keys=()) as tx:  # one session's row, by a conditional UPDATE
            await end_session(tx, secret=hub.settings.secret_key, token=token, at=hub.clock.now())
    response = render(request, "views/patient/nhs_login_signed_out.html")
    delete_cookie(response, request, SESSION_COOKIE)
    return response
