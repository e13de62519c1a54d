"""When and how to send: pure rules for retries, quiet hours and Notify's limits. No I/O, no clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from hub.clock import LONDON
from hub.rules.validation import uk_postcode
from hub.vocabulary import HospitalStatus, MessageKind, RequestState


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    ceiling: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    rate_limited_wait: timedelta = timedelta(seconds=10)
    hub_refused_wait: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Verdict:
    """What one failed attempt means for the message."""

    outcome: str  # retry | failed (Notify refused it) | hold_channel
    retry_at: datetime | None = None
    check_first: bool = False  # the attempt may have reached Notify: look it up by reference before resending
    counts: bool = True  # whether it uses up one of the message's attempts


def hub_refused(status: int | None) -> bool:
    """Notify refused the hub itself, not the message: its API key (wrong, revoked, for another service) or its
    clock (more than 30 seconds out). Every message meets the same answer until the operator puts it right."""
    return status == 403


def judge_failure(
    *, status: int | None, error: str, attempts: int, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Verdict:
    if status == 429 and error == "TooManyRequestsError":
        return Verdict("hold_channel", retry_at=next_utc_midnight(now), counts=False)
    if status == 429:
        return Verdict("retry", retry_at=now + policy.rate_limited_wait, counts=False)
    if hub_refused(status):
        # Nothing wrong with the message: failing it would open a task for every patient, and sending it another
        # way would post every patient a paid letter (by the same key, refused all the same). The channel waits a
        # little, without using up the message's attempts, and is tried again: once the key or the clock is put
        # right, everything waiting goes.
        return Verdict("hold_channel", retry_at=now + policy.hub_refused_wait, counts=False)
    if status == 400:  # Notify refused the message (not a valid number or address): it does not have it
        return Verdict("failed")
    # 5xx (a 500 after the commit, a gateway's 502 or 504), a timeout or a dropped connection: Notify may have
    # accepted it before the failure, so it is never marked failed here, even after the last attempt: the next
    # claim looks it up, and only a look-up that finds nothing makes it failed (see `attempts_used_up`).
    return Verdict("retry", retry_at=now + backoff(attempts, policy, rng), check_first=True)


def attempts_used_up(attempts: int, policy: RetryPolicy) -> bool:
    """After this many answers (or timeouts) from Notify, a message is only looked up by reference: found, it was
    sent; not found, it has failed for good."""
    return attempts >= policy.max_attempts


def backoff(attempts: int, policy: RetryPolicy, rng: random.Random) -> timedelta:
    """Exponential with full jitter: spreads retries out so a recovering Notify is not hit all at once."""
    # The exponent stops growing long after the ceiling is reached: a large one would overflow timedelta.
    cap = min(policy.ceiling, policy.base * (2 ** min(max(attempts - 1, 0), 32)))
    return timedelta(seconds=rng.uniform(cap.total_seconds() / 2, cap.total_seconds()))


def next_utc_midnight(now: datetime) -> datetime:
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=UTC)


def in_quiet_hours(now: datetime, *, start: int, end: int) -> bool:
    """Quiet from `start` o'clock to `end` o'clock, London time (across midnight when start > end)."""
    hour = now.astimezone(LONDON).hour
    return (start <= hour or hour < end) if start > end else (start <= hour < end)


def next_quiet_end(now: datetime, *, start: int, end: int) -> datetime:
    """When the quiet hours now under way, or the next ones, end (London time); `now` when there are none."""
    if start == end:
        return now
    local = now.astimezone(LONDON)
    candidate = datetime.combine(local.date(), time(end), tzinfo=LONDON)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(end), tzinfo=LONDON)
    return candidate.astimezone(UTC)


def is_urgent(starts_at: datetime, now: datetime, *, start: int, end: int, margin: timedelta) -> bool:
    """A message about an appointment that starts before the quiet hours end (plus a margin to act on it) cannot
    wait for the morning: it goes at once, quiet hours or not."""
    return starts_at < next_quiet_end(now, start=start, end=end) + margin


# Letters that may go as the hospital's own PDF of the appointment (a precompiled letter, with its own address).
PDF_KINDS: frozenset[MessageKind] = frozenset({MessageKind.INVITATION, MessageKind.INVITATION_POST})

# Queued messages about an appointment that a new one makes wrong: they are withdrawn before they go.
SUPERSEDES: dict[MessageKind, frozenset[MessageKind]] = {
    MessageKind.CANCELLED: frozenset(
        {
            MessageKind.INVITATION,
            MessageKind.CHANGED,
            MessageKind.INVITATION_REMINDER,
            MessageKind.APPOINTMENT_REMINDER,
            MessageKind.INVITATION_POST,
        }
    ),
    MessageKind.CHANGED: frozenset({MessageKind.CHANGED, MessageKind.APPOINTMENT_REMINDER}),
    MessageKind.INVITATION: frozenset({MessageKind.CANCELLED, MessageKind.CHANGED, MessageKind.APPOINTMENT_REMINDER}),
}


def message_to_queue(kind: MessageKind, queued: set[str]) -> tuple[MessageKind, frozenset[MessageKind]]:
    """(what to queue, which queued kinds to withdraw) for a new message about an appointment. A change to an
    appointment whose invitation is still waiting to go is a new invitation with the new time, not a change."""
    if kind == MessageKind.CHANGED and MessageKind.INVITATION in queued:
        return MessageKind.INVITATION, SUPERSEDES[MessageKind.CHANGED] | {MessageKind.INVITATION}
    return kind, SUPERSEDES.get(kind, frozenset())


def may_withdraw(kind: MessageKind) -> frozenset[MessageKind]:
    """Every queued kind a new message of this kind about an appointment may withdraw, whatever is queued."""
    return message_to_queue(kind, {MessageKind.INVITATION})[1] | message_to_queue(kind, set())[1]


# The news of an appointment as it stands, and the reminders of it (each planned again when the appointment moves).
NEWS_KINDS = frozenset({MessageKind.INVITATION, MessageKind.CHANGED})
REMINDER_KINDS = frozenset(
    {MessageKind.APPOINTMENT_REMINDER, MessageKind.INVITATION_REMINDER, MessageKind.INVITATION_POST}
)
ESCALATION_KINDS = frozenset({MessageKind.INVITATION_REMINDER, MessageKind.INVITATION_POST})


def no_longer_true(
    kind: str, *, status: str, request_state: str, starts_at: datetime, opened: bool, now: datetime
) -> str | None:
    """Why a message about an appointment, going round again after failing for now, should not go at all (None: it
    still should): the appointment as it is now makes it wrong. While it was out, the change that made it wrong
    withdrew only what was still queued, and said what it had to say itself (a cancellation, a new time)."""
    if kind == MessageKind.CANCELLED:
        return "appointment booked again" if status == HospitalStatus.BOOKED else None
    if kind not in NEWS_KINDS | REMINDER_KINDS:
        return None  # an earlier-slot offer (whose offer says), a link resent: lives of their own
    if status != HospitalStatus.BOOKED:
        return f"appointment {status}"
    if starts_at <= now:
        return "appointment passed"
    if kind in REMINDER_KINDS and request_state == RequestState.CANCEL_REQUESTED:
        return "cancel requested"
    if kind in ESCALATION_KINDS and opened:
        return "letter opened"
    return None


def postal_address(name: str, lines: list[str], postcode: str) -> list[str] | None:
    """Notify's address block (address_line_1..7): the name, the address lines, the postcode last; None when Notify
    would refuse it (fewer than 3 lines, or the last not a UK postcode), so nothing is posted to nowhere."""
    code = uk_postcode(postcode or "")
    if code is None:
        return None
    block = [line.strip() for line in [name, *lines] if line and line.strip()][:6] + [code]
    return block if len(block) >= 3 else None
