"""The lifecycle under random interleavings: the hospital's updates (the real API), the patient's actions (the real
pages), agents' outcomes, Notify's receipts and the worker's sweep, against a real database, with the invariants
checked after every step:

- no open rebook or cancel request on an appointment that is no longer booked;
- a confirmation is always of the current time;
- each change the patient must hear of queues one message per channel, and nothing queues two;
- each patient action and agent outcome records exactly one event for the hospital, and a hospital update none
  (or one `appointment.conflict` when it is held back);
- the patient's page, the calendar file's SEQUENCE and the events feed agree with the appointment;
- nothing is posted to a patient without a postal address.

Each example books a new patient and appointment on one hub (hypothesis examples share its event loop).
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hub.rules.sending import postal_address
from hub.rules.tasks import QueuePolicy
from hub.store.receipts import Receipt, apply_receipt
from hub.store.reminders import run_sweep
from hub.store.task_outcomes import NotHeld, Outcome, record_outcome
from hub.store.tasks import claim_task
from hub.vocabulary import TaskOutcome
from tests.harness import Harness
from tests.pas import SITE
from tests.running import NOW, Fuzz, running_hub

QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(hours=2), max_attempts=3)
TIMES = [NOW + timedelta(days=d, hours=h) for d in (3, 21) for h in (0, 5)]
NOTICES = ("invitation", "changed", "cancelled")
ROOMY = {
    "codes_per_identity_per_hour": 100_000,
    "codes_per_contact_per_hour": 100_000,
    "codes_per_client_per_hour": 100_000,
    "guesses_per_client_per_hour": 100_000,
    "session_idle_minutes": 100_000,
    "session_absolute_minutes": 100_000,
}
_numbers = itertools.count(1)


class Lifecycle(RuleBasedStateMachine):
    """One patient and one appointment per example; the hub is shared."""

    fuzz: Fuzz
    key: str
    staff_id: int

    def __init__(self) -> None:
        super().__init__()
        self.fuzz.clock.set(NOW)  # every example starts at the same moment: its steps must not depend on the last
        self.h: Harness = self.fuzz.browser()
        self.n = next(_numbers)
        self.ref, self.mrn = f"A{self.n}", f"M{self.n}"
        self.mobile = f"07700 9{self.n:05d}"
        self.start = TIMES[1]
        self.confirmed_for: datetime | None = None
        self.signed_in = False

    def run(self, coro: Any) -> Any:
        return self.fuzz.run(coro)

    # The hospital

    async def _put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        response = await self.h.client.put(
            f"/api/v1/{path}", json=body, headers={"Authorization": f"Bearer {self.key}"}
        )
        assert response.status_code in (200, 201), response.text
        return response

    def _book(self, **fields: Any) -> dict[str, Any]:
        body = {"patient_ref": self.mrn, "site_code": "RFH", "clinic": "Cardiology", "duration_minutes": 30, **fields}
        before = self._counts()
        answer = self.run(self._put(f"appointments/{self.ref}", body)).json()
        self._check_step(before, notice=answer.get("notice"), events=None, hospital=True)
        return dict(answer)

    @initialize(address=st.booleans(), paper=st.booleans())
    def book(self, address: bool, paper: bool) -> None:
        self.has_address = address
        patient = {
            "given_name": "Pat",
            "family_name": f"Example{self.n}",
            "date_of_birth": "1950-01-01",
            "mobile": self.mobile,
            "paper_letters": paper,
            **({"postal_address": {"lines": ["1 Street"], "postcode": "NW3 2QG"}} if address else {}),
        }
        self.run(self._put(f"patients/{self.mrn}", patient))
        self._book(start=TIMES[1].isoformat(), clinician="Dr A")

    @rule(when=st.sampled_from(TIMES), clinician=st.sampled_from(["Dr A", "Dr B"]))
    def hospital_sends_booked(self, when: datetime, clinician: str) -> None:
        self._book(start=when.isoformat(), clinician=clinician)

    @rule(status=st.sampled_from(["cancelled", "attended", "did_not_attend"]))
    def hospital_sends_a_status(self, status: str) -> None:
        self._book(start=self._row()["starts_at_dt"].isoformat(), clinician="Dr A", status=status)

    @rule()
    def hospital_acknowledges_the_hub(self) -> None:
        last = self.run(self.h.db.fetch_one("SELECT MAX(id) AS id FROM events"))
        if last and last["id"]:
            self._book(start=TIMES[0].isoformat(), clinician="Dr A", acknowledged_event=int(last["id"]))

    # The patient

    async def _post(self, action: str, data: dict[str, str]) -> httpx.Response:
        if not self.signed_in:
            await self.h.sign_in(self.mobile, "1950-01-01")
            self.signed_in = True
        appointment = (await self._arow())["id"]
        page = f"/appointments/{appointment}" + (f"/{action}" if action != "confirm" else "")
        response = await self.h.client.get(page)
        data = {**data}
        token = response.text.split('name="csrf_token" value="', 1)
        if len(token) < 2:
            return response  # no form offered: nothing to do
        data["csrf_token"] = token[1].split('"', 1)[0]
        return await self.h.client.post(f"/appointments/{appointment}/{action}", data=data)

    def _patient(self, action: str, data: dict[str, str]) -> None:
        before = self._counts()
        response = self.run(self._post(action, data))
        done = "done=" in response.headers.get("location", "")
        changed = self._counts()["events"] > before["events"]
        self._check_step(before, notice=None, events=1 if changed else 0, hospital=False)
        if action == "confirm" and done:
            self.confirmed_for = self._row()["starts_at_dt"]
        assert done or not changed

    @rule()
    def patient_confirms(self) -> None:
        self._patient("confirm", {})

    @rule(times=st.sampled_from(["mornings", "Tuesdays"]))
    def patient_asks_to_rebook(self, times: str) -> None:
        self._patient("rebook", {"reason": "away", "preferred_times": times})

    @rule()
    def patient_cancels(self) -> None:
        self._patient("cancel", {"reason": "other"})

    # The booking centre

    def _agent(self, chosen: Outcome) -> None:
        task = self.run(
            self.h.db.fetch_one(
                "SELECT t.id FROM tasks t JOIN appointments a ON a.id = t.appointment_id WHERE a.ref = ?"
                " AND t.status != 'closed' ORDER BY t.id LIMIT 1",
                (self.ref,),
            )
        )
        if task is None:
            return
        before = self._counts()
        try:
            self.run(self._outcome(int(task["id"]), chosen))
        except (NotHeld, ValueError):
            assert self._counts() == before  # refused: nothing half-done
            return
        self._check_step(before, notice=None, events=1, hospital=False)

    @rule(when=st.sampled_from(TIMES))
    def agent_rebooks(self, when: datetime) -> None:
        self._agent(Outcome(TaskOutcome.REBOOKED, starts_at=when))

    @rule()
    def agent_cancels(self) -> None:
        self._agent(Outcome(TaskOutcome.CANCELLED))

    @rule()
    def agent_gets_no_answer(self) -> None:
        self._agent(Outcome(TaskOutcome.NO_ANSWER))

    @rule()
    def agent_closes_the_task(self) -> None:
        self._agent(Outcome(TaskOutcome.CLOSED, note="note"))

    @rule()
    def agent_accepts_the_hospitals_version(self) -> None:
        self._agent(Outcome(TaskOutcome.ACCEPTED_HOSPITAL))

    async def _outcome(self, task_id: int, chosen: Outcome) -> None:
        now = self.fuzz.clock.now()
        await claim_task(self.h.db, task_id=task_id, staff_id=self.staff_id, now=now, policy=QUEUE)
        await record_outcome(
            self.h.db, task_id=task_id, staff_id=self.staff_id, outcome=chosen, settings=self.h.settings, policy=QUEUE,
            now=now,
        )  # fmt: skip

    # Notify and the worker

    @rule()
    def worker_sends_and_sweeps(self) -> None:
        self.run(self.h.send_queued())
        self.run(run_sweep(self.h.db, settings=self.h.settings, now=self.fuzz.clock.now()))

    @rule()
    def a_text_fails_for_good(self) -> None:
        sent = self.run(
            self.h.db.fetch_one(
                "SELECT o.id, o.notify_id FROM outbox_messages o JOIN appointments a ON a.id = o.appointment_id"
                " WHERE a.ref = ? AND o.status = 'sent' AND o.channel = 'sms' ORDER BY o.id DESC LIMIT 1",
                (self.ref,),
            )
        )
        if sent is not None:
            self.run(self._receipt(Receipt(sent["notify_id"], str(sent["id"]), "permanent-failure")))

    async def _receipt(self, receipt: Receipt) -> None:
        async with self.h.db.write() as tx:
            await apply_receipt(tx, receipt, settings=self.h.settings, now=self.fuzz.clock.now())

    @precondition(lambda self: self.fuzz.clock.now() < NOW + timedelta(days=30))
    @rule(hours=st.sampled_from([1, 25, 72]))
    def time_passes(self, hours: int) -> None:
        self.fuzz.clock.advance(hours=hours)

    # What must always hold

    async def _arow(self) -> dict[str, Any]:
        row = await self.h.db.fetch_one("SELECT * FROM appointments WHERE ref = ?", (self.ref,))
        assert row is not None
        return row

    def _row(self) -> dict[str, Any]:
        row = self.run(self._arow())
        row["starts_at_dt"] = datetime.fromisoformat(row["starts_at"])
        return row

    def _counts(self) -> dict[str, Any]:
        async def counts() -> dict[str, Any]:
            row = await self.h.db.fetch_one("SELECT id FROM appointments WHERE ref = ?", (self.ref,))
            if row is None:
                return {"events": 0, "event_kinds": [], "notices": []}
            events = await self.h.db.fetch_all(
                "SELECT kind FROM events WHERE appointment_id = ? ORDER BY id", (row["id"],)
            )
            notices = await self.h.db.fetch_all(
                # In the order queued: the step's new notices are the ones past the count before it.
                "SELECT kind, channel FROM outbox_messages WHERE appointment_id = ? AND kind IN (?, ?, ?) ORDER BY id",
                (row["id"], *NOTICES),
            )
            return {"events": len(events), "event_kinds": [e["kind"] for e in events], "notices": notices}

        return dict(self.run(counts()))

    def _check_step(self, before: dict[str, Any], *, notice: str | None, events: int | None, hospital: bool) -> None:
        after = self._counts()
        new_notices = after["notices"][len(before["notices"]) :]
        per_channel = [m["channel"] for m in new_notices]
        assert len(per_channel) == len(set(per_channel)), f"two notices on one channel: {new_notices}"
        if notice is not None and not new_notices:
            # Told, but nothing queued: only when there was no way to reach them (no address for post).
            assert not self.has_address
        new_events = after["event_kinds"][before["events"] :]
        if hospital:
            assert set(new_events) <= {"appointment.conflict", "letter.not_posted"}, new_events
        elif events is not None:
            assert len([e for e in new_events if e != "letter.not_posted"]) == events, new_events

    @invariant()
    def requests_only_on_booked_appointments(self) -> None:
        if not hasattr(self, "has_address"):
            return
        row = self._row()
        open_requests = self.run(
            self.h.db.fetch_all(
                "SELECT kind FROM tasks WHERE appointment_id = ? AND status != 'closed'"
                " AND kind IN ('rebook', 'cancel')",
                (row["id"],),
            )
        )
        if row["status"] != "booked":
            assert open_requests == [], (row["status"], open_requests)

    @invariant()
    def a_confirmation_is_of_the_current_time(self) -> None:
        if not hasattr(self, "has_address"):
            return
        row = self._row()
        if row["request_state"] == "confirmed":
            assert self.confirmed_for == row["starts_at_dt"]

    @invariant()
    def the_page_the_calendar_and_the_feed_agree(self) -> None:
        if not self.signed_in:
            return
        row = self._row()
        page = self.run(self.h.client.get(f"/appointments/{row['id']}")).text
        if row["status"] == "cancelled":
            assert "This appointment has been cancelled." in page
        ics = self.run(self.h.client.get(f"/appointments/{row['id']}.ics")).text
        assert f"SEQUENCE:{row['sequence']}" in ics
        feed = self.run(self.h.client.get("/api/v1/events?limit=500", headers={"Authorization": f"Bearer {self.key}"}))
        ids = [int(e["id"]) for e in feed.json()["events"]]
        assert ids == sorted(ids) and len(ids) == len(set(ids))

    @invariant()
    def nothing_posted_without_an_address(self) -> None:
        if not hasattr(self, "has_address"):
            return
        letters = self.run(
            self.h.db.fetch_all(
                "SELECT o.id FROM outbox_messages o JOIN patients p ON p.id = o.patient_id WHERE p.mrn = ?"
                " AND o.channel = 'letter' AND o.status != 'cancelled'",
                (self.mrn,),
            )
        )
        if letters:
            patient = self.run(self.h.db.fetch_one("SELECT * FROM patients WHERE mrn = ?", (self.mrn,)))
            assert patient is not None
            name = f"{patient['given_name']} {patient['family_name']}"
            assert postal_address(name, json.loads(patient["address_lines"]), patient["postcode"]) is not None


@pytest.mark.parametrize("cancel_mode", ["request", "immediate"])
def test_random_interleavings_keep_the_lifecycle_true(tmp_path: Path, backend: str, cancel_mode: str) -> None:
    # Quiet hours off: the worker's step sends whatever is due whatever the fixed clock says.
    quiet = {"notify.quiet_start_hour": 0, "notify.quiet_end_hour": 0}
    with running_hub(tmp_path, backend, cancel_mode=cancel_mode, **ROOMY, **quiet) as fuzz:
        h = fuzz.h
        fuzz.run(h.create_organisation(code="RAL"))
        key = fuzz.run(h.create_api_key(organisation_code="RAL"))
        assert (
            fuzz.run(
                h.client.put("/api/v1/sites/RFH", json=SITE, headers={"Authorization": f"Bearer {key}"})
            ).status_code
            == 201
        )
        staff_id = fuzz.run(h.create_staff_user(username="agent"))
        Lifecycle.fuzz, Lifecycle.key, Lifecycle.staff_id = fuzz, key, staff_id
        Lifecycle.TestCase.settings = settings(
            max_examples=int(os.environ.get("HUB_STATEFUL_EXAMPLES", "15")),
            stateful_step_count=int(os.environ.get("HUB_STATEFUL_STEPS", "20")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        Lifecycle.TestCase().runTest()
