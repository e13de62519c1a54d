"""The outbound adapter to GOV.UK Notify: the Notifier protocol and what it sends, the GOV.UK and dev notifiers,
and the sender that drains the outbox through them.

Every message is written to outbox_messages (hub.store.outbox) in the transaction that caused it. Security codes
are the exception in one way only: the code itself is never stored, so it is handed to the Notifier in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    reference: str  # our outbox message id: Notify's `reference`
    kind: str
    channel: str  # a Channel
    recipient: str
    template_id: str
    personalisation: dict[str, Any] = field(default_factory=dict)
    pdf: bytes | None = None  # a letter sent as the hospital's own PDF (Notify's precompiled letter)


class NotifyError(Exception):
    """`status` None means no answer (timeout, dropped connection): the message may have reached Notify."""

    def __init__(self, message: str, *, status: int | None = None, error: str = "", permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.error = error  # Notify's error name, e.g. RateLimitError or TooManyRequestsError
        self.permanent = permanent


class TooLate(Exception):
    """The send's deadline passed before its request left: nothing went to Notify."""


class Notifier(Protocol):
    async def send(self, message: OutgoingMessage, *, start_by: float | None = None) -> str:
        """Deliver or raise NotifyError; returns the provider's notification id. `start_by` (a time.monotonic()
        value): raise TooLate, sending nothing, when the request has not left by then."""
        ...

    async def find(self, reference: str) -> str | None:
        """The provider's id of a message already sent with this reference, if there is one."""
        ...
