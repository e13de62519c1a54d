"""The slot rules: the hospital's slot record, which appointments patients move themselves, the window, the
patient's list by day, and who is offered a freed slot first."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hub.rules.slots import (
    Candidate,
    SelfService,
    Window,
    offer_open,
    offer_order,
    page_number,
    paged_by_day,
    read_slot,
    shown_start,
)

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SLOT = {
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "start": "2026-12-03T09:30:00+00:00",
    "duration_minutes": 30,
}


def test_a_slot_record_is_checked_like_the_rest_of_the_feed() -> None:
    slot, errors = read_slot(SLOT)
    assert errors == [] and slot is not None
    assert slot.values()["status"] == "free" and slot.values()["mode"] == "in_person"
    _, errors = read_slot({**SLOT, "status": "open", "start": "2026-12-03T09:30", "colour": "red"})
    assert sorted(e["field"] for e in errors) == ["colour", "start", "status"]
    _, errors = read_slot({**SLOT, "duration_minutes": 0, "appointment_ref": "bad ref"})
    assert sorted(e["field"] for e in errors) == ["appointment_ref", "duration_minutes"]
    _, errors = read_slot([])
    assert errors == [{"field": "body", "message": "must be a JSON object"}]


def test_self_service_is_per_trust_by_clinic_or_specialty() -> None:
    rules = SelfService.from_settings(["ral:Cardiology outpatients", "RVL:*"], ["RAL: Dermatology"])
    assert rules.allows("RAL", "cardiology outpatients", "Cardiology")
    assert rules.allows("RAL", "Skin clinic", "Dermatology")
    assert rules.allows("RVL", "Anything", "")
    assert not rules.allows("RAL", "Fracture clinic", "Orthopaedics")
    assert not rules.allows("XYZ", "Cardiology outpatients", "")
    assert not SelfService().allows("RAL", "Cardiology outpatients", "Cardiology")


def test_the_window_runs_from_the_cut_off_to_its_last_day() -> None:
    window = Window(cutoff=timedelta(hours=24), days=42)
    assert not window.holds(NOW + timedelta(hours=23), NOW)
    assert window.holds(NOW + timedelta(hours=24), NOW)
    assert window.holds(NOW + timedelta(days=42), NOW)
    assert not window.holds(NOW + timedelta(days=42, minutes=1), NOW)


def test_free_slots_are_paged_by_london_day() -> None:
    # 23:30 UTC in summer is the next day in London; in winter it is the same day.
    starts = [
        datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 7, 1, 23, 30, tzinfo=UTC),
        datetime(2026, 7, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 7, 5, 9, 0, tzinfo=UTC),
    ]
    slots = [{"id": i, "starts_at": s} for i, s in enumerate(starts)]
    first = paged_by_day(slots, page=1, days_per_page=2)
    assert [d.day for d in first.days] == [date(2026, 7, 1), date(2026, 7, 2)]
    assert [len(d.slots) for d in first.days] == [1, 2] and (first.number, first.pages) == (1, 2)
    last = paged_by_day(slots, page=9, days_per_page=2)
    assert [d.day for d in last.days] == [date(2026, 7, 5)] and last.number == 2
    assert paged_by_day([], page=1, days_per_page=2).days == []
    assert [page_number(raw) for raw in ("2", "", "x", "-1", "٣", "9999999")] == [2, 1, 1, 1, 1, 1]


def test_a_freed_slot_is_offered_to_later_appointments_in_the_chosen_order() -> None:
    slot_start = NOW + timedelta(days=5)
    candidates = [
        Candidate(1, NOW + timedelta(days=30), booked_at=NOW - timedelta(days=1)),
        Candidate(2, NOW + timedelta(days=10), booked_at=NOW - timedelta(days=2)),
        Candidate(3, NOW + timedelta(days=3), booked_at=NOW - timedelta(days=90)),  # already earlier
        Candidate(4, NOW + timedelta(days=20), booked_at=NOW - timedelta(days=60)),
    ]
    assert [c.appointment_id for c in offer_order(candidates, slot_start=slot_start, order="earliest")] == [2, 4, 1]
    by_wait = offer_order(candidates, slot_start=slot_start, order="longest_wait")
    assert [c.appointment_id for c in by_wait] == [4, 2, 1]


def test_an_offer_is_open_only_while_it_is_earlier_than_a_booked_appointment() -> None:
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    offer = {
        "status": "offered",
        "expires_at": now + timedelta(hours=2),
        "slot_start": datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
        "appointment_start": datetime(2026, 12, 14, 9, 30, tzinfo=UTC),
        "appointment_status": "booked",
    }
    assert offer_open(offer, now=now)
    assert not offer_open({**offer, "appointment_start": offer["slot_start"]}, now=now)  # moved to that very time
    assert not offer_open({**offer, "appointment_start": datetime(2026, 11, 24, 9, 30, tzinfo=UTC)}, now=now)
    assert not offer_open({**offer, "appointment_status": "cancelled"}, now=now)
    assert not offer_open({**offer, "status": "declined"}, now=now)
    assert not offer_open(offer, now=now + timedelta(hours=2))


def test_the_time_a_page_showed_is_read_only_with_its_offset() -> None:
    assert shown_start("2026-11-24T09:00:00+00:00") == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert shown_start("2026-11-24T09:00:00") is None  # no offset: not the value the page wrote
    assert shown_start("9am Tuesday") is None and shown_start("") is None
