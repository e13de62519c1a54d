"""A hub serving the Wayfinder API, with a fake Aggregator (its tokens) and a fake NHS login (the NHSD-ID-Token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from hub.clock import FixedClock
from tests.conftest import MakeHub
from tests.fake_aggregator import AUDIENCE, SCOPE, FakeAggregator
from tests.fake_nhs_login import MARGARET, NHS_APP_CLIENT, FakeNhsLogin
from tests.harness import Harness

CORRELATION = "c93e2449-a2ef-4476-ad15-13491036be22"
NHS_NUMBER = MARGARET["nhs_number"]
Ask = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def aggregator(clock: FixedClock) -> Iterator[FakeAggregator]:
    with FakeAggregator(now=clock.now) as fake:
        yield fake


@pytest.fixture
def nhs_login(clock: FixedClock) -> Iterator[FakeNhsLogin]:
    with FakeNhsLogin(now=clock.now) as fake:
        yield fake


def wayfinder_settings(aggregator: FakeAggregator, nhs_login: FakeNhsLogin) -> dict[str, Any]:
    return {
        "nhs_app.enabled": True,
        "nhs_app.token_issuer": aggregator.issuer,
        "nhs_app.token_jwks_url": aggregator.jwks_url,
        "nhs_app.token_audience": AUDIENCE,
        "nhs_app.token_scope": SCOPE,
        "nhs_app.id_token_audience": NHS_APP_CLIENT,
        "nhs_login.issuer": nhs_login.issuer,
    }


@pytest.fixture
async def wayfinder(make_hub: MakeHub, aggregator: FakeAggregator, nhs_login: FakeNhsLogin) -> Harness:
    return await make_hub(**wayfinder_settings(aggregator, nhs_login))


@pytest.fixture
def ask(wayfinder: Harness, aggregator: FakeAggregator, nhs_login: FakeNhsLogin) -> Ask:
    """ask(resource, nhs_number=..., token=..., id_token=..., correlation=..., hub=...) -> the response."""

    async def call(
        resource: str = "Appointment",
        *,
        nhs_number: str = NHS_NUMBER,
        identifier: str | None = None,
        token: str | None = None,
        id_token: str | None = None,
        correlation: str | None = CORRELATION,
        hub: Harness | None = None,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token if token is not None else aggregator.access_token()}",
            "NHSD-ID-Token": id_token if id_token is not None else nhs_login.id_token(),
        }
        if correlation is not None:
            headers["X-Correlation-ID"] = correlation
        value = identifier if identifier is not None else f"https://fhir.nhs.uk/Id/nhs-number|{nhs_number}"
        return await (hub or wayfinder).client.get(
            f"/fhir/r4/{resource}", params={"patient:identifier": value}, headers=headers
        )

    return call
