"""GET /api/v1/events: patient actions for the hospital system, oldest first, paged by cursor, nothing skipped."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.clock import to_db
from hub.store.api_keys import create_api_key
from hub.store.events import record_event
from hub.store.hl7_outbound import next_events
from hub.vocabulary import EventKind
from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


class Feed:
    def __init__(self, hub: Harness, key: str) -> None:
        self.hub, self.key = hub, key

    async def get(self, query: str = "", status: int = 200) -> dict[str, Any]:
        response = await self.hub.client.get(f"/api/v1/events?{query}", headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    async def read_all(self, *, limit: int) -> list[dict[str, Any]]:
        events, cursor = [], "0"
        while page := (await self.get(f"after={cursor}&limit={limit}"))["events"]:
            assert len(page) <= limit
            events += page
            cursor = page[-1]["id"]
        return events


async def feed_for(hub: Harness, code: str) -> Feed:
    if await hub.db.fetch_one("SELECT id FROM organisations WHERE code = ?", (code,)) is None:
        await hub.create_organisation(code=code)
    return Feed(hub, await create_api_key(hub.db, organisation_code=code, name=f"{code}-pas", now=hub.clock.now()))


@pytest.fixture
async def feed(hub: Harness) -> Feed:
    return await feed_for(hub, "RAL")


async def write_events(hub: Harness, n: int, *, organisation_id: int = 1, tag: str = "") -> None:
    for i in range(n):
        async with hub.db.write() as tx:
            await record_event(
                tx,
                at=hub.clock.now(),
                kind=EventKind.APPOINTMENT_CONFIRMED,
                organisation_id=organisation_id,
                patient_id=None,
                data={"n": i, "tag": tag},
            )


async def test_patient_actions_on_the_web_reach_the_feed_oldest_first(feed: Feed) -> None:
    hub = feed.hub
    patient = await hub.create_patient(mrn="MRN1")
    first = await hub.create_appointment(patient_id=patient, ref="A1")
    second = await hub.create_appointment(patient_id=patient, ref="A2")
    third = await hub.create_appointment(patient_id=patient, ref="A3")
    letter = await hub.create_letter(patient_id=patient, appointment_id=first)
    await hub.sign_in()

    response = await hub.post_form(f"/appointments/{first}/confirm", {}, csrf_from=f"/appointments/{first}")
    assert response.status_code == 303
    hub.clock.advance(minutes=1)
    response = await hub.post_form(
        f"/appointments/{second}/rebook", {"reason": "Away that week", "preferred_times": "Mornings"}
    )
    assert response.status_code == 303
    hub.clock.advance(minutes=1)
    response = await hub.post_form(f"/appointments/{third}/cancel", {"reason": "feeling_better", "details": ""})
    assert response.status_code == 303
    hub.clock.advance(minutes=1)
    response = await hub.post_form("/preferences", {"contact_preference": "sms", "paper": "yes", "digital": "yes"})
    assert response.status_code == 303
    hub.clock.advance(minutes=1)
    assert (await hub.client.get(f"/letters/{letter}")).status_code == 200
    hub.clock.advance(minutes=1)
    assert (await hub.client.get(f"/letters/{letter}")).status_code == 200  # a second view is not news

    page = await feed.get()
    events = page["events"]
    assert page["next_cursor"] == events[-1]["id"]
    ids = [int(event.pop("id")) for event in events]
    assert ids == sorted(ids)
    assert events == [
        {
            "kind": "appointment.confirmed",
            "occurred_at": "2026-11-21T10:00:00Z",
            "patient_ref": "MRN1",
            "appointment_ref": "A1",
            "data": {"appointment_ref": "A1"},
        },
        {
            "kind": "appointment.rebook_requested",
            "occurred_at": "2026-11-21T10:01:00Z",
            "patient_ref": "MRN1",
            "appointment_ref": "A2",
            "data": {"appointment_ref": "A2", "reason": "Away that week", "preferred_times": "Mornings"},
        },
        {
            "kind": "appointment.cancel_requested",
            "occurred_at": "2026-11-21T10:02:00Z",
            "patient_ref": "MRN1",
            "appointment_ref": "A3",
            "data": {"appointment_ref": "A3", "reason": "feeling_better", "details": ""},
        },
        {
            "kind": "patient.preferences_changed",
            "occurred_at": "2026-11-21T10:03:00Z",
            "patient_ref": "MRN1",
            "appointment_ref": None,
            "data": {"contact_preference": "sms", "paperless": False, "opted_out": False},
        },
        {
            "kind": "letter.viewed",
            "occurred_at": "2026-11-21T10:04:00Z",
            "patient_ref": "MRN1",
            "appointment_ref": "A1",
            "data": {"letter_id": letter},
        },
    ]


async def test_pages_follow_the_cursor_and_end_empty(feed: Feed) -> None:
    await write_events(feed.hub, 5)
    first = await feed.get("limit=2")
    assert [e["data"]["n"] for e in first["events"]] == [0, 1]
    assert first["next_cursor"] == first["events"][-1]["id"]
    second = await feed.get(f"after={first['next_cursor']}&limit=2")
    assert [e["data"]["n"] for e in second["events"]] == [2, 3]
    third = await feed.get(f"after={second['next_cursor']}&limit=2")
    assert [e["data"]["n"] for e in third["events"]] == [4]
    end = await feed.get(f"after={third['next_cursor']}&limit=2")
    assert end == {"events": [], "next_cursor": third["next_cursor"]}  # keep asking from where you were

    # At least once: the same cursor again gives the same page, in the same order.
    assert await feed.get(f"after={first['next_cursor']}&limit=2") == second

    await write_events(feed.hub, 1, tag="later")
    later = await feed.get(f"after={end['next_cursor']}")
    assert [e["data"]["tag"] for e in later["events"]] == ["later"]


async def test_cursor_defaults_to_the_start_and_limit_to_a_hundred(feed: Feed) -> None:
    assert await feed.get() == {"events": [], "next_cursor": "0"}
    await write_events(feed.hub, 120)
    assert len((await feed.get())["events"]) == 100
    assert len((await feed.get("after=0"))["events"]) == 100
    assert len((await feed.get("after="))["events"]) == 100
    assert len((await feed.get("limit=500"))["events"]) == 120
    assert (await feed.get("after=999999999999999999"))["events"] == []


@pytest.mark.parametrize("limit", ["0", "501", "-1", "x", "1e2"])
async def test_limit_must_be_within_the_page_limit(feed: Feed, limit: str) -> None:
    body = await feed.get(f"limit={limit}", status=422)
    assert body == {"errors": [{"field": "limit", "message": "must be a whole number from 1 to 500"}]}


async def test_page_limit_comes_from_settings(make_hub: MakeHub) -> None:
    hub = await make_hub(api_page_limit=3)
    feed = await feed_for(hub, "RAL")
    await write_events(hub, 5)
    assert len((await feed.get("limit=3"))["events"]) == 3
    body = await feed.get("limit=4", status=422)
    assert body["errors"][0]["message"] == "must be a whole number from 1 to 3"
    document = (await hub.client.get("/api/v1/openapi.json")).json()
    limit = document["paths"]["/api/v1/events"]["get"]["parameters"][1]
    assert limit["schema"]["maximum"] == 3


@pytest.mark.parametrize("limit", ["0005009999", "000500999999999999999999"])
async def test_limit_is_read_whole_before_it_is_checked(feed: Feed, limit: str) -> None:
    await write_events(feed.hub, 3)
    body = await feed.get(f"limit={limit}", status=422)
    assert body == {"errors": [{"field": "limit", "message": "must be a whole number from 1 to 500"}]}


async def test_a_limit_with_leading_zeros_past_the_page_limit_is_refused(make_hub: MakeHub) -> None:
    hub = await make_hub(api_page_limit=3)
    feed = await feed_for(hub, "RAL")
    await write_events(hub, 5)
    assert len((await feed.get("limit=000003"))["events"]) == 3
    await feed.get("limit=0000039", status=422)  # was read as its first six digits, 3: and 5 events came back


async def test_cursor_is_read_whole(feed: Feed) -> None:
    await write_events(feed.hub, 3)
    first = (await feed.get("limit=1"))["events"][0]["id"]
    page = await feed.get(f"after={first.zfill(30)}")
    assert len(page["events"]) == 2
    assert (await feed.get("after=0000"))["next_cursor"] == page["next_cursor"]
    for after in (str(2**63), "0" * 30 + str(2**63), "9" * 40):
        body = await feed.get(f"after={after}", status=422)
        assert body == {"errors": [{"field": "after", "message": "must be a cursor from next_cursor (or 0 to start)"}]}
    assert (await feed.get(f"after={2**63 - 1}"))["events"] == []


async def test_each_trust_sees_only_its_own_events(feed: Feed) -> None:
    other = await feed_for(feed.hub, "RVL")
    mine = await feed.hub.db.fetch_one("SELECT id FROM organisations WHERE code = 'RAL'")
    theirs = await feed.hub.db.fetch_one("SELECT id FROM organisations WHERE code = 'RVL'")
    assert mine and theirs
    for i in range(3):
        await write_events(feed.hub, 1, organisation_id=mine["id"], tag=f"mine{i}")
        await write_events(feed.hub, 1, organisation_id=theirs["id"], tag=f"theirs{i}")
    assert [e["data"]["tag"] for e in await feed.read_all(limit=1)] == ["mine0", "mine1", "mine2"]
    assert [e["data"]["tag"] for e in await other.read_all(limit=2)] == ["theirs0", "theirs1", "theirs2"]
    # The other trust's cursor is no key to this trust's events.
    assert (await other.get("after=0&limit=500"))["events"][0]["data"]["tag"] == "theirs0"


async def test_reading_the_feed_is_audited(feed: Feed) -> None:
    await write_events(feed.hub, 3)
    await feed.get("limit=2")
    rows = await feed.hub.db.fetch_all(
        "SELECT actor_type, actor_id, action, detail FROM audit_events WHERE action = 'events_read'"
    )
    assert rows == [{"actor_type": "api_key", "actor_id": "RAL-pas", "action": "events_read", "detail": "after 0: 2"}]


Read = Callable[[int, int], Awaitable[list[dict[str, Any]]]]  # (after, limit) -> the next page of events


def by_api(feed: Feed) -> Read:
    async def read(after: int, limit: int) -> list[dict[str, Any]]:
        page = await feed.get(f"after={after}&limit={limit}")
        events: list[dict[str, Any]] = page["events"]
        assert page["next_cursor"] == (events[-1]["id"] if events else str(after))
        return events

    return read


def by_hl7_sender(hub: Harness, organisation_id: int) -> Read:
    """The HL7 sender's read of the same events by cursor. GET /api/v1/events reads inside an ordinary write (it
    audits the read), which waits for every patient's write to end; this one takes no lock at all, so only the
    order in which event ids commit keeps it from skipping one."""

    async def read(after: int, limit: int) -> list[dict[str, Any]]:
        found = await next_events(hub.db, organisation_id, after=after, limit=limit, locations={})
        return [{"id": str(event_id)} for event_id, _ in found]

    return read


async def page_until_written(read: Read, limit: int, writing: Callable[[], bool]) -> tuple[list[dict[str, Any]], int]:
    """Pages by cursor until a read begun after the last write comes back empty. Returns every event seen and how
    many pages brought events while the writers were still writing."""
    seen: list[dict[str, Any]] = []
    cursor, during = 0, 0
    while True:
        finished = not writing()  # decided before the read: the last read starts after the last write
        events = await read(cursor, limit)
        assert len(events) <= limit
        if events and not finished:
            during += 1
        seen += events
        cursor = int(events[-1]["id"]) if events else cursor
        if finished and not events:
            return seen, during
        await asyncio.sleep(0)  # a read from SQLite may not wait at all: let the writers go on


async def test_readers_paging_during_concurrent_writes_see_every_event_once_in_order(feed: Feed) -> None:
    hub = feed.hub
    other = await feed_for(hub, "RVL")
    writers, per_writer = 8, 25
    writing = True

    async def writer(n: int) -> None:
        for i in range(per_writer):
            async with hub.db.write() as tx:
                await record_event(
                    tx,
                    at=hub.clock.now(),
                    kind=EventKind.APPOINTMENT_CONFIRMED,
                    organisation_id=1 + (i % 2 if n == 0 else 0),  # writer 0 also writes for the other trust
                    patient_id=None,
                    data={"writer": n, "i": i},
                )

    async def write_all() -> None:
        nonlocal writing
        await asyncio.gather(*(writer(n) for n in range(writers)))
        writing = False

    pagers = [(feed, 1), (feed, 7), (feed, 50), (other, 3)]
    _, *read = await asyncio.gather(
        write_all(), *(page_until_written(by_api(f), n, lambda: writing) for f, n in pagers)
    )
    pages = [seen for seen, _ in read]
    expected = {(n, i) for n in range(writers) for i in range(per_writer) if n != 0 or i % 2 == 0}
    for seen in pages[:3]:
        ids = [int(e["id"]) for e in seen]
        assert ids == sorted(set(ids)), "out of order or repeated"
        written = [(e["data"]["writer"], e["data"]["i"]) for e in seen]
        # Each writer's events in the order it wrote them.
        for n in range(writers):
            mine = [i for w, i in written if w == n]
            assert mine == sorted(mine)
        assert set(written) == expected
        assert len(seen) == len(expected)
    theirs = pages[3]
    assert [(e["data"]["writer"], e["data"]["i"]) for e in theirs] == [(0, i) for i in range(1, per_writer, 2)]
    # The readers really did read between the writes, not only after them.
    assert sum(during for _, during in read) >= 3
    total = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM events")
    assert total == {"n": writers * per_writer}


async def test_readers_paging_while_patients_write_at_the_same_time_see_every_event_once_in_order(
    feed: Feed,
) -> None:
    """Writes about different patients (a patient's own action) run at the same time on PostgreSQL: each holds
    its patient's row while the others write theirs, and takes an event id that commits only after a pause. The
    "events" lock keeps ids committing in order, so readers by cursor (the API's, the HL7 sender's) still see every
    event once, in order."""
    hub = feed.hub
    writers, per_writer = 8, 20
    patients = [await hub.create_patient(mrn=f"MRN{n}", mobile=f"+4477009001{n:02d}") for n in range(writers)]
    org = await hub.organisation_id("RAL")
    writing = True
    open_writes = {"now": 0, "most": 0}

    async def writer(n: int) -> None:
        pause = random.Random(n)
        for i in range(per_writer):
            async with hub.db.write(patient=patients[n]) as tx:
                await tx.execute(
                    "UPDATE patients SET updated_at = ? WHERE id = ?", (to_db(hub.clock.now()), patients[n])
                )
                open_writes["now"] += 1  # counted once it has written: each one counted is still to commit
                open_writes["most"] = max(open_writes["most"], open_writes["now"])
                try:
                    await asyncio.sleep(pause.random() / 500)
                    await record_event(
                        tx,
                        at=hub.clock.now(),
                        kind=EventKind.APPOINTMENT_CONFIRMED,
                        organisation_id=org,
                        patient_id=patients[n],
                        data={"writer": n, "i": i},
                    )
                    await asyncio.sleep(pause.random() / 500)  # its id given out, not yet committed
                finally:
                    open_writes["now"] -= 1

    async def write_all() -> None:
        nonlocal writing
        await asyncio.gather(*(writer(n) for n in range(writers)))
        writing = False

    readers = [(by_api(feed), 1), (by_api(feed), 7), (by_api(feed), 50)]
    readers += [(by_hl7_sender(hub, org), 1), (by_hl7_sender(hub, org), 5)]
    _, *read = await asyncio.gather(write_all(), *(page_until_written(r, n, lambda: writing) for r, n in readers))
    if hub.db.dialect == "postgresql":
        assert open_writes["most"] > 1, "the patients' writes never overlapped"
    else:
        assert open_writes["most"] == 1  # SQLite: one writer at a time, whatever the write is about
    table = [int(r["id"]) for r in await hub.db.fetch_all("SELECT id FROM events ORDER BY id")]
    assert len(table) == writers * per_writer
    for seen, during in read:
        assert [int(e["id"]) for e in seen] == table, "skipped, repeated or out of order"
        assert during > 0  # it read between the writes, not only after them
    for seen, _ in read[:3]:
        written = [(e["data"]["writer"], e["data"]["i"]) for e in seen]
        for n in range(writers):
            assert [i for w, i in written if w == n] == list(range(per_writer))
