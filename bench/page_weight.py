"""Page weight over the wire: python -m bench.page_weight [--output FILE]

Starts `python -m hub serve` (demo mode) on a small fresh SQLite hub, signs one patient in through the dev outbox,
and fetches the sign-in page (the patient's link) and the appointments page with `Accept-Encoding: gzip`, as a
phone's browser would. Counts the bytes transferred (status line, headers and compressed body):
  - first visit: the HTML plus every asset it pulls in: stylesheets, the module script and the NHS.UK frontend
    script it imports, the body script, the SVG favicon (what current browsers fetch; the .ico is the fallback),
    and the images the stylesheet references for classes the page uses;
  - repeat visit: the HTML alone (assets carry a year's max-age, cache-busted by ?v=hash).
The NHS.UK stylesheet also names Frutiger web fonts on assets.nhs.uk; the Content-Security-Policy (font-src 'self')
stops browsers fetching them, so they cost nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import httpx

from bench.common import Process, emit, free_port, hub_cli, machine, serve_argv
from bench.journey_bench import Stats, journey, patient_token, seed
from bench.raw_http import Browser
from hub.settings import load_settings

FIRST_VISIT_LIMIT = 60 * 1024
REPEAT_VISIT_LIMIT = 10 * 1024
_LINK = re.compile(r'<link rel="(stylesheet|icon)" href="([^"]+)"[^>]*>')
_SCRIPT = re.compile(r'<script [^>]*src="([^"]+)"')
_IMPORTED = re.compile(r'data-frontend="([^"]+)"')
_CLASSES = re.compile(r'class="([^"]+)"')
_CSS_RULE = re.compile(r"([^{}]+)\{[^{}]*url\((/assets/[^)]+)\)")


def wire_bytes(response: httpx.Response) -> dict[str, int]:
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    return {"headers": head, "body": response.num_bytes_downloaded, "total": head + response.num_bytes_downloaded}


def _page_classes(html: str) -> set[str]:
    return {name for found in _CLASSES.findall(html) for name in found.split()}


def css_images(css: str, classes: set[str]) -> list[str]:
    """Images behind rules whose every class is on the page (enough to tell the header's icons from a table's)."""
    used = []
    for selectors, url in _CSS_RULE.findall(css):
        for selector in selectors.split(","):
            needed = re.findall(r"\.([\w-]+)", selector)
            if needed and all(name in classes for name in needed):
                used.append(url)
                break
    return sorted(set(used))


async def weigh(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    page = await client.get(path)
    page.raise_for_status()
    html = page.text
    assets = [href for rel, href in _LINK.findall(html) if rel == "stylesheet" or href.split("?")[0].endswith(".svg")]
    assets += _SCRIPT.findall(html) + _IMPORTED.findall(html)
    fetched: dict[str, Any] = {}
    css_text = ""
    for href in assets:
        response = await client.get(href)
        response.raise_for_status()
        fetched[href.split("?")[0]] = {
            **wire_bytes(response),
            "encoding": response.headers.get("content-encoding", "identity"),
            "cache_control": response.headers.get("cache-control", ""),
        }
        if href.split("?")[0].endswith(".css"):
            css_text += response.text
    images = css_images(css_text, _page_classes(html))
    for href in images:
        response = await client.get(href)
        response.raise_for_status()
        fetched[href] = {
            **wire_bytes(response),
            "encoding": response.headers.get("content-encoding", "identity"),
            "cache_control": response.headers.get("cache-control", ""),
        }
    html_bytes = wire_bytes(page)
    first = html_bytes["total"] + sum(a["total"] for a in fetched.values())
    return {
        "html": {**html_bytes, "uncompressed": len(page.content), "encoding": page.headers.get("content-encoding")},
        "assets": fetched,
        "first_visit_bytes": first,
        "repeat_visit_bytes": html_bytes["total"],
        "first_visit_pass": first <= FIRST_VISIT_LIMIT,
        "repeat_visit_pass": html_bytes["total"] <= REPEAT_VISIT_LIMIT,
    }


async def measure(port: int, db_path: Path, token: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    headers = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, trust_env=False) as visitor:
        sign_in = await weigh(visitor, f"/p/{token}")
    browser = Browser(port)  # signs in as the journey benchmark does; httpx then weighs with its cookies
    outbox = await aiosqlite.connect(db_path)
    try:
        await journey(browser, Stats(), outbox, n=0, token=token, last_id=0)
    finally:
        await outbox.close()
        browser.close()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, cookies=browser.cookies, timeout=30, trust_env=False
    ) as patient:
        appointments = await weigh(patient, "/appointments")
    return {"sign_in_page": sign_in, "appointments_page": appointments}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_weight", description=__doc__)
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-weight-") as folder:
        db_path = Path(folder) / "hub.sqlite3"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HUB_DATABASE_URL": f"sqlite:///{db_path}",
            "HUB_DEMO": "true",
            "HUB_BASE_URL": url,
        }
        hub_cli(env, "migrate")
        seed(db_path, patients=10, appointments=50, now=datetime.now(UTC))
        token = patient_token(load_settings(environ=env), 0)
        server = Process(serve_argv(port), env)
        try:
            pages = asyncio.run(measure(port, db_path, token))
        finally:
            server.stop()
    result = {
        "benchmark": "page_weight",
        "note": "bytes over the wire with Accept-Encoding: gzip, headers included; fonts are blocked by the CSP",
        "limits": {"first_visit_bytes": FIRST_VISIT_LIMIT, "repeat_visit_bytes": REPEAT_VISIT_LIMIT},
        **pages,
        "targets": {
            f"{name}_{visit}": {"measured_bytes": page[f"{visit}_bytes"], "pass": page[f"{visit}_pass"]}
            for name, page in pages.items()
            for visit in ("first_visit", "repeat_visit")
        },
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
