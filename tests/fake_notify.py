"""A fake GOV.UK Notify API on real HTTP, for driving the real notifications-python-client in tests.

In-process: `with FakeNotify() as fake: NotificationsAPIClient(fake.api_key, base_url=fake.url)`.
Own process: `python -m tests.fake_notify --port 0 --service-id S --secret K` prints its URL; drive it through
POST /_control, or with `FakeNotifyProcess`, which has the same test-side API as `FakeNotify`.

Control protocol (JSON; every key optional, applied in this order):
  POST /_control {"reset": true, "clear_faults": true, "fault_rate": {"rate": 0.2, "kinds": [...], "seed": 1},
                  "faults_on_lookups": true, "inject": ["rate_limit", {"kind": "slow", "seconds": 1}, null],
                  "set_status": {"id": "...", "status": "delivered"}}  -> {"pending_faults", "messages"}
  GET /_control -> {"messages": [...], "fired_faults": [...], "internal_errors": [...]}
  GET /_control/window?seconds=60 -> {"accepted": n, "requests": m}
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import dataclasses
import hashlib
import hmac
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode

from hub.settings import TEMPLATE_SETTINGS, env_name

FAULT_KINDS = ("rate_limit", "daily_limit", "server_error", "timeout", "slow", "drop_after_accept", "refused")
_ERROR_FAULTS = {
    # Notify's checks of a recipient are stricter than the hub's: a number the hub took is refused all the same.
    "refused": (400, "ValidationError", "phone_number Not a UK mobile number"),
    "rate_limit": (429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"),
    "daily_limit": (429, "TooManyRequestsError", "Exceeded send limits (250000) for today"),
    "server_error": (500, "Exception", "Internal server error"),
}
_JWT_LEEWAY = 30
_PAGE_SIZE = 250
_POSTAGE = ("first", "second", "economy")
_FAILED = ("permanent-failure", "temporary-failure", "technical-failure")
_FIELDS = {  # (required, optional) per request kind; Notify's schemas forbid anything else
    "sms": ({"phone_number", "template_id"}, {"personalisation", "reference", "sms_sender_id", "scheduled_for"}),
    "email": (
        {"email_address", "template_id"},
        {"personalisation", "reference", "email_reply_to_id", "scheduled_for", "one_click_unsubscribe_url"}
        | {"sanitise_content_for"},
    ),
    "letter": ({"template_id", "personalisation"}, {"reference", "scheduled_for"}),
    "precompiled": ({"reference", "content"}, {"postage"}),
}
_PLACEHOLDER = re.compile(r"\(\(([^()?]+?)(\?\?([^()]*))?\)\)")


_TEMPLATE_NAMESPACE = uuid.UUID("0b5c7f52-3a57-4c1e-9d0e-6f1f2b3a4c5d")


def placeholder_template_id(name: str) -> str:
    """The id `template_environ` gives the template setting `name` (e.g. "invitation_sms"): the same UUID every run,
    as a hub outside demo mode takes only UUIDs for template ids, like Notify."""
    return str(uuid.uuid5(_TEMPLATE_NAMESPACE, name))


def template_environ(**ids: str) -> dict[str, str]:
    """HUB_NOTIFY__TEMPLATES__* for every declared template (a hub sending through Notify outside demo mode will not
    start without them): `ids` by setting name, the rest filled with `placeholder_template_id`."""
    names = dict.fromkeys(TEMPLATE_SETTINGS.values())
    return {env_name(f"notify.templates.{name}"): ids.get(name, placeholder_template_id(name)) for name in names}


def notify_api_key(service_id: str, secret: str, name: str = "test") -> str:
    """An API key in Notify's `{key_name}-{service_id}-{secret}` form, as the real client parses it."""
    return f"{name}-{uuid.UUID(service_id)}-{uuid.UUID(secret)}"


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float | None = None  # delay for "slow" and "timeout"; None means the fake's default

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {FAULT_KINDS}")


