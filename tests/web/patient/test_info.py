"""The accessibility statement, the privacy notice and the footer name who runs the service and when."""

from __future__ import annotations

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_the_footer_names_the_operator_not_nhs_england(make_hub: MakeHub) -> None:
    hub = await make_hub(operator_name="Royal Free London NHS Foundation Trust")
    for path in ("/", "/accessibility", "/privacy"):
        page = await hub.get_page(path)
        footer = page.text.split("<footer", 1)[1]
        assert "NHS England" not in footer, path
        assert "© Royal Free London NHS Foundation Trust" in footer, path


async def test_without_an_operator_the_footer_claims_no_one(hub: Harness) -> None:
    page = await hub.get_page("/")
    assert "©" not in page.text.split("<footer", 1)[1]


async def test_the_accessibility_statement_is_dated_and_lists_known_issues(make_hub: MakeHub) -> None:
    hub = await make_hub(accessibility_statement_date="2026-10-05")
    page = await hub.get_page("/accessibility")
    assert "This statement was prepared on 5 October 2026." in page.text
    headings = ["".join(h.itertext()) for h in page.document.iter("h2")]
    assert "Known issues" in headings
    assert "Preparation of this statement" in headings


async def test_the_privacy_notice_names_the_trusts_and_the_operator(make_hub: MakeHub) -> None:
    hub = await make_hub(operator_name="Herefordshire and Worcestershire Health and Care")
    await hub.create_organisation(code="WVT", name="Wye Valley NHS Trust")
    await hub.create_organisation(code="WAH", name="Worcestershire Acute Hospitals NHS Trust")
    text = " ".join((await hub.get_page("/privacy")).text.split())
    assert "Herefordshire and Worcestershire Health and Care runs this service" in text
    assert "Worcestershire Acute Hospitals NHS Trust and Wye Valley NHS Trust are responsible" in text
    assert "The hospital trust that sent you the link" not in text


async def test_the_privacy_notice_names_a_single_trust(hub: Harness) -> None:
    await hub.create_organisation(code="RAL", name="Royal Free London NHS Foundation Trust")
    text = " ".join((await hub.get_page("/privacy")).text.split())
    assert "Royal Free London NHS Foundation Trust is responsible for your information" in text


async def test_the_privacy_notice_counts_every_cookie_a_sign_in_sets(hub: Harness) -> None:
    await hub.create_patient()
    response = await hub.submit_details("07700 900001", "1948-03-14")
    set_here = {c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")}
    assert set_here == {"hub_signin", "hub_signin_by"}
    assert "We use 4 essential cookies" in (await hub.get_page("/privacy")).text
