"""A hub on a fresh database, an HTTP client for it (checking every page it gets), and keyword-only factories."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from hub.clock import FixedClock
from hub.db import Database
from hub.links import link_token
from hub.notify.dev import DevNotifier
from hub.notify.sender import SendPolicy, drain_once
from hub.settings import Settings
from hub.store import api_keys as store_api_keys
from tests import factories
from tests.pages import Page, get_page

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Harness:
    app: Starlette
    client: httpx.AsyncClient
    db: Database
    clock: FixedClock
    settings: Settings
    path: Path  # the SQLite file, for tests of SQLite itself

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    async def tables(self) -> list[str]:
        """The hub's tables, on either backend."""
        if self.db.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        else:
            sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        return [r["name"] for r in await self.db.fetch_all(sql)]

    # Factories (tests/factories.py): test data straight into the tables, as the rest of the hub would leave it.
    async def create_organisation(
        self, *, code: str = "RAL", name: str = "Test Trust", phone: str = "020 7000 0000"
    ) -> int:
        async with self.db.write() as tx:
            return await factories.create_organisation(tx, code=code, name=name, phone=phone)

    async def organisation_id(self, code: str | None = None) -> int:
        """The organisation with this code (the first one made, without a code), made when there is none."""
        if code is None:
            row = await self.db.fetch_one("SELECT id FROM organisations ORDER BY id LIMIT 1")
        else:
            row = await self.db.fetch_one("SELECT id FROM organisations WHERE code = ?", (code,))
        return int(row["id"]) if row else await self.create_organisation(**({"code": code} if code else {}))

    async def create_site(
        self,
        *,
        code: str = "RFH",
        name: str = "Royal Free Hospital",
        map_file: str | None = "rfh.svg",
        latitude: float | None = 51.5533,
        longitude: float | None = -0.1652,
    ) -> int:
        org = await self.organisation_id()
        async with self.db.write() as tx:
            return await factories.create_site(
                tx, organisation_id=org, code=code, name=name, map_file=map_file, latitude=latitude, longitude=longitude
            )

    async def site_id(self) -> int:
        row = await self.db.fetch_one("SELECT id FROM sites ORDER BY id LIMIT 1")
        return int(row["id"]) if row else await self.create_site()

    async def create_patient(
        self,
        *,
        mrn: str | None = None,
        nhs_number: str | None = None,
        given_name: str = "Margaret",
        family_name: str = "Jones",
        dob: str = "1948-03-14",
        mobile: str | None = "+447700900001",
        email: str | None = None,
        # An address Notify would post to, as most patients have; tests of "no address" pass ().
        address_lines: Sequence[str] = ("1 Example Street", "London"),
        postcode: str = "NW3 2QG",
        verification_code: str = "MJ4K7Q",
        contact_preference: str = "sms",
        sms_opted_out: bool = False,
        nhs_app_excluded: bool = False,
    ) -> int:
        org = await self.organisation_id()
        async with self.db.write() as tx:
            return await factories.create_patient(
                tx,
                organisation_id=org,
                now=self.clock.now(),
                mrn=mrn,
                nhs_number=nhs_number,
                given_name=given_name,
                family_name=family_name,
                dob=dob,
                mobile=mobile,
                email=email,
                address_lines=address_lines,
                postcode=postcode,
                verification_code=verification_code,
                contact_preference=contact_preference,
                sms_opted_out=sms_opted_out,
                nhs_app_excluded=nhs_app_excluded,
            )

    async def link_token(self, patient_id: int) -> str:
        """The patient's stable link token, as the hub sends it (its random link id, signed)."""
        row = await self.db.fetch_one("SELECT link_id FROM patients WHERE id = ?", (patient_id,))
        assert row is not None
        return link_token(self.settings, row["link_id"])

    async def patient_link(self, patient_id: int) -> str:
        return f"{self.settings.base_url}/p/{await self.link_token(patient_id)}"

    async def create_appointment(
        self,
        *,
        patient_id: int,
        starts_at: datetime | None = None,
        ref: str | None = None,
        status: str = "booked",
        mode: str = "in_person",
        clinic: str = "Cardiology outpatients",
        specialty: str = "Cardiology",
        duration_minutes: int = 30,
        transport_booked: bool = False,
        interpreter_booked: bool = False,
        request_state: str = "none",
        sequence: int = 0,
    ) -> int:
        org = await self.organisation_id()
        site = await self.site_id()
        async with self.db.write() as tx:
            return await factories.create_appointment(
                tx,
                organisation_id=org,
                site_id=site,
                patient_id=patient_id,
                now=self.clock.now(),
                starts_at=starts_at,
                ref=ref,
                status=status,
                mode=mode,
                clinic=clinic,
                specialty=specialty,
                duration_minutes=duration_minutes,
                transport_booked=transport_booked,
                interpreter_booked=interpreter_booked,
                request_state=request_state,
                sequence=sequence,
            )

    async def create_slot(
        self,
        *,
        starts_at: datetime,
        ref: str | None = None,
        clinic: str = "Cardiology outpatients",
        clinician: str = "Dr A Example",
        duration_minutes: int = 30,
        mode: str = "in_person",
        status: str = "free",
        appointment_id: int | None = None,
    ) -> int:
        org = await self.organisation_id()
        site = await self.site_id()
        async with self.db.write() as tx:
            return await factories.create_slot(
                tx,
                organisation_id=org,
                site_id=site,
                now=self.clock.now(),
                starts_at=starts_at,
                ref=ref,
                clinic=clinic,
                clinician=clinician,
                duration_minutes=duration_minutes,
                mode=mode,
                status=status,
                appointment_id=appointment_id,
            )

    async def create_letter(
        self,
        *,
        patient_id: int,
        appointment_id: int | None = None,
        title: str = "Your letter",
        content: bytes = factories.PDF,
        kind: str = "appointment_letter",
        replaced_refs: Sequence[str] = (),
    ) -> int:
        org = await self.organisation_id()
        async with self.db.write() as tx:
            return await factories.create_letter(
                tx,
                organisation_id=org,
                patient_id=patient_id,
                now=self.clock.now(),
                appointment_id=appointment_id,
                title=title,
                content=content,
                kind=kind,
                replaced_refs=replaced_refs,
            )

    async def create_message(
        self,
        *,
        kind: str = "invitation",
        channel: str = "sms",
        recipient: str = "+447700900001",
        template_id: str = "t",
        personalisation: dict[str, Any] | None = None,
        patient_id: int | None = None,
        appointment_id: int | None = None,
        lane: str = "bulk",
        status: str = "queued",
        delivery_status: str | None = None,
        notify_id: str | None = None,
        attempts: int = 0,
        sent: bool = False,
        urgent: bool = False,
        templated: bool = False,
    ) -> int:
        """An outbox message, queued now; `sent`: as the worker leaves one it has handed to Notify just now."""
        now = self.clock.now()
        async with self.db.write() as tx:
            return await factories.create_message(
                tx,
                now=now,
                kind=kind,
                channel=channel,
                recipient=recipient,
                template_id=template_id,
                personalisation=personalisation,
                patient_id=patient_id,
                appointment_id=appointment_id,
                lane=lane,
                status="sent" if sent else status,
                delivery_status=delivery_status,
                notify_id=notify_id,
                attempts=attempts,
                sent_at=now if sent else None,
                urgent=urgent,
                templated=templated,
            )

    async def create_task(
        self,
        *,
        patient_id: int,
        kind: str = "rebook",
        appointment_id: int | None = None,
        reason: str = "",
        preferred_times: str = "",
        status: str = "open",
        source_id: int | None = None,
        claimed_by: int | None = None,
        created_at: datetime | None = None,
        not_before: datetime | None = None,
    ) -> int:
        async with self.db.write() as tx:
            return await factories.create_task(
                tx,
                patient_id=patient_id,
                now=created_at or self.clock.now(),
                kind=kind,
                appointment_id=appointment_id,
                reason=reason,
                preferred_times=preferred_times,
                status=status,
                source_id=source_id,
                claimed_by=claimed_by,
                claimed_until=self.clock.now() + timedelta(minutes=30) if claimed_by else None,
                not_before=not_before,
            )

    async def create_staff_user(
        self,
        *,
        username: str = "agent1",
        role: str = "agent",
        password: str | None = None,
        totp_secret: str | None = None,
    ) -> int:
        async with self.db.write() as tx:
            return await factories.create_staff_user(
                tx, now=self.clock.now(), username=username, role=role, password=password, totp_secret=totp_secret
            )

    async def create_api_key(self, *, organisation_code: str = "RAL", name: str = "pas") -> str:
        """An integration API key for the trust (made if there is none yet), as `create-api-key` makes one."""
        await self.organisation_id(organisation_code)
        return await store_api_keys.create_api_key(
            self.db, organisation_code=organisation_code, name=name, now=self.clock.now()
        )

    async def create_scheduled_notice(
        self, *, appointment_id: int, due_at: datetime, kind: str = "reminder_1d", count: int = 1
    ) -> None:
        async with self.db.write() as tx:
            if count == 1:
                await factories.create_scheduled_notice(tx, appointment_id=appointment_id, due_at=due_at, kind=kind)
            else:  # thousands, for the sweep's tests, in one statement
                await factories.create_scheduled_notices(
                    tx, appointment_id=appointment_id, due_at=due_at, kind=kind, count=count
                )

    async def create_inbound_message(
        self,
        *,
        notify_id: str = "in-1",
        patient_id: int | None = None,
        source_number: str = "+447700900001",
        content: str = "Can I come earlier?",
        action: str = "for_booking_centre",
    ) -> int:
        async with self.db.write() as tx:
            return await factories.create_inbound_message(
                tx,
                received_at=self.clock.now(),
                notify_id=notify_id,
                patient_id=patient_id,
                source_number=source_number,
                content=content,
                action=action,
            )

    # Driving the patient journey over HTTP.
    async def send_queued(self) -> int:
        """Send every message that is due now through the dev outbox, as the worker would; returns how many went."""
        notifier = DevNotifier(self.db, self.clock)
        policy = SendPolicy(
            quiet_start=self.settings.notify.quiet_start_hour, quiet_end=self.settings.notify.quiet_end_hour
        )
        sent = 0
        while batch := await drain_once(self.db, notifier, self.clock, policy=policy):
            sent += batch
        return sent

    async def get_page(self, path: str, *, status: int = 200) -> Page:
        """GET a page that must answer `status`, parsed (the client has run the page checks on it)."""
        return await get_page(self.client, path, status=status)

    async def csrf(self, path: str = "/") -> str:
        response = await self.client.get(path)
        match = _CSRF.search(response.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    async def submit_details(self, contact: str, dob: date | str, *, link: str = "") -> httpx.Response:
        born = date.fromisoformat(dob) if isinstance(dob, str) else dob
        start = f"/p/{link}" if link else "/"
        # A signed-in browser is sent on from the start page; its token (one per browser) is on the sign-out form.
        signed_in = (await self.client.get(start)).status_code == 303
        data = {
            "csrf_token": await self.csrf("/sign-out" if signed_in else start),
            "contact": contact,
            "dob-day": str(born.day),
            "dob-month": str(born.month),
            "dob-year": str(born.year),
        }
        if link:
            data["link"] = link
        return await self.client.post("/sign-in", data=data)

    async def sent_codes(self, recipient: str | None = None) -> list[str]:
        """Codes the dev notifier delivered, oldest first."""
        sql = "SELECT personalisation FROM dev_messages WHERE kind = 'security_code'"
        params: tuple[Any, ...] = ()
        if recipient:
            sql += " AND recipient = ?"
            params = (recipient,)
        rows = await self.db.fetch_all(sql + " ORDER BY id", params)
        return [json.loads(r["personalisation"])["code"] for r in rows]

    async def submit_code(self, code: str) -> httpx.Response:
        return await self.client.post(
            "/sign-in/code", data={"csrf_token": await self.csrf("/sign-in/code"), "code": code}
        )

    async def sign_in(self, contact: str = "07700 900001", dob: str = "1948-03-14") -> httpx.Response:
        response = await self.submit_details(contact, dob)
        assert response.status_code == 303, response.text
        codes = await self.sent_codes()
        response = await self.submit_code(codes[-1])
        assert response.status_code == 303 and response.headers["location"] == "/appointments", response.text
        return response

    async def post_form(self, path: str, data: dict[str, str], *, csrf_from: str | None = None) -> httpx.Response:
        token = await self.csrf(csrf_from or path)
        return await self.client.post(path, data={"csrf_token": token, **data})
