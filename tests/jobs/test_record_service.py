"""The Record Service push against the fake Aggregator on real HTTP, on both databases."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest

from hub.clock import FixedClock
from hub.jobs.record_service import RecordServiceClient, push_once, queue_numbers, retry_delay
from hub.jobs.worker import work
from hub.notify.dev import DevNotifier
from hub.store.record_service import request_resend
from tests.conftest import MakeHub
from tests.fake_aggregator import FakeAggregator
from tests.harness import Harness

pytestmark = pytest.mark.anyio
NUMBERS = ["9434765919", "9000000009", "9876543210"]


@pytest.fixture
def aggregator(clock: FixedClock) -> Iterator[FakeAggregator]:
    with FakeAggregator(now=clock.now) as fake:
        yield fake


def record_settings(aggregator: FakeAggregator, **more: Any) -> dict[str, Any]:
    return {
        "nhs_app.record_service.url": aggregator.records_url,
        "nhs_app.record_service.appointments_client_id": aggregator.client_ids["appointments"],
        "nhs_app.record_service.documents_client_id": aggregator.client_ids["documents"],
        "nhs_app.record_service.token_url": aggregator.token_url,
        "nhs_app.record_service.client_id": aggregator.client_id,
        "nhs_app.record_service.client_secret": aggregator.client_secret,
        **more,
    }


async def _patients(hub: Harness) -> None:
    for number in NUMBERS:
        patient = await hub.create_patient(nhs_number=number)
        await hub.create_appointment(patient_id=patient)
    child = await hub.create_patient(nhs_number="9990001112", dob="2015-01-01")
    await hub.create_appointment(patient_id=child)
    await hub.create_letter(patient_id=child)


async def _push(hub: Harness) -> int:
    client = RecordServiceClient(hub.settings.nhs_app.record_service, hub.clock)
    await queue_numbers(hub.db, hub.clock)
    return await push_once(hub.db, client, hub.clock, random.Random(1))


async def test_numbers_go_once_with_client_credentials_and_never_a_childs(
    make_hub: MakeHub, aggregator: FakeAggregator
) -> None:
    hub = await make_hub(**record_settings(aggregator))
    await _patients(hub)
    assert await _push(hub) == 3
    assert aggregator.numbers("appointments") == sorted(NUMBERS)
    assert aggregator.numbers("documents") == []  # the only letter is the child's
    assert await _push(hub) == 0 and len(aggregator.received) == 1


async def test_at_most_a_batch_a_call(make_hub: MakeHub, aggregator: FakeAggregator) -> None:
    hub = await make_hub(**record_settings(aggregator, **{"nhs_app.record_service.batch": 2}))
    await _patients(hub)
    assert await _push(hub) == 2
    assert await _push(hub) == 1
    assert [len(body["nhsNumbers"]) for body in aggregator.received] == [2, 1]


async def test_a_failed_call_is_retried_after_a_backoff(make_hub: MakeHub, aggregator: FakeAggregator) -> None:
    hub = await make_hub(**record_settings(aggregator))
    await _patients(hub)
    aggregator.faults = [503]
    assert await _push(hub) == 0
    assert await _push(hub) == 0  # not yet due
    hub.clock.advance(minutes=1)
    assert await _push(hub) == 3
    audit = await hub.db.fetch_all("SELECT action, detail FROM audit_events ORDER BY id")
    assert audit[0] == {"action": "record_service_failed", "detail": "3 numbers: 503"}
    assert "9434765919" not in str(audit)


async def test_an_api_key_works_where_one_was_issued(make_hub: MakeHub, aggregator: FakeAggregator) -> None:
    overrides = record_settings(aggregator, **{"nhs_app.record_service.token_url": ""})
    overrides["nhs_app.record_service.api_key"] = aggregator.api_key
    hub = await make_hub(**overrides)
    await _patients(hub)
    assert await _push(hub) == 3


async def test_a_resend_sends_every_number_again(make_hub: MakeHub, aggregator: FakeAggregator) -> None:
    hub = await make_hub(**record_settings(aggregator))
    await _patients(hub)
    await _push(hub)
    await request_resend(hub.db, actor="test", now=hub.clock.now())
    assert await _push(hub) == 3
    assert len(aggregator.received) == 2


async def test_the_worker_sends_them(make_hub: MakeHub, aggregator: FakeAggregator) -> None:
    hub = await make_hub(**record_settings(aggregator))
    await _patients(hub)
    await work(hub.db, DevNotifier(hub.db, hub.clock), hub.settings, hub.clock, asyncio.Event(), once=True)
    assert aggregator.numbers("appointments") == sorted(NUMBERS)


def test_backoff_grows_to_an_hour() -> None:
    rng = random.Random(3)
    delays = [retry_delay(n, rng).total_seconds() for n in (1, 2, 8, 30)]
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and delays[3] <= 3600
