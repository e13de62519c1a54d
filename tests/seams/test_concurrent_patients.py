"""Two hub processes on one database (two apps, two pools) and a crowd at once: twelve patients sign in through the
pages of one and confirm, cancel or ask to rebook through the other's, while the hospital moves the same
appointments through the API of both (or HL7 over MLLP to both, where messages from many connections share a
commit), each instance's worker sends what is due and readers page the events feed. On
PostgreSQL the patients' writes run at the same time; afterwards the lifecycle holds as it does one step at a time
(tests/store/test_lifecycle_stateful.py):

- each patient action recorded exactly one event, and the readers saw every event once, in id order, no gap;
- a hospital move after the patient cancelled (immediate mode) is held as a conflict, never a silent re-booking;
- a confirmation is of the current time, and no rebook or cancel request is left open where it no longer applies;
- each change the patient must hear of queued one message per channel, nothing more: one invitation, nothing sent
  twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_listening import listening
from tests.hl7_samples import SETTINGS, Client, pid, siu
from tests.pages import app_client
from tests.pas import PATIENT, SITE
from tests.seams.conftest import rows
from tests.web.api.test_handlers import Api
from tests.web.api.test_handlers_events import Feed, by_api, by_hl7_sender, page_until_written

pytestmark = pytest.mark.anyio

PATIENTS = 12
DOB = "1950-01-01"
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # midday in London: outside quiet hours
BOOKED = datetime(2026, 12, 14, 9, 30, tzinfo=UTC)
ACTIONS = ("confirm", "cancel", "rebook")  # patient n does ACTIONS[n % 3]
FORMS: dict[str, dict[str, str]] = {
    "confirm": {},
    "cancel": {"reason": "feeling_better", "details": ""},
    "rebook": {"reason": "Away that week", "preferred_times": "Mornings"},
}


def moved_by_hospital(n: int) -> bool:
    return n % 4 != 3  # nine of the twelve, each action three times


def acts_after_the_move(n: int) -> bool:
    """Patients 0-2 act once the hospital's first move is in; the others moved send their action as it is sent."""
    return moved_by_hospital(n) and n < 3


def mobile(n: int) -> str:
    return f"+4477009001{n:02d}"


def contact(n: int) -> str:
    """The mobile as a patient types it."""
    return f"07700 9001{n:02d}"


def action_event(action: str, cancel_mode: str) -> str:
    if action == "cancel":
        return "appointment.cancelled_by_patient" if cancel_mode == "immediate" else "appointment.cancel_requested"
    return {"confirm": "appointment.confirmed", "rebook": "appointment.rebook_requested"}[action]


def browser(instance: Harness, n: int, cookies: Any = None) -> Harness:
    """Patient n's browser on one instance, from an address of its own (sign-in limits count per address)."""
    client = app_client(instance.app, base_url=instance.client.base_url, address=f"198.51.100.{n + 1}", cookies=cookies)
    return Harness(
        app=instance.app,
        client=client,
        db=instance.db,
        clock=instance.clock,
        settings=instance.settings,
        path=instance.path,
    )


def reschedule(n: int, when: datetime, sent: int) -> str:
    """The PAS's SIU^S13 moving patient n's appointment (times in London: in December, UTC's)."""
    return siu(
        "S13",
        control_id=f"S{n}-{sent}",
        ref=f"A{n}",
        start=when.strftime("%Y%m%d%H%M"),
        sent=f"2026112112{sent:02d}00",
        patient=pid(f"M{n}", family=f"Example{n}", born=DOB.replace("-", ""), phones=f"{contact(n)}^ORN^CP"),
    )


@pytest.mark.parametrize("channel", ["api", "hl7"])
@pytest.mark.parametrize("cancel_mode", ["request", "immediate"])
async def test_patients_and_the_hospital_at_once_on_two_instances_keep_the_lifecycle_and_the_feed_true(
    make_hub: MakeHub, cancel_mode: str, channel: str
) -> None:
    settings = {"cancel_mode": cancel_mode, **(SETTINGS if channel == "hl7" else {})}
    first = await make_hub(**settings)
    first.clock.set(NOON)
    # Another process on the same database: an app of its own, with its own connections.
    second = await make_hub(**settings, database_url=first.database_url)
    instances = (first, second)
    key = await first.create_api_key(organisation_code="RAL", name="pas")
    if channel == "hl7":
        async with listening(*instances) as ports:
            await at_once(instances, key, cancel_mode, channel, ports)
    else:
        await at_once(instances, key, cancel_mode, channel, [])


