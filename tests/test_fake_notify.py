"""The fake Notify, proved against the real notifications-python-client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from notifications_python_client import authentication
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from tests.fake_notify import FakeNotify, FakeNotifyProcess, Fault, Template, Window, notify_api_key

TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
MOBILE = "+447700900123"
PDF = b"%PDF-1.4\n%fake letter\n"
ADDRESS = {"address_line_1": "A Patient", "address_line_2": "1 High Street", "address_line_3": "WD17 1AA"}
MakeClient = Callable[..., NotificationsAPIClient]


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    with FakeNotify(timeout_delay=1.5, slow_delay=0.2) as fake:
        yield fake


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[NotificationsAPIClient] = []

    def make(fake: Any, *, timeout: float = 5, api_key: str | None = None) -> NotificationsAPIClient:
        client = NotificationsAPIClient(api_key or fake.api_key, base_url=fake.url, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.request_session.close()


@pytest.fixture
def client(fake: FakeNotify, make_client: MakeClient) -> NotificationsAPIClient:
    return make_client(fake)


def send_sms(client: NotificationsAPIClient, reference: str = "ref-1", **personalisation: Any) -> dict[str, Any]:
    return client.send_sms_notification(MOBILE, TEMPLATE, personalisation or {"code": "123456"}, reference)


def messages_of(exc: pytest.ExceptionInfo[HTTPError]) -> list[dict[str, Any]]:
    """Notify's errors: APIError.message is typed str | list, and an answer from Notify gives the list."""
    message = exc.value.message
    assert isinstance(message, list), message
    return message


def errors_of(exc: pytest.ExceptionInfo[HTTPError]) -> list[str]:
    return [e["error"] for e in messages_of(exc)]


def jwt(secret: str, claims: dict[str, Any], alg: str = "HS256") -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"typ": "JWT", "alg": alg}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# sending and reading back


