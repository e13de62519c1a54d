import logging
from datetime import UTC, datetime, timedelta

import pytest

from hub.notify.dev import DevNotifier
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import SendPolicy, drain_once, send_decoy, send_immediate
from hub.store.outbox import queue_message
from hub.vocabulary import Channel, Lane, MessageKind
from tests.fake_notify import FakeNotify, notify_api_key
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _queue(hub: Harness, n: int, *, urgent: bool = False, recipient: str = "+447700900001") -> list[int]:
    return [await hub.create_message(recipient=recipient, personalisation={"n": i}, urgent=urgent) for i in range(n)]


async def _statuses(hub: Harness) -> dict[str, int]:
    rows = await hub.db.fetch_all("SELECT status, COUNT(*) AS n FROM outbox_messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def test_drain_sends_each_queued_message_once(hub: Harness) -> None:
    await _queue(hub, 30)
    notifier = DevNotifier(hub.db, hub.clock)
    policy = SendPolicy(batch=10)
    while await drain_once(hub.db, notifier, hub.clock, policy=policy):
        pass
    assert await _statuses(hub) == {"sent": 30}
    rows = await hub.db.fetch_all("SELECT reference, COUNT(*) AS n FROM dev_messages GROUP BY reference")
    assert len(rows) == 30 and all(r["n"] == 1 for r in rows)


async def test_the_per_minute_limit_holds_across_rounds(hub: Harness) -> None:
    await _queue(hub, 40)
    notifier = DevNotifier(hub.db, hub.clock)
    policy = SendPolicy(per_minute=15, batch=10)
    sent = 0
    while n := await drain_once(hub.db, notifier, hub.clock, policy=policy):
        sent += n
    assert sent == 14  # one request a minute kept for security codes
    hub.clock.advance(seconds=59)
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 0
    hub.clock.advance(seconds=3)  # past the window and its margin
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 10


async def test_security_codes_count_in_the_limit_and_bulk_leaves_room_for_them(hub: Harness) -> None:
    await hub.create_patient(mobile="+447700900001")
    await _queue(hub, 60, recipient="+447700900009")
    policy = SendPolicy(per_minute=51, batch=100)
    assert policy.bulk_per_minute == 50
    await hub.submit_details("07700 900001", "1948-03-14")
    assert len(await hub.sent_codes()) == 1
    requests = "SELECT COUNT(*) AS n FROM notify_requests"
    assert await hub.db.fetch_one(requests) == {"n": 1}
    notifier = DevNotifier(hub.db, hub.clock)
    sent = 0
    while n := await drain_once(hub.db, notifier, hub.clock, policy=policy):
        sent += n
    assert sent == 49  # the code's request came out of the same minute
    assert await hub.db.fetch_one(requests) == {"n": 50}  # and one is still free for the next code


async def test_quiet_hours_hold_non_urgent_messages_until_eight(hub: Harness) -> None:
    hub.clock.set(datetime(2026, 10, 24, 19, 30, tzinfo=UTC))  # 20:30 BST, the night the clocks go back
    await _queue(hub, 2)
    urgent = await _queue(hub, 1, urgent=True, recipient="+447700900002")
    notifier = DevNotifier(hub.db, hub.clock)
    assert await drain_once(hub.db, notifier, hub.clock, policy=SendPolicy()) == 1
    row = await hub.db.fetch_one("SELECT status FROM outbox_messages WHERE id = ?", (urgent[0],))
    assert row and row["status"] == "sent"
    hub.clock.set(datetime(2026, 10, 25, 7, 59, tzinfo=UTC))  # 07:59 GMT
    assert await drain_once(hub.db, notifier, hub.clock, policy=SendPolicy()) == 0
    hub.clock.advance(minutes=1)
    assert await drain_once(hub.db, notifier, hub.clock, policy=SendPolicy()) == 2


async def test_a_lost_lease_is_looked_up_before_any_resend(hub: Harness) -> None:
    [message] = await _queue(hub, 1)
    notifier = DevNotifier(hub.db, hub.clock)
    policy = SendPolicy(lease=timedelta(seconds=120))
    # A worker claims and sends, then dies before recording: the message is 'sending' with a lease.
    from hub.notify.sender import claim_batch, deliver

    [claimed] = await claim_batch(hub.db, now=hub.clock.now(), policy=policy)
    await deliver(hub.db, notifier, hub.clock, claimed, policy)
    hub.clock.advance(seconds=121)
    assert await drain_once(hub.db, notifier, hub.clock, policy=policy) == 1
    row = await hub.db.fetch_one("SELECT status, notify_id FROM outbox_messages WHERE id = ?", (message,))
    assert row and row["status"] == "sent" and row["notify_id"].startswith("dev-")
    count = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM dev_messages")
    assert count and count["n"] == 1


async def test_a_decoy_makes_the_request_a_code_would_and_sends_nothing(hub: Harness) -> None:
    # F8: a sign-in that matched nobody does a code's background work: one request to Notify (a look-up of a
    # reference nothing was sent with), counted in the per-minute limit, and the decoy row removed.
    template = "f33517ff-2a88-4f6e-b855-c550268ce08a"
    with FakeNotify() as fake:
        notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=5)
        async with hub.db.write() as tx:  # as sign-in queues them: claimed, each request counted
            code, decoy = [
                await queue_message(
                    tx,
                    at=hub.clock.now(),
                    kind=MessageKind.SECURITY_CODE,
                    channel=Channel.SMS,
                    recipient=recipient,
                    template_id=template,
                    personalisation={},
                    patient_id=None,
                    lane=Lane.IMMEDIATE,
                )
                for recipient in ("+447700900001", "")
            ]
        assert await hub.db.fetch_one("SELECT COUNT(*) AS n FROM notify_requests") == {"n": 2}
        await send_immediate(hub.db, notifier, hub.clock, code, {"code": "123456"})
        await send_decoy(hub.db, notifier, hub.clock, decoy)
        assert [accepted for _, accepted in fake.arrivals] == [True, False]  # the code's send, the decoy's look-up
        assert [m.reference for m in fake.messages] == [str(code)]
    assert await hub.db.fetch_all("SELECT id, status FROM outbox_messages") == [{"id": code, "status": "sent"}]
    assert await hub.db.fetch_one("SELECT COUNT(*) AS n FROM notify_requests") == {"n": 2}


