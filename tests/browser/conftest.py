"""Real Chromium against the real demo server (`python -m hub demo`) running as a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from hub.db import Database, connect
from hub.jobs.demo import PATIENTS
from hub.settings import ROOT
from tests.databases import own_database_url
from tests.factories import create_organisation, create_site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_START_SECONDS = 30
_CODE_SECONDS = 10


@dataclass(frozen=True)
class Person:
    """A demo patient as they would type themselves in."""

    name: str
    contact: str  # "07700 900001" or an email address
    recipient: str  # how the outbox shows the contact
    day: str
    month: str
    year: str
    verification_code: str


def _people() -> dict[str, Person]:
    people = {}
    for _, given, family, born, mobile, email, uvc, _ in PATIENTS:
        year, month, day = born.split("-")
        recipient = mobile or email or ""
        contact = f"0{mobile[3:7]} {mobile[7:]}" if mobile else recipient  # as people write it: 07700 900001
        people[f"{given} {family}"] = Person(
            f"{given} {family}", contact, recipient, str(int(day)), str(int(month)), year, uvc
        )
    return people


PEOPLE = _people()


@dataclass
class DemoServer:
    base_url: str
    links: dict[str, str]  # patient name -> stable link, as the demo prints them
    database_url: str = ""
    codes_read: set[str] = field(default_factory=set)

    def url(self, path: str) -> str:
        return self.base_url + path

    def enter_details(self, page: Page, person: Person, *, via_link: bool = True) -> None:
        page.goto(self.links[person.name] if via_link else self.url("/"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to see your hospital appointments")
        page.get_by_label("Mobile phone number or email address").fill(person.contact)
        page.get_by_label("Day").fill(person.day)
        page.get_by_label("Month").fill(person.month)
        page.get_by_label("Year").fill(person.year)
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(self.url("/sign-in/code"))

    def read_code(self, page: Page, person: Person) -> str:
        """The newest security code sent to this person that no test has used, read from /dev/outbox."""
        deadline = time.monotonic() + _CODE_SECONDS
        while True:
            page.goto(self.url("/dev/outbox"))
            rows = page.locator("tbody tr").filter(has_text="security code").filter(has_text=person.recipient)
            if rows.count():
                code = rows.first.locator('[data-field="code"]').inner_text().strip()
                if code not in self.codes_read:
                    self.codes_read.add(code)
                    return code
            if time.monotonic() > deadline:
                raise AssertionError(f"no new security code for {person.name} in /dev/outbox")
            time.sleep(0.2)  # the code is sent just after the sign-in answer goes back

    def enter_code(self, page: Page, code: str) -> None:
        page.goto(self.url("/sign-in/code"))
        page.get_by_label("Security code").fill(code)
        page.get_by_role("button", name="Continue").click()

    def sign_in(self, page: Page, person: Person) -> None:
        self.enter_details(page, person)
        self.enter_code(page, self.read_code(page, person))
        if page.url == self.url("/sign-in/verification-code"):
            page.get_by_label("Verification code").fill(person.verification_code)
            page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(self.url("/appointments"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your appointments")


def appointment_links(page: Page) -> dict[str, str]:
    """On /appointments: clinic -> link of each appointment, the first card wins (upcoming come first)."""
    links: dict[str, str] = {}
    for card in page.locator(".nhsuk-card").all():
        href = card.get_by_role("link").first.get_attribute("href")
        meta = card.locator(".hub-card-meta").inner_text()
        assert href is not None
        links.setdefault(meta.splitlines()[0].split(" (")[0].strip(), href)
    return links


def in_database(url: str, work: Callable[[Database], Awaitable[Any]]) -> Any:
    """Runs work(db) on a running server's database, for data no page can make (another trust, a refused HL7
    update). In a thread of its own: Playwright's sync API holds this thread's event loop."""

    async def run() -> Any:
        db = await connect(url, readers=1, pool_size=1)
        try:
            return await work(db)
        finally:
            await db.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


SHARED_SITE = "MAIN"  # a site code two more trusts both use: /sites/MAIN asks the patient which hospital


def seed_shared_site(server: DemoServer) -> None:
    """Two more trusts, each with a site coded MAIN (one with no map or coordinates); once per server."""

    async def work(db: Database) -> None:
        if await db.fetch_one("SELECT id FROM organisations WHERE code = 'RWP'"):
            return
        async with db.write() as tx:
            for code, name, site, located in (
                ("RWP", "Worcestershire Acute Hospitals NHS Trust", "Worcestershire Royal Hospital", False),
                ("RLQ", "Wye Valley NHS Trust", "Hereford County Hospital", True),
            ):
                organisation = await create_organisation(tx, code=code, name=name)
                await create_site(
                    tx,
                    organisation_id=organisation,
                    code=SHARED_SITE,
                    name=site,
                    map_file="rfh.svg" if located else None,
                    latitude=52.05 if located else None,
                    longitude=-2.71 if located else None,
                )

    in_database(server.database_url, work)


@dataclass
class Console:
    """A demo server for the console, and the create-staff command pointed at its database."""

    base_url: str
    env: dict[str, str]
    links: dict[str, str]

    def url(self, path: str) -> str:
        return self.base_url + path

    def create_staff(self, username: str, role: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hub", "create-staff", "--username", username, "--role", role],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"(http://\S+/staff/setup/\S+)", done.stdout)
        assert match, done.stdout
        return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stable_links(stdout: str) -> dict[str, str]:
    links, name = {}, None
    for line in stdout.splitlines():
        person = re.match(r"\s+(\S.*?): ", line)
        if "stable link:" in line and name:
            links[name] = line.split("stable link:", 1)[1].strip()
        elif person:
            name = person.group(1)
    return links


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def start_demo(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Callable[..., DemoServer]]:
    """start_demo(env=...) -> a fresh demo server on its own database and port, with more HUB_* settings when
    given; all are stopped at the end."""
    running: list[tuple[subprocess.Popen[bytes], Any, Any]] = []

    def start(env_extra: dict[str, str] | None = None, port: int | None = None) -> DemoServer:
        folder = tmp_path_factory.mktemp("demo")
        port = port or _free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(HUB_DATABASE_URL=own_database_url(backend, folder), HUB_BASE_URL=base_url, **(env_extra or {}))
        out, err = open(folder / "stdout", "w+b"), open(folder / "stderr", "w+b")
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        running.append((process, out, err))
        deadline = time.monotonic() + _START_SECONDS
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = (folder / "stderr").read_text(errors="replace")
                pytest.fail(f"the demo server did not come up on {base_url}:\n{stderr}", pytrace=False)
            time.sleep(0.1)
        links = _stable_links((folder / "stdout").read_text())
        assert set(links) == set(PEOPLE), f"stable links not found in the demo's output: {links}"
        return DemoServer(base_url, links, env["HUB_DATABASE_URL"])

    yield start
    for process, out, err in running:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
        err.close()


@pytest.fixture(scope="session")
def demo(start_demo: Callable[[], DemoServer]) -> DemoServer:
    """One demo server for tests that only read, or that change only what no other test looks at."""
    return start_demo()


@pytest.fixture(scope="session")
def console(start_demo: Callable[[], DemoServer]) -> Console:
    """The console's own demo server (its tests change the queue), shared by the console's test modules."""
    server = start_demo()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # The CLI runs as the demo does: demo mode's key, so set-up links verify on the server.
    env.update(HUB_DATABASE_URL=server.database_url, HUB_BASE_URL=server.base_url, HUB_DEMO="true")
    return Console(server.base_url, env, server.links)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is needed at {CHROMIUM} for the browser tests: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
