"""Admin pages: staff accounts (add, disable, reset the authenticator) and the audit log."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.rules.text import printable
from hub.store.audit import record_staff_read
from hub.store.staff import create_staff, disable_staff, get_staff, list_staff, reset_totp
from hub.store.staff_lookup import list_audit
from hub.store.staff_scope import (
    set_staff_organisations,
    shared_beyond,
    staff_in_scope,
    staff_organisation_codes,
)
from hub.vocabulary import AuditAction, RecordType, StaffRole
from hub.web.common import hub_of, read_form
from hub.web.staff.common import qr_data_uri, require_admin, scope_of, see_other, staff_page

DONE = {
    "disabled": "The account is disabled and its sessions ended.",
    "reset": "The authenticator is reset. They enrol a new one at their next sign-in.",
    "trusts": "Their trusts are saved. They see those trusts' patients and call-backs from their next page.",
}
AUDIT_FILTERS = ("actor_type", "actor_id", "action", "record_type", "record_id")


async def staff_list(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    return staff_page(
        request,
        "admin_staff.html",
        {
            "people": await list_staff(hub.db, scope=scope_of(request)),
            "trusts": await staff_organisation_codes(hub.db),
            "shared": await shared_beyond(hub.db, scope_of(request)),
            "me": me,
            "notice": DONE.get(request.query_params.get("done", ""), ""),
        },
    )


async def _new_staff_context(request: Request, errors: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    """The form's choices: the trusts the admin may give (their own; every one for a hub-wide admin)."""
    scope = scope_of(request)
    organisations = await hub_of(request).db.fetch_all("SELECT id, code, name FROM organisations ORDER BY code")
    trusts = [o for o in organisations if scope.sees(o["id"])]
    return {"roles": list(StaffRole), "trusts": trusts, "hub_wide": scope.hub_wide, "errors": errors, "values": values}


async def new_staff_page(request: Request) -> Response:
    await require_admin(request)
    return staff_page(request, "admin_staff_new.html", await _new_staff_context(request, {}, {}))


async def create(request: Request) -> Response:
    """Adds an account as `create-staff` does and shows its one-time set-up link, once: nothing stores it."""
    hub = hub_of(request)
    await require_admin(request)
    form = await read_form(request)
    values = {"username": printable(form.get("username", "")).strip()[:100], "role": form.get("role", "")}
    ticked = {k: "yes" for k, v in form.items() if v == "yes" and (k.startswith("organisation-") or k == "hub_wide")}
    values.update(ticked)
    codes = [k.removeprefix("organisation-") for k in ticked if k.startswith("organisation-")]
    errors = {}
    if not values["username"]:
        errors["username"] = "Enter a username"
    if values["role"] not in tuple(StaffRole):
        errors["role"] = "Choose a role"
    if not codes and "hub_wide" not in ticked:
        errors["trusts"] = "Choose the trusts they work for"
    if not errors:
        try:
            token = await create_staff(
                hub.db,
                username=values["username"],
                role=values["role"],
                secret=hub.settings.secret_key,
                now=hub.clock.now(),
                hours=hub.settings.staff.setup_hours,
                organisations=codes,
                hub_wide="hub_wide" in ticked,
                by=scope_of(request),
            )
        except ValueError as exc:
            field = "username" if "username" in str(exc) or "staff member called" in str(exc) else "trusts"
            errors[field] = str(exc).capitalize()
    if errors:
        context = await _new_staff_context(request, errors, values)
        return staff_page(request, "admin_staff_new.html", context, status=400)
    link = f"{hub.settings.base_url}/staff/setup/{token}"
    response = staff_page(
        request,
        "admin_staff_link.html",
        {
            "username": values["username"].lower(),
            "role": values["role"],
            "link": link,
            "qr": qr_data_uri(link),
            "hours": hub.settings.staff.setup_hours,
        },
    )
    response.headers["Cache-Control"] = "no-store"  # the link is a credential until it is used
    return response


