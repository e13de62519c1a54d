"""Admin pages: staff accounts (add, disable, reset the authenticator) and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.rules.text import printable
from hub.store.audit import record_staff_read
from hub.store.staff import create_staff, disable_staff, get_staff, list_staff, reset_totp
from hub.store.staff_lookup import list_audit
from hub.vocabulary import AuditAction, RecordType, StaffRole
from hub.web.common import hub_of, read_form
from hub.web.staff.common import qr_data_uri, require_admin, see_other, staff_page

DONE = {
    "disabled": "The account is disabled and its sessions ended.",
    "reset": "The authenticator is reset. They enrol a new one at their next sign-in.",
}
AUDIT_FILTERS = ("actor_type", "actor_id", "action", "record_type", "record_id")


async def staff_list(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    return staff_page(
        request,
        "admin_staff.html",
        {"people": await list_staff(hub.db), "me": me, "notice": DONE.get(request.query_params.get("done", ""), "")},
    )


async def new_staff_page(request: Request) -> Response:
    await require_admin(request)
    return staff_page(request, "admin_staff_new.html", {"roles": list(StaffRole), "errors": {}, "values": {}})


async def create(request: Request) -> Response:
    """Adds an account as `create-staff` does and shows its one-time set-up link, once: nothing stores it."""
    hub = hub_of(request)
    me = await require_admin(request)
    form = await read_form(request)
    values = {"username": printable(form.get("username", "")).strip()[:100], "role": form.get("role", "")}
    errors = {}
    if not values["username"]:
        errors["username"] = "Enter a username"
    if values["role"] not in tuple(StaffRole):
        errors["role"] = "Choose a role"
    if not errors:
        try:
            token = await create_staff(
                hub.db,
                username=values["username"],
                role=values["role"],
                secret=hub.settings.secret_key,
                now=hub.clock.now(),
                hours=hub.settings.staff.setup_hours,
                by=me["id"],
            )
        except ValueError as exc:
            errors["username"] = str(exc).capitalize()
    if errors:
        context = {"roles": list(StaffRole), "errors": errors, "values": values}
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
    person = await get_staff(hub.db, request.path_params["id"])
    if person is None or person["disabled_at"] or person["id"] == me["id"]:
        return see_other("/staff/admin/staff")
    return staff_page(request, "admin_staff_disable.html", {"person": person})


async def disable(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    form = await read_form(request)
    if form.get("confirm") != "yes":
        return see_other(f"/staff/admin/staff/{request.path_params['id']}/disable")
    await disable_staff(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=disabled")


async def reset(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await reset_totp(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=reset")


async def audit_log(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_admin(request)
    values = {k: printable(request.query_params.get(k, "")).strip()[:100] for k in AUDIT_FILTERS}
    events = await list_audit(
        hub.db,
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
