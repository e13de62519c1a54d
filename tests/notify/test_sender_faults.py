"""The sender against the fake Notify through the real notifications-python-client: what each fault does to a message.

The hub's time is the FixedClock (backoff, holds, caps); the fake and the client run in real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.clock import from_db
from hub.db import Database, Row, Transaction, connect
from hub.notify import NotifyError
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import Claimed, Outcome, SendPolicy, claim_batch, drain_once, record_outcomes
from hub.rules.sending import RetryPolicy, backoff
from hub.settings import NotifyTemplates
from tests.fake_notify import FakeNotify, Fault, Template, notify_api_key
from tests.harness import Harness
from tests.holding import held_write
from tests.notify_callbacks import assert_nothing_personal_recorded

pytestmark = pytest.mark.anyio

TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
MOBILE = "+447700900001"
# Quiet hours off: the tests move the clock past midnight.
POLICY = SendPolicy(quiet_start=0, quiet_end=0)
EMAIL_TEMPLATE = "9d7a3c5e-1b2f-4e6a-8c0d-2f4b6a8c0e1f"
LETTER_TEMPLATE = "0b5e7d9f-3a4c-4b8e-9f1a-5c7e9a1b3d5f"
# A worker's policy with its templates: a message given up on may go by another channel.
REROUTING = dataclasses.replace(
    POLICY,
    templates=NotifyTemplates(
        invitation_sms=TEMPLATE, invitation_email=EMAIL_TEMPLATE, invitation_letter=LETTER_TEMPLATE
    ),
)
REFUSED = "+15555550123"  # not a UK mobile: Notify refuses it (400 ValidationError)


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    # A "timeout" answers after 1.3 s; the client gives up after 1 s.
    with FakeNotify(timeout_delay=1.3, slow_delay=0.2) as fake:
        yield fake


@pytest.fixture
def notifier(fake: FakeNotify) -> GovukNotifier:
    return GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=1)


async def _queue(
    hub: Harness,
    n: int = 1,
    *,
    channel: str = "sms",
    recipient: str | None = MOBILE,
    identical: bool = False,
    patient_id: int | None = None,
    appointment_id: int | None = None,
) -> list[int]:
    """n messages; recipient None gives each its own number."""
    return [
        await hub.create_message(
            channel=channel,
            recipient=recipient if recipient is not None else f"+447700{i:06d}",
            template_id=TEMPLATE,
            personalisation={"link": "https://hub.example/p/x"} if identical else {"n": i},
            patient_id=patient_id,
            appointment_id=appointment_id,
        )
        for i in range(n)
    ]


async def _row(db: Database, message_id: int) -> Row:
    row = await db.fetch_one("SELECT * FROM outbox_messages WHERE id = ?", (message_id,))
    assert row is not None
    return row


async def _drain(hub: Harness, notifier: GovukNotifier, policy: SendPolicy = POLICY, seed: int = 1) -> int:
    """Rounds until nothing more is due now; the number of messages attempted."""
    rng = random.Random(seed)
    total = 0
    while n := await drain_once(hub.db, notifier, hub.clock, policy=policy, rng=rng):
        total += n
    return total


async def _hospital_events(hub: Harness) -> list[dict[str, Any]]:
    """The events as the hospital's system reads them: GET /api/v1/events."""
    key = await hub.create_api_key()
    response = await hub.client.get("/api/v1/events", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def _statuses(db: Database) -> dict[str, int]:
    rows = await db.fetch_all("SELECT status, COUNT(*) AS n FROM outbox_messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def test_a_clean_send_records_notifys_id(hub: Harness, fake: FakeNotify, notifier: GovukNotifier) -> None:
    [message] = await _queue(hub)
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    [sent] = fake.by_reference(str(message))
    assert (row["status"], row["notify_id"], row["attempts"], row["error"]) == ("sent", sent.id, 1, "")
    assert sent.recipient == MOBILE and sent.template_id == TEMPLATE and sent.personalisation == {"n": 0}


async def test_rate_limit_error_backs_off_without_using_an_attempt(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    [message] = await _queue(hub)
    fake.inject("rate_limit", "rate_limit")
    for _ in range(2):
        assert await _drain(hub, notifier) == 1
        row = await _row(hub.db, message)
        assert (row["status"], row["attempts"], row["check_first"]) == ("queued", 0, 0)
        assert "429 RateLimitError" in row["error"]
        assert from_db(row["next_attempt_at"]) == hub.clock.now() + RetryPolicy().rate_limited_wait
        hub.clock.advance(seconds=9)
        assert await _drain(hub, notifier) == 0
        hub.clock.advance(seconds=1)
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert fake.count_by_reference() == {str(message): 1}


async def test_daily_limit_holds_that_channel_until_midnight_utc(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    [first] = await _queue(hub)
    fake.inject("daily_limit")
    assert await _drain(hub, notifier) == 1
    midnight = datetime(2026, 11, 22, tzinfo=UTC)
    holds = await hub.db.fetch_all("SELECT channel, held_until FROM channel_holds")
    assert [(h["channel"], from_db(h["held_until"])) for h in holds] == [("sms", midnight)]
    row = await _row(hub.db, first)
    assert (row["status"], row["attempts"]) == ("queued", 0)
    assert "429 TooManyRequestsError" in row["error"]

    # Later that day: texts wait (even new ones), email still goes.
    hub.clock.advance(hours=6)
    [second] = await _queue(hub, recipient="+447700900002")
    [email] = await _queue(hub, channel="email", recipient="patient@example.com")
    assert await _drain(hub, notifier) == 1
    assert (await _row(hub.db, email))["status"] == "sent"
    assert (await _row(hub.db, second))["status"] == "queued"

    hub.clock.set(midnight - timedelta(seconds=1))
    assert await _drain(hub, notifier) == 0
    hub.clock.set(midnight)
    assert await _drain(hub, notifier) == 2
    for message in (first, second):
        row = await _row(hub.db, message)
        assert (row["status"], row["attempts"]) == ("sent", 1)
    assert sorted(fake.count_by_reference().items()) == sorted((str(m), 1) for m in (first, second, email))


async def test_server_errors_back_off_exponentially_then_fail_for_staff_to_see(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    retry = RetryPolicy(base=timedelta(seconds=30), max_attempts=4)
    policy = SendPolicy(quiet_start=0, quiet_end=0, retry=retry)
    [message] = await _queue(hub)
    fake.inject(*["server_error"] * 4)
    delays = []
    for attempt in range(1, 4):
        assert await _drain(hub, notifier, policy, seed=attempt) == 1
        row = await _row(hub.db, message)
        # A 500 may come after Notify took the message: the next attempt looks it up first.
        assert (row["status"], row["attempts"], row["check_first"]) == ("queued", attempt, 1)
        assert row["error"] == "notify 500 Exception"
        delay = from_db(row["next_attempt_at"]) - hub.clock.now()
        cap = retry.base * 2 ** (attempt - 1)
        assert cap / 2 <= delay <= cap  # full jitter within the top half of the exponential cap
        delays.append(delay)
        hub.clock.advance(seconds=delay.total_seconds() - 1)
        assert await _drain(hub, notifier, policy) == 0  # not a second early
        hub.clock.advance(seconds=1)
    assert delays == sorted(delays)
    assert await _drain(hub, notifier, policy) == 1
    row = await _row(hub.db, message)
    # The last attempt's 500 may have come after Notify took it: not failed until a look-up says so.
    assert (row["status"], row["attempts"], row["check_first"]) == ("queued", 4, 1)
    hub.clock.set(from_db(row["next_attempt_at"]))
    assert await _drain(hub, notifier, policy) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 5, "notify 500 Exception")
    hub.clock.advance(days=2)
    assert await _drain(hub, notifier, policy) == 0
    # The sends, a lookup before each resend, and the last look-up that found nothing.
    assert fake.messages == [] and len(fake.arrivals) == 4 + 3 + 1
    # However many attempts, a wait never passes the ceiling.
    assert RetryPolicy().ceiling / 2 <= backoff(1000, RetryPolicy(), random.Random(0)) <= RetryPolicy().ceiling


@pytest.mark.parametrize("fault", ["timeout", "drop_after_accept"])
async def test_an_unanswered_send_is_found_by_reference_not_sent_again(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier, fault: str
) -> None:
    [message] = await _queue(hub)
    fake.inject(fault)
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["check_first"]) == ("queued", 1, 1)
    assert row["error"] == "notify no answer"
    assert fake.count_by_reference() == {str(message): 1}  # Notify has it; we never heard

    hub.clock.set(from_db(row["next_attempt_at"]))
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    [sent] = fake.by_reference(str(message))
    assert (row["status"], row["notify_id"], row["check_first"]) == ("sent", sent.id, 0)
    assert fake.count_by_reference() == {str(message): 1}
    assert len(fake.arrivals) == 2  # the send, then one lookup; no second send


async def test_a_lost_lease_with_nothing_at_notify_is_sent_once(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    [message] = await _queue(hub)
    # A worker claims and dies before its request leaves.
    [claimed] = await claim_batch(hub.db, now=hub.clock.now(), policy=POLICY)
    assert claimed.id == message and not claimed.check_first
    hub.clock.advance(seconds=POLICY.lease.total_seconds() - 1)
    assert await _drain(hub, notifier) == 0  # still leased
    hub.clock.advance(seconds=2)
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["claims"]) == ("sent", 1, 2)  # the lost claim was no attempt
    assert fake.count_by_reference() == {str(message): 1}
    assert len(fake.arrivals) == 2  # the lookup found nothing, then the send


async def test_claims_lost_to_crashes_use_up_no_attempts(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    policy = SendPolicy(quiet_start=0, quiet_end=0, retry=RetryPolicy(max_attempts=8))
    [message] = await _queue(hub)
    for _ in range(9):  # nine workers claim it and die before Notify answers
        assert len(await claim_batch(hub.db, now=hub.clock.now(), policy=policy)) == 1
        hub.clock.advance(seconds=policy.held_for.total_seconds() + 1)
    fake.faults_on_lookups = True
    fake.inject(None, "server_error")  # the look-up finds nothing; the send meets one real error
    assert await _drain(hub, notifier, policy) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["claims"]) == ("queued", 1, 10)
    # Backoff from the one real error, not from nine claims.
    assert from_db(row["next_attempt_at"]) <= hub.clock.now() + policy.retry.base
    hub.clock.set(from_db(row["next_attempt_at"]))
    assert await _drain(hub, notifier, policy) == 1
    assert (await _row(hub.db, message))["status"] == "sent"
    assert fake.count_by_reference() == {str(message): 1}


async def test_a_message_fails_only_after_a_look_up_shows_notify_does_not_have_it(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    policy = SendPolicy(quiet_start=0, quiet_end=0, retry=RetryPolicy(max_attempts=1))
    patient = await hub.create_patient()
    [message] = await _queue(hub, patient_id=patient)
    fake.inject("drop_after_accept")  # the one attempt reached Notify, and we never heard
    assert await _drain(hub, notifier, policy) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["check_first"]) == ("queued", 1, 1)
    hub.clock.set(from_db(row["next_attempt_at"]))
    assert await _drain(hub, notifier, policy) == 1
    row = await _row(hub.db, message)
    [sent] = fake.by_reference(str(message))
    assert (row["status"], row["notify_id"]) == ("sent", sent.id)  # found: sent, no task for staff
    assert await hub.db.fetch_all("SELECT id FROM tasks") == []
    assert len(fake.arrivals) == 2  # no second send


async def test_a_failed_lookup_is_retried_before_any_send(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    [message] = await _queue(hub)
    fake.inject("timeout")
    await _drain(hub, notifier)
    fake.faults_on_lookups = True
    fake.inject("server_error")  # the lookup itself fails: we still do not know, so no send
    hub.clock.set(from_db((await _row(hub.db, message))["next_attempt_at"]))
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["check_first"], row["attempts"]) == ("queued", 1, 2)
    hub.clock.set(from_db(row["next_attempt_at"]))
    assert await _drain(hub, notifier) == 1
    assert (await _row(hub.db, message))["status"] == "sent"
    assert fake.count_by_reference() == {str(message): 1}
    assert len(fake.arrivals) == 3  # the send, the failed lookup, the lookup that found it


async def test_the_shared_request_count_keeps_only_the_last_hour(hub: Harness, notifier: GovukNotifier) -> None:
    await _queue(hub, 3, recipient=None)
    assert await _drain(hub, notifier) == 3
    count = "SELECT COUNT(*) AS n FROM notify_requests"
    assert await hub.db.fetch_one(count) == {"n": 3}
    hub.clock.advance(minutes=61)
    assert await claim_batch(hub.db, now=hub.clock.now(), policy=POLICY) == []
    assert await hub.db.fetch_one(count) == {"n": 0}


async def test_a_refused_message_fails_at_once_and_is_not_retried(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    [message] = await _queue(hub, recipient=REFUSED)
    assert await _drain(hub, notifier) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "notify 400 ValidationError")
    hub.clock.advance(days=1)
    assert await _drain(hub, notifier) == 0
    assert fake.messages == [] and len(fake.arrivals) == 1


async def test_a_refused_key_fails_nobody_and_holds_the_channel_until_put_right(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    # A 403 is the hub's own configuration (its API key, or its clock), the same for every message: failing them
    # would open a task for every patient, and sending them another way would post every patient a paid letter. The
    # messages wait, the channel is held a little, the operator is told (with no patient's details), and once it is
    # put right everything goes, once.
    other = "11111111-1111-1111-1111-111111111111"
    misconfigured = GovukNotifier(api_key=notify_api_key(fake.service_id, other), base_url=fake.url, timeout=1)
    patient = await hub.create_patient(email="margaret@example.com")
    appointment = await hub.create_appointment(patient_id=patient)
    [message] = await _queue(hub, patient_id=patient, appointment_id=appointment)
    with caplog.at_level(logging.ERROR, logger="hub.notify.sender"):
        assert await _drain(hub, misconfigured, REROUTING) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["error"]) == ("queued", 0, "notify 403 AuthError")
    held_until = hub.clock.now() + timedelta(minutes=5)
    holds = await hub.db.fetch_all("SELECT channel, held_until FROM channel_holds")
    assert [(h["channel"], from_db(h["held_until"])) for h in holds] == [("sms", held_until)]
    assert [r["id"] for r in await hub.db.fetch_all("SELECT id FROM outbox_messages")] == [message]
    assert await hub.db.fetch_all("SELECT id FROM tasks") == []
    assert await hub.db.fetch_all("SELECT id FROM events") == []
    [alarm] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "HUB_NOTIFY_API_KEY" in alarm.getMessage() and "system clock" in alarm.getMessage()
    assert MOBILE not in alarm.getMessage() and "margaret" not in alarm.getMessage()

    # The key put right, the hold ends: it goes, once.
    hub.clock.advance(minutes=4)
    assert await _drain(hub, notifier, REROUTING) == 0
    hub.clock.advance(minutes=1)
    assert await _drain(hub, notifier, REROUTING) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert fake.count_by_reference() == {str(message): 1}


async def _letter_patient(hub: Harness) -> tuple[int, int]:
    patient = await hub.create_patient(
        given_name="Ada", family_name="Lovelace", address_lines=["1 Pond Street", "London"], postcode="NW3 2QG"
    )
    return patient, await hub.create_appointment(patient_id=patient)


async def test_a_letter_with_the_hospitals_pdf_goes_as_a_precompiled_letter(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    patient, appointment = await _letter_patient(hub)
    pdf = b"%PDF-1.4\n% the hospital's letter\n%%EOF\n"
    await hub.create_letter(patient_id=patient, appointment_id=appointment, content=pdf)
    [message] = await _queue(hub, channel="letter", recipient="", patient_id=patient, appointment_id=appointment)
    assert await _drain(hub, notifier) == 1
    [sent] = fake.by_reference(str(message))
    assert (sent.type, sent.pdf, sent.template_id) == ("letter", pdf, None)
    assert (await _row(hub.db, message))["status"] == "sent"


async def test_a_letter_without_a_pdf_goes_as_a_templated_letter_to_the_address(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    patient, appointment = await _letter_patient(hub)
    [message] = await _queue(hub, channel="letter", recipient="", patient_id=patient, appointment_id=appointment)
    assert await _drain(hub, notifier) == 1
    [sent] = fake.by_reference(str(message))
    assert (sent.type, sent.pdf, sent.template_id) == ("letter", None, TEMPLATE)
    assert sent.recipient == "Ada Lovelace\n1 Pond Street\nLondon\nNW3 2QG"
    assert sent.personalisation["n"] == 0  # the message's own fields go too
    assert (await _row(hub.db, message))["status"] == "sent"


@pytest.mark.parametrize(("identical", "cap"), [(False, 100), (True, 20)])
async def test_texts_to_one_number_are_capped_per_hour(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier, identical: bool, cap: int
) -> None:
    # One batch holds more than the identical cap: messages claimed in the same batch count too.
    policy = SendPolicy(quiet_start=0, quiet_end=0, batch=50)
    ids = await _queue(hub, cap + 1, identical=identical)
    [other] = await _queue(hub, recipient="+447700900999", identical=identical)
    assert await _drain(hub, notifier, policy) == cap + 1
    assert await _statuses(hub.db) == {"sent": cap + 1, "queued": 1}
    deferred = await _row(hub.db, ids[-1])
    assert deferred["status"] == "queued" and deferred["attempts"] == 0
    assert from_db(deferred["next_attempt_at"]) == hub.clock.now() + timedelta(minutes=10)
    assert (await _row(hub.db, other))["status"] == "sent"

    hub.clock.advance(minutes=10)
    assert await _drain(hub, notifier, policy) == 0  # deferred again: the hour is not over
    hub.clock.advance(minutes=51)
    assert await _drain(hub, notifier, policy) == 1
    assert await _statuses(hub.db) == {"sent": cap + 2}
    assert set(fake.count_by_reference().values()) == {1} and len(fake.messages) == cap + 2


async def _second_connection(hub: Harness) -> Database:
    return await connect(hub.database_url, readers=1)


async def test_two_workers_never_claim_the_same_message(hub: Harness) -> None:
    await _queue(hub, 60, recipient=None)
    other = await _second_connection(hub)
    try:
        policy = SendPolicy(quiet_start=0, quiet_end=0, batch=25)
        first, second = await asyncio.gather(
            claim_batch(hub.db, now=hub.clock.now(), policy=policy),
            claim_batch(other, now=hub.clock.now(), policy=policy),
        )
        assert len(first) == len(second) == 25
        assert not {c.id for c in first} & {c.id for c in second}
        assert {c.token for c in first + second} == {1}  # each message's first claim
    finally:
        await other.close()


async def test_two_workers_draining_at_once_send_each_message_once(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    ids = await _queue(hub, 150, recipient=None)
    fake.set_fault_rate(0.2, kinds=("rate_limit", "server_error", "slow", "drop_after_accept"), seed=3)
    other = await _second_connection(hub)
    policy = SendPolicy(quiet_start=0, quiet_end=0, batch=20, retry=RetryPolicy(max_attempts=50))
    try:
        for _ in range(300):
            done: Any = await asyncio.gather(
                drain_once(hub.db, notifier, hub.clock, policy=policy, rng=random.Random(1)),
                drain_once(other, notifier, hub.clock, policy=policy, rng=random.Random(2)),
            )
            if done == [0, 0] and (await _statuses(hub.db)).get("queued", 0) == 0:
                break
            if done == [0, 0]:
                hub.clock.advance(minutes=5)  # on to the next retries
    finally:
        await other.close()
    assert await _statuses(hub.db) == {"sent": 150}
    assert fake.count_by_reference() == {str(i): 1 for i in ids}
    assert {"rate_limit", "server_error", "drop_after_accept"} <= set(fake.fired_faults)


async def test_the_per_minute_limit_is_shared_by_two_workers(hub: Harness, notifier: GovukNotifier) -> None:
    await _queue(hub, 60, recipient=None)
    other = await _second_connection(hub)
    policy = SendPolicy(quiet_start=0, quiet_end=0, per_minute=30, batch=25)
    try:
        first, second = await asyncio.gather(
            claim_batch(hub.db, now=hub.clock.now(), policy=policy),
            claim_batch(other, now=hub.clock.now(), policy=policy),
        )
        assert len(first) + len(second) == 29  # one kept for security codes
        hub.clock.advance(seconds=60)
        assert await claim_batch(other, now=hub.clock.now(), policy=policy) == []  # the margin
        hub.clock.advance(seconds=1.5)
        assert len(await claim_batch(other, now=hub.clock.now(), policy=policy)) == 25
    finally:
        await other.close()


async def test_a_refused_text_with_nowhere_else_to_go_goes_to_the_booking_centre(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    patient = await hub.create_patient(address_lines=(), postcode="")  # no email, no address
    appointment = await hub.create_appointment(patient_id=patient)
    [message] = await _queue(hub, recipient=REFUSED, patient_id=patient, appointment_id=appointment)
    assert await _drain(hub, notifier, REROUTING) == 1
    tasks = await hub.db.fetch_all("SELECT kind, patient_id, appointment_id, source_id, status, reason FROM tasks")
    assert tasks == [
        {
            "kind": "failed_notification",
            "patient_id": patient,
            "appointment_id": appointment,
            "source_id": message,
            "status": "open",
            "reason": "sms refused: notify 400 ValidationError",
        }
    ]
    assert [r["id"] for r in await hub.db.fetch_all("SELECT id FROM outbox_messages")] == [message]
    [event] = await _hospital_events(hub)
    assert (event["kind"], event["data"]) == (
        "notification.failed",
        {"message_id": str(message), "kind": "invitation", "status": "refused", "channel": "sms"},
    )


async def test_a_refused_text_goes_by_email_and_the_hospital_is_told(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    # Notify refusing a number is as final as its permanent-failure receipt: the patient's next channel.
    patient = await hub.create_patient(email="margaret@example.com")
    appointment = await hub.create_appointment(patient_id=patient)
    [message] = await _queue(hub, recipient=REFUSED, patient_id=patient, appointment_id=appointment)
    assert await _drain(hub, notifier, REROUTING) == 2  # the text, then the email in the next round
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "notify 400 ValidationError")
    [email] = await hub.db.fetch_all("SELECT * FROM outbox_messages WHERE id != ?", (message,))
    [sent] = fake.by_reference(str(email["id"]))
    assert (sent.type, sent.recipient, sent.template_id) == ("email", "margaret@example.com", EMAIL_TEMPLATE)
    assert (email["status"], email["kind"], email["appointment_id"]) == ("sent", "invitation", appointment)
    [event] = await _hospital_events(hub)
    assert event["kind"] == "notification.failed_over"
    assert event["data"] == {
        "message_id": str(message),
        "kind": "invitation",
        "status": "refused",
        "from": "sms",
        "to": "email",
        "replacement_id": str(email["id"]),
    }
    audit = await hub.db.fetch_all(
        "SELECT actor_id, action, record_id, detail FROM audit_events WHERE record_type = 'outbox_message' ORDER BY id"
    )
    assert audit == [
        {
            "actor_id": "outbox",
            "action": "notification_failed",
            "record_id": str(message),
            "detail": "sms refused: notify 400 ValidationError",
        },
        {
            "actor_id": "outbox",
            "action": "notification_queued",
            "record_id": str(email["id"]),
            "detail": f"email, replacing sms message {message} (refused)",
        },
    ]
    assert await hub.db.fetch_all("SELECT id FROM tasks") == []
    await assert_nothing_personal_recorded(hub, REFUSED, "margaret@example.com")


async def test_a_message_notify_never_had_is_chased_not_sent_another_way(
    hub: Harness, fake: FakeNotify, notifier: GovukNotifier
) -> None:
    # Its number was never the trouble: Notify did not answer. Another channel would go through the same Notify.
    policy = dataclasses.replace(REROUTING, retry=RetryPolicy(max_attempts=2))
    patient = await hub.create_patient(email="margaret@example.com")
    appointment = await hub.create_appointment(patient_id=patient)
    [message] = await _queue(hub, patient_id=patient, appointment_id=appointment)
    fake.faults_on_lookups = True
    fake.inject("server_error", None, "server_error")  # the send, the look-up before the resend, the resend
    for _ in range(3):  # two attempts, then the last look-up: nothing there
        assert await _drain(hub, notifier, policy) == 1
        hub.clock.set(from_db((await _row(hub.db, message))["next_attempt_at"]))
    row = await _row(hub.db, message)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 3, "notify 500 Exception")
    assert [r["id"] for r in await hub.db.fetch_all("SELECT id FROM outbox_messages")] == [message]
    [event] = await _hospital_events(hub)
    assert event["kind"] == "notification.failed"
    assert (event["data"]["status"], event["data"]["channel"]) == ("not-sent", "sms")
    failed = await hub.db.fetch_all("SELECT record_id, detail FROM audit_events WHERE action = 'notification_failed'")
    assert failed == [{"record_id": str(message), "detail": "sms not-sent: not at Notify after 2 attempts"}]
    [task] = await hub.db.fetch_all("SELECT kind, source_id FROM tasks")
    assert task == {"kind": "failed_notification", "source_id": message}


async def test_each_result_is_recorded_as_soon_as_it_is_known(hub: Harness, fake: FakeNotify) -> None:
    # A worker killed now would strand only the one message still in flight, not the whole batch.
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=10)
    await _queue(hub, 5, recipient=None)
    fake.inject(Fault("slow", seconds=3))  # the first send to arrive is answered late
    batch = asyncio.create_task(drain_once(hub.db, notifier, hub.clock, policy=POLICY, rng=random.Random(1)))

    async def others_recorded() -> None:
        while (await _statuses(hub.db)).get("sent", 0) < 4 and not batch.done():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(others_recorded(), 10)
    assert not batch.done()
    assert await _statuses(hub.db) == {"sent": 4, "sending": 1}
    assert await batch == 5
    assert await _statuses(hub.db) == {"sent": 5}


async def _claimed_one(hub: Harness, **queued: Any) -> Claimed:
    [message] = await _queue(hub, **queued)
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=POLICY)
    assert [c.id for c in claimed] == [message]
    return claimed[0]


async def test_recording_a_result_waits_for_no_patients_write(hub: Harness, backend: str) -> None:
    # An invitation run's results are written while patients sign in: on PostgreSQL they take no lock of the
    # whole hub. (On SQLite every write is alone, so this holds on PostgreSQL only.)
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    claimed = await _claimed_one(hub)
    async with held_write(hub.db, patient=1):
        outcome = Outcome(claimed, notify_id="at-notify")
        recording = record_outcomes(hub.db, [outcome], now=hub.clock.now(), policy=POLICY, rng=random.Random(1))
        await asyncio.wait_for(recording, timeout=5)
    row = await _row(hub.db, claimed.id)
    assert (row["status"], row["notify_id"]) == ("sent", "at-notify")


async def test_two_workers_told_of_the_daily_limit_at_once_both_record_the_hold(hub: Harness) -> None:
    # Each worker's results are a transaction of its own; the second to write the channel's hold waits for the
    # first and then moves it, rather than failing on the row the first one added.
    first, second = await _claimed_one(hub), await _claimed_one(hub, recipient="+447700900002")
    limit = NotifyError("429", status=429, error="TooManyRequestsError")

    def first_worker(tx: Transaction) -> Awaitable[int]:
        return tx.execute(
            "INSERT INTO channel_holds (channel, held_until) VALUES ('sms', '2026-11-21T23:00:00.000000Z')"
        )

    async with held_write(hub.db, keys=(), doing=first_worker):
        outcomes = [Outcome(first, error=limit), Outcome(second, error=limit)]
        told = asyncio.create_task(
            record_outcomes(hub.db, outcomes, now=hub.clock.now(), policy=POLICY, rng=random.Random(1))
        )
        await asyncio.sleep(0.3)
        assert not told.done()  # the second worker waits for the first's row
    await asyncio.wait_for(told, timeout=10)
    holds = await hub.db.fetch_all("SELECT channel, held_until FROM channel_holds")
    assert [(h["channel"], from_db(h["held_until"])) for h in holds] == [("sms", datetime(2026, 11, 22, tzinfo=UTC))]
    assert {(await _row(hub.db, c.id))["status"] for c in (first, second)} == {"queued"}


async def test_a_message_going_back_in_the_queue_waits_for_its_patients_write(hub: Harness, backend: str) -> None:
    # Put back after failing for now, it is checked against what changed while it was out (the appointment
    # cancelled, a STOP): under its patient's lock, which the writes that change those hold, so that none of
    # them can pass it by between the check and the commit. Other patients' writes it still does not wait for.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient = await hub.create_patient()
    other = await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    claimed = await _claimed_one(hub, patient_id=patient)
    failed = Outcome(claimed, error=NotifyError("500", status=500, error="Exception"))
    async with held_write(hub.db, patient=other):
        await asyncio.wait_for(
            record_outcomes(hub.db, [failed], now=hub.clock.now(), policy=POLICY, rng=random.Random(1)), timeout=5
        )
    assert (await _row(hub.db, claimed.id))["status"] == "queued"
    again = await _claimed_one_again(hub, claimed.id)
    failed = Outcome(again, error=NotifyError("500", status=500, error="Exception"))
    async with held_write(hub.db, patient=patient):
        recording = asyncio.create_task(
            record_outcomes(hub.db, [failed], now=hub.clock.now(), policy=POLICY, rng=random.Random(1))
        )
        await asyncio.sleep(0.3)
        assert not recording.done()
    await asyncio.wait_for(recording, timeout=5)
    assert (await _row(hub.db, claimed.id))["status"] == "queued"


async def test_a_message_given_up_on_waits_for_its_patients_write(hub: Harness, backend: str) -> None:
    # Given up on, it may go by the patient's next channel, and is checked against its appointment first: under
    # its patient's lock, as a message going back in the queue is, so that a change of the patient's contact details
    # or of the appointment cannot pass it by.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient = await hub.create_patient(email="margaret@example.com")
    claimed = await _claimed_one(hub, patient_id=patient)
    given_up = Outcome(claimed, not_at_notify=True)  # the last look-up found nothing
    async with held_write(hub.db, patient=patient):
        recording = asyncio.create_task(
            record_outcomes(hub.db, [given_up], now=hub.clock.now(), policy=POLICY, rng=random.Random(1))
        )
        await asyncio.sleep(0.3)
        assert not recording.done()
    await asyncio.wait_for(recording, timeout=5)
    assert (await _row(hub.db, claimed.id))["status"] == "failed"


async def _claimed_one_again(hub: Harness, message_id: int) -> Claimed:
    hub.clock.advance(hours=1)  # past its backoff
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=POLICY)
    assert [c.id for c in claimed] == [message_id]
    return claimed[0]


async def test_a_message_merged_to_another_patient_meanwhile_goes_back_under_that_patients_lock(
    hub: Harness, backend: str
) -> None:
    # A merge moves the message to the patient it is kept under while the result waits for the first patient's
    # lock: the result is written under the new patient's lock, which it then waits for.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    merged, kept = await hub.create_patient(), await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    claimed = await _claimed_one(hub, patient_id=merged)
    failed = Outcome(claimed, error=NotifyError("500", status=500, error="Exception"))

    def merge(tx: Transaction) -> Awaitable[int]:
        return tx.execute("UPDATE outbox_messages SET patient_id = ? WHERE id = ?", (kept, claimed.id))

    async with held_write(hub.db, patient=kept):
        async with held_write(hub.db, patient=merged, doing=merge):
            recording = asyncio.create_task(
                record_outcomes(hub.db, [failed], now=hub.clock.now(), policy=POLICY, rng=random.Random(1))
            )
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)
        assert not recording.done()  # now waiting for the patient the message belongs to
    await asyncio.wait_for(recording, timeout=5)
    assert (await _row(hub.db, claimed.id))["status"] == "queued"


async def test_a_message_refused_for_the_hubs_template_goes_no_other_way(
    hub: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Notify answers 400 BadRequestError for the hub's side too (a template wanting a field the hub does not fill, a
    # team-only key): every text fails alike, and sending each by email or post (a paid letter) fixes nothing.
    templates = {TEMPLATE: Template(type="sms", body="Your appointment is on ((date))")}
    with FakeNotify(templates=templates) as strict:
        notifier = GovukNotifier(api_key=strict.api_key, base_url=strict.url, timeout=1)
        patient = await hub.create_patient(email="margaret@example.com")  # an email to fail over to, were it hers
        appointment = await hub.create_appointment(patient_id=patient)
        [message] = await _queue(hub, patient_id=patient, appointment_id=appointment)
        with caplog.at_level(logging.ERROR, logger="hub.notify.sender"):
            assert await _drain(hub, notifier, REROUTING) == 1
    row = await _row(hub.db, message)
    assert (row["status"], row["error"]) == ("failed", "notify 400 BadRequestError")
    assert [r["id"] for r in await hub.db.fetch_all("SELECT id FROM outbox_messages")] == [message]  # no email
    kinds = [e["kind"] for e in await hub.db.fetch_all("SELECT kind FROM events")]
    assert kinds == ["notification.failed"]
    [task] = await hub.db.fetch_all("SELECT kind, source_id FROM tasks")
    assert task == {"kind": "failed_notification", "source_id": message}
    [alarm] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "template" in alarm and MOBILE not in alarm and "margaret" not in alarm
