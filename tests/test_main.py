"""`python -m hub demo` on a port of one's choosing: links, banner and dev outbox follow it; a busy port is said
first, before anything touches the database; quiet hours are off in the demo, and the banner says so."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.__main__ import _demo_settings
from hub.jobs.demo import demo_instructions
from hub.settings import ROOT, load_settings
from tests.harness import Harness
from tests.web.api.test_handlers import run_hub


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**env, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}


def test_the_demo_port_drives_its_links_and_base_url() -> None:
    settings = _demo_settings(load_settings(overrides={"demo": True}), 8611)
    assert (settings.port, settings.base_url) == (8611, "http://127.0.0.1:8611")
    banner = demo_instructions(settings, {mrn: f"{n:032x}" for n, (mrn, *_) in enumerate(_patients(), start=1)})
    assert "Demo hub ready at http://127.0.0.1:8611" in banner
    assert "http://127.0.0.1:8000" not in banner
    assert "stable link: http://127.0.0.1:8611/p/" in banner
    assert "make staff PORT=8611" in banner


def test_an_explicit_base_url_is_kept() -> None:
    settings = load_settings(overrides={"demo": True, "base_url": "https://demo.example.org"})
    assert _demo_settings(settings, 8611).base_url == "https://demo.example.org"


def test_quiet_hours_are_off_in_the_demo_and_its_banner_says_so() -> None:
    settings = _demo_settings(load_settings(overrides={"demo": True}), 8000)
    assert settings.notify.quiet_start_hour == settings.notify.quiet_end_hour
    banner = demo_instructions(settings, {mrn: f"{n:032x}" for n, (mrn, *_) in enumerate(_patients(), start=1)})
    assert "Quiet hours are off in the demo" in banner
    assert "make staff\n" in banner + "\n"


def test_a_busy_port_is_refused_before_the_database_is_touched(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "hub", "demo", "--port", str(port)],
            cwd=ROOT,
            env=_demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"Port {port} is already in use" in done.stderr
    assert "Demo hub ready" not in done.stdout
    assert not (tmp_path / "demo.sqlite3").exists()


def test_create_staff_works_against_the_demo_as_make_staff_runs_it(tmp_path: Path) -> None:
    env = {**_demo_env(tmp_path), "HUB_DEMO": "true"}
    subprocess.run([sys.executable, "-m", "hub", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-m", "hub", "create-staff", "--username", "admin", "--role", "admin", "--hub-wide"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "http://127.0.0.1:8000/staff/setup/" in done.stdout
    assert "every trust (hub-wide)" in done.stdout
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "HUB_DEMO=true" in makefile and "create-staff" in makefile
    assert "--hub-wide" in makefile.split("\nstaff:", 1)[1].split("\n\n", 1)[0]


def test_create_staff_asks_for_the_trusts_when_the_hub_has_other_than_one(tmp_path: Path) -> None:
    env = {**_demo_env(tmp_path), "HUB_DEMO": "true"}
    subprocess.run([sys.executable, "-m", "hub", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)

    def create(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hub", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    done = create("create-staff", "--username", "ann", "--role", "agent")
    assert done.returncode == 2 and "--organisation CODE" in done.stderr and "no organisations yet" in done.stderr
    for code in ("RAL", "RVR"):
        assert create("create-organisation", "--code", code, "--name", code, "--phone", "1").returncode == 0
    done = create("create-staff", "--username", "ann", "--role", "agent", "--organisation", "XYZ")
    assert done.returncode == 2 and "no organisation with the code 'XYZ'" in done.stderr
    done = create("create-staff", "--username", "ann", "--role", "agent", "--organisation", "RAL", "--organisation=RVR")
    assert done.returncode == 0 and "Created agent ann for RAL, RVR." in done.stdout, done.stderr


def _patients() -> list[tuple[str, ...]]:
    from hub.jobs.demo import PATIENTS

    return [tuple(str(v) for v in p) for p in PATIENTS]


def test_make_run_installs_runtime_dependencies_only() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert ".installed" not in run.split("\n", 1)[0].replace("node_modules/.installed", "")
    runtime = makefile.split("$(BIN)/.runtime: pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e .\n" in runtime + "\n" and "[dev]" not in runtime
    assert "--port $(PORT)" in run


@pytest.mark.anyio
async def test_rotate_link_sends_the_patient_a_new_link_and_the_old_one_stops(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN1")
    old = await hub.link_token(patient)
    done = run_hub(hub.database_url, "rotate-link", "--org", "RAL", "--patient-ref", "MRN1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Sent RAL patient MRN1 a new link by text message; their old links no longer work."
    new = await hub.link_token(patient)
    assert new != old
    assert (await hub.client.get(f"/p/{old}")).status_code == 404
    sent = await hub.db.fetch_all("SELECT recipient, personalisation FROM outbox_messages WHERE kind = 'patient_link'")
    assert [(m["recipient"], json.loads(m["personalisation"])["link"]) for m in sent] == [
        ("+447700900001", f"{hub.settings.base_url}/p/{new}")
    ]
    audit = await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_id FROM audit_events WHERE action = 'patient_link_rotated'"
    )
    assert audit == [{"actor_type": "system", "actor_id": "rotate-link", "record_id": str(patient)}]

    done = run_hub(hub.database_url, "rotate-link", "--org", "RAL", "--patient-ref", "MRN9")
    assert (done.returncode, done.stderr.strip()) == (1, "No patient MRN9 in RAL")
    assert await hub.link_token(patient) == new


def test_the_licence_is_declared_the_way_current_setuptools_reads_it() -> None:
    # A TOML table in `project.license` made every `pip install` (and so `make run`) print setuptools' deprecation
    # warning twice; the SPDX string and `license-files` need setuptools 77 or later.
    import re
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "MIT"
    for name in pyproject["project"]["license-files"]:
        assert "MIT License" in (ROOT / name).read_text(encoding="utf-8")
    [setuptools] = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.search(r">=(\d+)", setuptools)
    assert minimum and int(minimum.group(1)) >= 77, setuptools


def test_migrate_refuses_a_database_another_codes_migrations_made(tmp_path: Path) -> None:
    env = {**_demo_env(tmp_path), "HUB_DEMO": "true"}
    subprocess.run([sys.executable, "-m", "hub", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    [database] = list(tmp_path.glob("*.sqlite3"))
    with sqlite3.connect(database) as db:
        db.execute("UPDATE schema_migrations SET name = 'other_branch.sql' WHERE version = 1")
    done = subprocess.run(
        [sys.executable, "-m", "hub", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: migration 1 was applied as other_branch.sql")
    assert "Traceback" not in done.stderr
