"""The standard's non-functional rules, each tested: correlation ids (WF-NFR-09), 429 (03), 503 (06), 504 (02)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from tests.conftest import MakeHub
from tests.fake_aggregator import FakeAggregator
from tests.fake_nhs_login import FakeNhsLogin
from tests.harness import Harness
from tests.web.fhir.conftest import CORRELATION, NHS_NUMBER, Ask, wayfinder_settings

pytestmark = pytest.mark.anyio


async def test_the_correlation_id_is_required_echoed_and_logged_without_personal_data(
    wayfinder: Harness, ask: Ask, caplog: pytest.LogCaptureFixture
) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER)
    await wayfinder.create_appointment(patient_id=patient)
    with caplog.at_level(logging.INFO, logger="hub.wayfinder"):
        response = await ask()
    assert response.headers["x-correlation-id"] == CORRELATION
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.wayfinder"]
    assert lines and CORRELATION in lines[-1] and " 200 " in lines[-1]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert NHS_NUMBER not in logged and "1948" not in logged and "Bearer" not in logged
    missing = await ask(correlation=None)
    assert missing.status_code == 400 and "X-Correlation-ID" in missing.json()["issue"][0]["diagnostics"]


async def test_above_the_rate_the_answer_is_429(
    make_hub: MakeHub, aggregator: FakeAggregator, nhs_login: FakeNhsLogin, ask: Ask
) -> None:
    hub = await make_hub(**wayfinder_settings(aggregator, nhs_login), **{"nhs_app.rate_per_second": 3})
    answers = [(await ask(hub=hub)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    hub.clock.advance(seconds=1)
    assert (await ask(hub=hub)).status_code == 200


async def test_maintenance_is_503_with_a_clear_body(
    make_hub: MakeHub, aggregator: FakeAggregator, nhs_login: FakeNhsLogin, ask: Ask
) -> None:
    hub = await make_hub(**wayfinder_settings(aggregator, nhs_login), **{"nhs_app.maintenance": True})
    response = await ask(hub=hub)
    assert response.status_code == 503
    assert "maintenance" in response.json()["issue"][0]["diagnostics"]
    assert response.headers["x-correlation-id"] == CORRELATION


@asynccontextmanager
async def _table_held(hub: Harness) -> AsyncIterator[None]:
    """Another connection holds the appointments table, so the hub's read waits for it: a slow database."""
    holder = await asyncpg.connect(hub.database_url)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("LOCK TABLE appointments IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await holder.close()


async def test_a_slow_database_gets_504_at_the_time_limit(
    make_hub: MakeHub, aggregator: FakeAggregator, nhs_login: FakeNhsLogin, ask: Ask
) -> None:
    hub = await make_hub(**wayfinder_settings(aggregator, nhs_login), **{"nhs_app.timeout_ms": 1000})
    if hub.db.dialect == "sqlite":
        pytest.skip("an SQLite reader in WAL mode never waits for another connection; PostgreSQL shows the wait")
    patient = await hub.create_patient(nhs_number=NHS_NUMBER)
    await hub.create_appointment(patient_id=patient)
    assert (await ask(hub=hub)).status_code == 200  # keys fetched, nothing waiting
    async with _table_held(hub):
        response = await ask(hub=hub)
    assert response.status_code == 504
    assert response.json()["issue"][0]["diagnostics"] == "Gateway Timeout"
