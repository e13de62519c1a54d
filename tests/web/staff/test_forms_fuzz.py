"""Arbitrary input in the console's forms and queries, and in Notify's callbacks: never a 5xx (F6).

Built like tests/web/patient/test_forms_fuzz.py: one hub per test on one event loop, examples run one at a time,
the strategies full of surrogates, NULs, huge integers and dates at the ends of the calendar.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.rules.appointments import ActionPolicy
from hub.store.appointments import request_rebook
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, auth
from tests.running import Fuzz, running_hub
from tests.staff_harness import set_up_staff

fuzzing = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
ODD = ("", "\ud800", "\x00", "a\r\nb", "9" * 25, str(10**20), "-1")
ODD_DATES = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-02-30T00:00:00Z")
texts = st.one_of(st.sampled_from(ODD + ODD_DATES), st.text(max_size=40), st.integers().map(str))


async def _task(h: Harness) -> int:
    patient = await h.create_patient()
    appointment = await h.create_appointment(patient_id=patient)
    policy = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=99, cancel_mode=CancelMode.REQUEST)
    done = await request_rebook(
        h.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="",
        preferred_times="",
        now=h.clock.now(),
        policy=policy,
    )
    assert done.done
    row = await h.db.fetch_one("SELECT id FROM tasks WHERE appointment_id = ?", (appointment,))
    assert row is not None
    return int(row["id"])


def test_console_forms_and_searches(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend) as fuzz:
        fuzz.run(set_up_staff(fuzz.h, "root", "admin"))
        task_id = fuzz.run(_task(fuzz.h))
        csrf = fuzz.run(fuzz.h.csrf("/staff/sign-in"))

        @fuzzing
        @given(
            outcome=st.sampled_from(["rebooked", "cancelled", "no_answer", "closed", "\ud800", ""]),
            day=texts,
            month=texts,
            year=texts,
            time=texts,
            note=texts,
            query=st.dictionaries(
                st.sampled_from(["nhs_number", "mrn", "family_name", "dob-day", "dob-month", "dob-year", "kind"]),
                texts,
                max_size=4,
            ),
        )
        def examples(
            outcome: str, day: str, month: str, year: str, time: str, note: str, query: dict[str, str]
        ) -> None:
            form = {"outcome": outcome, "day": day, "month": month, "year": year, "time": time, "note": note}
            fuzz.run(_console(fuzz, task_id, csrf, form, query))

        examples()


async def _console(fuzz: Fuzz, task_id: int, csrf: str, form: dict[str, str], query: dict[str, str]) -> None:
    h = fuzz.h
    await h.client.post(f"/staff/tasks/{task_id}/claim", data={"csrf_token": csrf})
    # Encoded byte for byte: a lone surrogate goes as the bytes %ED%A0%80, which are not UTF-8.
    body = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in {"csrf_token": csrf, **form}.items()})
    response = await h.client.post(
        f"/staff/tasks/{task_id}/outcome", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code < 500, response.text[:300]
    search = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    for path in ("/staff/patients", "/staff", "/staff/queue.csv", "/staff/admin/audit"):
        response = await h.client.get(f"{path}?{search}")
        assert response.status_code < 500, (path, response.text[:300])


def test_notify_callbacks(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **CALLBACKS) as fuzz:
        fuzz.run(fuzz.h.create_patient(mobile="+447700900111"))

        @fuzzing
        @given(
            path=st.sampled_from(["status", "inbound"]),
            body=st.fixed_dictionaries(
                {},
                optional={
                    name: st.one_of(texts, st.integers(), st.none(), st.lists(texts, max_size=2))
                    for name in ("id", "status", "reference", "source_number", "message", "date_received", "sent_at")
                },
            ),
        )
        def examples(path: str, body: dict[str, object]) -> None:
            fuzz.run(_callback(fuzz, path, body))

        examples()


async def _callback(fuzz: Fuzz, path: str, body: dict[str, object]) -> None:
    response = await fuzz.h.client.post(
        f"/notify/callbacks/{path}",
        content=json.dumps(body).encode(),
        headers={**auth(), "content-type": "application/json"},
    )
    assert response.status_code < 500, response.text[:300]
