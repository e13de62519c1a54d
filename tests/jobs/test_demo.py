"""The demo's data: seeded once, on either database, with patients a newcomer can sign in as straight away."""

from __future__ import annotations

import re

import pytest

from hub.jobs.demo import PATIENTS, demo_instructions, seed_demo
from hub.links import read_link_token
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_the_demo_is_seeded_once(hub: Harness) -> None:
    assert await seed_demo(hub.db, now=hub.clock.now())
    counts = {
        table: (await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table}") or {})["n"]
        for table in ("organisations", "sites", "patients", "appointments", "letters", "outbox_messages")
    }
    assert counts["organisations"] == 1 and counts["sites"] == 2 and counts["patients"] == len(PATIENTS)
    assert counts["appointments"] and counts["letters"] and counts["outbox_messages"]
    assert not await seed_demo(hub.db, now=hub.clock.now())
    again = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM patients")
    assert again == {"n": len(PATIENTS)}


async def test_a_demo_patient_signs_in_and_sees_their_appointments_and_letters(hub: Harness) -> None:
    await seed_demo(hub.db, now=hub.clock.now())
    await hub.sign_in("07700 900001", "1948-03-14")  # Margaret Jones, as the instructions print her
    appointments = await hub.get_page("/appointments")
    assert "Cardiology outpatients" in appointments.text and "Blood tests" in appointments.text
    letters = await hub.get_page("/letters")
    assert "Your cardiology appointment" in letters.text
    messages = await hub.get_page("/messages")
    assert "Delivered" in messages.text


async def test_the_instructions_give_every_patients_details_and_their_own_stable_link(hub: Harness) -> None:
    await seed_demo(hub.db, now=hub.clock.now())
    ids = {r["mrn"]: r["link_id"] for r in await hub.db.fetch_all("SELECT link_id, mrn FROM patients")}
    text = demo_instructions(hub.settings, ids)
    assert f"read the code at {hub.settings.base_url}/dev/outbox" in text
    for mrn, given, family, born, mobile, email, uvc, _ in PATIENTS:
        contact = "0" + mobile[3:] if mobile else email
        line = f"  {given} {family}: {contact}, born {born}  (verification code {uvc})"
        assert line in text.splitlines()
        link = text.splitlines()[text.splitlines().index(line) + 1]
        token = re.fullmatch(rf"    stable link: {re.escape(hub.settings.base_url)}/p/(\S+)", link)
        assert token and read_link_token(hub.settings, token.group(1)) == ids[mrn]
        assert re.fullmatch("[0-9a-f]{32}", ids[mrn] or "")  # a link id of its own, never none
        assert (await hub.client.get(f"/p/{token.group(1)}")).status_code == 200