async def confirm_disable(request: Request) -> Response:
    """The question before an admin disables an account; its Yes posts with confirm=yes."""
    hub = hub_of(request)
    me = await require_admin(request)
    await _staff_or_404(request)
    person = await get_staff(hub.db, request.path_params["id"])
    if person is None or person["disabled_at"] or person["id"] == me["id"]:
        return see_other("/staff/admin/staff")
    shared = person["id"] in await shared_beyond(hub.db, scope_of(request))
    return staff_page(request, "admin_staff_disable.html", {"person": person, "shared": shared})


async def disable(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    form = await read_form(request)
    await _staff_or_404(request)
    if request.path_params["id"] == me["id"]:  # not offered: an admin who disabled themselves could not undo it
        return see_other("/staff/admin/staff")
    if form.get("confirm") != "yes" or await _shared(request):
        return see_other(f"/staff/admin/staff/{request.path_params['id']}/disable")
    await disable_staff(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=disabled")


async def reset(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await _staff_or_404(request)
    if request.path_params["id"] == me["id"]:  # not offered for oneself either
        return see_other("/staff/admin/staff")
    if await _shared(request):  # the disable page says why not
        return see_other(f"/staff/admin/staff/{request.path_params['id']}/disable")
    await reset_totp(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=reset")


async def _shared(request: Request) -> bool:
    return request.path_params["id"] in await shared_beyond(hub_of(request).db, scope_of(request))


async def _staff_or_404(request: Request) -> None:
    """An account of another trust is not found, as its patients are not."""
    if not await staff_in_scope(hub_of(request).db, request.path_params["id"], scope_of(request)):
        raise HTTPException(404)


async def audit_log(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_admin(request)
    values = {k: printable(request.query_params.get(k, "")).strip()[:100] for k in AUDIT_FILTERS}
    events = await list_audit(
        hub.db,
        scope=scope_of(request),
        actor_type=values["actor_type"],
        actor_id=values["actor_id"],
        action=values["action"],
        record_type=values["record_type"],
        record_id=values["record_id"],
    )
    await record_staff_read(
        hub.db,
        at=hub.clock.now(),
        staff_id=staff["id"],
        action=AuditAction.AUDIT_LOG_VIEWED,
        record_type=RecordType.AUDIT_LOG,
        record_id="",
        detail=f"{len(events)} rows",
    )
    return staff_page(request, "admin_audit.html", {"values": values, "events": events})


async def organisations_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    """The trusts an account works for: an admin ticks those of their own trusts; a hub-wide admin any, or all."""
    hub = hub_of(request)
    await require_admin(request)
    await _staff_or_404(request)
    scope = scope_of(request)
    person = await get_staff(hub.db, request.path_params["id"])
    assert person is not None
    current = (await staff_organisation_codes(hub.db)).get(person["id"], [])
    organisations = await hub.db.fetch_all("SELECT id, code, name FROM organisations ORDER BY code")
    choices = [o for o in organisations if scope.sees(o["id"])]
    mine = {o["code"] for o in choices}
    flag = await hub.db.fetch_one("SELECT hub_wide FROM staff_users WHERE id = ?", (person["id"],))
    context = {
        "person": {**person, "hub_wide": bool(flag and flag["hub_wide"])},
        "choices": choices,
        "current": current,
        "hidden": [code for code in current if code not in mine],
        "me_hub_wide": scope.hub_wide,
        "error": error,
    }
    return staff_page(request, "admin_staff_organisations.html", context, status=status)


async def change_organisations(request: Request) -> Response:
    hub = hub_of(request)
    await require_admin(request)
    form = await read_form(request)
    codes = [key.removeprefix("organisation-") for key, value in form.items() if key.startswith("organisation-")]
    try:
        changed = await set_staff_organisations(
            hub.db,
            staff_id=request.path_params["id"],
            codes=codes,
            hub_wide=form.get("hub_wide") == "yes",
            by=scope_of(request),
            now=hub.clock.now(),
        )
    except ValueError as exc:
        return await organisations_page(request, error=str(exc).capitalize(), status=422)
    if not changed:
        raise HTTPException(404)
    return see_other("/staff/admin/staff?done=trusts")
