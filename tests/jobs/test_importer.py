"""python -m hub import FILE.csv: each row whole or not at all, rejected rows reported, the same file twice a no-op."""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.jobs.importer import COLUMNS, REQUIRED, Report, import_csv, import_file, row_bodies
from hub.settings import ROOT
from tests import factories
from tests.conftest import SECRET
from tests.harness import Harness

pytestmark = pytest.mark.anyio

TABLES = ("sites", "patients", "appointments", "outbox_messages", "events")


def row(n: int = 1, **fields: str) -> dict[str, str]:
    return {
        "appointment_ref": f"A{n}",
        "patient_ref": f"MRN{n}",
        "nhs_number": "9434765919",
        "given_name": "Margaret",
        "family_name": f"Jones{n}",
        "date_of_birth": "1948-03-14",
        "mobile": f"07700 900{n:03d}",
        "email": "",
        "address_line_1": "1 Pond Street",
        "address_line_2": "London",
        "postcode": "NW3 2QG",
        "contact_preference": "",
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr A Example",
        "start": f"2026-12-{1 + n % 28:02d}T09:30:00+00:00",
        "duration_minutes": "30",
        "mode": "in_person",
        "status": "booked",
        "transport_booked": "no",
        "interpreter_booked": "",
        **fields,
    }


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


async def run_import(hub: Harness, path: Path) -> Report:
    return await import_file(hub.db, path, organisation_code="RAL", settings=hub.settings, clock=hub.clock)


async def snapshot(hub: Harness) -> dict[str, list[dict[str, Any]]]:
    return {table: await hub.db.fetch_all(f"SELECT * FROM {table} ORDER BY id") for table in TABLES}


async def changes_audited(hub: Harness) -> int:
    found = await hub.db.fetch_one(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE '%created' OR action LIKE '%updated'"
    )
    assert found is not None
    return int(found["n"])


@pytest.fixture
async def trust(hub: Harness) -> Harness:
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    return hub


async def test_import_creates_patients_and_appointments_and_queues_invitations(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1), row(2), row(3, status="cancelled")])
    report = await run_import(trust, path)
    assert (report.rows, dict(report.outcomes), report.rejected) == (3, {"created": 3}, [])

    patients = await trust.db.fetch_all("SELECT mrn, mobile, postcode, address_lines FROM patients ORDER BY mrn")
    assert [(p["mrn"], p["mobile"]) for p in patients] == [
        ("MRN1", "+447700900001"),
        ("MRN2", "+447700900002"),
        ("MRN3", "+447700900003"),
    ]
    assert patients[0]["address_lines"] == '["1 Pond Street", "London"]'
    appointments = await trust.db.fetch_all("SELECT ref, status, starts_at FROM appointments ORDER BY ref")
    assert [(a["ref"], a["status"]) for a in appointments] == [("A1", "booked"), ("A2", "booked"), ("A3", "cancelled")]
    assert appointments[0]["starts_at"] == "2026-12-02T09:30:00.000000Z"
    messages = await trust.db.fetch_all("SELECT kind, channel, recipient FROM outbox_messages ORDER BY id")
    assert messages == [
        {"kind": "invitation", "channel": "sms", "recipient": "+447700900001"},
        {"kind": "invitation", "channel": "sms", "recipient": "+447700900002"},
    ]
    actors = await trust.db.fetch_all("SELECT DISTINCT actor_type, actor_id FROM audit_events")
    assert actors == [{"actor_type": "api_key", "actor_id": "csv-import"}]


async def test_the_same_file_twice_changes_nothing(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(n) for n in range(1, 6)])
    await run_import(trust, path)
    before, audited = await snapshot(trust), await changes_audited(trust)
    trust.clock.advance(days=1)
    report = await run_import(trust, path)
    assert (report.rows, dict(report.outcomes), report.rejected) == (5, {"unchanged": 5}, [])
    assert await snapshot(trust) == before
    assert await changes_audited(trust) == audited