def test_sms_is_accepted_recorded_and_read_back(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    response = send_sms(client, "outbox-7", code="123456", link="https://hub.example/p/abc")

    assert uuid.UUID(response["id"])
    assert response["reference"] == "outbox-7"
    assert response["uri"] == f"{fake.url}/v2/notifications/{response['id']}"
    assert response["template"]["id"] == TEMPLATE and response["template"]["version"] == 1
    assert "123456" in response["content"]["body"] and response["content"]["from_number"]
    [message] = fake.messages
    assert (message.id, message.type, message.recipient) == (response["id"], "sms", MOBILE)
    assert message.personalisation == {"code": "123456", "link": "https://hub.example/p/abc"}
    assert message.reference == "outbox-7" and message.created_at.tzinfo is not None

    notification = client.get_notification_by_id(response["id"])
    assert notification["phone_number"] == MOBILE
    assert (notification["type"], notification["status"], notification["reference"]) == ("sms", "created", "outbox-7")
    assert notification["created_at"].endswith("Z")


def test_email_is_accepted_and_read_back(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    response = client.send_email_notification("pat@example.com", TEMPLATE, {"link": "x"}, "outbox-8")

    assert set(response["content"]) >= {"subject", "body", "from_email"}
    assert fake.by_reference("outbox-8")[0].recipient == "pat@example.com"
    assert client.get_notification_by_id(response["id"])["email_address"] == "pat@example.com"


def test_templated_letter_is_accepted_with_its_address(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    response = client.send_letter_notification(TEMPLATE, {**ADDRESS, "date": "1 May"}, "outbox-9")

    assert set(response["content"]) == {"subject", "body"}
    [message] = fake.messages
    assert (message.type, message.recipient) == ("letter", "A Patient\n1 High Street\nWD17 1AA")
    notification = client.get_notification_by_id(response["id"])
    assert (notification["line_1"], notification["line_3"], notification["type"]) == ("A Patient", "WD17 1AA", "letter")


def test_precompiled_letter_keeps_its_pdf(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    response = client.send_precompiled_letter_notification("outbox-10", io.BytesIO(PDF), postage="first")

    assert set(response) == {"id", "reference", "postage"}
    assert (response["reference"], response["postage"]) == ("outbox-10", "first")
    [message] = fake.messages
    assert (message.pdf, message.postage, message.status) == (PDF, "first", "pending-virus-check")
    with pytest.raises(HTTPError) as exc:
        client.send_precompiled_letter_notification("outbox-11", io.BytesIO(b"not a pdf"))
    assert exc.value.status_code == 400 and errors_of(exc) == ["BadRequestError"]


def test_templates_when_given_are_rendered_and_checked(make_client: MakeClient) -> None:
    templates = {TEMPLATE: Template("sms", "Your code is ((code)).((app?? Open the NHS App.))")}
    with FakeNotify(templates=templates) as fake:
        client = make_client(fake)
        assert send_sms(client, code="654321", app="no")["content"]["body"] == "Your code is 654321."
        assert send_sms(client, code="1", app="yes")["content"]["body"] == "Your code is 1. Open the NHS App."
        with pytest.raises(HTTPError) as exc:
            send_sms(client, app="yes")
        assert messages_of(exc)[0]["message"] == "Missing personalisation: code"
        with pytest.raises(HTTPError) as exc:
            client.send_email_notification("pat@example.com", TEMPLATE, {"code": "1"})
        assert messages_of(exc)[0]["message"] == "sms template is not suitable for email notification"
        with pytest.raises(HTTPError) as exc:
            client.send_sms_notification(MOBILE, str(uuid.uuid4()), {"code": "1"})
        assert messages_of(exc)[0]["message"] == "Template not found"
        assert len(fake.messages) == 2


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("sms", {"template_id": TEMPLATE}, "phone_number is a required property"),
        ("sms", {"phone_number": MOBILE}, "template_id is a required property"),
        ("sms", {"phone_number": "01923 217 000", "template_id": TEMPLATE}, "phone_number Not a UK mobile number"),
        ("sms", {"phone_number": MOBILE, "template_id": "nope"}, "template_id is not a valid UUID"),
        ("sms", {"phone_number": MOBILE, "template_id": TEMPLATE, "refrence": "x"}, "Additional properties"),
        ("email", {"email_address": "pat", "template_id": TEMPLATE}, "email_address Not a valid email address"),
        ("letter", {"template_id": TEMPLATE}, "personalisation is a required property"),
        (
            "letter",
            {"template_id": TEMPLATE, "personalisation": {"address_line_1": "A"}},
            "Address must be at least 3 lines",
        ),
        ("letter", {"content": base64.b64encode(PDF).decode()}, "reference is a required property"),
    ],
)
def test_invalid_sends_are_refused_with_400(
    fake: FakeNotify, client: NotificationsAPIClient, path: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(HTTPError) as exc:
        client.post(f"/v2/notifications/{path}", data=data)

    assert exc.value.status_code == 400
    assert messages_of(exc)[0]["error"] == "ValidationError"
    assert messages_of(exc)[0]["message"].startswith(message)
    assert fake.messages == []


def test_unknown_notification_is_404_and_bad_id_400(client: NotificationsAPIClient) -> None:
    with pytest.raises(HTTPError) as exc:
        client.get_notification_by_id(str(uuid.uuid4()))
    assert exc.value.status_code == 404 and errors_of(exc) == ["NoResultFound"]
    with pytest.raises(HTTPError) as exc:
        client.get_notification_by_id("not-a-uuid")
    assert exc.value.status_code == 400


# authentication


def test_api_key_helper_matches_what_the_client_parses() -> None:
    service_id, secret = str(uuid.uuid4()), str(uuid.uuid4())
    client = NotificationsAPIClient(notify_api_key(service_id, secret, name="hub-live"))
    client.request_session.close()
    assert (client.service_id, client.api_key) == (service_id, secret)


def test_a_key_for_another_secret_is_refused(fake: FakeNotify, make_client: MakeClient) -> None:
    client = make_client(fake, api_key=notify_api_key(fake.service_id, str(uuid.uuid4())))
    with pytest.raises(HTTPError) as exc:
        send_sms(client)
    assert exc.value.status_code == 403 and errors_of(exc) == ["AuthError"]
    assert fake.messages == []


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda f: jwt(str(uuid.uuid4()), {"iss": f.service_id, "iat": int(time.time())}), "API key not found"),
        (lambda f: jwt(f.secret, {"iss": str(uuid.uuid4()), "iat": int(time.time())}), "service not found"),
        (lambda f: jwt(f.secret, {"iss": f.service_id, "iat": int(time.time()) - 60}), "accurate to within 30"),
        (lambda f: jwt(f.secret, {"iss": f.service_id, "iat": int(time.time()) + 60}), "accurate to within 30"),
        (lambda f: jwt(f.secret, {"iss": f.service_id}), "iat field not provided"),
        (lambda f: jwt(f.secret, {"iss": f.service_id, "iat": int(time.time())}, alg="none"), "not HS256"),
        (lambda f: "garbage", "signature"),
    ],
    ids=["bad-secret", "wrong-iss", "iat-60s-old", "iat-future", "no-iat", "alg-none", "garbage"],
)
def test_bad_tokens_are_refused_with_403(fake: FakeNotify, token: Callable[[FakeNotify], str], message: str) -> None:
    body = {"phone_number": MOBILE, "template_id": TEMPLATE}
    with requests.Session() as session:
        response = session.post(
            f"{fake.url}/v2/notifications/sms", json=body, headers={"Authorization": f"Bearer {token(fake)}"}
        )
    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["error"] == "AuthError" and message in error["message"]
    assert fake.messages == []


