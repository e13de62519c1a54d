"""What differs between SQLite and PostgreSQL, smoothed over: placeholders and parameter types."""

from decimal import Decimal

from hub.db.dialect import from_server, numbered, to_server


def test_placeholders_are_numbered_outside_quotes() -> None:
    assert numbered("SELECT ? WHERE a = ? AND b = '?' AND c = ?") == "SELECT $1 WHERE a = $2 AND b = '?' AND c = $3"
    assert numbered('SELECT "odd?name" FROM t WHERE x = ?') == 'SELECT "odd?name" FROM t WHERE x = $1'


def test_parameters_follow_the_server_types_as_sqlite_affinity_would() -> None:
    assert to_server([1, "2", True, None, 3], ["text", "int8", "int4", "int8", "float8"]) == ["1", 2, 1, None, 3.0]
    assert to_server(["not a number"], ["int8"]) == ["not a number"]  # the server refuses it, as it should
    assert [from_server(v) for v in (True, False, Decimal("7"), Decimal("1.5"), "x")] == [1, 0, 7, 1.5, "x"]