async def at_once(
    instances: tuple[Harness, Harness], key: str, cancel_mode: str, channel: str, ports: list[int]
) -> None:
    first, second = instances
    pas = [Api(hub, key, "pas") for hub in instances]
    assert (await pas[0].put("sites/RFH", SITE)).status_code == 201
    refs = [f"A{n}" for n in range(PATIENTS)]
    for n in range(PATIENTS):
        record = {**PATIENT, "family_name": f"Example{n}", "date_of_birth": DOB, "mobile": mobile(n)}
        assert (await pas[n % 2].put(f"patients/M{n}", record)).status_code == 201
        body = {"patient_ref": f"M{n}", "site_code": "RFH", "start": BOOKED.isoformat(), "duration_minutes": 30}
        assert (await pas[n % 2].put(f"appointments/{refs[n]}", body)).status_code == 201
    ids = {r["ref"]: r["id"] for r in await rows(first, "SELECT id, ref FROM appointments")}
    posting, moved, acted = ([asyncio.Event() for _ in range(PATIENTS)] for _ in range(3))
    notices: dict[str, list[str | None]] = {ref: [] for ref in refs}
    moves: dict[str, list[datetime]] = {ref: [] for ref in refs}
    answers: dict[int, str] = {}
    writing = True

    async def patient(n: int) -> None:
        signing_in = browser(instances[n % 2], n)
        assert (await signing_in.submit_details(contact(n), DOB)).status_code == 303
        [code] = await signing_in.sent_codes(mobile(n))
        answer = await signing_in.submit_code(code)
        assert answer.headers["location"] == "/appointments", answer.text
        # On to the other instance, signed in still: the session is in the database both share.
        acting = browser(instances[(n + 1) % 2], n, cookies=signing_in.client.cookies)
        action, appointment = ACTIONS[n % 3], ids[refs[n]]
        await acting.get_page(f"/appointments/{appointment}")  # the first view: a write about this patient
        form = f"/appointments/{appointment}" if action == "confirm" else f"/appointments/{appointment}/{action}"
        token = await acting.csrf(form)
        if acts_after_the_move(n):
            await moved[n].wait()
        posting[n].set()
        done = await acting.client.post(
            f"/appointments/{appointment}/{action}", data={"csrf_token": token, **FORMS[action]}
        )
        answers[n] = done.headers.get("location", done.text)
        acted[n].set()
        await signing_in.client.aclose()
        await acting.client.aclose()

    async def move(n: int, when: datetime) -> None:
        if channel == "hl7":
            await move_by_hl7(n, when)
            return
        body = {"patient_ref": f"M{n}", "site_code": "RFH", "start": when.isoformat(), "duration_minutes": 30}
        answer = await pas[(n + 1) % 2].put(f"appointments/{refs[n]}", body)
        assert answer.status_code == 200, answer.text
        notices[refs[n]].append(answer.json().get("notice"))
        moves[refs[n]].append(when)

    async def move_by_hl7(n: int, when: datetime) -> None:
        # An ACK names no notice: a move held as a conflict is the one that recorded a conflict event.
        conflicts = "SELECT COUNT(*) AS n FROM events WHERE appointment_id = ? AND kind = 'appointment.conflict'"
        [before] = await rows(first, conflicts, (ids[refs[n]],))
        async with Client(ports[(n + 1) % 2]) as client:
            ack = await client.send(reschedule(n, when, len(moves[refs[n]]) + 1))
        assert (ack.code, ack.text, ack.errors) == ("AA", "updated", []), ack.raw
        [after] = await rows(first, conflicts, (ids[refs[n]],))
        notices[refs[n]].append("changed" if after["n"] == before["n"] else None)
        moves[refs[n]].append(when)

    async def hospital(n: int) -> None:
        """Moves the appointment before the patient acts, or as they do, then again after: the later move meets
        whatever the patient did."""
        if not acts_after_the_move(n):
            await posting[n].wait()
        await move(n, BOOKED + timedelta(days=1))
        moved[n].set()
        await acted[n].wait()
        await move(n, BOOKED + timedelta(days=2))

    async def worker(hub: Harness) -> None:
        """Each instance's worker, sending what is due while the patients and the hospital write."""
        while writing:
            await hub.send_queued()
            await asyncio.sleep(0.005)

    async def everyone() -> None:
        nonlocal writing
        moving = [hospital(n) for n in range(PATIENTS) if moved_by_hospital(n)]
        await asyncio.gather(*(patient(n) for n in range(PATIENTS)), *moving)
        writing = False

    org = await first.organisation_id("RAL")
    readers = [(by_api(Feed(first, key)), 1), (by_api(Feed(second, key)), 5)]
    readers += [(by_hl7_sender(first, org), 1), (by_hl7_sender(second, org), 2)]
    paging = [page_until_written(r, n, lambda: writing) for r, n in readers]
    _, _, _, *read = await asyncio.gather(everyone(), worker(first), worker(second), *paging)

    # Every action went through, on the other instance from the one the patient signed in on.
    said = {
        "confirm": "confirmed",
        "cancel": "cancelled" if cancel_mode == "immediate" else "cancel",
        "rebook": "rebook",
    }
    assert answers == {n: f"/appointments/{ids[refs[n]]}?done={said[ACTIONS[n % 3]]}" for n in range(PATIENTS)}
    # The feed: every reader saw every event once, in id order, with no gap beside the table.
    table = [int(r["id"]) for r in await rows(first, "SELECT id FROM events ORDER BY id")]
    for seen, _ in read:
        assert [int(e["id"]) for e in seen] == table
    feed = {int(e["id"]): e for e in read[0][0]}
    # The two workers shared the outbox: nothing went twice.
    sent = Counter(r["reference"] for r in await rows(first, "SELECT reference FROM dev_messages"))
    assert sent and max(sent.values()) == 1
    for n in range(PATIENTS):
        ref = refs[n]
        events = await rows(first, "SELECT id, kind FROM events WHERE appointment_id = ? ORDER BY id", (ids[ref],))
        kinds = Counter(e["kind"] for e in events)
        mine = action_event(ACTIONS[n % 3], cancel_mode)
        # Exactly one event for the patient's action, and the hospital's moves none but a held one's conflict.
        assert kinds.pop(mine) == 1, (ref, kinds)
        assert set(kinds) <= {"appointment.conflict"}, (ref, kinds)
        [action] = [feed[e["id"]] for e in events if e["kind"] == mine]
        assert (action["patient_ref"], action["appointment_ref"]) == (f"M{n}", ref)
        await check_appointment(first, n, ref, cancel_mode, kinds["appointment.conflict"], notices[ref], moves[ref])