async def test_next_nights_extract_sends_only_what_changed(trust: Harness, tmp_path: Path) -> None:
    await run_import(trust, write_csv(tmp_path / "monday.csv", [row(1), row(2), row(3)]))
    await trust.send_queued()  # Monday's invitations went out during the day
    tuesday = [row(1), row(2, start="2026-12-20T14:00:00+00:00"), row(3, status="cancelled"), row(4)]
    report = await run_import(trust, write_csv(tmp_path / "tuesday.csv", tuesday))
    assert dict(report.outcomes) == {"unchanged": 1, "updated": 2, "created": 1}
    messages = await trust.db.fetch_all(
        "SELECT o.kind, a.ref FROM outbox_messages o JOIN appointments a ON a.id = o.appointment_id ORDER BY o.id"
    )
    assert [(m["kind"], m["ref"]) for m in messages][3:] == [
        ("changed", "A2"),
        ("cancelled", "A3"),
        ("invitation", "A4"),
    ]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"nhs_number": "9434765918"}, "nhs_number must be a valid 10-digit NHS number"),
        ({"site_code": "NOWHERE"}, "site_code no site with this code in your organisation"),
        ({"start": "2026-12-03T09:30:00"}, "start must include a UTC offset, like +00:00 or +01:00"),
        ({"start": ""}, "start is required"),
        ({"mobile": "020 7946 0000"}, "mobile must be a UK mobile number"),
        ({"date_of_birth": "14/03/1948"}, "date_of_birth must be a date like 1984-03-15"),
        ({"duration_minutes": "half an hour"}, "duration_minutes must be a whole number from 1 to 1440"),
        ({"duration_minutes": "0"}, "duration_minutes must be a whole number from 1 to 1440"),
        ({"mode": "carrier pigeon"}, "mode must be one of: in_person, telephone, video"),
        ({"status": "Booked"}, "status must be one of: booked, cancelled, attended, did_not_attend"),
        ({"transport_booked": "maybe"}, "transport_booked must be true or false"),
        ({"appointment_ref": "A 2"}, "appointment_ref must be 1 to 64 letters, digits, dots, dashes or underscores"),
        (
            {"patient_ref": ""},
            "patient_ref must be 1 to 64 letters, digits, dots, dashes or underscores; patient_ref is required",
        ),
        ({"postcode": "ZZ"}, "postal_address.postcode must be a UK postcode"),
    ],
)
async def test_a_bad_row_is_reported_by_line_and_leaves_nothing_behind(
    trust: Harness, tmp_path: Path, fields: dict[str, str], reason: str
) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1), row(2, **fields), row(3)])
    report = await run_import(trust, path)
    assert report.rows == 3
    assert dict(report.outcomes) == {"created": 2}
    assert report.rejected == [(3, reason)]
    assert [r["mrn"] for r in await trust.db.fetch_all("SELECT mrn FROM patients ORDER BY mrn")] == ["MRN1", "MRN3"]
    assert [r["ref"] for r in await trust.db.fetch_all("SELECT ref FROM appointments ORDER BY ref")] == ["A1", "A3"]
    assert len(await trust.db.fetch_all("SELECT id FROM outbox_messages")) == 2


async def test_a_row_with_a_good_patient_but_unknown_site_does_not_change_the_patient(
    trust: Harness, tmp_path: Path
) -> None:
    await run_import(trust, write_csv(tmp_path / "monday.csv", [row(1)]))
    before = await snapshot(trust)
    # The patient half is valid and changed; the appointment half is refused: neither goes in.
    bad = row(1, family_name="Smith", site_code="NOWHERE")
    report = await run_import(trust, write_csv(tmp_path / "tuesday.csv", [bad]))
    assert report.rejected == [(2, "site_code no site with this code in your organisation")]
    assert await snapshot(trust) == before


