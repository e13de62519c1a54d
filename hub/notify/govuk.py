"""GOV.UK Notify through notifications-python-client. The client blocks, so it runs in a worker thread."""

from __future__ import annotations

from anyio import to_thread
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient
from requests import RequestException

from hub.notify import NotifyError, OutgoingMessage

_PERMANENT = (400, 403)


class GovukNotifier:
    def __init__(self, *, api_key: str, base_url: str, timeout: float = 10.0) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout

    async def send(self, message: OutgoingMessage) -> str:
        return await to_thread.run_sync(self._send, message)

    def _send(self, message: OutgoingMessage) -> str:
        # The client is not thread-safe; one per call costs only a key parse.
        client = NotificationsAPIClient(self._api_key, base_url=self._base_url, timeout=self._timeout)
        try:
            if message.channel == "sms":
                response = client.send_sms_notification(
                    phone_number=message.recipient,
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
            elif message.channel == "email":
                response = client.send_email_notification(
                    email_address=message.recipient,
                    template_id=message.template_id,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
            else:
                raise NotifyError(f"channel {message.channel} is not sent this way", permanent=True)
        except APIError as exc:
            status = exc.status_code
            raise NotifyError(f"notify answered {status}", status=status, permanent=status in _PERMANENT) from exc
        except RequestException as exc:
            raise NotifyError(f"notify unreachable: {type(exc).__name__}") from exc
        return str(response["id"])
