"""A hub on a fresh database, an HTTP client for it (checking every page it gets), and keyword-only factories."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from hub.clock import FixedClock, to_db
from hub.db import Database
from hub.settings import Settings
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

    # Factories: test data straight into the tables, as the hospital's feed would leave it.
    async def create_organisation(
        self, *, code: str = "RAL", name: str = "Test Trust", phone: str = "020 7000 0000"
    ) -> int:
        async with self.db.write() as tx:
            row = await tx.fetch_one(
                "INSERT INTO organisations (code, name, phone) VALUES (?, ?, ?) RETURNING id", (code, name, phone)
            )
        assert row
        return int(row["id"])

    async def organisation_id(self) -> int:
        row = await self.db.fetch_one("SELECT id FROM organisations ORDER BY id LIMIT 1")
        return int(row["id"]) if row else await self.create_organisation()

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
            row = await tx.fetch_one(
                "INSERT INTO sites (organisation_id, code, name, address, postcode, latitude, longitude, directions,"
                " parking, phone, map_file) VALUES (?, ?, ?, 'Pond Street, London', 'NW3 2QG', ?, ?, 'Walk.',"
                " 'Car park.', '020 7794 0500', ?) RETURNING id",
                (org, code, name, latitude, longitude, map_file),
            )
        assert row
        return int(row["id"])

    async def site_id(self) -> int:
        row = await self.db.fetch_one("SELECT id FROM sites ORDER BY id LIMIT 1")
        return int(row["id"]) if row else await self.create_site()

    async def create_patient(
        self,
        *,
        mrn: str | None = None,
        given_name: str = "Margaret",
        family_name: str = "Jones",
        dob: str = "1948-03-14",
        mobile: str | None = "+447700900001",
        email: str | None = None,
        verification_code: str = "MJ4K7Q",
        contact_preference: str = "sms",
    ) -> int:
        org = await self.organisation_id()
        stamp = to_db(self.clock.now())
        async with self.db.write() as tx:
            count = await tx.fetch_one("SELECT COUNT(*) AS n FROM patients")
            assert count is not None
            row = await tx.fetch_one(
                "INSERT INTO patients (organisation_id, mrn, given_name, family_name, date_of_birth, mobile, email,"
                " verification_code, contact_preference, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    org,
                    mrn or f"MRN{count['n'] + 1:05d}",
                    given_name,
                    family_name,
                    dob,
                    mobile,
                    email,
                    verification_code,
                    contact_preference,
                    stamp,
                    stamp,
                ),
            )
        assert row
        return int(row["id"])

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
        start = starts_at or self.clock.now() + timedelta(days=10)
        stamp = to_db(self.clock.now())
        async with self.db.write() as tx:
            count = await tx.fetch_one("SELECT COUNT(*) AS n FROM appointments")
            assert count is not None
            row = await tx.fetch_one(
                "INSERT INTO appointments (organisation_id, ref, patient_id, site_id, clinic, specialty, clinician,"
                " starts_at, duration_minutes, mode, transport_booked, interpreter_booked, status, request_state,"
                " sequence, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'Dr A Example', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    org,
                    ref or f"A{count['n'] + 1:05d}",
                    patient_id,
                    site,
                    clinic,
                    specialty,
                    to_db(start),
                    duration_minutes,
                    mode,
                    int(transport_booked),
                    int(interpreter_booked),
                    status,
                    request_state,
                    sequence,
                    stamp,
                    stamp,
                ),
            )
        assert row
        return int(row["id"])

    async def create_letter(
        self,
        *,
        patient_id: int,
        appointment_id: int | None = None,
        title: str = "Your letter",
        content: bytes = b"%PDF-1.4\n%%EOF\n",
        kind: str = "appointment_letter",
    ) -> int:
        org = await self.organisation_id()
        async with self.db.write() as tx:
            count = await tx.fetch_one("SELECT COUNT(*) AS n FROM letters")
            assert count is not None
            row = await tx.fetch_one(
                "INSERT INTO letters (organisation_id, ref, patient_id, appointment_id, kind, title, content,"
                " size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    org,
                    f"L{count['n'] + 1:05d}",
                    patient_id,
                    appointment_id,
                    kind,
                    title,
                    content,
                    len(content),
                    to_db(self.clock.now()),
                ),
            )
        assert row
        return int(row["id"])

    # Driving the patient journey over HTTP.
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
        data = {
            "csrf_token": await self.csrf(f"/p/{link}" if link else "/"),
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
