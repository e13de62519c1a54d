"""Admin pages: staff accounts (disable, reset the authenticator) and the audit log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.rules.validation import printable
from hub.store.audit import record_staff_read
from hub.store.staff import disable_staff, get_staff, list_staff, reset_totp
from hub.store.staff_lookup import list_audit
from hub.store.staff_scope import set_staff_organisations, staff_in_scope, staff_organisation_codes
from hub.vocabulary import AuditAction, RecordType
from hub.web.common import hub_of, read_form
from hub.web.staff.common import require_admin, scope_of, see_other, staff_page

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
            "me": me,
            "notice": DONE.get(request.query_params.get("done", ""), ""),
        },
    )


async def disable(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await _staff_or_404(request)
    await disable_staff(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=disabled")


async def reset(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await _staff_or_404(request)
    await reset_totp(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=reset")


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