async def test_every_problem_in_a_row_is_reported(trust: Harness, tmp_path: Path) -> None:
    bad = row(1, nhs_number="123", mobile="020 7946 0000", start="tomorrow", mode="", status="gone")
    report = await run_import(trust, write_csv(tmp_path / "extract.csv", [bad]))
    [(line, reason)] = report.rejected
    assert line == 2
    for expected in ("nhs_number ", "mobile ", "start ", "status "):
        assert expected in reason
    assert "mode" not in reason  # empty means the default, in person


async def test_a_duration_of_digits_that_are_not_ascii_is_a_rejected_row(trust: Harness, tmp_path: Path) -> None:
    # "²".isdigit() is true but int("²") raises: the whole import stopped with a ValueError.
    report = await run_import(trust, write_csv(tmp_path / "extract.csv", [row(1, duration_minutes="²"), row(2)]))
    assert report.rejected == [(2, "duration_minutes must be a whole number from 1 to 1440")]
    assert dict(report.outcomes) == {"created": 1}


async def test_line_numbers_count_the_header_and_quoted_newlines(trust: Harness, tmp_path: Path) -> None:
    rows = [row(1, clinic="Cardiology\nouter building"), row(2, nhs_number="1"), row(3), row(4, site_code="X")]
    report = await run_import(trust, write_csv(tmp_path / "extract.csv", rows))
    assert [line for line, _ in report.rejected] == [4, 6]


async def test_file_with_an_unknown_column_is_refused(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)], [*COLUMNS, "favourite_colour"])
    with pytest.raises(ValueError, match="unknown column favourite_colour"):
        await run_import(trust, path)
    assert await trust.db.fetch_all("SELECT id FROM patients") == []


@pytest.mark.parametrize("missing", REQUIRED)
async def test_file_without_a_required_column_is_refused(trust: Harness, tmp_path: Path, missing: str) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)], [c for c in COLUMNS if c != missing])
    with pytest.raises(ValueError, match=f"the CSV has no column {missing} "):
        await run_import(trust, path)
    assert await trust.db.fetch_all("SELECT id FROM patients") == []


async def test_optional_columns_may_be_left_out(trust: Harness, tmp_path: Path) -> None:
    report = await run_import(trust, write_csv(tmp_path / "extract.csv", [row(1)], REQUIRED))
    assert dict(report.outcomes) == {"created": 1}
    # No contact details in the file, and no address either: nothing can be sent, and nothing claims to have been.
    assert await trust.db.fetch_all("SELECT id FROM outbox_messages") == []
    task = await trust.db.fetch_one("SELECT kind FROM tasks")
    event = await trust.db.fetch_one("SELECT kind, data FROM events")
    assert task == {"kind": "no_postal_address"}
    assert event is not None and event["kind"] == "letter.not_posted" and '"kind": "invitation"' in event["data"]


async def test_row_with_more_cells_than_columns_is_rejected(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)])
    with path.open("a", encoding="utf-8") as out:
        out.write(",".join(row(2).get(c, "") for c in COLUMNS) + ",extra\n")
    report = await run_import(trust, path)
    assert report.rejected == [(3, "more cells than columns")]
    assert dict(report.outcomes) == {"created": 1}


async def test_unknown_organisation_is_refused(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)])
    with pytest.raises(ValueError, match="no organisation with code NOPE"):
        await import_file(trust.db, path, organisation_code="NOPE", settings=trust.settings, clock=trust.clock)


