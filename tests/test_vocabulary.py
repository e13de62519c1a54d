"""The vocabulary is the one copy of every closed set: the schema's CHECK constraints, the README's event table and
the label dicts must all agree with it."""

from __future__ import annotations

import re
from enum import StrEnum

from hub.db.dialect import SQLITE
from hub.db.migrate import migration_files, statements
from hub.settings import ROOT
from hub.vocabulary import (
    API_CALL_REJECTED,
    API_CALL_UNCHANGED,
    CANCEL_REASON_LABELS,
    CHANNEL_LABELS,
    ESCALATION_PREFIX,
    ESCALATION_STEPS,
    EVENT_KINDS,
    HOSPITAL_STATUS_LABELS,
    LETTER_KIND_LABELS,
    MESSAGE_KIND_LABELS,
    MODE_LABELS,
    REMINDER_PREFIX,
    REQUEST_STATE_LABELS,
    TASK_KIND_LABELS,
    TASK_OUTCOME_LABELS,
    ActorType,
    AuditAction,
    CancelReason,
    Channel,
    ContactPreference,
    EventKind,
    HospitalStatus,
    Lane,
    LetterKind,
    MessageKind,
    MessageStatus,
    Mode,
    OfferStatus,
    RecordResource,
    RequestState,
    SlotMoveHow,
    SlotStatus,
    StaffRole,
    StaffSessionStage,
    TaskKind,
    TaskOutcome,
    TaskStatus,
    event_kinds_markdown,
    reminder_days,
    reminder_kind,
)

# Every column the migrations constrain to a list of values, and the enum that declares them.
SCHEMA_ENUMS: dict[tuple[str, str], type[StrEnum]] = {
    ("patients", "contact_preference"): ContactPreference,
    ("appointments", "mode"): Mode,
    ("appointments", "status"): HospitalStatus,
    ("appointments", "request_state"): RequestState,
    ("letters", "kind"): LetterKind,
    ("tasks", "kind"): TaskKind,
    ("tasks", "status"): TaskStatus,
    ("audit_events", "actor_type"): ActorType,
    ("outbox_messages", "lane"): Lane,
    ("outbox_messages", "channel"): Channel,
    ("outbox_messages", "status"): MessageStatus,
    ("staff_users", "role"): StaffRole,
    ("staff_sessions", "stage"): StaffSessionStage,
    ("record_service_numbers", "resource"): RecordResource,
    ("slots", "mode"): Mode,
    ("slots", "status"): SlotStatus,
    ("slot_moves", "how"): SlotMoveHow,
    ("slot_offers", "status"): OfferStatus,
}

_CREATE = re.compile(r"CREATE TABLE (\w+) \((.*)\)$", re.DOTALL)
_ADD = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (.*)$", re.DOTALL)
_RENAME = re.compile(r"ALTER TABLE (\w+) RENAME TO (\w+)$")
_DROP = re.compile(r"DROP TABLE (\w+)$")
_CHECK_IN = re.compile(r"^(\w+)\s.*\bCHECK\s*\(\s*(\w+)\s+IN\s*\(([^)]*)\)\s*\)", re.DOTALL)


