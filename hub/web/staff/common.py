"""What every console page shares: the staff cookie and session, roles, policies and rendering."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from typing import Any

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.db import Row
from hub.rules.staff_scope import Scope
from hub.store.staff import get_staff
from hub.store.staff_scope import get_scope
from hub.store.staff_sessions import StaffSession, get_staff_session
from hub.vocabulary import AGENT_OUTCOMES, TASK_KIND_LABELS, TASK_OUTCOME_LABELS, StaffRole, StaffSessionStage
from hub.web.common import hub_of, render

STAFF_COOKIE = "hub_staff"
# What an agent may record, with its label.
_AGENT_OUTCOME_LABELS = {outcome: TASK_OUTCOME_LABELS[outcome] for outcome in AGENT_OUTCOMES}


class StaffSignInRequired(Exception):
    def __init__(self, *, timed_out: bool) -> None:
        self.timed_out = timed_out


def staff_cookie_name(request: Request) -> str:
    return f"__Host-{STAFF_COOKIE}" if hub_of(request).settings.https else STAFF_COOKIE


def set_staff_cookie(response: Response, request: Request, token: str) -> None:
    # Strict: the console is never entered from a link on another site, so the cookie never needs to travel there.
    response.set_cookie(
        staff_cookie_name(request),
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=hub_of(request).settings.https,
    )


def delete_staff_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        staff_cookie_name(request), path="/", httponly=True, samesite="strict", secure=hub_of(request).settings.https
    )


def staff_token(request: Request) -> str:
    return request.cookies.get(staff_cookie_name(request), "")


async def current_session(request: Request) -> StaffSession | str | None:
    hub = hub_of(request)
    token = staff_token(request)
    if not token:
        return None
    return await get_staff_session(
        hub.db,
        secret=hub.settings.secret_key,
        token=token,
        now=hub.clock.now(),
        idle=timedelta(minutes=hub.settings.staff.session_idle_minutes),
        absolute=timedelta(hours=hub.settings.staff.session_absolute_hours),
    )


async def require_staff(request: Request) -> Row:
    """The signed-in staff member (past both factors); otherwise off to the sign-in page. Their scope (the trusts
    they work for) is read with them, for `scope_of`."""
    found = await current_session(request)
    if not isinstance(found, StaffSession) or found.stage != StaffSessionStage.ACTIVE:
        raise StaffSignInRequired(timed_out=found == "expired")
    staff = await get_staff(hub_of(request).db, found.staff_id)
    if staff is None:
        raise StaffSignInRequired(timed_out=False)
    request.state.staff = staff
    request.state.scope = await get_scope(hub_of(request).db, staff["id"])
    return staff


def scope_of(request: Request) -> Scope:
    """What the signed-in staff member may see: every console query takes it (after `require_staff`)."""
    scope = getattr(request.state, "scope", None)
    assert isinstance(scope, Scope), "require_staff first"
    return scope


async def require_admin(request: Request) -> Row:
    staff = await require_staff(request)
    if staff["role"] != StaffRole.ADMIN:
        raise HTTPException(403, "admin only")
    return staff


def staff_page(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    staff = getattr(request.state, "staff", None)
    return render(
        request,
        f"views/staff/{template}",
        {
            "staff": staff,
            "task_kinds": TASK_KIND_LABELS,
            "outcomes": _AGENT_OUTCOME_LABELS,
            "outcome_labels": TASK_OUTCOME_LABELS,  # every way a task can end, the hub's own included
            **(context or {}),
        },
        status=status,
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def staff_sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StaffSignInRequired)
    response = see_other("/staff/sign-in?timed_out=1" if exc.timed_out else "/staff/sign-in")
    if exc.timed_out:
        delete_staff_cookie(response, request)
    return response


def qr_data_uri(uri: str) -> str:
    # A standalone SVG document: without its xmlns an <img> shows it as a broken image (svg_inline leaves it out).
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=5, dark="#212b32", light="#ffffff", xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()
