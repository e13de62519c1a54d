"""The GOV.UK Notify notifier, against a fake Notify on real HTTP: what it sends for each channel, how it reads
Notify's errors (refused for good, try again later, or no answer at all), and looking a message up by reference."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from hub.notify import NotifyError, OutgoingMessage, TooLate
from hub.notify.govuk import GovukNotifier
from tests.fake_notify import FakeNotify, notify_api_key

pytestmark = pytest.mark.anyio
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
ADDRESS = {"address_line_1": "Ada Lovelace", "address_line_2": "1 Pond Street", "address_line_3": "NW3 2QG"}


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    with FakeNotify(timeout_delay=1.3) as fake:
        yield fake


@pytest.fixture
def notifier(fake: FakeNotify) -> GovukNotifier:
    return GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=1)


def message(
    channel: str = "sms",
    recipient: str = "+447700900001",
    *,
    personalisation: dict[str, str] | None = None,
    pdf: bytes | None = None,
) -> OutgoingMessage:
    return OutgoingMessage(
        reference="42",
        kind="security_code",
        channel=channel,
        recipient=recipient,
        template_id=TEMPLATE,
        personalisation={"code": "123456"} if personalisation is None else personalisation,
        pdf=pdf,
    )


async def test_a_text_goes_with_its_template_personalisation_and_our_reference(
    fake: FakeNotify, notifier: GovukNotifier
) -> None:
    notify_id = await notifier.send(message())
    [sent] = fake.messages
    assert sent.id == notify_id
    assert (sent.type, sent.recipient, sent.template_id, sent.reference) == ("sms", "+447700900001", TEMPLATE, "42")
    assert sent.personalisation == {"code": "123456"}


async def test_an_email_goes_to_the_address(fake: FakeNotify, notifier: GovukNotifier) -> None:
    await notifier.send(message("email", "margaret@example.com"))
    [sent] = fake.messages
    assert (sent.type, sent.recipient) == ("email", "margaret@example.com")


async def test_a_letter_goes_as_the_hospitals_pdf_or_else_from_the_template(
    fake: FakeNotify, notifier: GovukNotifier
) -> None:
    pdf = b"%PDF-1.4\n% the hospital's letter\n%%EOF\n"
    await notifier.send(message("letter", "post", pdf=pdf, personalisation={}))
    await notifier.send(message("letter", "post", personalisation=ADDRESS))
    precompiled, templated = fake.messages
    assert (precompiled.type, precompiled.pdf, precompiled.template_id) == ("letter", pdf, None)
    assert (templated.type, templated.template_id, templated.pdf) == ("letter", TEMPLATE, None)
    assert templated.recipient == "Ada Lovelace\n1 Pond Street\nNW3 2QG"


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        ("rate_limit", 429, "RateLimitError"),
        ("daily_limit", 429, "TooManyRequestsError"),
        ("server_error", 500, "Exception"),
    ],
)
async def test_notifys_error_answers_are_read_as_status_and_error_name(
    fake: FakeNotify, notifier: GovukNotifier, fault: str, status: int, error: str
) -> None:
    fake.inject(fault)
    with pytest.raises(NotifyError) as raised:
        await notifier.send(message())
    assert (raised.value.status, raised.value.error, raised.value.permanent) == (status, error, False)
    assert fake.messages == []


async def test_a_refused_message_is_permanent(fake: FakeNotify, notifier: GovukNotifier) -> None:
    with pytest.raises(NotifyError) as raised:
        await notifier.send(message(recipient="+33612345678"))  # not a UK mobile
    assert (raised.value.status, raised.value.error, raised.value.permanent) == (400, "ValidationError", True)


async def test_a_refused_key_is_not_the_messages_fault(fake: FakeNotify) -> None:
    other = "11111111-1111-1111-1111-111111111111"
    notifier = GovukNotifier(api_key=notify_api_key(fake.service_id, other), base_url=fake.url, timeout=1)
    with pytest.raises(NotifyError) as raised:
        await notifier.send(message())
    assert (raised.value.status, raised.value.error, raised.value.permanent) == (403, "AuthError", False)


async def test_no_answer_is_a_failure_without_a_status(fake: FakeNotify, notifier: GovukNotifier) -> None:
    fake.inject("timeout")
    with pytest.raises(NotifyError, match="notify unreachable") as raised:
        await notifier.send(message())
    assert (raised.value.status, raised.value.permanent) == (None, False)


async def test_nobody_listening_is_a_failure_without_a_status(fake: FakeNotify) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    notifier = GovukNotifier(api_key=fake.api_key, base_url=closed, timeout=1)
    for attempt in (notifier.send(message()), notifier.find("42")):
        with pytest.raises(NotifyError, match="notify unreachable") as raised:
            await attempt
        assert raised.value.status is None


async def test_a_message_is_found_by_reference_unless_notify_failed_it(
    fake: FakeNotify, notifier: GovukNotifier
) -> None:
    assert await notifier.find("42") is None
    first = await notifier.send(message())
    assert await notifier.find("42") == first
    fake.set_status(first, "permanent-failure")
    assert await notifier.find("42") is None  # an attempt that failed is not the message having been sent
    second = await notifier.send(message())
    assert await notifier.find("42") == second


async def test_a_send_past_its_deadline_sends_nothing(fake: FakeNotify, notifier: GovukNotifier) -> None:
    # A worker whose lease ran out (it was paused) before its request was written: nothing reaches Notify.
    with pytest.raises(TooLate):
        await notifier.send(message(), start_by=time.monotonic() - 0.001)
    assert fake.arrivals == []
    # Within the deadline it goes as usual, and the deadline was this send's only.
    assert await notifier.send(message(), start_by=time.monotonic() + 30)
    assert await notifier.send(message())
    assert len(fake.messages) == 2


async def test_a_request_cut_off_part_way_is_never_handled(fake: FakeNotify) -> None:
    with socket.create_connection(("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /v2/notifications/sms HTTP/1.0\r\nContent-Length: 100\r\n\r\n{")
    assert fake.messages == [] and fake.internal_errors == []
