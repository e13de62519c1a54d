"""The closed sets in hub/vocabulary.py and the database's CHECK constraints list the same values."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest

from hub import vocabulary as v
from tests.factories import TASKS
from tests.harness import Harness

pytestmark = pytest.mark.anyio

CHECKED = {
    ("patients", "contact_preference"): v.ContactPreference,
    ("appointments", "mode"): v.Mode,
    ("appointments", "status"): v.HospitalStatus,
    ("appointments", "request_state"): v.RequestState,
    ("letters", "kind"): v.LetterKind,
    (TASKS, "kind"): v.TaskKind,
    (TASKS, "status"): v.TaskStatus,
    ("audit_events", "actor_type"): v.ActorType,
    ("outbox_messages", "lane"): v.Lane,
    ("outbox_messages", "channel"): v.Channel,
    ("outbox_messages", "status"): v.MessageStatus,
    ("staff_users", "role"): v.StaffRole,
}
# Checked in SQL, but no value of them travels beyond the store module that writes them.
UNDECLARED = {("staff_sessions", "stage")}
_CHECK = re.compile(r"CHECK\s*\(\s*(\w+)\s+IN\s*\(([^)]*)\)\s*\)", re.IGNORECASE)


async def _checks(hub: Harness) -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the values its CHECK allows, read from the migrated SQLite schema."""
    rows = await hub.db.fetch_all("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL")
    return {
        (row["name"], column): set(re.findall(r"'([^']*)'", values))
        for row in rows
        for column, values in _CHECK.findall(row["sql"])
    }


@pytest.mark.sqlite_only
async def test_every_checked_column_allows_exactly_its_vocabulary(hub: Harness) -> None:
    checks = await _checks(hub)
    for (table, column), values in CHECKED.items():
        assert checks.get((table, column)) == {str(m) for m in values}, f"{table}.{column} and {values.__name__}"


@pytest.mark.sqlite_only
async def test_every_closed_set_the_database_checks_is_declared_in_the_vocabulary(hub: Harness) -> None:
    assert set(await _checks(hub)) - set(CHECKED) == UNDECLARED


def test_a_member_is_its_own_value() -> None:
    for enum in CHECKED.values():
        assert issubclass(enum, StrEnum)
        assert all(member == member.value and f"{member}" == member.value for member in enum)
    assert v.reminder_kind(7) == "reminder_7d"


def test_the_events_table_lists_every_event_kind_once() -> None:
    table = v.event_kinds_markdown().splitlines()
    assert table[:2] == ["| Event kind | From | What it means |", "| --- | --- | --- |"]
    assert [line.split("`")[1] for line in table[2:]] == [str(kind) for kind in v.EVENT_KINDS]
    assert set(v.EVENT_KINDS) == set(v.EventKind)
