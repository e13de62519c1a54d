"""The console's admin pages: staff accounts (disable, reset the authenticator) and the audit log. Admins only."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import WRONG, set_up_staff, staff_signed_in, submit_password

pytestmark = pytest.mark.anyio


async def test_an_agent_cannot_reach_admin_pages(hub: Harness) -> None:
    await set_up_staff(hub, "alice", "agent")
    for path in ("/staff/admin/staff", "/staff/admin/audit", "/staff/queue.csv"):
        response = await hub.client.get(path)
        assert response.status_code == 403, path
        # The console's page, in the console's layout: not "we could not read that" with a patient's start link.
        assert "<h1>You cannot open this page</h1>" in response.text and 'href="/staff/sign-out"' in response.text
    missing = await hub.client.get("/staff/tasks/999999")
    assert missing.status_code == 404 and 'href="/staff">Go to the call-back queue' in missing.text
    assert 'href="/appointments"' not in missing.text
    response = await hub.post_form("/staff/admin/staff/1/disable", {}, csrf_from="/staff/sign-in")
    assert response.status_code == 403
    row = await hub.db.fetch_one("SELECT disabled_at FROM staff_users WHERE username = 'alice'")
    assert row is not None and row["disabled_at"] is None


async def test_an_admin_manages_staff(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    other = new_browser(hub)
    agent = await set_up_staff(other, "bob", "agent")
    await set_up_staff(hub, "root", "admin")
    for path in ("/staff/admin/staff", "/staff/admin/audit", "/staff/admin/audit?action=staff_enrolled"):
        page = await hub.client.get(path)
        assert page.status_code == 200, path
        check_page(page.text)
    response = await hub.post_form(f"/staff/admin/staff/{agent.id}/reset-authenticator", {}, csrf_from="/staff/sign-in")
    assert response.status_code == 303
    assert not await staff_signed_in(other)  # the reset ends their sessions
    other.clock.advance(seconds=30)
    response = await submit_password(other, agent.username, agent.password)
    assert response.headers["location"] == "/staff/enrol"  # a new authenticator before anything else
    await hub.post_form(f"/staff/admin/staff/{agent.id}/disable", {"confirm": "yes"}, csrf_from="/staff/sign-in")
    response = await submit_password(other, agent.username, agent.password)
    assert response.status_code == 400 and WRONG in response.text


async def test_the_audit_log_names_staff_rather_than_numbering_them(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await set_up_staff(new_browser(hub), "bob", "agent")
    await set_up_staff(hub, "root", "admin")
    text = (await hub.client.get("/staff/admin/audit")).text
    assert "Staff enrolled: bob" in text and "Staff enrolled: root" in text
    assert '<td class="nhsuk-table__cell">root (admin)</td>' in text
    assert '<td class="nhsuk-table__cell">bob</td>' in text
    assert "staff_enrolled" not in text.split("</form>", 1)[1]  # the filter form may hold it; the rows not


async def test_an_admin_of_a_trust_gives_accounts_only_that_trust(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    other = new_browser(hub)
    ours = await set_up_staff(other, "bob", "agent", organisations=["RAL"])
    theirs = await set_up_staff(other, "carol", "agent", organisations=["RVR"])
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    listing = await hub.client.get("/staff/admin/staff")
    assert "bob" in listing.text and "carol" not in listing.text  # another trust's account is not listed
    page = await hub.client.get(f"/staff/admin/staff/{ours.id}/organisations")
    check_page(page.text)
    assert 'name="organisation-RAL"' in page.text and "RVR" not in page.text and 'name="hub_wide"' not in page.text
    path = f"/staff/admin/staff/{ours.id}/organisations"
    refused = await hub.post_form(path, {"organisation-RVR": "yes"})
    assert refused.status_code == 422 and "trusts you work for" in refused.text
    refused = await hub.post_form(path, {"organisation-RAL": "yes", "hub_wide": "yes"})
    assert refused.status_code == 422 and "Only a hub-wide admin" in refused.text
    for action in ("organisations", "disable", "reset-authenticator"):
        response = await hub.post_form(f"/staff/admin/staff/{theirs.id}/{action}", {}, csrf_from=path)
        assert response.status_code == 404, action
    assert (await hub.client.get(f"/staff/admin/staff/{theirs.id}/organisations")).status_code == 404
    rows = await hub.db.fetch_all("SELECT action FROM audit_events WHERE action = 'staff_organisations_changed'")
    assert rows == []


async def test_a_hub_wide_admin_gives_any_trust_or_every_trust_and_it_is_audited(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    agent = await set_up_staff(new_browser(hub), "bob", "agent", organisations=["RAL"])
    admin = await set_up_staff(hub, "hana", "admin", hub_wide=True)
    path = f"/staff/admin/staff/{agent.id}/organisations"
    response = await hub.post_form(path, {"organisation-RVR": "yes"})
    assert response.status_code == 303 and response.headers["location"] == "/staff/admin/staff?done=trusts"
    listing = await hub.client.get("/staff/admin/staff?done=trusts")
    assert "Their trusts are saved" in listing.text and "RVR" in listing.text
    response = await hub.post_form(path, {"hub_wide": "yes"})
    assert response.status_code == 303
    rows = await hub.db.fetch_all(
        "SELECT actor_id, detail FROM audit_events WHERE action = 'staff_organisations_changed' AND record_id = ?"
        " ORDER BY id",
        (str(agent.id),),
    )
    assert [(r["actor_id"], r["detail"]) for r in rows] == [
        (str(admin.id), "organisations RVR"),
        (str(admin.id), "organisations none; hub-wide"),
    ]


async def test_disabling_asks_first_on_a_page_of_its_own(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    agent = await set_up_staff(new_browser(hub), "bob", "agent")
    await set_up_staff(hub, "root", "admin")
    listing = (await hub.client.get("/staff/admin/staff")).text
    assert f'href="/staff/admin/staff/{agent.id}/disable"' in listing
    # A post without the confirmation (an old page, a slip) only leads to the question.
    response = await hub.post_form(f"/staff/admin/staff/{agent.id}/disable", {}, csrf_from="/staff/sign-in")
    assert response.status_code == 303 and response.headers["location"] == f"/staff/admin/staff/{agent.id}/disable"
    row = await hub.db.fetch_one("SELECT disabled_at FROM staff_users WHERE username = 'bob'")
    assert row is not None and row["disabled_at"] is None
    question = await hub.client.get(f"/staff/admin/staff/{agent.id}/disable")
    check_page(question.text)
    assert "<h1>Disable bob?</h1>" in question.text and 'name="confirm" value="yes"' in question.text
    response = await hub.post_form(
        f"/staff/admin/staff/{agent.id}/disable", {"confirm": "yes"}, csrf_from="/staff/sign-in"
    )
    assert response.headers["location"] == "/staff/admin/staff?done=disabled"
    row = await hub.db.fetch_one("SELECT disabled_at FROM staff_users WHERE username = 'bob'")
    assert row is not None and row["disabled_at"] is not None


async def test_an_admin_adds_staff_and_sees_the_set_up_link_once(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    admin = await set_up_staff(hub, "root", "admin")
    page = await hub.client.get("/staff/admin/staff/new")
    check_page(page.text)
    assert 'name="organisation-RAL"' in page.text and 'name="hub_wide"' not in page.text
    bad = await hub.post_form("/staff/admin/staff/new", {"username": "", "role": "boss"})
    assert bad.status_code == 400 and "Enter a username" in bad.text and "Choose a role" in bad.text
    assert "Choose the trusts they work for" in bad.text
    check_page(bad.text)
    await hub.organisation_id("RVR")
    theirs = await hub.post_form(
        "/staff/admin/staff/new", {"username": "c.jones", "role": "agent", "organisation-RVR": "yes"}
    )
    assert theirs.status_code == 400 and "only give an account the trusts you work for" in theirs.text
    shown = await hub.post_form(
        "/staff/admin/staff/new", {"username": "C.Jones", "role": "agent", "organisation-RAL": "yes"}
    )
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    check_page(shown.text)
    link = re.search(r'<code id="setup-link">(\S+)</code>', shown.text)
    assert link and link.group(1).startswith(f"{hub.settings.base_url}/staff/setup/")
    assert 'alt="QR code of the set-up link for c.jones"' in shown.text and "data:image/svg+xml;base64," in shown.text
    again = await hub.post_form(
        "/staff/admin/staff/new", {"username": "c.jones", "role": "agent", "organisation-RAL": "yes"}
    )
    assert again.status_code == 400 and "There is already a staff member called c.jones" in again.text
    # Audited as the admin's act, not the command line's.
    audit = await hub.db.fetch_all(
        "SELECT actor_type, actor_id, detail FROM audit_events WHERE action = 'staff_created'"
    )
    assert audit[-1] == {"actor_type": "agent", "actor_id": str(admin.id), "detail": "organisations RAL"}
    # The link works: the new agent chooses a password from it.
    newcomer = new_browser(hub, "198.51.100.30")
    path = link.group(1).removeprefix(hub.settings.base_url)
    password = "a long enough password for the test"
    response = await newcomer.post_form(path, {"password": password, "confirm": password})
    assert response.status_code == 303 and response.headers["location"] == "/staff/enrol"


async def test_an_agent_cannot_add_staff(hub: Harness) -> None:
    await set_up_staff(hub, "alice", "agent")
    assert (await hub.client.get("/staff/admin/staff/new")).status_code == 403
    response = await hub.post_form(
        "/staff/admin/staff/new", {"username": "mallory", "role": "admin"}, csrf_from="/staff/sign-in"
    )
    assert response.status_code == 403
    assert await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = 'mallory'") is None


async def test_a_sign_in_that_matched_nobody_is_in_the_audit_log_without_its_details(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await new_browser(hub).submit_details("07700 900999", "1948-03-14")
    # A sign-in attempt belongs to no trust: only a hub-wide account sees it.
    await set_up_staff(hub, "root", "admin", hub_wide=True)
    text = (await hub.client.get("/staff/admin/audit")).text
    assert "Sign in unmatched: sign-in attempt " in text and "(no code sent)" in text
    assert "900999" not in text and "1948" not in text
