"""What every benchmark shares: machine details, the hub's commands as subprocesses, and JSON out."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_cli(env: dict[str, str], *args: str) -> str:
    """Runs `python -m hub ARGS`; returns what it printed."""
    done = subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"python -m hub {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def serve_argv(port: int, *, workers: int = 1) -> list[str]:
    argv = [sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return argv + (["--workers", str(workers)] if workers > 1 else [])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (Granian's or uvicorn's workers), from /proc."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def postgres_cpu_seconds() -> float | None:
    """User + system CPU of this machine's PostgreSQL server so far: every live postgres process's own, and the
    postmaster's reaped children's (backends that ended). None when no PostgreSQL runs here or /proc will not say."""
    processes: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, _, rest = stat.read_text().partition("(")[2].rpartition(")")
        except OSError:
            continue
        if name == "postgres":
            processes[int(stat.parent.name)] = rest.split()
    total = 0.0
    for fields in processes.values():
        total += (int(fields[11]) + int(fields[12])) / _TICK
        if int(fields[1]) not in processes:  # the postmaster: what its ended backends used
            total += (int(fields[13]) + int(fields[14])) / _TICK
    return total if processes else None


class Process:
    """A server as a subprocess (uvicorn or Granian); ready once its `--port` accepts connections (Granian binds
    before its workers start: a first request waits in the queue until one has)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        port = int(argv[argv.index("--port") + 1])
        deadline = time.monotonic() + 60
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise SystemExit(f"{' '.join(argv)} did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()


def emit(result: dict[str, Any], output: Path | None) -> None:
    """One JSON object on stdout, and a copy in `output` when asked."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
