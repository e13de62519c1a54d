"""Claiming messages: the lease and its fencing token, and security codes a dead web process left unsent."""

from datetime import timedelta

import pytest

from hub.notify.claims import SendPolicy, claim_batch
from hub.notify.dev import DevNotifier
from hub.notify.sender import drain_once
from tests.harness import Harness

pytestmark = pytest.mark.anyio


def test_the_lease_covers_a_look_up_and_a_send() -> None:
    def held_for(lease: int, timeout: int) -> timedelta:
        return SendPolicy(lease=timedelta(seconds=lease), request_timeout=timedelta(seconds=timeout)).held_for

    assert held_for(120, 10) == timedelta(seconds=120)
    assert held_for(10, 10) == timedelta(seconds=22)  # a look-up and a send, 10 s each, and a margin
    assert held_for(3, 1) == timedelta(seconds=4)


async def test_each_claim_of_a_message_is_a_new_token_and_no_attempt(hub: Harness) -> None:
    message = await hub.create_message()
    policy = SendPolicy(quiet_start=0, quiet_end=0)
    tokens = []
    for _ in range(3):  # each worker dies holding it
        [claimed] = await claim_batch(hub.db, now=hub.clock.now(), policy=policy)
        tokens.append(claimed.token)
        hub.clock.advance(seconds=policy.held_for.total_seconds() + 1)
    row = await hub.db.fetch_one("SELECT claims, attempts, check_first FROM outbox_messages WHERE id = ?", (message,))
    assert tokens == [1, 2, 3] and row == {"claims": 3, "attempts": 0, "check_first": 1}


async def _queue(hub: Harness, n: int, *, recipient: str) -> list[int]:
    return [await hub.create_message(recipient=recipient, personalisation={"n": i}) for i in range(n)]


async def test_codes_a_dead_web_process_left_unsent_are_marked_expired_and_leave_the_caps(hub: Harness) -> None:
    # The web process issued two codes and died: one before its send began, one during it.
    mobile = "+447700900123"
    codes = [
        await hub.create_message(kind="security_code", lane="immediate", recipient=mobile, status=status)
        for status in ("queued", "sending")
    ]
    [invitation] = await _queue(hub, 1, recipient=mobile)
    notifier = DevNotifier(hub.db, hub.clock)
    policy = SendPolicy(per_number_per_hour=1, quiet_start=0, quiet_end=0)
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 0  # the code being sent counts
    hub.clock.advance(seconds=151)  # past the codes' 150 s
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 0
    rows = await hub.db.fetch_all(
        f"SELECT status, error FROM outbox_messages WHERE id IN ({codes[0]}, {codes[1]}) ORDER BY id"
    )
    assert rows == [{"status": "expired", "error": "code expired before it was sent"}] * 2
    hub.clock.advance(minutes=10)  # the invitation's wait for the cap; the expired codes no longer count
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 1
    row = await hub.db.fetch_one("SELECT status FROM outbox_messages WHERE id = ?", (invitation,))
    assert row == {"status": "sent"}


async def test_a_code_within_its_lifetime_is_left_to_the_web_process(hub: Harness) -> None:
    code = await hub.create_message(kind="security_code", lane="immediate", status="sending")
    hub.clock.advance(seconds=149)
    assert await drain_once(hub.db, DevNotifier(hub.db, hub.clock), hub.clock, policy=SendPolicy()) == 0
    assert await hub.db.fetch_one("SELECT status FROM outbox_messages WHERE id = ?", (code,)) == {"status": "sending"}
