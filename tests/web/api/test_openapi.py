"""Schemathesis against a real server: every operation in /api/v1/openapi.json, generated from that document.

No 5xx, only documented status codes, and every response matching its schema and content type. Tests are generated
at collection from the document the app builds (openapi_document); the first test proves the server serves
exactly that document. (schemathesis.pytest.from_fixture cannot be used: it needs pytest's old Node._nodeid.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.settings import ROOT, load_settings
from hub.web.api.openapi import EXAMPLE_REFS, EXAMPLES, openapi_document
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.fake_notify import template_environ

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_START_SECONDS = 30

# Letters are PDFs: mostly real-looking ones, so the upsert itself is exercised, and some that are not.
schemathesis.openapi.media_type(
    "application/pdf",
    st.one_of(st.binary(max_size=200).map(lambda tail: b"%PDF-1.7\n" + tail), st.binary(max_size=50)),
)


@dataclass(frozen=True)
class LiveHub:
    url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hub(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hub", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[LiveHub]:
    """`python -m hub serve` on a fresh database with a trust, its key, a site, a patient and an appointment."""
    folder = tmp_path_factory.mktemp("schema")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": own_database_url(backend, folder),
        "HUB_SECRET_KEY": SECRET,
        "HUB_NOTIFY_API_KEY": "x",
        "HUB_BASE_URL": url,
        **template_environ(),
    }
    _hub(env, "migrate")
    _hub(env, "create-organisation", "--code", "RAL", "--name", "Royal Free London")
    key = _hub(env, "create-api-key", "--org", "RAL", "--name", "schemathesis").strip().splitlines()[-1]

    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started, log = threading.Event(), list[str]()

    def drain() -> None:  # read the server's log to the end, so it never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if "Hub ready in process" in line:
                started.set()
        started.set()  # it stopped: let the fixture see that rather than wait

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert started.wait(_START_SECONDS) and process.poll() is None, "".join(log)
        hub = LiveHub(url, key)
        with httpx.Client(base_url=url, headers=hub.headers) as client:
            # The document's own examples, so that its example appointment and letter find what they refer to.
            for path, body in (
                (f"sites/{EXAMPLE_REFS['site_code']}", EXAMPLES["Site"]),
                (f"patients/{EXAMPLE_REFS['patient_ref']}", EXAMPLES["Patient"]),
                (f"appointments/{EXAMPLE_REFS['appointment_ref']}", EXAMPLES["Appointment"]),
            ):
                response = client.put(f"/api/v1/{path}", json=body)
                assert response.status_code == 201, response.text
        yield hub
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    errors = [line for line in log if "ERROR" in line or "Traceback" in line]
    assert not errors, "".join(log)


DOCUMENT_SETTINGS = {"secret_key": SECRET, "base_url": "http://hub.invalid"}
schema = schemathesis.openapi.from_dict(openapi_document(load_settings(environ={}, overrides=DOCUMENT_SETTINGS)))


def test_server_serves_the_document_the_tests_are_generated_from(live_hub: LiveHub) -> None:
    served = httpx.get(f"{live_hub.url}/api/v1/openapi.json").json()
    built = openapi_document(load_settings(environ={}, overrides={**DOCUMENT_SETTINGS, "base_url": live_hub.url}))
    assert served == built


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_keeps_to_its_openapi_document(case: schemathesis.Case, live_hub: LiveHub) -> None:
    case.call_and_validate(base_url=live_hub.url, headers=live_hub.headers, checks=CHECKS, timeout=10)


def test_the_document_is_valid_openapi_3_1(live_hub: LiveHub) -> None:
    document = httpx.get(f"{live_hub.url}/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": live_hub.url}]
    loaded = schemathesis.openapi.from_url(f"{live_hub.url}/api/v1/openapi.json")
    loaded.validate()  # against the OpenAPI 3.1 meta-schema
    operations = [result.ok() for result in loaded.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == len(list(loaded.get_all_operations()))  # none failed to load
    labels = sorted(operation.label for operation in operations)
    assert labels == [
        "DELETE /api/v1/slots/{slot_ref}",
        "GET /api/v1/events",
        "PUT /api/v1/appointments/{appointment_ref}",
        "PUT /api/v1/letters/{letter_ref}",
        "PUT /api/v1/patients/{patient_ref}",
        "PUT /api/v1/sites/{site_code}",
        "PUT /api/v1/sites/{site_code}/map",
        "PUT /api/v1/slots/{slot_ref}",
    ]
