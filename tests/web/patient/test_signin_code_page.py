"""The security code field as the GOV.UK pattern has it, and the "Not received a text message?" page."""

import pytest

from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_the_code_field_offers_the_texted_code_and_a_number_keypad(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    page = await hub.get_page("/sign-in/code")
    [field] = page.document.findall(".//input[@name='code']")
    assert (field.get("autocomplete"), field.get("inputmode")) == ("one-time-code", "numeric")
    assert field.get("onpaste") is None  # pasting is allowed
    [link] = [a for a in page.document.iter("a") if a.get("href") == "/sign-in/not-received"]
    assert "".join(link.itertext()) == "Not received a text message?"


async def test_not_received_offers_a_new_code(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    page = await hub.get_page("/sign-in/not-received")
    assert [f.get("action") for f in page.document.iter("form")] == ["/sign-in/resend"]
    response = await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/not-received")
    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code?resent=1")
    assert len(await hub.sent_codes()) == 2


async def test_not_received_without_a_sign_in_goes_to_the_start(hub: Harness) -> None:
    response = await hub.client.get("/sign-in/not-received")
    assert (response.status_code, response.headers["location"]) == (303, "/")
