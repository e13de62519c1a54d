"""An appointment's state as its row keeps it: the hub's change and a held update survive the JSON unchanged."""

import json
from datetime import UTC, datetime

from hub.rules.appointments import ChangeKind, HubChange
from hub.store.appointment_state import FACT_COLUMNS, change_from, change_json, facts_from, facts_json
from hub.vocabulary import HospitalStatus
from tests.rules.facts import booked

FACTS = booked(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), transport_booked=True, status=HospitalStatus.CANCELLED)


def test_facts_come_back_from_their_stored_form_unchanged() -> None:
    stored = facts_json(FACTS)
    assert list(stored) == list(FACT_COLUMNS)
    assert stored["starts_at"] == "2026-03-29T00:30:00.000000Z" and stored["transport_booked"] == 1
    assert facts_from(json.loads(json.dumps(stored))) == FACTS


def test_the_hubs_change_comes_back_with_its_kind_facts_and_event() -> None:
    for change in (HubChange(ChangeKind.CANCELLED, FACTS), HubChange(ChangeKind.REBOOKED, FACTS, event_id=42)):
        assert change_from(change_json(change)) == change
    assert change_json(None) is None
    assert change_from(None) is None and change_from("") is None