FaultSpec = Fault | str | None  # None in a script lets one request through untouched


@dataclasses.dataclass(frozen=True)
class Template:
    type: str  # sms | email | letter
    body: str  # with ((placeholders)), as written in Notify
    subject: str | None = None


@dataclasses.dataclass(frozen=True)
class Message:
    id: str
    type: str  # sms | email | letter
    recipient: str | None  # phone, email, or the address lines joined by newlines; None for precompiled
    template_id: str | None
    personalisation: dict[str, Any]
    reference: str | None
    created_at: datetime
    status: str = "created"
    body: str = ""
    subject: str | None = None
    postage: str | None = None
    pdf: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["pdf"] = base64.b64encode(self.pdf).decode() if self.pdf is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        pdf = base64.b64decode(data["pdf"]) if data.get("pdf") is not None else None
        return cls(**{**data, "created_at": datetime.fromisoformat(data["created_at"]), "pdf": pdf})


class Window(NamedTuple):
    accepted: int  # messages Notify took on (including those whose answer the client never saw)
    requests: int  # every /v2 request, refused ones included


class _Outcome(NamedTuple):
    status: int
    payload: Any
    delay: float = 0.0
    drop: bool = False


class _NotifyError(Exception):
    def __init__(self, status: int, error: str, *messages: str) -> None:
        self.status = status
        self.payload = {"status_code": status, "errors": [{"error": error, "message": m} for m in messages]}


