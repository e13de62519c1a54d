"""docs/lifecycle.md is the lifecycle's own table: every event from every state, as hub.rules.lifecycle answers it.

Regenerate it after a change to the lifecycle: `.venv/bin/python -m tests.rules.test_lifecycle_doc > docs/lifecycle.md`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hub.rules.appointments import ActionPolicy, Appointment, ChangeKind, HubChange, Refused, Transition
from hub.rules.lifecycle import (
    accept_hospital,
    agent_cancelled,
    agent_rebooked,
    hospital_update,
    patient_cancel,
    patient_confirm,
    patient_request_rebook,
    patient_rescheduled,
    request_closed,
)
from hub.settings import ROOT
from hub.vocabulary import CancelMode, HospitalStatus, RequestState, TaskKind
from tests.rules.facts import booked

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
BOOKED = booked(NOW + timedelta(days=10))
MOVED = replace(BOOKED, starts_at=BOOKED.starts_at + timedelta(days=7))
CANCELLED = replace(BOOKED, status=HospitalStatus.CANCELLED)

STATES: dict[str, Appointment] = {
    "booked": Appointment(BOOKED),
    "booked, confirmed": Appointment(BOOKED, request_state=RequestState.CONFIRMED),
    "booked, rebook requested": Appointment(
        BOOKED, request_state=RequestState.REBOOK_REQUESTED, rebook_requests=1, open_rebook_request=True
    ),
    "booked, cancel requested": Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED),
    "cancelled by the hub (not yet reflected)": Appointment(
        CANCELLED, RequestState.CANCEL_REQUESTED, HubChange(ChangeKind.CANCELLED, CANCELLED, event_id=10)
    ),
    "rebooked by the hub (not yet reflected)": Appointment(
        MOVED, hub_change=HubChange(ChangeKind.REBOOKED, MOVED, event_id=10)
    ),
    "cancelled": Appointment(CANCELLED),
    "attended": Appointment(replace(BOOKED, status=HospitalStatus.ATTENDED)),
}
Event = Callable[[Appointment], Transition | Refused]
IMMEDIATE = replace(POLICY, cancel_mode=CancelMode.IMMEDIATE)
EVENTS: dict[str, tuple[str, Event]] = {
    "moves it": ("hospital", lambda a: hospital_update(a, MOVED, now=NOW)),
    "changes details only (clinician)": ("hospital", lambda a: hospital_update(a, replace(a.facts, clinician="Dr B"),
                                                                                now=NOW)),
    "sends its old record again": ("hospital", lambda a: hospital_update(a, replace(BOOKED, clinic="Renamed"),
                                                                          now=NOW)),
    "cancels it (naming the first time)": ("hospital", lambda a: hospital_update(a, CANCELLED, now=NOW)),
    "cancels it, naming the time the patient sees": ("hospital", lambda a: hospital_update(
        a, replace(a.facts, status=HospitalStatus.CANCELLED), now=NOW)),
    "cancels it, naming no time (HL7 without timing)": ("hospital", lambda a: hospital_update(
        a, replace(a.facts, status=HospitalStatus.CANCELLED), now=NOW, names_time=False)),
    "records it attended before its time": ("hospital", lambda a: hospital_update(
        a, replace(BOOKED, status="attended"), now=NOW)),
    "records it did not attend, after the time the patient sees": ("hospital", lambda a: hospital_update(
        a, replace(a.facts, status="did_not_attend"), now=a.facts.starts_at + timedelta(hours=1))),
    "books it again": ("hospital", lambda a: hospital_update(a, BOOKED, now=NOW)),
    "acknowledges the hub's event": ("hospital", lambda a: hospital_update(a, BOOKED, now=NOW, acknowledged_event=10)),
    "confirms": ("patient", lambda a: patient_confirm(a, now=NOW, policy=POLICY)),
    "asks to rebook": ("patient", lambda a: patient_request_rebook(a, reason="r", preferred_times="t", now=NOW,
                                                                   policy=POLICY)),
    "asks to cancel (request mode)": ("patient", lambda a: patient_cancel(a, reason="other", details="", now=NOW,
                                                                          policy=POLICY)),
    "cancels (immediate mode)": ("patient", lambda a: patient_cancel(a, reason="other", details="", now=NOW,
                                                                     policy=IMMEDIATE)),
    "moves it into a free slot": ("patient", lambda a: patient_rescheduled(
        a, starts_at=MOVED.starts_at, duration_minutes=30, data={}, now=NOW, policy=POLICY)),
    "rebooks, typing the time in": ("agent", lambda a: agent_rebooked(
        a, starts_at=MOVED.starts_at, site_id=2, clinician="Dr C")),
    "books it into a free slot": ("agent", lambda a: agent_rebooked(
        a, starts_at=MOVED.starts_at, site_id=2, clinician="Dr C", in_slot=True)),
    "cancels": ("agent", lambda a: agent_cancelled(a)),
    "closes the patient's request": ("agent", lambda a: request_closed(
        a, kind=TaskKind.REBOOK if a.request_state == RequestState.REBOOK_REQUESTED else TaskKind.CANCEL,
        prior_state=RequestState.NONE)),
    "accepts the hospital's version": ("agent", lambda a: accept_hospital(replace(a, held=BOOKED), now=NOW)),
}  # fmt: skip


def _state(a: Appointment) -> str:
    facts = "moved" if a.facts.starts_at != BOOKED.starts_at else ""
    words = [str(a.facts.status), facts, "" if a.request_state == RequestState.NONE else str(a.request_state)]
    if a.hub_change is not None:
        words.append(f"hub {a.hub_change.kind}, not reflected")
    if a.held is not None:
        words.append("hospital update held")
    return ", ".join(w for w in words if w)


def _effects(t: Transition) -> list[str]:
    out = []
    if t.open_task:
        out.append(f"opens a {t.open_task} task")
    for closure in t.close_tasks:
        kinds = "/".join(closure.kinds) if closure.kinds else "every"
        out.append(f"closes {kinds} tasks ({closure.outcome})")
    if t.update_rebook_request:
        out.append("updates the rebook task")
    if t.bump_sequence:
        out.append("calendar SEQUENCE + 1")
    if t.free_slots:
        out.append("frees a slot the hub moved it into, the move recorded")
    return out


def table() -> str:
    lines = [
        "# The appointment lifecycle",
        "",
        "Generated from `hub/rules/lifecycle.py` by `tests/rules/test_lifecycle_doc.py` (a test keeps it true):",
        "every event from every state, and what follows. The hospital's system is the authority on booked facts;",
        "the hub holds the patient's requests and the booking centre's work. A change the hub made and told the",
        "hospital about (`hub cancelled` / `hub rebooked`) stands until a hospital update is clearly about the",
        "hub's version, or acknowledges its event (`acknowledged_event`); an update that does neither is held",
        "as a conflict: the patient keeps seeing the hub's version and is told nothing, the booking centre gets",
        "one `conflict` task and the hospital an `appointment.conflict` event.",
        "",
        "Clearly about the hub's version (`HubChange.reflected_by`), whatever the feed (JSON API, CSV, HL7):",
        "",
        "- a hub cancel (the patient's in immediate mode, an agent's): the hospital's cancel, whatever time it",
        "  names; a booked update never;",
        "- a hub move (the patient's into a free or offered slot, an agent's rebook): an update of any status",
        "  that names the hub's time and site. A cancel for the old time, or for no time (HL7 SIU^S15 without",
        "  timing: the listener fills in the time the hub holds, which proves nothing), is about the",
        "  appointment the hospital still holds: applying it would cancel the time the patient moved to;",
        "- attended or did not attend, for either kind: a record of what happened, so only for the hub's time",
        "  and site (a hub cancel keeps the hospital's own) once that time has come.",
        "",
        "Messages: the patient's message is queued in the same transaction (by their channel, and by post too",
        "for paper patients); queued messages it makes wrong are withdrawn. Reminders: `invitation` plans the",
        "reminders and the unread-letter escalation, `reminders` re-plans the reminders for a new time, `withdraw`",
        "stops them all.",
        "",
    ]
    for name, (who, event) in EVENTS.items():
        lines += [
            f"## The {who} {name}",
            "",
            "| From | To | Patient told | Reminders | Tasks and calendar | Events for the hospital |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for label, state in STATES.items():
            result = event(state)
            if isinstance(result, Refused):
                lines.append(f"| {label} | refused: {result.why_not} | | | | |")
                continue
            if not result.changed:
                lines.append(f"| {label} | unchanged | | | | |")
                continue
            events = ", ".join(f"`{e.kind}`" for e in result.events)
            lines.append(
                f"| {label} | {_state(result.appointment)} | {result.notice or ''} | {result.plan} |"
                f" {'; '.join(_effects(result))} | {events} |"
            )
        lines.append("")
    return "\n".join(lines)


def test_docs_lifecycle_md_is_the_lifecycle_as_the_code_has_it() -> None:
    written = (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    assert written == table() + "\n", "docs/lifecycle.md is out of step: regenerate it (see this module's docstring)"


if __name__ == "__main__":
    print(table())
