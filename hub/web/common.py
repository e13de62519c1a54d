"""What every page handler shares: templates, forms with CSRF, cookies, the signed-in patient."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from joserfc.jwk import RSAKey
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from hub.clock import (
    Clock,
    format_birth_date,
    format_date,
    format_duration,
    format_time,
    format_when,
    format_working_days,
    plural,
)
from hub.db import Database, Row
from hub.notify import Notifier
from hub.rules.appointments import ActionPolicy
from hub.rules.codes import CodePolicy, keyed_hash
from hub.rules.contacts import display_mobile
from hub.rules.fhir import Hidden
from hub.rules.staff import LockoutPolicy
from hub.rules.tasks import QueuePolicy
from hub.rules.text import printable
from hub.settings import ROOT, Settings
from hub.store.sessions import EXPIRED, EXPIRED_OWN_LIMIT, PatientSession, SessionPolicy, get_live_session
from hub.store.signin import Limits, Templates
from hub.vocabulary import (
    CANCEL_REASON_LABELS,
    CHANNEL_LABELS,
    HOSPITAL_STATUS_LABELS,
    LETTER_KIND_LABELS,
    MODE_LABELS,
    REQUEST_STATE_LABELS,
    TEMPLATE_ENUMS,
    CancelMode,
)
from hub.web.components import SLOT, remembered_components, written_components
from hub.web.oidc import Oidc
from hub.web.remembered_pages import RememberedPages

TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
NHSUK_DIST = ROOT / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"
MAX_FIELD = 2000  # characters kept of any one form field
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policies:
    """The rules' parameters, read from the settings once at start-up rather than in every handler."""

    action: ActionPolicy
    code: CodePolicy
    limits: Limits
    code_templates: Templates
    session: SessionPolicy
    lockout: LockoutPolicy
    queue: QueuePolicy
    hidden: Hidden  # clinics and specialties the NHS App never shows
    nhs_login_idle: timedelta  # an NHS login session's own idle limit (WF-NFR-18)
    trusted_proxies: tuple[Network, ...] = ()  # our own proxies: only they may say who the client is

    @classmethod
    def from_settings(cls, s: Settings) -> Policies:
        return cls(
            action=ActionPolicy(timedelta(hours=s.change_cutoff_hours), s.rebook_limit, CancelMode(s.cancel_mode)),
            code=CodePolicy(timedelta(seconds=s.code_lifetime_seconds), s.code_max_guesses),
            limits=Limits(
                codes_per_contact=s.codes_per_contact_per_hour,
                codes_per_client=s.codes_per_client_per_hour,
                guesses_per_client=s.guesses_per_client_per_hour,
                codes_per_identity=s.codes_per_identity_per_hour,
            ),
            code_templates=Templates(s.notify.templates.security_code_sms, s.notify.templates.security_code_email),
            session=SessionPolicy(
                idle=timedelta(minutes=s.session_idle_minutes), absolute=timedelta(minutes=s.session_absolute_minutes)
            ),
            lockout=LockoutPolicy(
                attempts=s.staff.lockout_attempts,
                duration=timedelta(minutes=s.staff.lockout_minutes),
                per_client=s.staff.password_attempts_per_client_per_hour,
            ),
            queue=QueuePolicy(
                sla_working_days=s.staff.sla_working_days,
                claim=timedelta(minutes=s.staff.claim_minutes),
                retry=timedelta(minutes=s.staff.retry_minutes),
                max_attempts=s.staff.max_attempts,
            ),
            hidden=Hidden.from_settings(s.nhs_app.hidden_clinics, s.nhs_app.hidden_specialties),
            nhs_login_idle=timedelta(minutes=s.nhs_login.idle_minutes),
            trusted_proxies=tuple(ipaddress.ip_network(p, strict=False) for p in s.trusted_proxies),
        )


@dataclass
class Hub:
    """What the app holds for its lifetime; handlers read it as request.app.state.hub."""

    settings: Settings
    clock: Clock
    db: Database
    notifier: Notifier
    templates: Environment
    assets: Assets
    policies: Policies
    oidc: Oidc | None = None  # NHS login's and the Aggregator's keys, when either is switched on
    nhs_login_key: RSAKey | None = None  # our private_key_jwt signing key, when NHS login is on
    pages: RememberedPages = field(default_factory=RememberedPages)


def hub_of(request: Request) -> Hub:
    return request.app.state.hub