class FakeNotify:
    def __init__(
        self,
        *,
        service_id: str | None = None,
        secret: str | None = None,
        port: int = 0,
        templates: Mapping[str, Template] | None = None,
        rate_limit: int | None = None,
        timeout_delay: float = 2.0,
        slow_delay: float = 0.5,
        faults_on_lookups: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service_id = str(uuid.UUID(service_id)) if service_id else str(uuid.uuid4())
        self.secret = str(uuid.UUID(secret)) if secret else str(uuid.uuid4())
        self.api_key = notify_api_key(self.service_id, self.secret)
        self.templates = dict(templates) if templates is not None else None  # None: any template id is fine
        self.rate_limit = rate_limit  # requests per 60 s, refused with 429 like Notify; None: no limit
        self.timeout_delay = timeout_delay  # must exceed the client's timeout
        self.slow_delay = slow_delay
        self.faults_on_lookups = faults_on_lookups  # by default only POST sends draw faults
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._messages: list[Message] = []
        self._arrivals: list[tuple[float, bool]] = []
        self._recent: deque[float] = deque()
        self._script: deque[Fault | None] = deque()
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = FAULT_KINDS
        self._rng = random.Random(0)
        self._fired: list[str] = []
        self.internal_errors: list[str] = []  # bugs in the fake itself; __exit__ fails the test on any
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.fake = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeNotify:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-notify", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()  # wakes handlers sleeping out a "slow" or "timeout" fault
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()  # joins every handler thread

    def __enter__(self) -> FakeNotify:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if self.internal_errors and exc_type is None:
            raise AssertionError("FakeNotify failed internally:\n" + "\n".join(self.internal_errors))

    # faults

    def inject(self, *faults: FaultSpec) -> None:
        """Queue faults for the next requests, one each, in order; before any random fault."""
        with self._lock:
            self._script.extend(_fault(f) for f in faults)

    def set_fault_rate(self, rate: float, *, kinds: Iterable[str] = FAULT_KINDS, seed: int = 0) -> None:
        kinds = tuple(Fault(k).kind for k in kinds)
        with self._lock:
            self._fault_rate, self._fault_kinds, self._rng = rate, kinds, random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._script.clear()
            self._fault_rate = 0.0

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def fired_faults(self) -> list[str]:
        with self._lock:
            return list(self._fired)

    # what Notify accepted

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def by_reference(self, reference: str) -> list[Message]:
        return [m for m in self.messages if m.reference == reference]

    def count_by_reference(self) -> dict[str | None, int]:
        return dict(Counter(m.reference for m in self.messages))

    def set_status(self, notification_id: str, status: str) -> Message:
        with self._lock:
            for i, message in enumerate(self._messages):
                if message.id == notification_id:
                    self._messages[i] = dataclasses.replace(message, status=status)
                    return self._messages[i]
        raise KeyError(notification_id)

    @property
    def arrivals(self) -> list[tuple[float, bool]]:
        """(clock time, accepted) of every /v2 request, in arrival order."""
        with self._lock:
            return sorted(self._arrivals, key=lambda a: a[0])

    def max_in_window(self, seconds: float = 60) -> Window:
        """Most requests that arrived in any half-open window [t, t + seconds)."""
        arrivals = self.arrivals
        accepted = [t for t, ok in arrivals if ok]
        return Window(_densest(accepted, seconds), _densest([t for t, _ in arrivals], seconds))

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._arrivals.clear()
            self._recent.clear()
            self._script.clear()
            self._fault_rate = 0.0
            self._fired.clear()

    # request handling (called from handler threads)

    def _handle(self, method: str, path: str, query: str, body: bytes, auth: str | None) -> _Outcome:
        arrived = self._clock()
        fault = None
        accepted = False
        try:
            self._authenticate(auth, arrived)
            self._check_rate_limit(arrived)
            if method == "POST" or self.faults_on_lookups:
                fault = self._next_fault()
            if fault is not None and fault.kind in _ERROR_FAULTS:
                raise _NotifyError(*_ERROR_FAULTS[fault.kind])
            status, payload, message = self._route(method, path, query, body, arrived)
            accepted = message is not None
        except _NotifyError as exc:
            status, payload = exc.status, exc.payload
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            status, payload = 500, {"status_code": 500, "errors": [{"error": "FakeNotifyBug", "message": "see test"}]}
        finally:
            with self._lock:
                self._arrivals.append((arrived, accepted))
        if fault is None or fault.kind in _ERROR_FAULTS:
            return _Outcome(status, payload)
        default = self.timeout_delay if fault.kind == "timeout" else self.slow_delay
        delay = 0.0 if fault.kind == "drop_after_accept" else fault.seconds if fault.seconds is not None else default
        return _Outcome(status, payload, delay=delay, drop=fault.kind == "drop_after_accept")

    def _authenticate(self, header: str | None, now: float) -> None:
        if not header:
            raise _NotifyError(401, "AuthError", "Unauthorized: authentication token must be provided")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise _NotifyError(401, "AuthError", "Unauthorized: authentication bearer scheme must be used")
        try:
            head_b64, claims_b64, signature_b64 = token.strip().split(".")
            head, claims = json.loads(_unb64(head_b64)), json.loads(_unb64(claims_b64))
            signature = _unb64(signature_b64)
        except (ValueError, binascii.Error) as exc:
            raise _NotifyError(403, "AuthError", "Invalid token: signature, api token is not valid") from exc
        if not isinstance(head, dict) or head.get("alg") != "HS256":
            raise _NotifyError(403, "AuthError", "Invalid token: algorithm used is not HS256")
        if not isinstance(claims, dict) or "iss" not in claims:
            raise _NotifyError(403, "AuthError", "Invalid token: iss field not provided")
        if claims["iss"] != self.service_id:
            raise _NotifyError(403, "AuthError", "Invalid token: service not found")
        expected = hmac.new(self.secret.encode(), f"{head_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise _NotifyError(403, "AuthError", "Invalid token: API key not found")
        if not isinstance(claims.get("iat"), int | float):
            raise _NotifyError(403, "AuthError", "Invalid token: iat field not provided")
        if abs(now - claims["iat"]) > _JWT_LEEWAY:
            raise _NotifyError(403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds")

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._script:
                fault = self._script.popleft()
            elif self._fault_rate and self._rng.random() < self._fault_rate:
                fault = Fault(self._rng.choice(self._fault_kinds))
            else:
                fault = None
            if fault is not None:
                self._fired.append(fault.kind)
            return fault

    def _check_rate_limit(self, now: float) -> None:
        if self.rate_limit is None:
            return
        with self._lock:
            while self._recent and self._recent[0] <= now - 60:
                self._recent.popleft()
            self._recent.append(now)
            if len(self._recent) > self.rate_limit:
                raise _NotifyError(*_ERROR_FAULTS["rate_limit"])

    def _route(self, method: str, path: str, query: str, body: bytes, now: float) -> tuple[int, Any, Message | None]:
        parts = path.rstrip("/").split("/")[1:]
        if parts[:2] != ["v2", "notifications"] or len(parts) > 3:
            raise _NotifyError(404, "NotFound", "The requested URL was not found on the server.")
        if method == "GET" and len(parts) == 3:
            return 200, self._notification(parts[2]), None
        if method == "GET":
            return 200, self._list(parse_qs(query)), None
        if method == "POST" and len(parts) == 3 and parts[2] in ("sms", "email", "letter"):
            return self._send(parts[2], body, now)
        raise _NotifyError(405, "MethodNotAllowed", "The method is not allowed for the requested URL.")

    def _send(self, kind: str, body: bytes, now: float) -> tuple[int, Any, Message]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _NotifyError(400, "BadRequestError", "Invalid JSON supplied in POST data") from exc
        if not isinstance(data, dict):
            raise _NotifyError(400, "ValidationError", f"{data!r} is not of type object")
        if kind == "letter" and "content" in data:
            kind = "precompiled"
        errors = _validate(kind, data)
        if errors:
            raise _NotifyError(400, "ValidationError", *errors)
        personalisation = data.get("personalisation") or {}
        created_at = datetime.fromtimestamp(now, UTC)
        if kind == "precompiled":
            pdf = base64.b64decode(data["content"])
            message = Message(
                id=str(uuid.uuid4()), type="letter", recipient=None, template_id=None, personalisation={},
                reference=data["reference"], created_at=created_at, status="pending-virus-check",
                postage=data.get("postage", "second"), pdf=pdf,
            )  # fmt: skip
            self._record(message)
            return 201, {"id": message.id, "reference": message.reference, "postage": message.postage}, message
        body_text, subject = self._render(kind, data["template_id"], personalisation)
        recipient = {"sms": data.get("phone_number"), "email": data.get("email_address")}.get(kind)
        message = Message(
            id=str(uuid.uuid4()), type=kind, recipient=recipient or "\n".join(_address(personalisation)),
            template_id=data["template_id"], personalisation=personalisation, reference=data.get("reference"),
            created_at=created_at, status="created", body=body_text, subject=subject,
            postage="second" if kind == "letter" else None,
        )  # fmt: skip
        self._record(message)
        content: dict[str, Any] = {"body": body_text}
        if kind == "sms":
            content["from_number"] = "GOVUK"
        else:
            content["subject"] = subject
        if kind == "email":
            content |= {"from_email": "hub@notifications.service.gov.uk", "one_click_unsubscribe_url": None}
        response = {
            "id": message.id,
            "reference": message.reference,
            "content": content,
            "uri": f"{self.url}/v2/notifications/{message.id}",
            "template": self._template_ref(message.template_id),
            "scheduled_for": None,
        }
        return 201, response, message

    def _render(self, kind: str, template_id: str, personalisation: dict[str, Any]) -> tuple[str, str | None]:
        if self.templates is None:
            body = "\n".join(f"{k}: {v}" for k, v in sorted(personalisation.items()))
            return body, None if kind == "sms" else f"Fake Notify {kind}"
        template = self.templates.get(template_id)
        if template is None:
            raise _NotifyError(400, "BadRequestError", "Template not found")
        if template.type != kind:
            raise _NotifyError(
                400, "BadRequestError", f"{template.type} template is not suitable for {kind} notification"
            )
        values = {k.lower().replace(" ", ""): v for k, v in personalisation.items()}
        text = template.body + "\n" + (template.subject or "")
        missing = sorted({m[1] for m in _PLACEHOLDER.finditer(text) if m[1].lower().replace(" ", "") not in values})
        if missing:
            raise _NotifyError(400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}")

        def fill(match: re.Match[str]) -> str:
            value = values[match[1].lower().replace(" ", "")]
            shown = str(value).strip().lower() not in ("", "no", "false", "0")
            return (match[3] if shown else "") if match[2] else str(value)

        subject = _PLACEHOLDER.sub(fill, template.subject) if template.subject else None
        return _PLACEHOLDER.sub(fill, template.body), subject

    def _record(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)

    def _template_ref(self, template_id: str | None) -> dict[str, Any]:
        uri = f"{self.url}/services/{self.service_id}/templates/{template_id}"
        return {"id": template_id, "version": 1, "uri": uri}

    def _notification(self, notification_id: str) -> dict[str, Any]:
        if not _is_uuid(notification_id):
            raise _NotifyError(400, "ValidationError", "notification_id is not a valid UUID")
        for message in self.messages:
            if message.id == notification_id:
                return self._as_notification(message)
        raise _NotifyError(404, "NoResultFound", "No result found")

    def _list(self, args: dict[str, list[str]]) -> dict[str, Any]:
        template_type = args.get("template_type", [None])[0]
        if template_type not in (None, "sms", "email", "letter"):
            raise _NotifyError(
                400, "ValidationError", f"template_type {template_type} is not one of [sms, email, letter]"
            )
        older_than = args.get("older_than", [None])[0]
        if older_than is not None and not _is_uuid(older_than):
            raise _NotifyError(400, "ValidationError", "older_than is not a valid UUID")
        statuses = {s for given in args.get("status", []) for s in (_FAILED if given == "failed" else (given,))}
        newest_first = self.messages[::-1]  # insertion order is arrival order
        if older_than is not None:
            ids = [m.id for m in newest_first]
            newest_first = newest_first[ids.index(older_than) + 1 :] if older_than in ids else []
        page = [
            m
            for m in newest_first
            if ("reference" not in args or m.reference == args["reference"][0])
            and (template_type is None or m.type == template_type)
            and (not statuses or m.status in statuses)
        ][:_PAGE_SIZE]
        current = {k: v[0] for k, v in args.items()}
        links = {"current": f"{self.url}/v2/notifications?{urlencode(current)}".rstrip("?")}
        if page:
            links["next"] = f"{self.url}/v2/notifications?{urlencode({**current, 'older_than': page[-1].id})}"
        return {"notifications": [self._as_notification(m) for m in page], "links": links}

    def _as_notification(self, m: Message) -> dict[str, Any]:
        p = m.personalisation
        lines = {f"line_{i}": p.get(f"address_line_{i}") for i in range(1, 7)}
        return {
            "id": m.id,
            "reference": m.reference,
            "email_address": m.recipient if m.type == "email" else None,
            "phone_number": m.recipient if m.type == "sms" else None,
            **lines,
            "postcode": p.get("address_line_7") or p.get("postcode"),
            "type": m.type,
            "status": m.status,
            "template": self._template_ref(m.template_id),
            "body": m.body,
            "subject": m.subject,
            "created_at": m.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "created_by_name": None,
            "sent_at": None,
            "completed_at": None,
            "scheduled_for": None,
            "postage": m.postage,
            "one_click_unsubscribe_url": None,
            "is_cost_data_ready": False,
            "cost_in_pounds": None,
            "cost_details": {},
        }

    def _control(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/_control":
            messages = [m.to_json() for m in self.messages]
            return 200, {
                "messages": messages,
                "fired_faults": self.fired_faults,
                "internal_errors": self.internal_errors,
            }
        if method == "GET" and path == "/_control/window":
            return 200, self.max_in_window(float(parse_qs(query).get("seconds", ["60"])[0]))._asdict()
        if method != "POST" or path != "/_control":
            return 404, {"error": "unknown control request"}
        try:
            command = json.loads(body or b"{}")
            if command.get("reset"):
                self.reset()
            if command.get("clear_faults"):
                self.clear_faults()
            if "fault_rate" in command:
                self.set_fault_rate(**command["fault_rate"])
            if "faults_on_lookups" in command:
                self.faults_on_lookups = bool(command["faults_on_lookups"])
            if "inject" in command:
                self.inject(*(Fault(**f) if isinstance(f, dict) else f for f in command["inject"]))
            if "set_status" in command:
                self.set_status(command["set_status"]["id"], command["set_status"]["status"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return 400, {"error": str(exc)}
        return 200, {"pending_faults": self.pending_faults, "messages": len(self.messages)}


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread
    request_queue_size = 128  # socketserver's backlog of 5 would drop a batch's connections
    fake: FakeNotify


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads to outlive close()
    timeout = 10

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:  # the client gave up part way through its request: a server never sees it
            self.close_connection = True
            return
        if path.startswith("/_control"):
            self._respond(*fake._control(method, path, query, body))
            return
        outcome = fake._handle(method, path, query, body, self.headers.get("Authorization"))
        if outcome.delay:
            fake._stopping.wait(outcome.delay)
        if outcome.drop:
            self.close_connection = True  # the message is recorded; the client never hears back
            return
        self._respond(outcome.status, outcome.payload)

    def _respond(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up first (the "timeout" fault): Notify still has the message


def _fault(spec: FaultSpec) -> Fault | None:
    return Fault(spec) if isinstance(spec, str) else spec


def _densest(times: list[float], seconds: float) -> int:
    return max((bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _address(personalisation: dict[str, Any]) -> list[str]:
    keys = [f"address_line_{i}" for i in range(1, 8)] + ["postcode"]
    return [str(personalisation[k]).strip() for k in keys if str(personalisation.get(k) or "").strip()]


def _validate(kind: str, data: dict[str, Any]) -> list[str]:
    required, optional = _FIELDS[kind]
    errors = [f"{field} is a required property" for field in sorted(required - set(data))]
    unexpected = sorted(set(data) - required - optional)
    if unexpected:
        errors.append(f"Additional properties are not allowed ({', '.join(unexpected)} was unexpected)")
    if "template_id" in data and not _is_uuid(data["template_id"]):
        errors.append("template_id is not a valid UUID")
    if "personalisation" in data and not isinstance(data["personalisation"], dict):
        errors.append(f"personalisation {data['personalisation']!r} is not of type object")
    if data.get("reference") is not None and not isinstance(data["reference"], str):
        errors.append(f"reference {data['reference']!r} is not of type string")
    if errors:
        return errors
    if kind == "sms":
        digits = re.sub(r"[\s()+.-]", "", str(data["phone_number"]))
        digits = "44" + digits[1:] if digits.startswith("0") and not digits.startswith("00") else digits.lstrip("0")
        if not digits.isdigit():
            errors.append("phone_number Must not contain letters or symbols")
        elif not digits.startswith("447"):
            errors.append("phone_number Not a UK mobile number")
        elif len(digits) != 12:
            errors.append(f"phone_number {'Too many' if len(digits) > 12 else 'Not enough'} digits")
    elif kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(data["email_address"])):
        errors.append("email_address Not a valid email address")
    elif kind == "letter":
        if not data["personalisation"].get("address_line_1"):
            errors.append("personalisation address_line_1 is a required property")
        elif len(_address(data["personalisation"])) < 3:
            errors.append("Address must be at least 3 lines")
    elif kind == "precompiled":
        if data.get("postage", "second") not in _POSTAGE:
            errors.append("postage invalid. It must be either first, second or economy.")
        try:
            pdf = base64.b64decode(str(data["content"]), validate=True)
        except binascii.Error:
            pdf = b""
        if not pdf.startswith(b"%PDF"):
            raise _NotifyError(400, "BadRequestError", "Letter content is not a valid PDF")
    return errors


class RemoteFakeNotify:
    """The test-side API of FakeNotify, for a fake running in another process, over /_control."""

    def __init__(self, url: str, *, service_id: str, secret: str) -> None:
        self.url, self.service_id, self.secret = url, service_id, secret
        self.api_key = notify_api_key(service_id, secret)

    def _call(self, method: str, path: str, command: dict[str, Any] | None = None) -> Any:
        data = json.dumps(command).encode() if command is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def inject(self, *faults: FaultSpec) -> None:
        specs = [dataclasses.asdict(f) if isinstance(f, Fault) else f for f in faults]
        self._call("POST", "/_control", {"inject": specs})

    def set_fault_rate(self, rate: float, *, kinds: Iterable[str] = FAULT_KINDS, seed: int = 0) -> None:
        self._call("POST", "/_control", {"fault_rate": {"rate": rate, "kinds": list(kinds), "seed": seed}})

    def clear_faults(self) -> None:
        self._call("POST", "/_control", {"clear_faults": True})

    def reset(self) -> None:
        self._call("POST", "/_control", {"reset": True})

    def set_status(self, notification_id: str, status: str) -> None:
        self._call("POST", "/_control", {"set_status": {"id": notification_id, "status": status}})

    @property
    def pending_faults(self) -> int:
        return int(self._call("POST", "/_control", {})["pending_faults"])

    @property
    def fired_faults(self) -> list[str]:
        return list(self._call("GET", "/_control")["fired_faults"])

    @property
    def internal_errors(self) -> list[str]:
        return list(self._call("GET", "/_control")["internal_errors"])

    @property
    def messages(self) -> list[Message]:
        return [Message.from_json(m) for m in self._call("GET", "/_control")["messages"]]

    def by_reference(self, reference: str) -> list[Message]:
        return [m for m in self.messages if m.reference == reference]

    def count_by_reference(self) -> dict[str | None, int]:
        return dict(Counter(m.reference for m in self.messages))

    def max_in_window(self, seconds: float = 60) -> Window:
        return Window(**self._call("GET", f"/_control/window?seconds={seconds}"))


class FakeNotifyProcess(RemoteFakeNotify):
    """`python -m tests.fake_notify` as a child process: `with FakeNotifyProcess() as fake: ...`."""

    def __init__(self, *, service_id: str | None = None, secret: str | None = None, args: Iterable[str] = ()) -> None:
        service_id, secret = service_id or str(uuid.uuid4()), secret or str(uuid.uuid4())
        command = [sys.executable, "-m", "tests.fake_notify", "--service-id", service_id, "--secret", secret, *args]
        root = Path(__file__).resolve().parents[1]
        self.process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        url = self.process.stdout.readline().strip()
        if not url.startswith("http://"):
            self.close()
            raise RuntimeError(f"fake Notify process did not start (exit {self.process.returncode})")
        super().__init__(url, service_id=service_id, secret=secret)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        with self.process:  # waits and closes the pipe
            pass

    def __enter__(self) -> FakeNotifyProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        errors = self.internal_errors if exc_type is None and self.process.poll() is None else []
        self.close()
        if errors:
            raise AssertionError("FakeNotify failed internally:\n" + "\n".join(errors))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_notify", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--service-id")
    parser.add_argument("--secret")
    parser.add_argument("--rate-limit", type=int, help="refuse requests beyond this many per 60 s, like Notify")
    parser.add_argument("--timeout-delay", type=float, default=2.0, help="seconds a 'timeout' fault holds the answer")
    parser.add_argument("--slow-delay", type=float, default=0.5, help="seconds a 'slow' fault holds the answer")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    fake = FakeNotify(
        service_id=args.service_id, secret=args.secret, port=args.port, rate_limit=args.rate_limit,
        timeout_delay=args.timeout_delay, slow_delay=args.slow_delay,
    )  # fmt: skip
    with fake:
        print(fake.url, flush=True)
        while not stop.wait(0.2):
            pass


if __name__ == "__main__":
    main()
