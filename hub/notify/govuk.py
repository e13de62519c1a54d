"""GOV.UK Notify through notifications-python-client. The client blocks, so it runs in a worker thread."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from anyio import to_thread
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient
from requests import RequestException
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hub.notify import NotifyError, OutgoingMessage, TooLate
from hub.vocabulary import Channel

_PERMANENT = (400,)  # Notify refused the message; a 403 refuses the hub (its key, its clock), not the message
_FAILED = {
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
    "failed",
    "validation-failed",
    "virus-scan-failed",
    "cancelled",
}


class GovukNotifier:
    def __init__(self, *, api_key: str, base_url: str, timeout: float = 10.0) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout

    async def send(self, message: OutgoingMessage, *, start_by: float | None = None) -> str:
        return await to_thread.run_sync(self._send, message, start_by)

    def _send(self, message: OutgoingMessage, start_by: float | None) -> str:
        # The client is not thread-safe; one per call costs only a key parse.
        client = NotificationsAPIClient(self._api_key, base_url=self._base_url, timeout=self._timeout)
        # The deadline is checked as the request is written to the socket, after the connection (and TLS) is up:
        # a worker paused before that point sends nothing once its lease has run out.
        _deadline.start_by = start_by
        for prefix in ("http://", "https://"):
            client.request_session.mount(prefix, _Deadline())
        try:
            if message.channel == Channel.SMS:
                response = client.send_sms_notification(
                    phone_number=message.recipient,
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
            elif message.channel == Channel.EMAIL:
                response = client.send_email_notification(
                    email_address=message.recipient,
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
            elif message.pdf is not None:
                response = client.send_precompiled_letter_notification(
                    reference=message.reference, pdf_file=io.BytesIO(message.pdf)
                )
            else:
                response = client.send_letter_notification(
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
        except APIError as exc:
            raise _error(exc) from exc
        except RequestException as exc:
            raise NotifyError(f"notify unreachable: {type(exc).__name__}") from exc
        finally:
            _deadline.start_by = None
        return str(response["id"])

    async def find(self, reference: str) -> str | None:
        return await to_thread.run_sync(self._find, reference)

    def _find(self, reference: str) -> str | None:
        client = NotificationsAPIClient(self._api_key, base_url=self._base_url, timeout=self._timeout)
        try:
            found = client.get_all_notifications(reference=reference).get("notifications", [])
        except APIError as exc:
            raise _error(exc) from exc
        except RequestException as exc:
            raise NotifyError(f"notify unreachable: {type(exc).__name__}") from exc
        # An earlier attempt that Notify reported as failed is not this message having been sent.
        live = [n for n in found if n.get("status") not in _FAILED]
        return str(live[0]["id"]) if live else None


_deadline = threading.local()  # this thread's send: its start_by, read as the request is written


class _DeadlineCheck:
    """A connection that checks the send's deadline before each write of the request (the headers, then the body):
    the last moment Python has. A request cut off part way is never handled by a server."""

    def send(self, data: Any) -> None:
        start_by = getattr(_deadline, "start_by", None)
        if start_by is not None and time.monotonic() > start_by:
            raise TooLate()
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_DeadlineCheck, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineCheck, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Deadline(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _error(exc: APIError) -> NotifyError:
    # The client reports a timeout or a dropped connection as a 503 with no response: no answer came, so the
    # message may have reached Notify, unlike a real 503. (Every error answer also has a requests error as its
    # cause, from raise_for_status, so the cause alone does not tell them apart.)
    if exc.response is None:
        return NotifyError(f"notify unreachable: {type(exc.__cause__).__name__}")
    status = exc.status_code
    detail = exc.message
    name = detail[0].get("error", "") if isinstance(detail, list) and detail and isinstance(detail[0], dict) else ""
    return NotifyError(f"notify answered {status} {name}", status=status, error=name, permanent=status in _PERMANENT)
