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


async def test_signing_in_by_email_the_pages_say_email_not_text_message(hub: Harness) -> None:
    await hub.create_patient(mobile=None, email="priya@example.com", contact_preference="email")
    await hub.submit_details("priya@example.com", "1948-03-14")
    page = await hub.get_page("/sign-in/code")
    assert "to your email address" in page.text
    assert "text message" not in page.text.split("<main", 1)[1].split("If we also have a mobile")[0]
    [link] = [a for a in page.document.iter("a") if a.get("href") == "/sign-in/not-received"]
    assert "".join(link.itertext()) == "Not received an email?"
    wrong = await hub.post_form("/sign-in/code", {"code": "1"}, csrf_from="/sign-in/code")
    assert "to your email address" in wrong.text  # the page again, with its error
    help_page = await hub.get_page("/sign-in/not-received")
    assert "<h1>Not received an email?</h1>" in help_page.text
    assert "spam" in help_page.text
    assert "If you have no signal" not in help_page.text
    # A new code keeps the wording: the browser still signs in by email.
    await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/not-received")
    assert "to your email address" in (await hub.get_page("/sign-in/code?resent=1")).text


async def test_signing_in_by_mobile_the_pages_say_text_message(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    page = await hub.get_page("/sign-in/code")
    assert "by text message to your mobile phone" in page.text
    assert "email" not in page.text.split("<main", 1)[1]
    help_page = await hub.get_page("/sign-in/not-received")
    assert "<h1>Not received a text message?</h1>" in help_page.text