def test_a_token_29_seconds_old_is_still_fine(fake: FakeNotify) -> None:
    token = jwt(fake.secret, {"iss": fake.service_id, "iat": int(time.time()) - 29})
    with requests.Session() as session:
        response = session.get(f"{fake.url}/v2/notifications", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_missing_token_is_401(fake: FakeNotify) -> None:
    with requests.Session() as session:
        assert session.get(f"{fake.url}/v2/notifications").status_code == 401


# faults


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("rate_limit", 429, "RateLimitError"),
        ("daily_limit", 429, "TooManyRequestsError"),
        ("server_error", 500, None),
        ("refused", 400, "ValidationError"),
    ],
)
def test_error_faults_refuse_and_record_nothing(
    fake: FakeNotify, client: NotificationsAPIClient, kind: str, status: int, error: str | None
) -> None:
    fake.inject(kind)
    with pytest.raises(HTTPError) as exc:
        send_sms(client)

    assert exc.value.status_code == status
    assert messages_of(exc)[0]["error"] == (error or "Exception")
    assert fake.messages == []
    assert send_sms(client)["reference"] == "ref-1"  # the script is used up
    assert fake.count_by_reference() == {"ref-1": 1}


def test_timeout_fault_times_the_client_out_but_notify_kept_the_message(
    fake: FakeNotify, make_client: MakeClient
) -> None:
    client = make_client(fake, timeout=0.3)
    fake.inject("timeout")
    started = time.monotonic()
    with pytest.raises(HTTPError) as exc:
        send_sms(client, "outbox-1")

    assert isinstance(exc.value.__cause__, requests.Timeout)  # the client wraps it as a 503 HTTPError
    assert exc.value.status_code == 503
    assert time.monotonic() - started < 1.4
    assert [m.reference for m in fake.messages] == ["outbox-1"]
    found = client.get_all_notifications(reference="outbox-1")["notifications"]
    assert [n["id"] for n in found] == [fake.messages[0].id]


def test_drop_after_accept_closes_the_connection_after_recording(
    fake: FakeNotify, client: NotificationsAPIClient
) -> None:
    fake.inject("drop_after_accept")
    with pytest.raises(HTTPError) as exc:
        send_sms(client, "outbox-2")

    assert isinstance(exc.value.__cause__, requests.ConnectionError)
    assert fake.count_by_reference() == {"outbox-2": 1}


