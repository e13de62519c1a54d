"""PUT /api/v1/patients/{ref} with the trust's NHS App exclusion flag, on both databases."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.web.api.test_handlers import PATIENT, Api, api_for, audit

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(hub: Harness) -> Api:
    return await api_for(hub, "RAL", "pas-live")


async def _excluded(api: Api) -> int:
    row = await api.hub.db.fetch_one("SELECT nhs_app_excluded FROM patients WHERE mrn = 'MRN1'")
    assert row is not None
    return int(row["nhs_app_excluded"])


async def test_the_exclusion_flag_is_set_and_cleared_and_audited(api: Api) -> None:
    assert (await api.put("patients/MRN1", PATIENT)).json()["outcome"] == "created"
    assert await _excluded(api) == 0
    response = await api.put("patients/MRN1", {**PATIENT, "nhs_app_excluded": True})
    assert (response.status_code, response.json()["outcome"]) == (200, "updated")
    assert await _excluded(api) == 1
    assert (await api.put("patients/MRN1", {**PATIENT, "nhs_app_excluded": True})).json()["outcome"] == "unchanged"
    assert (await api.put("patients/MRN1", PATIENT)).json()["outcome"] == "unchanged"  # left out: kept as it is
    assert await _excluded(api) == 1
    assert (await api.put("patients/MRN1", {**PATIENT, "nhs_app_excluded": False})).json()["outcome"] == "updated"
    assert await _excluded(api) == 0
    assert await audit(api.hub, "pas-live") == [
        "patient_created",
        "nhs_app_exclusion_changed",
        "put_patient_unchanged",
        "put_patient_unchanged",
        "nhs_app_exclusion_changed",
    ]


async def test_a_flag_that_is_not_true_or_false_is_422(api: Api) -> None:
    response = await api.put("patients/MRN1", {**PATIENT, "nhs_app_excluded": "yes"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "nhs_app_excluded", "message": "must be true or false"}]


async def test_the_openapi_document_describes_the_flag(api: Api) -> None:
    document = (await api.hub.client.get("/api/v1/openapi.json")).json()
    flag = document["components"]["schemas"]["Patient"]["properties"]["nhs_app_excluded"]
    assert "boolean" in str(flag) and "NHS App" in flag["description"]