async def test_byte_order_mark_from_spreadsheets_is_ignored(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = await run_import(trust, path)
    assert dict(report.outcomes) == {"created": 1}


async def test_import_is_scoped_to_the_trust(trust: Harness, tmp_path: Path) -> None:
    other = await trust.create_organisation(code="RVL")
    source = io.StringIO()
    writer = csv.DictWriter(source, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerow(row(1))
    source.seek(0)
    report = await import_csv(
        trust.db, source, organisation_id=other, settings=trust.settings, clock=trust.clock, actor="rvl-import"
    )
    # RFH is the first trust's site: the other trust's extract cannot book into it.
    assert report.rejected == [(2, "site_code no site with this code in your organisation")]
    assert await trust.db.fetch_all("SELECT id FROM patients") == []


def test_row_bodies_read_flags_and_blank_cells() -> None:
    patient, appointment = row_bodies(row(1, transport_booked="Yes", interpreter_booked="0", email=""))
    assert (appointment["transport_booked"], appointment["interpreter_booked"]) == (True, False)
    assert appointment["duration_minutes"] == 30
    assert patient["email"] is None
    assert patient["postal_address"] == {"lines": ["1 Pond Street", "London"], "postcode": "NW3 2QG"}
    patient, _ = row_bodies(row(1, address_line_1="", address_line_2="", postcode=""))
    assert patient["postal_address"] is None
    _, appointment = row_bodies(row(1, transport_booked="maybe"))
    assert appointment["transport_booked"] == "maybe"  # for validate_appointment to refuse, once


def run_hub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_NOTIFY_API_KEY": "x",
    }
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_command_line_prints_the_summary_and_the_rejected_lines(trust: Harness, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1), row(2, nhs_number="1234567890"), row(3, site_code="X")])
    done = run_hub(trust.database_url, "import", str(path), "--org", "RAL")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "3 rows: 1 created, 2 rejected",
        "  line 3: nhs_number must be a valid 10-digit NHS number",
        "  line 4: site_code no site with this code in your organisation",
    ]
    assert "[" not in done.stderr  # no progress bar when stderr is not a terminal

    done = run_hub(
        trust.database_url, "import", str(write_csv(tmp_path / "good.csv", [row(1), row(2)])), "--org", "RAL"
    )
    assert (done.returncode, done.stdout) == (0, "2 rows: 1 created, 1 unchanged, 0 rejected\n"), done.stderr
    rows = await trust.db.fetch_all("SELECT ref FROM appointments ORDER BY ref")
    assert [r["ref"] for r in rows] == ["A1", "A2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "NOPE"], "Error: no organisation with code NOPE"),
        (["--org", "RAL", "--extra"], "unrecognized arguments"),
    ],
)
async def test_command_line_refuses_bad_arguments(
    trust: Harness, tmp_path: Path, args: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "extract.csv", [row(1)])
    done = run_hub(trust.database_url, "import", str(path), *args)
    assert done.returncode == 2
    assert message in done.stderr


async def test_command_line_refuses_a_missing_file_or_bad_columns(trust: Harness, tmp_path: Path) -> None:
    done = run_hub(trust.database_url, "import", str(tmp_path / "missing.csv"), "--org", "RAL")
    assert done.returncode == 2
    assert "Error: " in done.stderr and "missing.csv" in done.stderr
    path = write_csv(tmp_path / "extract.csv", [row(1)], [c for c in COLUMNS if c != "start"])
    done = run_hub(trust.database_url, "import", str(path), "--org", "RAL")
    assert done.returncode == 2
    assert "Error: the CSV has no column start" in done.stderr
    path.write_bytes(b"appointment_ref\n\xff\xfe\n")
    done = run_hub(trust.database_url, "import", str(path), "--org", "RAL")
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ")
    assert await trust.db.fetch_all("SELECT id FROM patients") == []


