"""Who may ask (the Aggregator's access token) and for whom (the NHS login ID token), on both databases."""

from __future__ import annotations

import pytest

from tests.fake_aggregator import FakeAggregator
from tests.fake_nhs_login import MARGARET, FakeNhsLogin
from tests.harness import Harness
from tests.web.fhir.conftest import NHS_NUMBER, Ask

pytestmark = pytest.mark.anyio


async def _patient(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS_NUMBER)
    await hub.create_appointment(patient_id=patient)


@pytest.mark.parametrize(
    "bad",
    ["none", "garbage", "expired", "audience", "issuer", "scope", "stranger"],
)
async def test_a_bad_access_token_is_401_and_returns_nothing(
    wayfinder: Harness, ask: Ask, aggregator: FakeAggregator, bad: str
) -> None:
    await _patient(wayfinder)
    from tests.fake_http import new_key

    tokens = {
        "none": "",
        "garbage": "not.a.token",
        "expired": aggregator.access_token(lifetime=-60),
        "audience": aggregator.access_token(audience="https://other.example/fhir"),
        "issuer": aggregator.access_token(issuer="https://evil.example"),
        "scope": aggregator.access_token(scope="something.else"),
        "stranger": aggregator.access_token(key=new_key(parameters={"kid": "agg-1"})),  # its kid, not its key
    }
    response = await ask(token=tokens[bad])
    assert response.status_code == 401
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden" and issue["details"]["coding"][0]["code"] == "ACCESS_DENIED"
    assert "entry" not in response.text and response.headers["www-authenticate"].startswith("Bearer")


async def test_keys_rotate_without_downtime(wayfinder: Harness, ask: Ask, aggregator: FakeAggregator) -> None:
    await _patient(wayfinder)
    old_token = aggregator.access_token()
    assert (await ask(token=old_token)).status_code == 200
    old = aggregator.signing
    aggregator.rotate()  # two keys published; new tokens signed with the new one
    wayfinder.clock.advance(seconds=31)
    assert (await ask(token=aggregator.access_token())).status_code == 200
    assert (await ask(token=old_token)).status_code == 200
    aggregator.retire(old)
    wayfinder.clock.advance(minutes=5)
    assert (await ask(token=aggregator.access_token())).status_code == 200
    assert (await ask(token=aggregator.access_token(key=old))).status_code == 401


@pytest.mark.parametrize(
    ("case", "status"),
    [("missing", 401), ("unsigned", 401), ("audience", 401), ("p5", 401), ("other_number", 401), ("other_dob", 401)],
)
async def test_the_nhs_login_token_must_be_the_patients_and_agree_with_our_record(
    wayfinder: Harness, ask: Ask, nhs_login: FakeNhsLogin, case: str, status: int
) -> None:
    await _patient(wayfinder)
    tokens = {
        "missing": "",
        "unsigned": nhs_login.id_token()[:-8] + "AAAAAAAA",
        "audience": nhs_login.id_token(audience="someone-else"),
        "p5": nhs_login.id_token({**MARGARET, "identity_proofing_level": "P5"}),
        "other_number": nhs_login.id_token({**MARGARET, "nhs_number": "9000000009"}),
        "other_dob": nhs_login.id_token({**MARGARET, "birthdate": "1948-03-15"}),
    }
    response = await ask(id_token=tokens[case])
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_an_nhs_login_birth_date_near_the_end_of_the_calendar_is_under_16_not_a_500(
    wayfinder: Harness, ask: Ask, nhs_login: FakeNhsLogin
) -> None:
    await _patient(wayfinder)
    response = await ask(id_token=nhs_login.id_token({**MARGARET, "birthdate": "9990-01-01"}))
    assert response.status_code == 403, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "identifier",
    ["", "9434765919", "https://fhir.nhs.uk/Id/nhs-number|9434765918", "https://fhir.nhs.uk/Id/nhs-number|94347"],
)
async def test_a_missing_or_invalid_nhs_number_is_400(wayfinder: Harness, ask: Ask, identifier: str) -> None:
    response = await ask(identifier=identifier)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "exception"
