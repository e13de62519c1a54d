"""python -m hub worker: background jobs on a schedule. Several workers may run; each job is idempotent."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from hub.clock import Clock
from hub.db import connect
from hub.housekeeping import remove_expired
from hub.settings import Settings

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 15 * 60.0


async def run_worker(settings: Settings, *, clock: Clock | None = None, once: bool = False) -> None:
    clock = clock or Clock()
    db = await connect(settings.database_url, readers=1, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            removed = await remove_expired(
                db, now=clock.now(), session_absolute=timedelta(minutes=settings.session_absolute_minutes)
            )
            log.info(
                "housekeeping removed %d sign-in attempts, %d rate counters, %d sessions",
                removed.challenges,
                removed.rate_events,
                removed.sessions,
            )
            if once:
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=HOUSEKEEPING_EVERY)
            except TimeoutError:
                pass
    finally:
        await db.close()
