"""The PostgreSQL pool hands a connection back without asyncpg's reset query (`hub.db.postgres._keep_session`), so
nothing the hub sends may outlive its transaction on a pooled connection: a plain SET, a session advisory lock, a
LISTEN, a held cursor, a prepared statement by name or a temporary table would carry over to whichever request takes
the connection next. Every SQL string in hub/ (each literal, as Python joins it) and every migration is read for
them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_SESSION_LEVEL = re.compile(
    r"|".join(
        (
            r"(?:^|;)\s*SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)",  # SET LOCAL ends with the transaction
            r"(?:^|;)\s*RESET\s+\w",
            r"\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(",  # the _xact_ kinds end with the transaction
            r"\bset_config\s*\([^)]*,\s*false\s*\)",
            r"(?:^|;)\s*(?:UN)?LISTEN\s+\w",
            r"\bDECLARE\b[^;]*\bWITH\s+HOLD\b",
            r"(?:^|;)\s*PREPARE\s",
            r"\bCREATE\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+TABLE\b(?![^;]*\bON\s+COMMIT\s+DROP\b)",
        )
    ),
    re.IGNORECASE,
)
# asyncpg's own calls that leave state on the connection.
_SESSION_CALLS = {"add_listener", "add_log_listener", "set_type_codec", "set_builtin_type_codec"}


def _session_level(sql: str) -> bool:
    return bool(_SESSION_LEVEL.search(sql))


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Each string literal with its line: an f-string whole (its fields as `x`); not docstrings, nor any string
    standing alone as a statement (nothing sends those)."""
    prose = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    inside = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found = []
    for node in ast.walk(tree):
        if id(node) in prose or id(node) in inside:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(str(part.value) if isinstance(part, ast.Constant) else "x" for part in node.values)
            found.append((node.lineno, text))
    return found


def _python_findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(ROOT)
    found = [f"{where}:{line}: {text.strip()[:80]}" for line, text in _strings(tree) if _session_level(text)]
    found += [
        f"{where}:{node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in _SESSION_CALLS
    ]
    return found


@pytest.mark.parametrize(
    "sql",
    [
        "SET statement_timeout = 0",
        "BEGIN; SET search_path TO other",
        "RESET ALL",
        "SELECT pg_advisory_lock(1, 2)",
        "SELECT pg_try_advisory_lock_shared(7)",
        "SELECT set_config('application_name', 'x', false)",
        "LISTEN outbox",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "PREPARE q AS SELECT 1",
        "CREATE TEMP TABLE scratch (id INTEGER)",
    ],
)
def test_each_kind_of_session_state_is_recognised(sql: str) -> None:
    assert _session_level(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE patients SET mobile = NULL WHERE id = ?",
        "BEGIN; SELECT pg_advisory_xact_lock(1, 2)",
        "SET LOCAL lock_timeout = '5s'",
        "SELECT set_config('application_name', 'x', true)",
        "CREATE TEMP TABLE scratch (id INTEGER) ON COMMIT DROP",
        "INSERT INTO settings (name) VALUES ('reset')",
    ],
)
def test_what_ends_with_its_transaction_is_not(sql: str) -> None:
    assert not _session_level(sql)


def test_the_hub_leaves_nothing_on_a_pooled_connection() -> None:
    found = [finding for path in sorted((ROOT / "hub").rglob("*.py")) for finding in _python_findings(path)]
    found += [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "migrations").glob("*.sql"))
        if _session_level(path.read_text())
    ]
    assert found == []