def test_slow_fault_delays_then_succeeds(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    fake.inject(Fault("slow", seconds=0.3), "slow")
    started = time.monotonic()
    send_sms(client, "a")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    send_sms(client, "b")
    assert time.monotonic() - started >= 0.2  # the fake's slow_delay
    assert fake.count_by_reference() == {"a": 1, "b": 1}


def test_scripted_faults_are_consumed_in_order(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    fake.inject("server_error", None, "rate_limit")
    outcomes = []
    for reference in "abcd":
        try:
            send_sms(client, reference)
            outcomes.append(201)
        except HTTPError as exc:
            outcomes.append(exc.status_code)

    assert outcomes == [500, 201, 429, 201]
    assert fake.count_by_reference() == {"b": 1, "d": 1}
    assert fake.fired_faults == ["server_error", "rate_limit"] and fake.pending_faults == 0


def test_lookups_draw_no_faults_unless_asked(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    fake.inject("server_error")
    client.get_all_notifications(reference="x")
    assert fake.pending_faults == 1
    fake.faults_on_lookups = True
    with pytest.raises(HTTPError):
        client.get_all_notifications(reference="x")


def test_random_faults_are_seeded_and_never_corrupt_the_record(fake: FakeNotify, make_client: MakeClient) -> None:
    kinds = ("rate_limit", "server_error", "drop_after_accept", "daily_limit")
    fake.set_fault_rate(0.3, kinds=kinds, seed=7)
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def sender(worker: int) -> None:
        client = make_client(fake)
        for i in range(25):
            reference = f"w{worker}-{i}"
            try:
                send_sms(client, reference)
                outcome = "ok"
            except HTTPError as exc:
                outcome = "dropped" if isinstance(exc.__cause__, requests.ConnectionError) else "refused"
            with lock:
                outcomes[reference] = outcome

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counts = fake.count_by_reference()
    assert all(n == 1 for n in counts.values())
    assert set(counts) == {ref for ref, outcome in outcomes.items() if outcome in ("ok", "dropped")}
    assert 10 < len(fake.fired_faults) < 50
    assert len(fake.messages) == 100 - sum(kind != "drop_after_accept" for kind in fake.fired_faults)
    first_run = list(fake.fired_faults)
    fake.reset()
    fake.set_fault_rate(0.3, kinds=kinds, seed=7)
    client = make_client(fake)
    for i in range(100):
        try:
            send_sms(client, f"again-{i}")
        except HTTPError:
            pass
    assert fake.fired_faults == first_run  # the same seed draws the same faults


def test_rate_limit_refuses_beyond_the_limit(make_client: MakeClient) -> None:
    with FakeNotify(rate_limit=3) as fake:
        client = make_client(fake)
        for reference in "abc":
            send_sms(client, reference)
        with pytest.raises(HTTPError) as exc:
            send_sms(client, "d")
        assert exc.value.status_code == 429 and errors_of(exc) == ["RateLimitError"]
        assert fake.max_in_window(60) == Window(accepted=3, requests=4)


# lookups


def test_lookup_by_reference_and_filters(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    first = send_sms(client, "outbox-1")
    send_sms(client, "outbox-2")
    again = send_sms(client, "outbox-1")
    client.send_email_notification("pat@example.com", TEMPLATE, {"link": "x"}, "outbox-3")

    found = client.get_all_notifications(reference="outbox-1")
    assert [n["id"] for n in found["notifications"]] == [again["id"], first["id"]]  # newest first
    assert found["links"]["current"].endswith("reference=outbox-1")
    assert [m.id for m in fake.by_reference("outbox-1")] == [first["id"], again["id"]]
    assert fake.count_by_reference() == {"outbox-1": 2, "outbox-2": 1, "outbox-3": 1}
    assert client.get_all_notifications(reference="outbox-9")["notifications"] == []
    assert len(client.get_all_notifications(template_type="sms")["notifications"]) == 3
    fake.set_status(first["id"], "permanent-failure")
    assert [n["id"] for n in client.get_all_notifications(status="failed")["notifications"]] == [first["id"]]
    assert client.get_all_notifications(status="delivered")["notifications"] == []


def test_older_than_pages_back_and_the_iterator_ends(fake: FakeNotify, client: NotificationsAPIClient) -> None:
    ids = [send_sms(client, f"r{i}")["id"] for i in range(4)]

    older = client.get_all_notifications(older_than=ids[2])["notifications"]
    assert [n["id"] for n in older] == [ids[1], ids[0]]
    assert [n["id"] for n in client.get_all_notifications_iterator()] == ids[::-1]


# rolling window


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_max_in_window_for_a_known_arrival_pattern(make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    start = clock.now
    # The client signs with the same clock, so its tokens stay fresh as time jumps.
    monkeypatch.setattr(authentication, "epoch_seconds", lambda: int(clock.now))
    with FakeNotify(clock=clock) as fake:
        client = make_client(fake)

        def at(offset: float, sends: int, refused: int = 0) -> None:
            clock.now = start + offset
            fake.inject(*[None] * sends, *["rate_limit"] * refused)
            for _ in range(sends + refused):
                try:
                    send_sms(client)
                except HTTPError:
                    pass

        at(0, 5)
        at(30, 3)
        at(60, 4)  # exactly 60 s after the first five: not in their window
        at(61, 0, refused=2)

        assert fake.max_in_window(60) == Window(accepted=8, requests=9)
        assert fake.max_in_window(61) == Window(accepted=12, requests=12)
        assert fake.max_in_window(1) == Window(accepted=5, requests=5)
        assert [ok for _, ok in fake.arrivals].count(False) == 2


def test_max_in_window_is_zero_when_idle(fake: FakeNotify) -> None:
    assert fake.max_in_window() == Window(accepted=0, requests=0)


# lifecycle and the separate process


def test_close_is_prompt_with_a_request_held_and_leaves_no_threads(make_client: MakeClient) -> None:
    before = set(threading.enumerate())
    fake = FakeNotify(timeout_delay=30).start()
    client = make_client(fake, timeout=0.2)
    fake.inject("timeout")
    with pytest.raises(HTTPError):
        send_sms(client)
    started = time.monotonic()
    fake.close()

    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) <= before
    assert len(fake.messages) == 1


def test_a_bug_in_the_fake_fails_the_test_rather_than_passing_as_a_500(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        with FakeNotify() as fake:
            monkeypatch.setattr(fake, "_render", lambda *args: 1 / 0)
            with pytest.raises(HTTPError) as exc:
                send_sms(make_client(fake))
            assert exc.value.status_code == 500 and errors_of(exc) == ["FakeNotifyBug"]


def test_separate_process_is_driven_through_control(make_client: MakeClient) -> None:
    with FakeNotifyProcess(args=["--timeout-delay", "1"]) as fake:
        client = make_client(fake)
        assert send_sms(client, "p-1")["reference"] == "p-1"

        fake.inject("rate_limit", Fault("slow", seconds=0.1))
        with pytest.raises(HTTPError) as exc:
            send_sms(client, "p-2")
        assert exc.value.status_code == 429
        send_sms(client, "p-2")

        # The raw control protocol, as another language's test would use it.
        command = json.dumps({"inject": ["server_error"]}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{fake.url}/_control", data=command)) as response:
            assert json.load(response)["pending_faults"] == 1
        with pytest.raises(HTTPError) as exc:
            send_sms(client, "p-3")
        assert exc.value.status_code == 500

        assert fake.count_by_reference() == {"p-1": 1, "p-2": 1}
        assert fake.by_reference("p-1")[0].recipient == MOBILE
        assert fake.fired_faults == ["rate_limit", "slow", "server_error"]
        assert fake.max_in_window(60) == Window(accepted=2, requests=4)
        fake.set_status(fake.by_reference("p-1")[0].id, "delivered")
        assert client.get_all_notifications(status="delivered")["notifications"][0]["reference"] == "p-1"
        fake.reset()
        assert fake.messages == []
    assert fake.process.returncode is not None