def _columns(body: str) -> list[str]:
    """A CREATE TABLE's definitions, split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
    parts.append(body[start:].strip())
    return parts


def _check(definition: str) -> tuple[str, list[str]] | None:
    match = _CHECK_IN.match(definition)
    if match is None:
        return None
    column, checked, values = match.groups()
    assert column == checked, f"a CHECK on {column} tests {checked}"
    return column, [v.strip().strip("'") for v in values.split(",")]


def schema_checks() -> dict[tuple[str, str], list[str]]:
    """What the migrations, applied in order, leave each constrained column allowed to hold."""
    checks: dict[tuple[str, str], list[str]] = {}
    for _, path in migration_files():
        for statement in statements(path.read_text(encoding="utf-8"), SQLITE):
            statement = " ".join(statement.split())
            if created := _CREATE.match(statement):
                table, body = created.groups()
                for definition in _columns(body):
                    if found := _check(definition):
                        checks[(table, found[0])] = found[1]
            elif added := _ADD.match(statement):
                if found := _check(added.group(2)):
                    checks[(added.group(1), found[0])] = found[1]
            elif renamed := _RENAME.match(statement):
                old, new = renamed.groups()
                checks = {(new if t == old else t, c): values for (t, c), values in checks.items()}
            elif dropped := _DROP.match(statement):
                checks = {(t, c): values for (t, c), values in checks.items() if t != dropped.group(1)}
    return checks


def test_the_schema_allows_exactly_the_vocabulary() -> None:
    checks = schema_checks()
    assert set(checks) == set(SCHEMA_ENUMS), "a CHECK constraint with no enum, or an enum with no CHECK"
    for column, enum in SCHEMA_ENUMS.items():
        assert sorted(checks[column]) == sorted(enum), column


def test_the_schema_reader_follows_renames_and_rebuilds() -> None:
    # Migration 0005 rebuilt callback_tasks with more kinds; 0006 named it tasks.
    assert ("callback_tasks", "kind") not in schema_checks()
    assert "letter_posted" in schema_checks()[("tasks", "kind")]


def test_readme_holds_exactly_the_generated_table_of_event_kinds() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    header = event_kinds_markdown().splitlines()[0]
    assert readme.count(header) == 1, "README has no table of event kinds, or two"
    start = readme.index(header)
    end = start
    while end < len(readme) and readme[end].startswith("|"):
        end += 1
    assert "\n".join(readme[start:end]) == event_kinds_markdown(), "README's event kinds are out of step"


def test_every_event_kind_is_described_and_every_kind_mentioned_in_readme_exists() -> None:
    assert list(EVENT_KINDS) == list(EventKind)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    mentioned = set(re.findall(r"`((?:appointment|letter|patient|callback|task|notification)\.[a-z_]+)`", readme))
    assert mentioned <= {kind.value for kind in EventKind}


def test_every_label_dict_covers_its_enum() -> None:
    for labels, enum in (
        (HOSPITAL_STATUS_LABELS, HospitalStatus),
        (REQUEST_STATE_LABELS, RequestState),
        (MODE_LABELS, Mode),
        (CANCEL_REASON_LABELS, CancelReason),
        (CHANNEL_LABELS, Channel),
        (TASK_KIND_LABELS, TaskKind),
        (TASK_OUTCOME_LABELS, TaskOutcome),
        (LETTER_KIND_LABELS, LetterKind),
    ):
        assert list(labels) == list(enum), enum.__name__
    assert set(MESSAGE_KIND_LABELS) < set(MessageKind)  # the rest read "About your appointments"
    assert MessageKind.SECURITY_CODE not in MESSAGE_KIND_LABELS


def test_each_api_call_is_audited_with_its_own_action() -> None:
    actions = [*API_CALL_REJECTED.values(), *API_CALL_UNCHANGED.values()]
    assert len(actions) == len(set(actions))
    for call, action in API_CALL_REJECTED.items():
        assert action == AuditAction(f"{call}_rejected")
    for call, action in API_CALL_UNCHANGED.items():
        assert action == AuditAction(f"{call}_unchanged")


def test_scheduled_notice_kinds_share_their_chain_prefix() -> None:
    assert all(step.startswith(ESCALATION_PREFIX) for step in ESCALATION_STEPS)
    assert reminder_kind(7) == "reminder_7d" and reminder_kind(7).startswith(REMINDER_PREFIX)
    assert reminder_days(reminder_kind(14)) == 14


def test_templates_see_every_enum_of_the_vocabulary() -> None:
    """TEMPLATE_ENUMS is built at the end of the module: an enum declared after it would be missing from templates."""
    import inspect

    from hub import vocabulary

    declared = {name for name, value in inspect.getmembers(vocabulary, inspect.isclass) if issubclass(value, StrEnum)}
    assert set(vocabulary.TEMPLATE_ENUMS) == declared - {"StrEnum"}
