"""`python -m hub serve`: the server stack it picks, and several workers (PostgreSQL, or a safe SQLite)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.__main__ import main
from hub.db.sqlite import has_wal_reset_bug
from hub.serve import GRANIAN, STACKS, UVICORN, UVICORN_UVLOOP, check_workers, choose_stack, installed
from hub.settings import ROOT, SettingsError, load_settings
from tests.databases import postgres_url

pytestmark = pytest.mark.anyio
SECRET = "serve-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
BUGGY_SQLITE = has_wal_reset_bug(sqlite3.sqlite_version_info)


def test_auto_serves_on_the_fastest_stack_installed() -> None:
    assert choose_stack("auto") == next(stack for stack in STACKS if installed(stack))
    assert STACKS[0] == GRANIAN  # the winner of the journey benchmark (README, Performance)
    assert installed(UVICORN)  # the fall-back needs nothing beyond the hub's own dependencies


def test_the_uvicorn_fall_back_can_be_chosen_by_name() -> None:
    assert choose_stack(UVICORN) == UVICORN
    if installed(UVICORN_UVLOOP):
        assert choose_stack(UVICORN_UVLOOP) == UVICORN_UVLOOP


def test_an_unknown_server_stops_start_up_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="http_server must be one of auto, granian"):
        load_settings(environ={"HUB_SECRET_KEY": SECRET, "HUB_HTTP_SERVER": "gunicorn"})
    with pytest.raises(SettingsError, match="workers must be at least 1"):
        load_settings(environ={"HUB_SECRET_KEY": SECRET, "HUB_WORKERS": "0"})


@pytest.mark.skipif(not BUGGY_SQLITE, reason=f"the linked SQLite {sqlite3.sqlite_version} has no WAL-reset bug")
def test_several_workers_on_an_sqlite_with_the_wal_reset_bug_are_refused_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    monkeypatch.setenv("HUB_SECRET_KEY", SECRET)
    monkeypatch.setenv("HUB_NOTIFY_API_KEY", "")
    for argv, environ in ((["serve", "--workers", "2"], {}), (["serve"], {"HUB_WORKERS": "3"})):
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"SQLite {sqlite3.sqlite_version}, which has the WAL-reset bug" in error
        assert "corrupt" in error and "PostgreSQL" in error
    assert not (tmp_path / "hub.sqlite3").exists(), "refused before opening the database"


def test_one_worker_on_sqlite_and_several_on_postgresql_pass_the_check(tmp_path: Path) -> None:
    sqlite = load_settings(environ={"HUB_SECRET_KEY": SECRET, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"})
    check_workers(sqlite, 1)
    check_workers(load_settings(environ={"HUB_SECRET_KEY": SECRET, "HUB_DATABASE_URL": "postgresql://h@db/hub"}), 4)
    if BUGGY_SQLITE:
        with pytest.raises(SettingsError, match="WAL-reset"):
            check_workers(sqlite, 2)


class _Server:
    """`python -m hub serve ARGS` as a child process, its log read to the end."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def ready_pids(self) -> set[str]:
        return {line.rsplit(" ", 1)[-1].strip() for line in self.log if "Hub ready in process" in line}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def server_env() -> Iterator[dict[str, str]]:
    yield {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_SECRET_KEY": SECRET,
        "HUB_NOTIFY_API_KEY": "",
        "HUB_DEMO": "true",  # the dev outbox: no Notify needed to serve pages
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("stack", [s for s in (GRANIAN, UVICORN) if installed(s)])
async def test_serve_runs_several_workers_on_postgresql_each_with_its_own_pool(
    stack: str, server_env: dict[str, str]
) -> None:
    url = await postgres_url(f"serve_{stack}")
    port = _free_port()
    env = server_env | {"HUB_DATABASE_URL": url, "HUB_HTTP_SERVER": stack, "HUB_BASE_URL": f"http://127.0.0.1:{port}"}
    server = _Server(["--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env)
    try:
        deadline = time.monotonic() + 90
        while len(server.ready_pids()) < 2:
            assert server.process.poll() is None, "".join(server.log)
            assert time.monotonic() < deadline, "".join(server.log)
            time.sleep(0.2)
        assert str(server.process.pid) not in server.ready_pids(), "the app runs in the workers, not the parent"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(20):  # new connections, spread by the kernel over both workers' accept queues
                response = await client.get("/", headers={"connection": "close"})
                assert response.status_code == 200
                # No version banner: uvicorn's header is switched off; Granian names itself without a version.
                assert response.headers.get("server", "granian") == "granian"
    finally:
        server.stop()
    assert f"with {stack}, 2 workers" in "".join(server.log)
    assert not [line for line in server.log if "Traceback" in line or "ERROR" in line], "".join(server.log)