async def test_a_security_code_refused_for_the_hubs_key_fails_and_the_operator_is_told(
    hub: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # A code is dead before a retry could land: it fails, as any refused code does; but nobody can sign in until
    # the key is put right, so the log says so (with no one's details).
    with FakeNotify() as fake:
        wrong = notify_api_key(fake.service_id, "11111111-1111-1111-1111-111111111111")
        notifier = GovukNotifier(api_key=wrong, base_url=fake.url, timeout=5)
        code = await hub.create_message(kind="security_code", lane="immediate", status="sending")
        with caplog.at_level(logging.ERROR, logger="hub.notify.sender"):
            await send_immediate(hub.db, notifier, hub.clock, code, {"code": "123456"})
    assert await hub.db.fetch_all("SELECT status, error FROM outbox_messages") == [
        {"status": "failed", "error": "notify 403"}
    ]
    assert await hub.db.fetch_all("SELECT action, record_id, detail FROM audit_events") == [
        {"action": "notification_failed", "record_id": str(code), "detail": "sms notify 403"}
    ]
    [alarm] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "API key" in alarm and "+447700900001" not in alarm and "123456" not in alarm


async def test_a_decoy_the_web_process_died_holding_is_expired_and_never_sent(hub: Harness) -> None:
    decoy = await hub.create_message(kind="security_code", lane="immediate", recipient="", status="sending")
    hub.clock.advance(seconds=151)
    notifier = DevNotifier(hub.db, hub.clock)
    assert await drain_once(hub.db, notifier, hub.clock, policy=SendPolicy(quiet_start=0, quiet_end=0)) == 0
    # Once marked expired, the web process's own removal (were it alive) would leave it: it is no longer its claim.
    await send_decoy(hub.db, notifier, hub.clock, decoy)
    assert await hub.db.fetch_all("SELECT status FROM outbox_messages") == [{"status": "expired"}]
    assert await hub.db.fetch_one("SELECT COUNT(*) AS n FROM dev_messages") == {"n": 0}
