"""The task queue: the list with its filters, a task with its claim and outcomes, the CSV export."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.clock import format_date, format_time
from hub.db import Row
from hub.rules.export import csv_text
from hub.rules.tasks import may_email, new_start_errors, parse_new_start
from hub.store.appointments import describe_conflict
from hub.store.audit import record_staff_read
from hub.store.task_outcomes import NotHeld, Outcome, record_outcome
from hub.store.tasks import (
    Filters,
    claim_next_task,
    claim_task,
    export_rows,
    filter_choices,
    get_task,
    holds,
    list_queue,
    release_task,
)
from hub.vocabulary import (
    AGENT_OUTCOMES,
    AuditAction,
    HospitalStatus,
    RecordType,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from hub.web.common import hub_of, read_form
from hub.web.staff.common import require_admin, require_staff, scope_of, see_other, staff_page

# What was done, said after each action (keys from hub.store.task_outcomes' results and the outcome kinds).
NOTICES = {
    "taken": "Another agent has claimed that call-back.",
    "released": "You released the call-back. It is back in the queue.",
    "lapsed": "Your claim on that call-back lapsed. Claim it again to record an outcome.",
    "none": "No call-backs are waiting to be claimed.",
    TaskOutcome.REBOOKED: "Call-back closed: appointment moved to the new time. The patient is told.",
    TaskOutcome.CANCELLED: "Call-back closed: appointment cancelled. The patient is told.",
    TaskOutcome.CLOSED: "Call-back closed with your note. The patient's request is withdrawn.",
    TaskOutcome.ACCEPTED_HOSPITAL: "Call-back closed: the hospital's version stands. The patient is told.",
    "emailed": "Email sent asking the patient to ring the booking team. The call-back is closed.",
    "retry": "No answer recorded. The call-back returns to the queue later.",
    "letter": "No answer recorded. That was the last attempt, so a letter is on its way to the patient.",
}


async def queue_page(request: Request) -> Response:
    hub = hub_of(request)
    await require_staff(request)
    filters = Filters.from_query(request.query_params)
    scope = scope_of(request)
    tasks = await list_queue(hub.db, filters=filters, scope=scope, now=hub.clock.now(), policy=hub.policies.queue)
    return staff_page(
        request,
        "queue.html",
        {
            "tasks": tasks,
            "filters": filters,
            "choices": await filter_choices(hub.db, scope=scope),
            "sla": hub.settings.staff.sla_working_days,
            "notice": NOTICES.get(request.query_params.get("done", ""), ""),
        },
    )


async def _task_or_404(request: Request) -> Row:
    """The task, if it is one of the signed-in staff member's trusts' (another trust's is not found either)."""
    hub = hub_of(request)
    task = await get_task(
        hub.db, request.path_params["id"], scope=scope_of(request), now=hub.clock.now(), policy=hub.policies.queue
    )
    if task is None:
        raise HTTPException(404)
    return task


async def task_page(
    request: Request, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None, status: int = 200
) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    task = await _task_or_404(request)
    sites = await hub.db.fetch_all(
        "SELECT s.code, s.name FROM sites s JOIN patients p ON p.organisation_id = s.organisation_id"
        " WHERE p.id = ? ORDER BY s.name",
        (task["patient_id"],),
    )
    conflict = None
    if task["kind"] == TaskKind.CONFLICT and task["appointment_id"] is not None:
        conflict = await describe_conflict(hub.db, task["appointment_id"])
    return staff_page(
        request,
        "task.html",
        {
            "task": task,
            "conflict": conflict,
            "mine": holds(task, staff["id"]),
            "may_email": may_email(task),
            "sites": sites,
            "errors": errors or {},
            "values": values or {},
            "notice": NOTICES.get(request.query_params.get("done", ""), ""),
        },
        status=status,
    )


async def task_detail(request: Request) -> Response:
    response = await task_page(request)
    hub = hub_of(request)
    await record_staff_read(
        hub.db,
        at=hub.clock.now(),
        staff_id=request.state.staff["id"],
        action=AuditAction.TASK_VIEWED,
        record_type=RecordType.TASK,
        record_id=request.path_params["id"],
    )
    return response


async def confirm_cancel(request: Request) -> Response:
    """The question before an agent cancels an appointment; its Yes posts the outcome with confirm=yes."""
    staff = await require_staff(request)
    task = await _task_or_404(request)
    if not holds(task, staff["id"]) or task["appointment_status"] != HospitalStatus.BOOKED:
        return see_other(f"/staff/tasks/{task['id']}")
    return staff_page(request, "task_cancel.html", {"task": task})


async def claim(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    await read_form(request)
    await _task_or_404(request)
    task_id = request.path_params["id"]
    won = await claim_task(
        hub.db, task_id=task_id, staff_id=staff["id"], now=hub.clock.now(), policy=hub.policies.queue
    )
    if not won and (await _task_or_404(request))["status"] != TaskStatus.CLOSED:
        return see_other("/staff?done=taken")
    # Claimed; or closed meanwhile (the hospital cancelled, the patient moved it themselves): its page says why.
    return see_other(f"/staff/tasks/{task_id}")


async def claim_next(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    form = await read_form(request)
    task_id = await claim_next_task(
        hub.db,
        staff_id=staff["id"],
        filters=Filters.from_query(form),
        scope=scope_of(request),
        now=hub.clock.now(),
        policy=hub.policies.queue,
    )
    return see_other(f"/staff/tasks/{task_id}" if task_id else "/staff?done=none")


async def release(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    await read_form(request)
    await _task_or_404(request)
    released = await release_task(hub.db, task_id=request.path_params["id"], staff_id=staff["id"], now=hub.clock.now())
    # Not theirs to release (their claim lapsed, and perhaps another agent has it now): they are told so.
    return see_other("/staff?done=released" if released else "/staff?done=lapsed")


def _outcome_from(form: dict[str, str], *, now_errors: dict[str, str], request: Request) -> Outcome | None:
    hub = hub_of(request)
    chosen = form.get("outcome", "")
    if chosen not in AGENT_OUTCOMES:
        now_errors["outcome"] = "Choose an outcome"
        return None
    kind = TaskOutcome(chosen)
    if kind == TaskOutcome.REBOOKED:
        typed = (form.get("day", ""), form.get("month", ""), form.get("year", ""), form.get("time", ""))
        if field_errors := new_start_errors(*typed):
            now_errors.update(field_errors)
            return None
        start = parse_new_start(*typed, now=hub.clock.now())
        if isinstance(start, str):
            now_errors["day" if "date" in start else "time"] = start
            return None
        return Outcome(kind, starts_at=start, site_code=form.get("site", ""), clinician=form.get("clinician", "")[:100])
    note = form.get("note", "").strip()[:1000]
    if kind == TaskOutcome.CLOSED and not note:
        now_errors["note"] = "Enter a note saying why the call-back is closed"
        return None
    if kind == TaskOutcome.ACCEPTED_HOSPITAL:
        # The page's form names the held update it showed; a post without it accepts whatever is held.
        return Outcome(kind, held_version=form.get("held_version", "")[:32] or None)
    return Outcome(kind, note=note)


async def outcome(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_staff(request)
    form = await read_form(request)
    await _task_or_404(request)
    errors: dict[str, str] = {}
    chosen = _outcome_from(form, now_errors=errors, request=request)
    if chosen is None:
        return await task_page(request, errors=errors, values=form, status=400)
    if chosen.kind == TaskOutcome.CANCELLED and form.get("confirm") != "yes":
        # Cancelling cannot be undone from here: it is asked again on a page of its own.
        return see_other(f"/staff/tasks/{request.path_params['id']}/cancel")
    try:
        result = await record_outcome(
            hub.db,
            task_id=request.path_params["id"],
            staff_id=staff["id"],
            outcome=chosen,
            settings=hub.settings,
            policy=hub.policies.queue,
            now=hub.clock.now(),
        )
    except NotHeld:
        # Closed meanwhile (the hospital cancelled, or its record now agrees): the task's page says why.
        task = await _task_or_404(request)
        closed = task["status"] == TaskStatus.CLOSED
        return see_other(f"/staff/tasks/{task['id']}" if closed else "/staff?done=lapsed")
    except ValueError as exc:
        return await task_page(request, errors={"outcome": str(exc).capitalize()}, values=form, status=400)
    return see_other(f"/staff?done={chosen.kind if result == 'closed' else result}")


async def queue_csv(request: Request) -> Response:
    hub = hub_of(request)
    await require_admin(request)
    rows = await export_rows(
        hub.db,
        filters=Filters.from_query(request.query_params),
        scope=scope_of(request),
        now=hub.clock.now(),
        policy=hub.policies.queue,
    )
    text = csv_text(
        [
            "task_id",
            "kind",
            "created_at",
            "working_days_waiting",
            "sla",
            "status",
            "claimed_by",
            "attempts",
            "trust",
            "site",
            "specialty",
            "patient_mrn",
            "appointment_date",
            "appointment_time",
        ],
        (
            [
                t["id"],
                t["kind"],
                t["created_at"].isoformat(),
                t["age"],
                t["sla"],
                t["status"],
                t["claimed_by_name"] or "",
                t["attempts"],
                t["organisation_code"],
                t["site_code"] or "",
                t["specialty"] or "",
                t["mrn"],
                format_date(t["starts_at"]) if t["starts_at"] else "",
                format_time(t["starts_at"]) if t["starts_at"] else "",
            ]
            for t in rows
        ),
    )
    await record_staff_read(
        hub.db,
        at=hub.clock.now(),
        staff_id=request.state.staff["id"],
        action=AuditAction.QUEUE_EXPORTED,
        record_type=RecordType.TASK,
        record_id="export",
        detail=f"{len(rows)} rows",
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="call-back-queue.csv"'},
    )
