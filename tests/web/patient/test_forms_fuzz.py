"""Arbitrary text in every patient form: never a 5xx, and input the form refuses changes nothing.

Hypothesis and the anyio fixtures do not mix (function-scoped fixtures under @given), so each test builds one
hub itself, keeps it on one event loop, and runs the examples through that loop one at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hub.db import Database
from hub.links import read_link_token
from hub.rules.codes import clean_code, is_well_formed
from hub.rules.contacts import parse_contact, parse_date_of_birth
from hub.rules.text import printable
from hub.store.verification_codes import awaiting_verification_code
from hub.vocabulary import CANCEL_REASON_LABELS as CANCEL_REASONS
from hub.web.common import MAX_FIELD
from tests.harness import Harness
from tests.pages import check_page
from tests.running import Fuzz, running_hub

T = TypeVar("T")
SECRET = "fuzz-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MOBILE, DOB = "07700 900001", "1948-03-14"
# What a patient's action may touch; a refused form must leave every row as it was.
TABLES = ("appointments", "tasks", "events", "audit_events", "patients", "sessions")
# Sign-in bookkeeping: a refused details form must not touch it either (a wrong code may: guesses are counted).
SIGN_IN_TABLES = (*TABLES, "code_challenges", "code_challenge_candidates", "outbox_messages", "rate_events")
# Room for many examples on one hub: the sign-in limits are tested elsewhere.
ROOMY = {
    "codes_per_identity_per_hour": 100_000,
    "codes_per_contact_per_hour": 100_000,
    "codes_per_client_per_hour": 100_000,
    "guesses_per_client_per_hour": 100_000,
    "code_max_guesses": 100_000,
}
fuzzing = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

FORM_EXPIRED = "This form has expired"
COULD_NOT_READ = "Sorry, we could not read that"
PROBLEM = "There is a problem"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)", re.IGNORECASE)
_BOUNDARY = "----hubfuzzBoundary7MA4YWxkTrZu0gW"

# Text people and robots put in forms.
NASTY = ("", " ", "0", "-1", "'; DROP TABLE patients; --", "<script>", "\x00", "９９", "٣", "1e10", "2024-02-30")
_long = st.tuples(st.text(min_size=1, max_size=8), st.integers(min_value=200, max_value=10_000)).map(
    lambda pair: (pair[0] * pair[1])[:10_000]
)
_controls = st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")), max_size=30)
_numbers = st.one_of(st.integers().map(str), st.text(alphabet="0123456789", min_size=1, max_size=40))
texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=60), _controls, _numbers, _long)


def value(*valid: str) -> st.SearchStrategy[str]:
    """Arbitrary text, with the form's own good answers mixed in so the accepting path is exercised too."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), texts) if valid else texts


@dataclass(frozen=True)
class Submission:
    fields: dict[str, list[str]]  # per form field: [] leaves it out, two or more repeat it (the last one counts)
    extras: list[tuple[str, str]]
    multipart: bool

    def get(self, name: str) -> str:
        """The value the app reads: the last one sent, cut to MAX_FIELD."""
        sent = self.fields.get(name) or [""]
        return sent[-1][:MAX_FIELD]

    def pairs(self, csrf: str) -> list[tuple[str, str]]:
        pairs = [("csrf_token", csrf)]
        for name, values in self.fields.items():
            pairs += [(name, v) for v in values]
        return pairs + self.extras