def test_progress_bar_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    """The import run with stderr on a pseudo-terminal, as an operator would see it."""
    database = tmp_path / "hub.sqlite3"
    assert run_hub(f"sqlite:///{database}", "migrate").returncode == 0
    assert run_hub(f"sqlite:///{database}", "create-organisation", "--code", "RAL", "--name", "Trust").returncode == 0
    path = write_csv(tmp_path / "extract.csv", [row(n, site_code="X") for n in range(1, 251)])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": f"sqlite:///{database}",
        "HUB_SECRET_KEY": SECRET,
        "HUB_NOTIFY_API_KEY": "x",
    }
    terminal, child_end = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "hub", "import", str(path), "--org", "RAL"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=child_end,
    ) as process:
        os.close(child_end)
        drawn = bytearray()
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert process.stdout is not None
        summary = process.stdout.read().decode()
    os.close(terminal)
    assert process.returncode == 1
    text = drawn.decode()
    assert "100/250 rows" in text and "200/250 rows" in text
    assert "[" + "#" * 30 + "] 250/250 rows" in text
    assert summary.startswith("250 rows: nothing applied, 250 rejected\n")


# The slots file


def slot_row(n: int = 1, **fields: str) -> dict[str, str]:
    return {
        "slot_ref": f"S{n}",
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "clinician": "Dr A Example",
        "start": f"2026-12-{1 + n % 28:02d}T09:30:00+00:00",
        "duration_minutes": "30",
        **fields,
    }


async def test_a_slots_file_is_told_by_its_header_and_applied_as_the_api_would(trust: Harness, tmp_path: Path) -> None:
    columns = ("slot_ref", "site_code", "clinic", "clinician", "start", "duration_minutes", "mode", "status")
    rows = [slot_row(1), slot_row(2, status="blocked"), slot_row(3, duration_minutes="half an hour")]
    path = write_csv(tmp_path / "slots.csv", [*rows, slot_row(4, site_code="NOPE")], columns)
    report = await run_import(trust, path)
    assert report.rows == 4 and report.outcomes == {"created": 2}
    assert [line for line, _ in report.rejected] == [4, 5]
    assert "duration_minutes" in report.rejected[0][1] and "site_code" in report.rejected[1][1]
    slots = await trust.db.fetch_all("SELECT ref, status FROM slots ORDER BY ref")
    assert slots == [{"ref": "S1", "status": "free"}, {"ref": "S2", "status": "blocked"}]
    again = await run_import(trust, path)
    assert again.outcomes == {"unchanged": 2}
    withdrawn = write_csv(tmp_path / "withdrawn.csv", [slot_row(1, status="withdrawn")], columns)
    assert (await run_import(trust, withdrawn)).outcomes == {"updated": 1}
    assert await trust.db.fetch_all("SELECT status FROM slots WHERE ref = 'S1'") == [{"status": "withdrawn"}]
    with pytest.raises(ValueError, match="unknown column colour"):
        await run_import(trust, write_csv(tmp_path / "bad.csv", [slot_row(1)], [*columns, "colour"]))


async def test_each_trusts_extract_lands_at_its_own_site_of_a_shared_code(trust: Harness, tmp_path: Path) -> None:
    await trust.create_site(code="MAIN", name="Royal Free Main")
    other = await trust.create_organisation(code="RVL", name="Other Trust")
    async with trust.db.write() as tx:
        await factories.create_site(tx, organisation_id=other, code="MAIN", name="Other Main")
        await factories.create_site(tx, organisation_id=other, code="ONLYB", name="Only B")
    for org, n in (("RAL", 1), ("RVL", 2)):
        path = write_csv(tmp_path / f"{org}.csv", [row(n, site_code="MAIN")])
        report = await import_file(trust.db, path, organisation_code=org, settings=trust.settings, clock=trust.clock)
        assert report.rejected == [], org
    landed = await trust.db.fetch_all(
        "SELECT a.ref, s.name FROM appointments a JOIN sites s ON s.id = a.site_id ORDER BY a.ref"
    )
    assert landed == [{"ref": "A1", "name": "Royal Free Main"}, {"ref": "A2", "name": "Other Main"}]
    report = await run_import(trust, write_csv(tmp_path / "b.csv", [row(3, site_code="ONLYB")]))  # RAL's extract
    assert len(report.rejected) == 1 and "site_code" in report.rejected[0][1]