async def check_appointment(
    hub: Harness, n: int, ref: str, cancel_mode: str, conflicts: int, notices: list[str | None], moves: list[datetime]
) -> None:
    [row] = await rows(hub, "SELECT id, status, request_state, starts_at FROM appointments WHERE ref = ?", (ref,))
    action = ACTIONS[n % 3]
    open_tasks = Counter(
        r["kind"]
        for r in await rows(hub, "SELECT kind FROM tasks WHERE appointment_id = ? AND status != 'closed'", (row["id"],))
    )
    starts_at = datetime.fromisoformat(row["starts_at"])
    if action == "cancel" and cancel_mode == "immediate":
        # Cancelled by the patient and told to the hospital: the move after it is held, never a silent re-booking.
        assert row["status"] == "cancelled"
        assert starts_at == (moves[0] if notices[:1] == ["changed"] else BOOKED)  # the time it was cancelled at
        assert open_tasks == ({"conflict": 1} if moves else {}), open_tasks
        # Each move after the cancel was held: one conflict event each for the hospital, nothing for the patient.
        assert notices[-1:] in ([], [None]) and conflicts == notices.count(None)
    else:
        assert row["status"] == "booked"
        assert starts_at == (moves[-1] if moves else BOOKED)  # the hospital's last move stands
        assert conflicts == 0 and "conflict" not in open_tasks
        assert all(notice == "changed" for notice in notices)
    if action == "confirm":
        # A confirmation is of the current time: the move after it takes it away.
        assert row["request_state"] == ("none" if moves else "confirmed")
    if action == "rebook":
        assert row["request_state"] == ("none" if moves else "rebook_requested")
        assert open_tasks == ({} if moves else {"rebook": 1}), open_tasks  # a move settles the request
    if action == "cancel" and cancel_mode == "request":
        assert row["request_state"] == "cancel_requested" and open_tasks == {"cancel": 1}
    # The booking and each change the patient was told of queued one message per channel (a change told before the
    # invitation went is a new invitation, the old one withdrawn); nothing is waiting twice on one channel.
    messages = await rows(
        hub,
        "SELECT kind, channel, status FROM outbox_messages WHERE appointment_id = ?"
        " AND kind IN ('invitation', 'changed', 'cancelled')",
        (row["id"],),
    )
    per_channel = Counter(m["channel"] for m in messages)
    assert "sms" in per_channel
    assert per_channel == {channel: 1 + notices.count("changed") for channel in per_channel}, (messages, notices)
    waiting = Counter(m["channel"] for m in messages if m["status"] == "queued")
    assert set(waiting.values()) <= {1}, messages
    # Invited once: a change told after the invitation went out is a change, not a second invitation.
    invited = Counter(m["channel"] for m in messages if m["kind"] == "invitation" and m["status"] != "cancelled")
    assert set(invited.values()) == {1}, messages