class Assets:
    """Cache-busted asset URLs: the content hash rides in the query, so files can be cached for a year."""

    def __init__(self, mounts: dict[str, Path]) -> None:
        self._mounts = mounts
        self._urls: dict[str, str] = {}

    def url(self, path: str) -> str:
        if path not in self._urls:
            prefix, _, rest = path.lstrip("/").partition("/")
            file = self._mounts[prefix] / rest
            digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
            self._urls[path] = f"/{prefix}/{rest}?v={digest}"
        return self._urls[path]


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Templates(Environment):
    """Rows reach templates as dicts. Jinja looks `row.clinic` up as an attribute first and a key second, and
    the missing attribute raises on the way, the dearest part of a lookup; for a dict the key is tried first,
    unless the name is one of dict's own (`values.get` stays the method even when a form posts a field "get")."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals: the environment's own dict where the template adds none. Jinja's default, a
        ChainMap over it, is read key by key in Python: every render copied its ~70 globals through it, and every
        `{% from ... import %}` compared their keys one by one, a sixth of the list page's rendering. The
        globals are all set in make_templates, before any template is loaded, and never changed after."""
        if not d:
            return self.globals
        return super().make_globals(d)


def _words(value: str) -> str:
    """'no_longer_needed' -> 'No longer needed'."""
    text = str(value).replace("_", " ")
    return text[:1].upper() + text[1:]


def make_templates(assets: Assets, settings: Settings) -> Environment:
    env = _Templates(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PackageLoader("nhsuk_frontend_jinja")]),
        autoescape=select_autoescape(["html", "jinja"]),
        undefined=ChainableUndefined,  # the NHS.UK macros read optional nested params
        auto_reload=False,  # templates change only with a deploy; checking the files every render costs ~50 stats
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        service_name=settings.service_name,
        booking_phone=settings.booking_phone,
        operator_name=settings.operator_name,
        statement_prepared=format_birth_date(settings.accessibility_statement_date),
        rebook_limit=settings.rebook_limit,
        cutoff_hours=settings.change_cutoff_hours,
        cancel_mode=settings.cancel_mode,
        # What pages say about time comes from the settings that decide it.
        code_lifetime=format_duration(settings.code_lifetime_seconds),
        session_idle=format_duration(settings.session_idle_minutes * 60),
        staff_idle=format_duration(settings.staff.session_idle_minutes * 60),
        sla_text=plural(settings.staff.sla_working_days, "working day"),
        posted_after=format_duration(settings.escalation_hours[2] * 3600),
        past_months=settings.past_months,
        nhs_login_enabled=settings.nhs_login.enabled,
        nhs_login_idle=format_duration(settings.nhs_login.idle_minutes * 60),
        nhs_login_warning=format_duration((settings.nhs_login.idle_minutes - settings.nhs_login.warn_minutes) * 60),
        modes=MODE_LABELS,
        statuses=HOSPITAL_STATUS_LABELS,
        request_states=REQUEST_STATE_LABELS,
        letter_kinds=LETTER_KIND_LABELS,
        channels=CHANNEL_LABELS,
        cancel_reasons=CANCEL_REASON_LABELS,
        # Templates compare values with members of the vocabulary's enums, never with bare strings.
        **TEMPLATE_ENUMS,
    )
    env.globals.update(remembered_components(env), slot=SLOT)
    env.globals.update(written_components(env))
    # Filters rather than functions: Jinja binds a filter when it compiles the template; a function is looked up
    # and checked at every call.
    env.filters["asset"] = assets.url
    env.filters["london_when"] = format_when
    env.filters["london_date"] = format_date
    env.filters["london_time"] = format_time
    # What staff pages show instead of stored values: 07700 900001, 14 March 1948, words rather than snake_case.
    env.filters["mobile"] = display_mobile
    env.filters["birth_date"] = format_birth_date
    env.filters["working_days"] = format_working_days
    env.filters["words"] = _words
    return env


def cookie_name(request: Request, base: str) -> str:
    return f"__Host-{base}" if hub_of(request).settings.https else base


def set_cookie(response: Response, request: Request, base: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=hub_of(request).settings.https,
    )


def delete_cookie(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base),
        path="/",
        httponly=True,
        samesite="lax",
        secure=hub_of(request).settings.https,
    )


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str:
    """The client's address. X-Forwarded-For counts only when the connection comes from one of our proxies, and
    then only its rightmost address that is not one of them: each proxy appends the address it saw, and anything
    to the left of our first proxy's entry was written by the client."""
    address = peer
    if not _trusted(peer, proxies):
        return address
    for entry in reversed([part.strip() for header in forwarded_for for part in header.split(",")]):
        if not entry:
            continue
        address = entry
        if not _trusted(entry, proxies):
            break
    return address


