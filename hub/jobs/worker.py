"""python -m hub worker: drains the outbox and runs the scheduled jobs. Several workers may run at once:
claims are atomic, the Notify limit is shared through the database, and every job is idempotent."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import timedelta
from typing import TYPE_CHECKING

from hub.clock import Clock
from hub.db import Database, open_database
from hub.db.dialect import is_transient
from hub.jobs.hl7_send import Hl7Sender, make_sender, send_once
from hub.jobs.housekeeping import remove_expired
from hub.jobs.retention import claim_daily_job, purge_old_records
from hub.notify import Notifier
from hub.notify.dev import DevNotifier
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import SendPolicy, drain_once
from hub.rules.sending import RetryPolicy
from hub.settings import Settings, check_templates
from hub.store.nhs_login import remove_old_login_attempts
from hub.store.offers import run_offers
from hub.store.reminders import run_sweep

if TYPE_CHECKING:
    from hub.jobs.record_service import RecordServiceClient

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 15 * 60.0
IDLE_SLEEP = 0.5
SWEEP_EVERY = 30.0
SWEEP_BATCH = 500
MAX_RETRY_WAIT = 30.0


def send_policy(settings: Settings) -> SendPolicy:
    return SendPolicy(
        per_minute=settings.notify.per_minute,
        batch=settings.worker.batch,
        lease=timedelta(seconds=settings.worker.lease_seconds),
        request_timeout=timedelta(seconds=settings.notify.timeout_seconds),
        code_lifetime=timedelta(seconds=settings.code_lifetime_seconds),
        quiet_start=settings.notify.quiet_start_hour,
        quiet_end=settings.notify.quiet_end_hour,
        per_number_per_hour=settings.notify.per_number_per_hour,
        identical_per_number_per_hour=settings.notify.identical_per_number_per_hour,
        retry=RetryPolicy(max_attempts=settings.notify.max_attempts),
        templates=settings.notify.templates,
    )


def make_notifier(settings: Settings, db: Database, clock: Clock) -> Notifier:
    if settings.notify.api_key:
        check_templates(settings)
        return GovukNotifier(
            api_key=settings.notify.api_key,
            base_url=settings.notify.base_url,
            timeout=settings.notify.timeout_seconds,
        )
    if settings.demo:
        return DevNotifier(db, clock)
    raise RuntimeError("HUB_NOTIFY_API_KEY is required outside demo mode")


async def work(
    db: Database,
    notifier: Notifier,
    settings: Settings,
    clock: Clock,
    stop: asyncio.Event,
    *,
    once: bool = False,
    hl7: Hl7Sender | None = None,
) -> None:
    """The worker's loop, also run inside `python -m hub demo`. A database that is briefly out of reach (a
    restart, a fail-over, a dropped connection) is waited for, not fatal: whatever was half done is rolled back or
    held under a lease, and the next round picks it up."""
    policy = send_policy(settings)
    rng = random.Random()
    next_housekeeping = next_sweep = 0.0
    retry_in = 1.0
    records = None
    if settings.nhs_app.record_service.url:
        # Imported only when in use: workers start often (and are restarted after crashes); most hubs have no use
        # for it.
        from hub.jobs.record_service import RecordServiceClient

        records = RecordServiceClient(settings.nhs_app.record_service, clock)

    async def pause(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    while not stop.is_set():
        try:
            next_housekeeping, next_sweep, sent = await _round(
                db, notifier, settings, clock, policy, rng, next_housekeeping, next_sweep, records, hl7
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The exception's text can quote a statement's values: log its kind only.
            log.warning("database unavailable (%s); trying again in %.0f s", type(exc).__name__, retry_in)
            await pause(retry_in)
            retry_in = min(retry_in * 2, MAX_RETRY_WAIT)
            continue
        retry_in = 1.0
        if once and not sent:
            break
        if not sent:
            await pause(IDLE_SLEEP)


async def _round(
    db: Database,
    notifier: Notifier,
    settings: Settings,
    clock: Clock,
    policy: SendPolicy,
    rng: random.Random,
    next_housekeeping: float,
    next_sweep: float,
    records: RecordServiceClient | None = None,
    hl7: Hl7Sender | None = None,
) -> tuple[float, float, int]:
    """Housekeeping and the sweep when they are due, then one batch from the outbox. Returns when the two jobs
    are next due, and how many messages went."""
    loop = asyncio.get_running_loop()
    if loop.time() >= next_housekeeping:
        removed = await remove_expired(
            db, now=clock.now(), session_absolute=timedelta(minutes=settings.session_absolute_minutes)
        )
        log.info(
            "housekeeping removed %d sign-in attempts, %d rate counters, %d sessions",
            removed.challenges,
            removed.rate_events,
            removed.sessions,
        )
        await remove_old_login_attempts(db, now=clock.now())
        if await claim_daily_job(db, "retention", now=clock.now()):
            purged = await purge_old_records(db, now=clock.now(), months=settings.past_months)
            log.info(
                "retention removed %d appointments, %d letters, %d messages",
                purged.appointments,
                purged.letters,
                purged.messages,
            )
        next_housekeeping = loop.time() + HOUSEKEEPING_EVERY
    if loop.time() >= next_sweep:
        while await run_sweep(db, settings=settings, now=clock.now(), limit=SWEEP_BATCH) == SWEEP_BATCH:
            pass
        # Earlier appointments: lapsed offers end, and freed slots go to the next batch of patients waiting.
        await run_offers(db, settings=settings, now=clock.now())
        if records is not None:
            from hub.jobs.record_service import push_once, queue_numbers

            # The NHS App's Record Service: new numbers every sweep, every qualifying number once a day.
            await queue_numbers(db, clock)
            await push_once(db, records, clock, rng)
        next_sweep = loop.time() + SWEEP_EVERY
    sent = await drain_once(db, notifier, clock, policy=policy, rng=rng)
    if hl7 is not None:
        # The hospital's events to the PAS over HL7, in order, when hl7.outbound is on.
        sent += await send_once(db, hl7, clock)
    return next_housekeeping, next_sweep, sent


async def run_worker(settings: Settings, *, clock: Clock | None = None, once: bool = False) -> None:
    clock = clock or Clock()
    db = await open_database(settings, readers=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        notifier = make_notifier(settings, db, clock)
        hl7 = await make_sender(db, settings)
        await work(db, notifier, settings, clock, stop, once=once, hl7=hl7)
    finally:
        await db.close()
