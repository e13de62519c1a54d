"""Generated SIU and ADT messages, valid and broken, sent over TCP to a running listener: every one gets an ACK
(the listener never crashes), and a message answered AE or AR changes nothing."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.jobs.hl7_listener import make_receiver, start_listener
from hub.store.feed import upsert_site
from tests.hl7_samples import SETTINGS, Client, adt, pid, siu
from tests.running import NOW, running_hub

_numbers = itertools.count(1)
DELIMITERS = "|^~\\&\r\n\x0b\x1c"
TABLES = ("patients", "appointments", "letters", "outbox_messages", "events", "tasks", "audit_events")


def _valid(kind: str, n: int, day: int, minutes: int, mobile: str) -> str:
    patient = pid(f"RF{n:07d}", phones=f"{mobile}^ORN^CP", born=f"19{40 + n % 60:02d}0314")
    if kind == "adt":
        return adt("A08", control_id=f"G{n}", phones=f"{mobile}^ORN^CP", mrn=f"RF{n:07d}")
    return siu(control_id=f"G{n}", ref=f"APT-G{n}", start=f"202612{day:02d}0930", minutes=str(minutes), patient=patient)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    n = next(_numbers)
    kind = draw(st.sampled_from(["siu", "adt"]))
    mobile = draw(st.sampled_from(["07700 900123", "+447700900124", "0207946000", "not a phone"]))
    text = _valid(kind, n, draw(st.integers(1, 31)), draw(st.integers(0, 2000)), mobile)
    segments = text.rstrip("\r").split("\r")
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["field", "drop", "cut", "junk", "sep"]))
        if what == "field":  # one field of one segment becomes anything, delimiters included
            i = draw(st.integers(0, len(segments) - 1))
            fields = segments[i].split("|")
            j = draw(st.integers(1, max(1, len(fields) - 1)))
            value = draw(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(DELIMITERS), max_size=30))
            fields[j : j + 1] = [value]
            segments[i] = "|".join(fields)
        elif what == "drop" and len(segments) > 1:
            del segments[draw(st.integers(0, len(segments) - 1))]
        elif what == "cut":
            i = draw(st.integers(0, len(segments) - 1))
            segments[i] = segments[i][: draw(st.integers(0, len(segments[i])))]
        elif what == "junk":
            segments.insert(draw(st.integers(0, len(segments))), draw(st.text(max_size=20)))
    sep = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    raw = (sep.join(segments) + sep).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        raw = raw.replace(b"\x1c\r", b"\x1c")  # the MLLP end marker inside the message would split it
    return raw


def test_generated_messages_never_crash_it_and_rejected_ones_change_nothing(tmp_path: Path, backend: str) -> None:
    with running_hub(tmp_path, backend, **SETTINGS) as fuzz:
        db = fuzz.app.state.hub.db

        async def start() -> Any:
            async with db.write() as tx:
                await tx.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Trust', '0')")
                org = await tx.fetch_one("SELECT id FROM organisations WHERE code = 'RAL'")
                assert org is not None
                site = {"name": "Royal Free", "address": "", "postcode": "NW3 2QG", "latitude": None}
                site |= {"longitude": None, "directions": "", "parking": "", "phone": ""}
                await upsert_site(tx, organisation_id=org["id"], code="RFH", values=site, actor="test", now=NOW)
            receiver = await make_receiver(db, fuzz.app.state.hub.settings, fuzz.clock)
            return await start_listener(receiver, host="127.0.0.1", port=0)

        server = fuzz.run(start())
        port = server.sockets[0].getsockname()[1]

        async def counts() -> dict[str, Any]:
            return {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY id") for t in TABLES}

        async def send(raw: bytes) -> tuple[str, dict[str, Any], dict[str, Any]]:
            before = await counts()
            async with Client(port) as client:
                code = (await asyncio.wait_for(client.send(raw), 30)).code
            return code, before, await counts()

        seen: set[str] = set()

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(messages())
        def check(raw: bytes) -> None:
            code, before, after = fuzz.run(send(raw))
            seen.add(code)
            assert code in ("AA", "AE", "AR")
            if code != "AA":
                assert after == before

        try:
            check()
        finally:
            server.close()
            fuzz.run(server.wait_closed())
        assert "AA" in seen and seen & {"AE", "AR"}  # both kinds were tried
