"""The Wayfinder API's routes: served only when switched on, and answering in FHIR even when nothing matches."""

from __future__ import annotations

import pytest

from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_unknown_fhir_paths_answer_in_fhir(wayfinder: Harness) -> None:
    response = await wayfinder.client.get("/fhir/r4/Patient")
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


async def test_the_api_is_not_served_unless_switched_on(hub: Harness) -> None:
    response = await hub.client.get("/fhir/r4/Appointment")
    assert response.status_code == 404