def client_key(request: Request) -> str:
    """A keyed hash of the client's address: enough to rate-limit, not enough to identify."""
    hub = hub_of(request)
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.getlist("x-forwarded-for")
    address = client_address(peer, forwarded, hub.policies.trusted_proxies)
    return keyed_hash(hub.settings.secret_key, "client", address)


# CSRF: a token derived from the browser's session (or, before sign-in, an anonymous cookie) with our key.
# A page from another site can make the browser post, but cannot read or compute the token.
def _browser_id(request: Request) -> str:
    return request.cookies.get(cookie_name(request, "hub_session")) or request.state.anon_id


def _staff_token(request: Request) -> str:
    # The scope's path, not request.url's, which builds the whole URL (a few microseconds on every page).
    if not request.scope["path"].startswith("/staff"):
        return ""
    return request.cookies.get(cookie_name(request, "hub_staff"), "")


def csrf_token(request: Request) -> str:
    # In the console, bound to the staff session once there is one: a token from before sign-in, or from an
    # earlier session in the same browser, is worth nothing after it.
    staff = _staff_token(request)
    if staff:
        return keyed_hash(hub_of(request).settings.secret_key, "csrf-staff", staff)
    return keyed_hash(hub_of(request).settings.secret_key, "csrf", _browser_id(request))


async def read_form(request: Request) -> dict[str, str]:
    """The posted form, fields trimmed to size; 403 unless its CSRF token is this browser's."""
    try:
        form: FormData = await request.form(max_files=0, max_fields=50)
    except HTTPException:
        raise
    except Exception as exc:  # a malformed body is the sender's mistake, not ours
        raise HTTPException(400, "The form could not be read") from exc
    # Control characters (NUL above all) are nobody's intended input.
    fields = {key: printable(value[:MAX_FIELD]) for key, value in form.items() if isinstance(value, str)}
    expected = csrf_token(request)
    if not hmac.compare_digest(fields.get("csrf_token", "").encode(), expected.encode()):
        raise HTTPException(403, "csrf")
    return fields


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200, remember: bool = False
) -> Response:
    """`remember`: the page's template reads its context and nothing else (not the request, not the clock), so
    the same context may be answered with the same page (hub.web.remembered_pages)."""
    patient: Row | None = getattr(request.state, "patient", None)
    idle: timedelta | None = getattr(request.state, "session_idle", None)
    hub = hub_of(request)
    ctx = {
        "csrf_token": csrf_token(request),
        "patient": patient,
        "signed_in": patient is not None,
        # An NHS login session warns before it ends, a minute ahead (a script; without it the session still ends).
        "idle_warning": {"idle": int(idle.total_seconds()), "warn": _warn_seconds(request)} if idle else None,
        **(context or {}),
    }
    page = hub.templates.get_template(template)
    if remember:
        return hub.pages.response(request.scope, page, ctx, status)
    return HTMLResponse(page.render(request=request, **ctx), status_code=status)


def _warn_seconds(request: Request) -> int:
    return hub_of(request).settings.nhs_login.warn_minutes * 60


class SignInRequired(Exception):
    def __init__(self, *, timed_out: bool, nhs_login: bool = False) -> None:
        self.timed_out = timed_out
        self.nhs_login = nhs_login  # an NHS login session: its end has a page of its own (WF-NFR-18)


async def require_patient(request: Request) -> PatientSession:
    hub = hub_of(request)
    token = request.cookies.get(cookie_name(request, "hub_session"))
    if not token:
        raise SignInRequired(timed_out=False)
    found = await get_live_session(
        hub.db, secret=hub.settings.secret_key, token=token, now=hub.clock.now(), policy=hub.policies.session
    )
    if not isinstance(found, PatientSession):
        raise SignInRequired(timed_out=found in (EXPIRED, EXPIRED_OWN_LIMIT), nhs_login=found == EXPIRED_OWN_LIMIT)
    request.state.patient = found.patient
    request.state.session_idle = found.idle
    return found


async def signed_in_patient(request: Request) -> PatientSession | None:
    """For pages anyone may see (site, accessibility, privacy, not found): the patient when signed in, so the
    page keeps their header; nobody otherwise."""
    try:
        return await require_patient(request)
    except SignInRequired:
        return None