def _multipart_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def submissions(fields: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[Submission]:
    reserved = {"csrf_token", *fields}
    each: dict[str, st.SearchStrategy[list[str]]] = {
        name: st.one_of(
            st.lists(strategy, min_size=1, max_size=1),
            st.just([]),
            st.lists(strategy, min_size=2, max_size=3),
        )
        for name, strategy in fields.items()
    }
    extra_names = st.text(min_size=1, max_size=20).filter(
        lambda n: n not in reserved and _multipart_safe(n) not in reserved
    )
    return st.builds(
        Submission,
        fields=st.fixed_dictionaries(each),
        extras=st.lists(st.tuples(extra_names, texts), max_size=4),
        multipart=st.booleans(),
    )


def encode(pairs: list[tuple[str, str]], *, multipart: bool) -> tuple[bytes, str]:
    if not multipart:
        return urlencode(pairs).encode("ascii"), "application/x-www-form-urlencoded"
    body = b"".join(
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{_multipart_safe(name)}"\r\n\r\n'.encode()
        + text.encode()
        + b"\r\n"
        for name, text in pairs
    )
    return body + f"--{_BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={_BOUNDARY}"


async def submit(h: Harness, path: str, sub: Submission, csrf: str) -> httpx.Response:
    body, content_type = encode(sub.pairs(csrf), multipart=sub.multipart)
    response = await h.client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code < 500, response.text[:500]
    if response.headers.get("content-type", "").startswith("text/html"):
        # What was typed comes back escaped, never as markup (no "<script>" from the NASTY list).
        assert not _INLINE_SCRIPT.search(response.text)
    return response


async def snapshot(db: Database, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: sorted((tuple(row.values()) for row in await db.fetch_all(f"SELECT * FROM {table}")), key=repr)
        for table in tables
    }


def assert_redirect(response: httpx.Response, location: str) -> None:
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == location


async def _signed_in(h: Harness, contact: str = MOBILE, dob: str = DOB) -> None:
    if (await h.client.get("/sign-out")).status_code != 200:
        await h.sign_in(contact, dob)


# POST /sign-in
def _details(*, contact: str, day: str, month: str, year: str, link: str | None = None) -> Submission:
    fields = {"contact": [contact], "dob-day": [day], "dob-month": [month], "dob-year": [year]}
    return Submission(fields={**fields, "link": [link] if link else []}, extras=[], multipart=False)


def test_sign_in_details(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend) as fuzz:
        patient = fuzz.run(fuzz.h.create_patient(email="margaret@example.com"))
        link = fuzz.run(fuzz.h.link_token(patient))
        form = submissions(
            {
                "contact": value(MOBILE, "07700900001", "+44 7700 900001", "margaret@example.com"),
                "dob-day": st.one_of(value("14", " 14 "), _numbers),
                "dob-month": st.one_of(value("3", "03"), _numbers),
                "dob-year": st.one_of(value("1948", "１９４８"), _numbers),
                "link": st.one_of(st.just(""), st.just(""), value(link)),
            }
        )

        @fuzzing
        @given(sub=form)
        @example(sub=_details(contact=MOBILE, day="99999999999999999999", month="3", year="1948"))
        @example(sub=_details(contact=MOBILE, day="14", month="3", year="1948", link="not-a-link"))
        def examples(sub: Submission) -> None:
            fuzz.run(_sign_in_details(fuzz.h, sub))

        examples()


async def _sign_in_details(h: Harness, sub: Submission) -> None:
    csrf = await h.csrf("/")
    before = await snapshot(h.db, SIGN_IN_TABLES)
    response = await submit(h, "/sign-in", sub, csrf)
    after = await snapshot(h.db, SIGN_IN_TABLES)
    link = _as_read(sub.get("link"))
    contact = parse_contact(_as_read(sub.get("contact")))
    born = parse_date_of_birth(
        _as_read(sub.get("dob-day")), _as_read(sub.get("dob-month")), _as_read(sub.get("dob-year")), today=NOW.date()
    )
    event(f"sign-in: {response.status_code}")
    if link and read_link_token(h.settings, link) is None:
        assert response.status_code == 404
        assert "This link does not work" in response.text
        assert after == before
    elif contact is None or isinstance(born, str):
        assert response.status_code == 422
        assert PROBLEM in response.text
        if contact is None:
            assert "Enter a UK mobile number" in response.text
        if isinstance(born, str):
            assert born in response.text
        assert after == before
    elif response.status_code == 429:
        assert "You have asked for too many codes" in response.text
        assert after == before
    else:
        assert_redirect(response, "/sign-in/code")


# POST /sign-in/code
def test_security_code(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        fuzz.run(fuzz.h.create_patient())
        pending, stranger = fuzz.h, fuzz.browser()
        fuzz.run(pending.submit_details(MOBILE, DOB))
        form = submissions({"code": value("123456", "123 456", "12-34-56", "12345", "1234567", "１２３４５６")})

        @fuzzing
        @given(sub=form, has_attempt=st.booleans())
        def examples(sub: Submission, has_attempt: bool) -> None:
            fuzz.run(_security_code(pending if has_attempt else stranger, sub, has_attempt=has_attempt))

        examples()


async def _security_code(h: Harness, sub: Submission, *, has_attempt: bool) -> None:
    csrf = await h.csrf("/")
    before = await snapshot(h.db, TABLES)
    before_sign_in = await snapshot(h.db, SIGN_IN_TABLES)
    response = await submit(h, "/sign-in/code", sub, csrf)
    after = await snapshot(h.db, TABLES)
    code = clean_code(_as_read(sub.get("code")))
    event(f"code: {response.status_code} {has_attempt=} {is_well_formed(code)=}")
    if not has_attempt:
        assert_redirect(response, "/")
        assert await snapshot(h.db, SIGN_IN_TABLES) == before_sign_in
    elif not is_well_formed(code):
        assert response.status_code == 422
        assert PROBLEM in response.text
        assert ("Enter the security code" if not code else "The security code must be 6 numbers") in response.text
        assert await snapshot(h.db, SIGN_IN_TABLES) == before_sign_in
    elif code == (await h.sent_codes())[-1]:  # hypothesis guessed it: fair enough, then start a new attempt
        assert_redirect(response, "/appointments")
        await h.submit_details(MOBILE, DOB)
    else:
        assert response.status_code == 422
        assert "The security code is not right" in response.text
        assert after == before


# POST /sign-in/resend
def test_resend_code(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        fuzz.run(fuzz.h.create_patient())
        pending, stranger = fuzz.h, fuzz.browser()
        fuzz.run(pending.submit_details(MOBILE, DOB))

        @fuzzing
        @given(sub=submissions({}), has_attempt=st.booleans())
        def examples(sub: Submission, has_attempt: bool) -> None:
            fuzz.run(_resend_code(pending if has_attempt else stranger, sub, has_attempt=has_attempt))

        examples()


async def _resend_code(h: Harness, sub: Submission, *, has_attempt: bool) -> None:
    csrf = await h.csrf("/")
    before = await snapshot(h.db, SIGN_IN_TABLES)
    response = await submit(h, "/sign-in/resend", sub, csrf)
    if has_attempt:
        assert_redirect(response, "/sign-in/code?resent=1")
        assert (await h.client.get("/sign-in/code?resent=1")).status_code == 200
    else:
        assert_redirect(response, "/")
        assert await snapshot(h.db, SIGN_IN_TABLES) == before


# POST /sign-in/verification-code: twins share a mobile and a date of birth
TWIN_CODES = ("MJ4K7Q", "TW1N2B")


def test_verification_code(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        for given_name, code in zip(("Amy", "Beth"), TWIN_CODES, strict=True):
            fuzz.run(fuzz.h.create_patient(given_name=given_name, dob="2015-06-01", verification_code=code))
        form = submissions({"verification_code": value("mj4k7q", " TW 1N 2B ", "MJ4K7", "AB3C4D", "MJ4K7Q0")})

        @fuzzing
        @given(sub=form)
        def examples(sub: Submission) -> None:
            fuzz.run(_verification_code(fuzz.h, sub))

        examples()


async def _choosing_twin(h: Harness) -> None:
    """Leave the browser at the twins' question with all its tries left."""
    async with h.db.write() as tx:
        await tx.execute("UPDATE code_challenges SET uvc_failures = 0")
    token = h.client.cookies.get("hub_signin", "")
    if token and await awaiting_verification_code(h.db, secret=SECRET, token=token, now=NOW):
        return
    await h.submit_details(MOBILE, "2015-06-01")
    response = await h.submit_code((await h.sent_codes())[-1])
    assert_redirect(response, "/sign-in/verification-code")


def _as_read(text: str) -> str:
    """A field as the app reads it: the characters no form field means to hold dropped (hub/rules/validation.py)."""
    return printable(text)


async def _verification_code(h: Harness, sub: Submission) -> None:
    await _choosing_twin(h)
    csrf = await h.csrf("/sign-in/verification-code")
    before = await snapshot(h.db, TABLES)
    response = await submit(h, "/sign-in/verification-code", sub, csrf)
    after = await snapshot(h.db, TABLES)
    typed = _as_read(sub.get("verification_code")).strip()
    event(f"verification code: {response.status_code}")
    if not typed:
        assert response.status_code == 422
        assert "Enter the verification code" in response.text
        assert after == before
    elif "".join(typed[:20].split()).upper() in TWIN_CODES:
        assert_redirect(response, "/appointments")
    else:
        assert response.status_code == 422
        assert "The verification code is not right" in response.text
        assert after == before


# The appointment forms: each example gets a fresh appointment, or aims at one that is not the patient's.
TARGETS = st.sampled_from(("own", "own", "own", "own", "someone_else", "missing", "too_big"))


@dataclass
class Signed:
    fuzz: Fuzz
    other_appointment: int

    @classmethod
    def start(cls, fuzz: Fuzz) -> Signed:
        h = fuzz.h
        fuzz.run(h.create_patient(email="margaret@example.com"))
        other = fuzz.run(h.create_patient(mobile="+447700900002", given_name="Sam"))
        other_appointment = fuzz.run(h.create_appointment(patient_id=other))
        fuzz.run(h.sign_in())
        return cls(fuzz, other_appointment)

    async def target(self, kind: str) -> int:
        if kind == "someone_else":
            return self.other_appointment
        if kind == "missing":
            return 9_999_999
        if kind == "too_big":
            return 10**30  # beyond any database integer
        patient = await self.fuzz.h.db.fetch_one("SELECT id FROM patients WHERE mobile = ?", ("+447700900001",))
        assert patient
        return await self.fuzz.h.create_appointment(patient_id=patient["id"])


async def _appointment_form(
    signed: Signed, action: str, sub: Submission, kind: str
) -> tuple[int, httpx.Response, bool]:
    """Post the form; a 404 for someone else's or a missing appointment. True when nothing changed."""
    h = signed.fuzz.h
    await _signed_in(h)
    appointment = await signed.target(kind)
    csrf = await h.csrf("/preferences")
    before = await snapshot(h.db)
    response = await submit(h, f"/appointments/{appointment}/{action}", sub, csrf)
    unchanged = await snapshot(h.db) == before
    event(f"{action} {kind}: {response.status_code}")
    if kind != "own":
        assert response.status_code == 404
        assert "Page not found" in response.text
        assert unchanged
    return appointment, response, unchanged


async def _page_after(h: Harness, response: httpx.Response) -> None:
    page = await h.client.get(response.headers["location"])
    assert page.status_code == 200
    check_page(page.text)


def test_confirm(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        signed = Signed.start(fuzz)

        @fuzzing
        @given(sub=submissions({}), kind=TARGETS)
        def examples(sub: Submission, kind: str) -> None:
            fuzz.run(_confirm(signed, sub, kind))

        examples()


async def _confirm(signed: Signed, sub: Submission, kind: str) -> None:
    appointment, response, _ = await _appointment_form(signed, "confirm", sub, kind)
    if kind == "own":
        assert_redirect(response, f"/appointments/{appointment}?done=confirmed")
        await _page_after(signed.fuzz.h, response)


def test_rebook(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        signed = Signed.start(fuzz)
        form = submissions({"reason": value("I am on holiday"), "preferred_times": value("Weekday mornings")})

        @fuzzing
        @given(sub=form, kind=TARGETS)
        def examples(sub: Submission, kind: str) -> None:
            fuzz.run(_rebook(signed, sub, kind))

        examples()


async def _rebook(signed: Signed, sub: Submission, kind: str) -> None:
    appointment, response, unchanged = await _appointment_form(signed, "rebook", sub, kind)
    if kind != "own":
        return
    too_long = [name for name in ("reason", "preferred_times") if len(_as_read(sub.get(name)).strip()) > 500]
    if too_long:
        assert response.status_code == 422
        assert PROBLEM in response.text
        assert "must be 500 characters or fewer" in response.text
        assert unchanged
    else:  # any text is a fair reason
        assert_redirect(response, f"/appointments/{appointment}?done=rebook")
        await _page_after(signed.fuzz.h, response)


def test_cancel(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        signed = Signed.start(fuzz)
        form = submissions({"reason": value(*CANCEL_REASONS), "details": value("Moved away")})

        @fuzzing
        @given(sub=form, kind=TARGETS)
        def examples(sub: Submission, kind: str) -> None:
            fuzz.run(_cancel(signed, sub, kind))

        examples()


async def _cancel(signed: Signed, sub: Submission, kind: str) -> None:
    appointment, response, unchanged = await _appointment_form(signed, "cancel", sub, kind)
    if kind != "own":
        return
    reason_ok = _as_read(sub.get("reason")) in CANCEL_REASONS
    details_ok = len(_as_read(sub.get("details")).strip()) <= 500
    if reason_ok and details_ok:
        assert_redirect(response, f"/appointments/{appointment}?done=cancel")
        await _page_after(signed.fuzz.h, response)
        return
    assert response.status_code == 422
    assert PROBLEM in response.text
    if not reason_ok:
        assert "Select why you want to cancel" in response.text
    if not details_ok:
        assert "Details must be 500 characters or fewer" in response.text
    assert unchanged


# POST /preferences: three closed sets of radios
def test_preferences(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        Signed.start(fuzz)
        form = submissions(
            {
                "contact_preference": value("sms", "email", "SMS", "post"),
                "paper": value("yes", "no", "Yes"),
                "digital": value("yes", "no", "true"),
            }
        )

        @fuzzing
        @given(sub=form)
        def examples(sub: Submission) -> None:
            fuzz.run(_preferences(fuzz.h, sub))

        examples()


async def _preferences(h: Harness, sub: Submission) -> None:
    await _signed_in(h)
    csrf = await h.csrf("/preferences")
    before = await snapshot(h.db)
    response = await submit(h, "/preferences", sub, csrf)
    wrong = {
        "contact_preference": _as_read(sub.get("contact_preference")) not in ("sms", "email"),
        "paper": _as_read(sub.get("paper")) not in ("yes", "no"),
        "digital": _as_read(sub.get("digital")) not in ("yes", "no"),
    }
    event(f"preferences: {response.status_code}")
    if not any(wrong.values()):
        assert_redirect(response, "/preferences?saved=1")
        await _page_after(h, response)
        return
    assert response.status_code == 422
    assert PROBLEM in response.text
    messages = {
        "contact_preference": "Select how you would like us to contact you",
        "paper": "Select whether you want letters by post as well",
        "digital": "Select whether you want texts and emails from us",
    }
    for name, is_wrong in wrong.items():
        assert (messages[name] in response.text) == is_wrong
    assert await snapshot(h.db) == before


# POST /sign-out: no fields of its own, so only unexpected ones
def test_sign_out(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        Signed.start(fuzz)

        @fuzzing
        @given(sub=submissions({}))
        def examples(sub: Submission) -> None:
            fuzz.run(_sign_out(fuzz.h, sub))

        examples()


async def _sign_out(h: Harness, sub: Submission) -> None:
    await _signed_in(h)
    response = await submit(h, "/sign-out", sub, await h.csrf("/sign-out"))
    assert_redirect(response, "/?signed_out=yes")
    assert_redirect(await h.client.get("/appointments"), "/")


# Any form, with a CSRF token that is not this browser's (or none, or the right one followed by another)
FORMS = (
    "/sign-in",
    "/sign-in/code",
    "/sign-in/resend",
    "/sign-in/verification-code",
    "/appointments/{id}/confirm",
    "/appointments/{id}/rebook",
    "/appointments/{id}/cancel",
    "/preferences",
    "/sign-out",
)
ANY_FIELDS = submissions(
    {
        name: texts
        for name in ("contact", "dob-day", "code", "verification_code", "reason", "details", "contact_preference")
    }
)


def test_forms_refuse_a_foreign_csrf_token(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        signed = Signed.start(fuzz)
        fuzz.run(fuzz.h.submit_details(MOBILE, DOB))  # a sign-in attempt under way too, for the code forms

        @fuzzing
        @given(
            path=st.sampled_from(FORMS), sub=ANY_FIELDS, tokens=st.lists(texts, max_size=3), right_first=st.booleans()
        )
        def examples(path: str, sub: Submission, tokens: list[str], right_first: bool) -> None:
            fuzz.run(_foreign_csrf(signed, path, sub, tokens, right_first))

        examples()


async def _foreign_csrf(signed: Signed, path: str, sub: Submission, tokens: list[str], right_first: bool) -> None:
    h = signed.fuzz.h
    await _signed_in(h)
    right = await h.csrf("/preferences")
    path = path.format(id=await signed.target("own"))
    sent = [right, *tokens] if right_first and tokens else tokens
    pairs = [(name, v) for name, v in sub.pairs("") if name != "csrf_token"] + [("csrf_token", t) for t in sent]
    body, content_type = encode(pairs, multipart=sub.multipart)
    before = await snapshot(h.db, SIGN_IN_TABLES)
    response = await h.client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 403, response.text[:500]
    assert FORM_EXPIRED in response.text
    assert await snapshot(h.db, SIGN_IN_TABLES) == before


# Bodies that are not form encoding at all
CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-16",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=nothere",
    f"multipart/form-data; boundary={_BOUNDARY}",
    "application/json",
    "text/plain",
    "",
)


def test_forms_survive_bodies_that_are_not_forms(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        signed = Signed.start(fuzz)

        @fuzzing
        @given(
            path=st.sampled_from(FORMS),
            body=st.one_of(st.binary(max_size=2000), st.text().map(str.encode)),
            content_type=st.sampled_from(CONTENT_TYPES),
            with_token=st.booleans(),
        )
        def examples(path: str, body: bytes, content_type: str, with_token: bool) -> None:
            fuzz.run(_not_a_form(signed, path, body, content_type, with_token))

        examples()


async def _not_a_form(signed: Signed, path: str, body: bytes, content_type: str, with_token: bool) -> None:
    h = signed.fuzz.h
    await _signed_in(h)
    path = path.format(id=await signed.target("own"))
    if with_token:
        body = f"csrf_token={await h.csrf('/preferences')}&".encode() + body
    before = await snapshot(h.db, SIGN_IN_TABLES)
    response = await h.client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code < 500
    event(f"not a form: {response.status_code}")
    if 400 <= response.status_code < 500:
        assert await snapshot(h.db, SIGN_IN_TABLES) == before


async def _huge(signed: Signed) -> None:
    h = signed.fuzz.h
    csrf = await h.csrf("/preferences")
    path = f"/appointments/{await signed.target('own')}/rebook"
    bodies = {
        "one huge field": f"csrf_token={csrf}&reason=".encode() + b"x" * 3_000_000,
        "thousands of fields": f"csrf_token={csrf}&".encode() + b"&".join(b"f%d=1" % i for i in range(5000)),
        "huge multipart": (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="reason"\r\n\r\n'.encode()
            + b"x" * 3_000_000
            + f"\r\n--{_BOUNDARY}--\r\n".encode()
        ),
        "a file": (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="reason"; filename="a.txt"\r\n\r\nhello'.encode()
            + f"\r\n--{_BOUNDARY}--\r\n".encode()
        ),
    }
    for label, body in bodies.items():
        content_type = (
            f"multipart/form-data; boundary={_BOUNDARY}"
            if body.startswith(b"--")
            else "application/x-www-form-urlencoded"
        )
        before = await snapshot(h.db)
        response = await h.client.post(path, content=body, headers={"content-type": content_type})
        assert 400 <= response.status_code < 500, label
        assert COULD_NOT_READ in response.text or FORM_EXPIRED in response.text, label
        assert await snapshot(h.db) == before, label


def test_huge_bodies_are_refused_without_change(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **ROOMY) as fuzz:
        fuzz.run(_huge(Signed.start(fuzz)))
