import subprocess
import sys
from datetime import timedelta

import pytest

from hub.jobs.housekeeping import remove_expired
from tests.conftest import SECRET
from tests.fake_notify import template_environ
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _count(hub: Harness, table: str) -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_old_sign_in_attempts_counters_and_sessions_go_recent_ones_stay(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()  # one finished attempt, three rate counters (identity, client, code sent), one session
    hub.clock.advance(hours=23)
    await hub.submit_details("07700 900001", "1948-03-14")  # a recent attempt
    removed = await remove_expired(hub.db, now=hub.clock.now(), session_absolute=timedelta(hours=2))
    assert (removed.challenges, removed.rate_events, removed.sessions) == (0, 0, 0)

    hub.clock.advance(hours=2)
    removed = await remove_expired(hub.db, now=hub.clock.now(), session_absolute=timedelta(hours=2))
    assert removed.challenges == 1
    assert removed.rate_events == 3
    assert await _count(hub, "code_challenges") == 1
    assert await _count(hub, "code_challenge_candidates") == 1
    assert await _count(hub, "sessions") == 1  # timed out, but kept a week for the audit of its use

    hub.clock.advance(days=8)
    removed = await remove_expired(hub.db, now=hub.clock.now(), session_absolute=timedelta(hours=2))
    assert removed.sessions == 1
    assert await _count(hub, "sessions") == 0
    assert await _count(hub, "code_challenges") == 0


async def test_worker_once_runs_housekeeping_and_exits(hub: Harness) -> None:
    env = {
        "HUB_SECRET_KEY": SECRET,
        "HUB_DATABASE_URL": hub.database_url,
        "HUB_NOTIFY_API_KEY": "unused-key",
        "PATH": "/usr/bin:/bin",
        **template_environ(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--once"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "housekeeping removed 0 sign-in attempts" in done.stderr
