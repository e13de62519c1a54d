"""Sign-in over HTTP: details, security code, twins' verification code, rate limits, CSRF, what is stored and logged."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from datetime import date

import pytest
from itsdangerous import URLSafeSerializer

from hub.rules.codes import hash_code
from hub.store.signin import challenge_id
from tests.conftest import SECRET, MakeHub
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio

Browser = Callable[..., Harness]
WRONG = "The security code is not right. Check it and try again."
EXPIRED = "This security code has expired. Ask for a new code."
LOCKED = "You have entered the wrong code too many times. Ask for a new code."
DEVICE_LIMIT = "Too many wrong codes have been entered from this device. Try again in an hour."
TOO_MANY_CODES = "You have asked for too many codes"
_CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]+(")')


async def count(hub: Harness, table: str, where: str = "1 = 1", params: tuple[object, ...] = ()) -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)
    assert row is not None
    return int(row["n"])


async def nothing_started(hub: Harness) -> None:
    for table in ("code_challenges", "rate_events", "outbox_messages", "dev_messages", "sessions"):
        assert await count(hub, table) == 0, table


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def without_csrf(html: str) -> str:
    return _CSRF_VALUE.sub(r"\1…\2", html)


async def signed_in_as(hub: Harness) -> str | None:
    """The name on /appointments, or None when the browser is not signed in."""
    page = await hub.client.get("/appointments")
    if page.status_code != 200:
        return None
    match = re.search(r'<span class="nhsuk-caption-l">([^<]+)</span>', page.text)
    assert match
    return match.group(1).strip()


def recover_code(secret: str, cid: str, code_hash: str) -> str | None:
    """Brute-force the 6-digit code behind a stored hash: possible only because the test knows the secret key.

    HMAC-SHA256 by hand so the inner state for a shared prefix is computed once (about a second in all).
    """
    key = secret.encode()
    key = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(f"code\x1f{cid}\x1f".encode())
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    target = bytes.fromhex(code_hash)
    halves = [f"{i:03d}".encode() for i in range(1000)]
    for first in halves:
        head = inner.copy()
        head.update(first)
        for second in halves:
            digest = head.copy()
            digest.update(second)
            final = outer.copy()
            final.update(digest.digest())
            if final.digest() == target:
                return (first + second).decode()
    return None


# 1. Mobile in several formats, email in any case.


@pytest.mark.parametrize("typed", ["07700 900001", "+44 7700 900001", "447700900001", "07700900001"])
async def test_sign_in_by_mobile_in_any_common_format(hub: Harness, typed: str) -> None:
    await hub.create_patient(given_name="Margaret", family_name="Jones", mobile="+447700900001")
    await hub.create_patient(given_name="Other", family_name="Person", mobile="+447700900002")
    response = await hub.submit_details(typed, "1948-03-14")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in/code"
    assert await hub.sent_codes("+447700900001") != []

    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert response.status_code == 303
    assert response.headers["location"] == "/appointments"
    assert response.cookies.get("hub_session")
    assert await signed_in_as(hub) == "Margaret Jones"


async def test_sign_in_by_email_ignores_case(hub: Harness) -> None:
    await hub.create_patient(
        given_name="Priya", family_name="Shah", mobile=None, email="priya.shah@example.com", contact_preference="email"
    )
    response = await hub.submit_details("  Priya.Shah@Example.COM ", "1948-03-14")
    assert response.status_code == 303
    message = await hub.db.fetch_one("SELECT channel, recipient FROM dev_messages")
    assert message == {"channel": "email", "recipient": "priya.shah@example.com"}

    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert (response.status_code, response.headers["location"]) == (303, "/appointments")
    assert response.cookies.get("hub_session")
    assert await signed_in_as(hub) == "Priya Shah"


async def test_code_goes_by_text_when_signing_in_by_email_and_a_mobile_is_on_record(hub: Harness) -> None:
    await hub.create_patient(mobile="+447700900001", email="margaret@example.com")
    await hub.submit_details("margaret@example.com", "1948-03-14")
    message = await hub.db.fetch_one("SELECT channel, recipient FROM dev_messages")
    assert message == {"channel": "sms", "recipient": "+447700900001"}


# 2. A parent signing in for a child.


async def test_parents_mobile_with_childs_date_of_birth_reaches_the_child(hub: Harness) -> None:
    await hub.create_patient(given_name="Sarah", family_name="Brown", dob="1985-07-02", mobile="+447700900001")
    await hub.create_patient(given_name="Tom", family_name="Brown", dob="2019-01-30", mobile="+447700900001")

    response = await hub.submit_details("07700 900001", "2019-01-30")
    assert response.status_code == 303
    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert response.headers["location"] == "/appointments"
    assert await signed_in_as(hub) == "Tom Brown"


# 3. Twins: one mobile, one date of birth, two records.


async def _twins(hub: Harness) -> tuple[int, int]:
    amy = await hub.create_patient(
        given_name="Amy", family_name="Patel", dob="2016-05-09", mobile="+447700900001", verification_code="AMY4K7"
    )
    ben = await hub.create_patient(
        given_name="Ben", family_name="Patel", dob="2016-05-09", mobile="+447700900001", verification_code="BEN9Q2"
    )
    return amy, ben


async def test_twins_are_asked_for_the_verification_code_after_the_right_code(hub: Harness) -> None:
    await _twins(hub)
    await hub.submit_details("07700 900001", "2016-05-09")
    assert await count(hub, "dev_messages") == 1  # one text to the shared mobile, not one per twin

    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/verification-code")
    assert await count(hub, "sessions") == 0
    page = await hub.client.get("/sign-in/verification-code")
    assert page.status_code == 200
    assert "Enter the verification code" in page.text
    check_page(page.text)


async def test_twins_right_verification_code_ignoring_case_and_spaces_signs_into_that_twin(hub: Harness) -> None:
    await _twins(hub)
    await hub.submit_details("07700 900001", "2016-05-09")
    await hub.submit_code((await hub.sent_codes())[-1])

    response = await hub.post_form("/sign-in/verification-code", {"verification_code": " ben 9q2 "})

    assert (response.status_code, response.headers["location"]) == (303, "/appointments")
    assert await signed_in_as(hub) == "Ben Patel"


async def test_twins_wrong_verification_code_is_422_with_a_message(hub: Harness) -> None:
    await _twins(hub)
    await hub.submit_details("07700 900001", "2016-05-09")
    await hub.submit_code((await hub.sent_codes())[-1])

    response = await hub.post_form("/sign-in/verification-code", {"verification_code": "ZZZ999"})

    assert response.status_code == 422
    assert "The verification code is not right" in response.text
    assert "nhsuk-error-summary" in response.text
    check_page(response.text)
    assert await count(hub, "sessions") == 0


async def test_twins_attempt_dies_after_five_wrong_verification_codes(hub: Harness) -> None:
    await _twins(hub)
    await hub.submit_details("07700 900001", "2016-05-09")
    await hub.submit_code((await hub.sent_codes())[-1])

    statuses = []
    for _ in range(5):
        response = await hub.post_form(
            "/sign-in/verification-code", {"verification_code": "ZZZ999"}, csrf_from="/sign-in/code"
        )
        statuses.append((response.status_code, response.headers.get("location")))
    assert statuses == [(422, None)] * 4 + [(303, "/")]

    response = await hub.post_form("/sign-in/verification-code", {"verification_code": "BEN9Q2"}, csrf_from="/")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert await count(hub, "sessions") == 0
    assert (await hub.client.get("/sign-in/verification-code")).headers["location"] == "/"


async def test_twins_verification_step_closes_after_ten_minutes(hub: Harness) -> None:
    await _twins(hub)
    await hub.submit_details("07700 900001", "2016-05-09")
    await hub.submit_code((await hub.sent_codes())[-1])
    token = await hub.csrf("/sign-in/verification-code")

    hub.clock.advance(minutes=10)
    response = await hub.client.post(
        "/sign-in/verification-code", data={"csrf_token": token, "verification_code": "AMY4K7"}
    )

    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert await count(hub, "sessions") == 0


async def test_twins_stable_link_matches_only_that_twin_and_signs_straight_in(hub: Harness) -> None:
    _, ben = await _twins(hub)
    link = await hub.link_token(ben)

    response = await hub.submit_details("07700 900001", "2016-05-09", link=link)
    assert response.status_code == 303
    candidates = await hub.db.fetch_all("SELECT patient_id FROM code_challenge_candidates")
    assert candidates == [{"patient_id": ben}]
    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert (response.status_code, response.headers["location"]) == (303, "/appointments")
    assert await signed_in_as(hub) == "Ben Patel"


async def test_stable_link_with_someone_elses_details_matches_nobody(hub: Harness) -> None:
    first = await hub.create_patient(mobile="+447700900001")
    await hub.create_patient(given_name="Other", mobile="+447700900002", dob="1950-01-01")

    response = await hub.submit_details("07700 900002", "1950-01-01", link=await hub.link_token(first))

    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code")
    assert await count(hub, "code_challenge_candidates") == 0
    assert await count(hub, "dev_messages") == 0


# 4. A miss looks exactly like a match.


async def test_unknown_contact_and_wrong_date_of_birth_look_exactly_like_a_match(
    hub: Harness, new_browser: Browser
) -> None:
    await hub.create_patient(mobile="+447700900001", dob="1948-03-14")
    attempts = {
        "unknown contact": ("07700 900999", "1948-03-14"),
        "wrong date of birth": ("07700 900001", "1950-01-01"),
        "match": ("07700 900001", "1948-03-14"),
    }
    seen: dict[str, tuple[int, str, list[str], str]] = {}
    for name, (contact, dob) in attempts.items():
        browser = new_browser(hub)
        response = await browser.submit_details(contact, dob)
        assert response.cookies.get("hub_signin"), name
        cookies = [re.sub(r"^([^=]+)=[^;]*", r"\1=…", c) for c in response.headers.get_list("set-cookie")]
        page = await browser.client.get("/sign-in/code")
        assert page.status_code == 200
        seen[name] = (response.status_code, response.headers["location"], cookies, without_csrf(page.text))
        if name != "match":
            assert await count(hub, "dev_messages") == 0, name
            assert await count(hub, "outbox_messages") == 0, name

    assert seen["unknown contact"] == seen["match"]
    assert seen["wrong date of birth"] == seen["match"]
    assert seen["match"][:2] == (303, "/sign-in/code")
    assert await count(hub, "dev_messages") == 1
    assert await hub.sent_codes("+447700900001") != []


async def test_a_miss_does_the_same_database_and_background_work_as_a_match_and_sends_nothing(
    hub: Harness, new_browser: Browser
) -> None:
    # F8: a match wrote its candidate, outbox and audit rows and claimed and sent its code after the answer; a miss
    # did less. Now a decoy does a code's work: written and audited, then claimed (one request counted towards
    # Notify's limit), looked up at Notify and removed.
    await hub.create_patient(mobile="+447700900001", dob="1948-03-14")
    tables = ("code_challenges", "rate_events", "audit_events", "notify_requests")
    work: dict[str, list[int]] = {}
    for name, details in {
        "match": ("07700 900001", "1948-03-14"),
        "unknown contact": ("07700 900999", "1948-03-14"),
        "wrong date of birth": ("07700 900001", "1950-01-01"),
    }.items():
        before = [await count(hub, table) for table in tables]
        await new_browser(hub).submit_details(*details)
        work[name] = [await count(hub, table) - was for table, was in zip(tables, before, strict=True)]
    assert work["unknown contact"] == work["wrong date of birth"] == work["match"] == [1, 3, 1, 1]
    # Nothing anyone could see: one message (the match's), one code sent, every decoy gone.
    assert await count(hub, "outbox_messages") == 1
    assert await count(hub, "dev_messages") == 1
    assert await count(hub, "audit_events", "action = ?", ("sign_in_unmatched",)) == 2


async def test_wrong_code_answer_is_the_same_for_a_miss_and_a_match(hub: Harness, new_browser: Browser) -> None:
    await hub.create_patient()
    miss, match = new_browser(hub), new_browser(hub)
    await miss.submit_details("07700 900999", "1948-03-14")
    await match.submit_details("07700 900001", "1948-03-14")
    guess = wrong_code((await hub.sent_codes())[-1])

    answers = [await browser.submit_code(guess) for browser in (miss, match)]

    assert [a.status_code for a in answers] == [422, 422]
    assert WRONG in answers[0].text
    assert without_csrf(answers[0].text) == without_csrf(answers[1].text)


@pytest.mark.parametrize("details", [("07700 900999", "1948-03-14"), ("07700 900001", "1950-01-01")])
async def test_a_miss_can_never_sign_in_even_with_its_own_code(hub: Harness, details: tuple[str, str]) -> None:
    await hub.create_patient(mobile="+447700900001", dob="1948-03-14")
    response = await hub.submit_details(*details)
    token = response.cookies["hub_signin"]
    cid = challenge_id(hub.settings.secret_key, token)
    row = await hub.db.fetch_one("SELECT code_hash FROM code_challenges WHERE id = ?", (cid,))
    assert row is not None
    code = recover_code(hub.settings.secret_key, cid, row["code_hash"])
    assert code is not None  # the miss holds a real code, like a match...

    response = await hub.submit_code(code)

    assert response.status_code == 422  # ...that can never work
    assert WRONG in response.text
    assert await count(hub, "sessions") == 0
    assert await signed_in_as(hub) is None


# 5. Lifetime.


async def test_code_still_works_149_seconds_after_issue(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")

    hub.clock.advance(seconds=149)
    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert (response.status_code, response.headers["location"]) == (303, "/appointments")
    assert await count(hub, "sessions") == 1


async def test_code_is_expired_151_seconds_after_issue(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")

    hub.clock.advance(seconds=151)
    response = await hub.submit_code((await hub.sent_codes())[-1])

    assert response.status_code == 422
    assert EXPIRED in response.text
    check_page(response.text)
    assert await count(hub, "sessions") == 0


# 6. Single use.


async def test_used_code_cannot_be_replayed_with_the_same_sign_in_cookie(hub: Harness) -> None:
    await hub.create_patient()
    response = await hub.submit_details("07700 900001", "1948-03-14")
    signin_cookie = response.cookies["hub_signin"]
    code = (await hub.sent_codes())[-1]
    assert (await hub.submit_code(code)).headers["location"] == "/appointments"
    assert (await hub.post_form("/sign-out", {})).status_code == 303
    hub.client.cookies.clear()

    hub.client.cookies.set("hub_signin", signin_cookie, domain="testserver.local")
    response = await hub.submit_code(code)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "hub_session" not in response.cookies
    assert await count(hub, "sessions") == 1
    assert await signed_in_as(hub) is None


# 7. Two submissions of one code at once.


async def test_two_concurrent_submissions_of_one_code_make_one_session(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    data = {"csrf_token": await hub.csrf("/sign-in/code"), "code": (await hub.sent_codes())[-1]}

    responses = await asyncio.gather(*(hub.client.post("/sign-in/code", data=data) for _ in range(2)))

    locations = sorted(r.headers["location"] for r in responses)
    assert [r.status_code for r in responses] == [303, 303]
    assert locations == ["/", "/appointments"]
    assert await count(hub, "sessions") == 1
    assert await count(hub, "audit_events", "action = 'signed_in'") == 1


# 8. Five wrong guesses per code.


async def test_sixth_guess_fails_even_when_right(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    code = (await hub.sent_codes())[-1]

    for left in ("You have 4 more tries", "You have 3 more tries", "You have 2 more tries", "You have 1 more try"):
        response = await hub.submit_code(wrong_code(code))
        assert response.status_code == 422
        assert WRONG in response.text
        assert f"{left}." in response.text  # how many tries are left
    response = await hub.submit_code(wrong_code(code))
    assert "That was the last try: ask for a new code." in response.text
    response = await hub.submit_code(code)

    assert response.status_code == 422
    assert LOCKED in response.text
    assert await count(hub, "sessions") == 0
    assert await signed_in_as(hub) is None


async def test_malformed_code_is_422_and_uses_up_no_guess(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")

    blank = await hub.submit_code("")
    short = await hub.submit_code("12345")

    assert (blank.status_code, short.status_code) == (422, 422)
    assert "Enter the security code" in blank.text
    assert "The security code must be 6 numbers" in short.text
    row = await hub.db.fetch_one("SELECT failed_guesses FROM code_challenges")
    assert row == {"failed_guesses": 0}
    code = (await hub.sent_codes())[-1]
    assert (await hub.submit_code(f"{code[:3]} {code[3:]}")).headers["location"] == "/appointments"


# 9. New codes and rate limits.


async def test_send_a_new_code_replaces_the_old_one(hub: Harness) -> None:
    await hub.create_patient()
    first = await hub.submit_details("07700 900001", "1948-03-14")
    old_cookie, old_code = first.cookies["hub_signin"], (await hub.sent_codes())[-1]

    response = await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")

    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code?resent=1")
    assert response.cookies["hub_signin"] != old_cookie
    assert len(await hub.sent_codes("+447700900001")) == 2
    page = await hub.client.get("/sign-in/code?resent=1")
    assert "Only the newest code works" in page.text
    # The old attempt is dead, even with its own code.
    hub.client.cookies.set("hub_signin", old_cookie, domain="testserver.local")
    assert (await hub.submit_code(old_code)).headers["location"] == "/"
    hub.client.cookies.set("hub_signin", response.cookies["hub_signin"], domain="testserver.local")
    assert (await hub.submit_code((await hub.sent_codes())[-1])).headers["location"] == "/appointments"


async def test_a_second_tap_on_continue_shows_the_same_attempt_and_sends_no_new_code(hub: Harness) -> None:
    await hub.create_patient()
    first = await hub.submit_details("07700 900001", "1948-03-14")
    hub.clock.advance(seconds=2)
    second = await hub.submit_details("07700 900001", "1948-03-14")
    assert (second.status_code, second.headers["location"]) == (303, "/sign-in/code")
    assert second.cookies["hub_signin"] == first.cookies["hub_signin"]  # the same attempt
    assert len(await hub.sent_codes()) == 1
    assert await count(hub, "code_challenges") == 1
    assert (await hub.submit_code((await hub.sent_codes())[-1])).headers["location"] == "/appointments"


async def test_other_details_or_an_expired_code_start_a_new_attempt(hub: Harness) -> None:
    await hub.create_patient()
    await hub.create_patient(mobile="+447700900002", verification_code="PX2B9Z")
    await hub.submit_details("07700 900001", "1948-03-14")
    await hub.submit_details("07700 900001", "1948-03-15")  # another date of birth: matches nobody
    await hub.submit_details("07700 900002", "1948-03-14")
    hub.clock.advance(seconds=151)
    await hub.submit_details("07700 900002", "1948-03-14")
    assert await count(hub, "code_challenges") == 4
    assert len(await hub.sent_codes("+447700900002")) == 2


async def test_codes_per_identity_are_limited_across_new_codes_and_new_attempts(
    hub: Harness, new_browser: Browser
) -> None:
    await hub.create_patient()
    assert hub.settings.codes_per_identity_per_hour == 5
    await hub.submit_details("07700 900001", "1948-03-14")
    for _ in range(4):
        response = await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")
        assert response.status_code == 303
    assert await count(hub, "dev_messages") == 5

    resend = await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")
    hub.client.cookies.delete("hub_signin")  # a new attempt, not a second tap on the same one
    again = await hub.submit_details("07700 900001", "1948-03-14")
    # Per contact and date of birth, not per browser.
    elsewhere = await new_browser(hub, "198.51.100.99").submit_details("+44 7700 900001", "1948-03-14")

    for response in (resend, again, elsewhere):
        assert response.status_code == 429
        assert TOO_MANY_CODES in response.text
        check_page(response.text)
    assert await count(hub, "dev_messages") == 5
    assert await count(hub, "code_challenges") == 5


async def test_wrong_dates_of_birth_do_not_lock_the_patient_out(hub: Harness, new_browser: Browser) -> None:
    # F4: five requests with the patient's mobile and a made-up date of birth left the patient 429 for an hour.
    await hub.create_patient()
    for _ in range(6):
        hub.client.cookies.delete("hub_signin")  # new attempts each time, not a second tap on the same one
        await hub.submit_details("07700 900001", "1999-09-09")
    hub.client.cookies.delete("hub_signin")
    assert (await hub.submit_details("07700 900001", "1999-09-09")).status_code == 429  # that guess is used up
    patient = new_browser(hub, "198.51.100.99")
    assert (await patient.submit_details("07700 900001", "1948-03-14")).status_code == 303
    assert len(await hub.sent_codes("+447700900001")) == 1


async def test_codes_sent_to_one_number_are_capped_across_dates_of_birth(make_hub: MakeHub) -> None:
    hub = await make_hub(codes_per_contact_per_hour=3)
    for n, born in enumerate(("2015-01-01", "2017-02-02"), start=1):  # a parent's mobile, two children
        await hub.create_patient(mobile="+447700900001", dob=born, mrn=f"MRN{n}")
    for born in ("2015-01-01", "2017-02-02", "2015-01-01"):
        assert (await hub.submit_details("07700 900001", born)).status_code == 303
    for _ in range(5):  # misses cost no message and do not count towards the cap
        await hub.submit_details("07700 900001", "1999-09-09")
    assert (await hub.submit_details("07700 900001", "2017-02-02")).status_code == 429
    assert len(await hub.sent_codes("+447700900001")) == 3


async def test_codes_per_client_address_are_limited(make_hub: MakeHub, new_browser: Browser) -> None:
    hub = await make_hub(codes_per_client_per_hour=3)
    for n in range(1, 5):
        await hub.create_patient(mobile=f"+44770090000{n}")
    for n in range(1, 4):
        assert (await hub.submit_details(f"07700 90000{n}", "1948-03-14")).status_code == 303

    refused = await hub.submit_details("07700 900004", "1948-03-14")
    other_address = await new_browser(hub, "198.51.100.50").submit_details("07700 900004", "1948-03-14")

    assert refused.status_code == 429
    assert TOO_MANY_CODES in refused.text
    assert other_address.status_code == 303
    assert len(await hub.sent_codes("+447700900004")) == 1


async def test_code_limits_reset_after_an_hour(make_hub: MakeHub) -> None:
    hub = await make_hub(codes_per_contact_per_hour=2)
    await hub.create_patient()
    for _ in range(2):
        hub.client.cookies.delete("hub_signin")  # new attempts, not second taps on the same one
        assert (await hub.submit_details("07700 900001", "1948-03-14")).status_code == 303
    hub.client.cookies.delete("hub_signin")
    assert (await hub.submit_details("07700 900001", "1948-03-14")).status_code == 429

    hub.clock.advance(minutes=59)
    assert (await hub.submit_details("07700 900001", "1948-03-14")).status_code == 429
    hub.clock.advance(minutes=1, seconds=1)
    response = await hub.submit_details("07700 900001", "1948-03-14")

    assert response.status_code == 303
    assert len(await hub.sent_codes()) == 3
    assert (await hub.submit_code((await hub.sent_codes())[-1])).headers["location"] == "/appointments"


async def test_wrong_guesses_per_client_address_are_limited(make_hub: MakeHub, new_browser: Browser) -> None:
    hub = await make_hub(guesses_per_client_per_hour=3)
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    code = (await hub.sent_codes())[-1]
    for _ in range(3):
        assert WRONG in (await hub.submit_code(wrong_code(code))).text

    response = await hub.submit_code(code)

    assert response.status_code == 422
    assert DEVICE_LIMIT in response.text
    assert await count(hub, "sessions") == 0
    # Another address is not held back; this one is, until the hour is up.
    other = new_browser(hub, "198.51.100.60")
    await other.submit_details("07700 900001", "1948-03-14")
    assert (await other.submit_code((await hub.sent_codes())[-1])).headers["location"] == "/appointments"
    hub.clock.advance(hours=1, seconds=1)
    await hub.submit_details("07700 900001", "1948-03-14")
    assert (await hub.submit_code((await hub.sent_codes())[-1])).headers["location"] == "/appointments"


# 12. CSRF on the sign-in forms.


async def _bad_csrf(hub: Harness, new_browser: Browser, kind: str) -> dict[str, str]:
    if kind == "missing":
        return {}
    if kind == "wrong":
        return {"csrf_token": "0" * 64}
    return {"csrf_token": await new_browser(hub, "198.51.100.70").csrf("/")}


CSRF_KINDS = ["missing", "wrong", "another browser's"]


@pytest.mark.parametrize("kind", CSRF_KINDS)
async def test_sign_in_without_a_valid_csrf_token_is_403_and_starts_nothing(
    hub: Harness, new_browser: Browser, kind: str
) -> None:
    await hub.create_patient()
    await hub.csrf("/")  # this browser has its anonymous cookie
    data = {"contact": "07700 900001", "dob-day": "14", "dob-month": "3", "dob-year": "1948"}

    response = await hub.client.post("/sign-in", data={**await _bad_csrf(hub, new_browser, kind), **data})

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "hub_signin" not in response.cookies
    await nothing_started(hub)


@pytest.mark.parametrize("kind", CSRF_KINDS)
async def test_code_without_a_valid_csrf_token_is_403_and_uses_nothing(
    hub: Harness, new_browser: Browser, kind: str
) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    code = (await hub.sent_codes())[-1]

    response = await hub.client.post("/sign-in/code", data={**await _bad_csrf(hub, new_browser, kind), "code": code})

    assert response.status_code == 403
    assert await count(hub, "sessions") == 0
    row = await hub.db.fetch_one("SELECT failed_guesses, consumed_at FROM code_challenges")
    assert row == {"failed_guesses": 0, "consumed_at": None}
    assert (await hub.submit_code(code)).headers["location"] == "/appointments"


@pytest.mark.parametrize("kind", CSRF_KINDS)
async def test_resend_without_a_valid_csrf_token_is_403_and_sends_nothing(
    hub: Harness, new_browser: Browser, kind: str
) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")

    response = await hub.client.post("/sign-in/resend", data=await _bad_csrf(hub, new_browser, kind))

    assert response.status_code == 403
    assert await count(hub, "code_challenges") == 1
    assert await count(hub, "code_challenges", "superseded_at IS NOT NULL") == 0
    assert await count(hub, "dev_messages") == 1


# 14, 15. Nothing secret in logs or columns.


async def test_no_code_contact_or_token_in_any_log_record(hub: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await hub.create_patient(mobile="+447700900001", email="margaret@example.com")
    caplog.set_level(logging.DEBUG)

    first = await hub.submit_details("07700 900001", "1948-03-14")
    await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")
    codes = await hub.sent_codes()
    await hub.submit_code(wrong_code(codes[-1]))
    response = await hub.submit_code(codes[-1])
    await hub.client.get("/appointments")
    await hub.post_form("/sign-out", {}, csrf_from="/sign-out")

    assert response.headers["location"] == "/appointments"
    assert caplog.records, "logging was not captured at all"
    secrets = [
        *codes,
        "7700900001",
        "7700 900001",
        "margaret@example.com",
        first.cookies["hub_signin"],
        response.cookies["hub_session"],
    ]
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in secrets:
            assert secret not in text, f"{secret!r} logged by {record.name}: {text[:200]}"


async def test_codes_are_stored_only_as_hashes(hub: Harness) -> None:
    await hub.create_patient()
    await hub.submit_details("07700 900001", "1948-03-14")
    await hub.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")
    codes = await hub.sent_codes()
    assert len(codes) == 2

    rows = await hub.db.fetch_all("SELECT id, code_hash FROM code_challenges ORDER BY issued_at, id")
    assert len(rows) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", row["code_hash"]) for row in rows)
    assert {row["code_hash"] for row in rows} <= {
        hash_code(hub.settings.secret_key, row["id"], code) for row in rows for code in codes
    }
    # dev_messages is the dev notifier's stand-in for the patient's phone: it holds what was "delivered".
    scanned = [t for t in await hub.tables() if t != "dev_messages"]
    assert {"code_challenges", "outbox_messages", "audit_events", "rate_events"} <= set(scanned)
    for table in scanned:
        for row in await hub.db.fetch_all(f"SELECT * FROM {table}"):
            for column, value in row.items():
                if column.endswith("_at"):
                    continue  # timestamps, e.g. ...00.000000Z, would match the code 000000 by chance
                for code in codes:
                    assert code not in str(value), f"code in {table}.{column}"


# 16. Opening a page does nothing.


async def test_opening_the_start_page_or_the_stable_link_sends_nothing(hub: Harness) -> None:
    patient = await hub.create_patient()
    link = await hub.link_token(patient)

    start = await hub.client.get("/")
    linked = await hub.client.get(f"/p/{link}")

    assert (start.status_code, linked.status_code) == (200, 200)
    assert f'name="link" value="{link}"' in linked.text
    check_page(start.text)
    check_page(linked.text)
    await nothing_started(hub)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-real-link",
        "tampered",
        URLSafeSerializer("some-other-key", salt="patient-link").dumps(1),
        URLSafeSerializer(SECRET, salt="patient-link").dumps("1"),  # our key, but not a patient id
    ],
)
async def test_a_link_that_does_not_verify_is_404(hub: Harness, token: str) -> None:
    patient = await hub.create_patient()
    if token == "tampered":
        good = await hub.link_token(patient)
        # A character inside the signature: the last one's low bits are padding, so changing it can mean nothing.
        token = good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:]

    response = await hub.client.get(f"/p/{token}")

    assert response.status_code == 404
    assert "This link does not work" in response.text
    check_page(response.text)
    await nothing_started(hub)


async def test_signing_in_with_a_bad_link_is_404_and_starts_nothing(hub: Harness) -> None:
    await hub.create_patient()
    data = {"contact": "07700 900001", "dob-day": "14", "dob-month": "3", "dob-year": "1948", "link": "forged"}

    response = await hub.post_form("/sign-in", data, csrf_from="/")

    assert response.status_code == 404
    assert "This link does not work" in response.text
    await nothing_started(hub)


# 17. Validation.


@pytest.mark.parametrize(
    ("contact", "day", "month", "year", "field", "message"),
    [
        ("", "14", "3", "1948", "contact", "Enter a UK mobile number"),
        ("12345", "14", "3", "1948", "contact", "Enter a UK mobile number"),
        ("020 7946 0000", "14", "3", "1948", "contact", "Enter a UK mobile number"),
        ("+33 6 12 34 56 78", "14", "3", "1948", "contact", "Enter a UK mobile number"),
        ("margaret@", "14", "3", "1948", "contact", "Enter a UK mobile number"),
        ("07700 900001", "", "", "", "dob", "Enter your date of birth"),
        ("07700 900001", "31", "2", "1948", "dob", "Date of birth must be a real date"),
        ("07700 900001", "29", "2", "2023", "dob", "Date of birth must be a real date"),
        ("07700 900001", "1", "13", "1948", "dob", "Date of birth must be a real date"),
        ("07700 900001", "x", "3", "1948", "dob", "Date of birth must be a real date, in numbers"),
        ("07700 900001", "14", "3", "48", "dob", "Year must include 4 numbers"),
        ("07700 900001", "22", "11", "2026", "dob", "Date of birth must be in the past"),
        ("07700 900001", "1", "1", "1889", "dob", "Date of birth must be in 1890 or later"),
    ],
)
async def test_invalid_details_are_422_with_an_error_summary_and_start_nothing(
    hub: Harness, contact: str, day: str, month: str, year: str, field: str, message: str
) -> None:
    await hub.create_patient()
    data = {"contact": contact, "dob-day": day, "dob-month": month, "dob-year": year}

    response = await hub.post_form("/sign-in", data, csrf_from="/")

    assert response.status_code == 422
    assert "nhsuk-error-summary" in response.text
    assert "There is a problem" in response.text
    assert re.search(rf'<span class="nhsuk-error-message" id="{field}-error">', response.text)
    assert response.text.count(message) >= 2  # in the summary and beside the field
    assert f'href="#{"dob-day" if field == "dob" else "contact"}"' in response.text
    assert "<title>Error: " in response.text
    assert f'value="{contact}"' in response.text  # what was typed is kept
    check_page(response.text)
    await nothing_started(hub)


async def test_todays_date_is_accepted_as_a_date_of_birth(hub: Harness) -> None:
    today = hub.clock.now().date()
    assert today == date(2026, 11, 21)
    response = await hub.submit_details("07700 900001", today)
    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code")


async def test_form_fields_named_like_dict_methods_do_not_break_the_page(hub: Harness) -> None:
    # Templates read the posted values as `values.get(...)`: a field called "get" must not replace the method.
    fields = {name: "x" for name in ("get", "items", "keys", "values", "pop", "copy")}
    blank = {"contact": "", "dob-day": "", "dob-month": "", "dob-year": ""}
    response = await hub.post_form("/sign-in", {**fields, **blank}, csrf_from="/")
    assert response.status_code == 422
    assert "nhsuk-error-summary" in response.text
    check_page(response.text)
