"""The benchmarks still run end to end, at a tiny size: nothing here is timed (the figures are the benchmarks'
own business); it catches a bench the code has moved away from, as when the seeded patients had no link ids and
every journey stopped at its calendar file (a 500), unnoticed until the next measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.settings import ROOT
from tests.databases import PG_URL


def _bench(module: str, *args: str, output: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(output.read_text())
    return result


def test_the_journey_bench_completes_every_journey(tmp_path: Path) -> None:
    result = _bench(
        "bench.journey_bench",
        *("--patients", "200", "--appointments", "1000", "--journeys", "10", "--think-journeys", "5"),
        *("--think", "0.05", "--concurrency", "5", "--list-requests", "50", "--rounds", "1", "--stack", "uvicorn"),
        output=tmp_path / "journey.json",
    )
    for run in ("journey_with_reading_time", "journey_at_capacity"):
        measured = result[run]
        assert isinstance(measured, dict)
        assert measured["failures"] == {} and measured["completed"] == measured["journeys"]
    pages = result["list_page_vs_bare_starlette"]
    assert isinstance(pages, dict) and set(pages["stacks"]) == {"uvicorn"}


def test_the_side_by_side_bench_compares_two_checkouts(tmp_path: Path) -> None:
    # This checkout against itself, tiny: both journey benchmarks run and their list pages are read.
    tiny = "--patients 200 --appointments 1000 --journeys 5 --think-journeys 2 --think 0.05 --concurrency 5"
    result = _bench(
        "bench.side_by_side",
        *("--earlier", str(ROOT), "--runs", "1", "--journey-args", f"{tiny} --list-requests 50 --rounds 1"),
        output=tmp_path / "side.json",
    )
    earlier, ours = result["earlier"], result["this_code"]
    assert isinstance(earlier, dict) and isinstance(ours, dict)
    assert earlier["list_pages_per_second"][0] > 0 and ours["list_pages_per_second"][0] > 0
    assert isinstance(result["times_the_earlier"], float)
    [ratio] = ours["ratio_to_the_bare_page_on_the_same_stack"]
    assert isinstance(ratio, float) and ratio > 0


def test_the_burst_bench_signs_everyone_in(tmp_path: Path) -> None:
    result = _bench(
        "bench.burst_bench",
        *("--patients", "20", "--within", "1", "--databases", "sqlite"),
        output=tmp_path / "burst.json",
    )
    configurations = result["configurations"]
    assert isinstance(configurations, dict)
    [run] = configurations["sqlite_1_process"]["runs"]
    assert run["completed"] == 20 and run["errors"] == {}


def test_the_burst_bench_on_postgresql_counts_the_database_servers_cpu(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("HUB_TEST_DATABASE_URL is not set (make test sets it when PostgreSQL answers)")
    result = _bench(
        "bench.burst_bench",
        *("--patients", "20", "--within", "1", "--databases", "postgresql", "--postgres", PG_URL),
        output=tmp_path / "burst.json",
    )
    configurations = result["configurations"]
    assert isinstance(configurations, dict)
    for name in ("postgresql_1_process", "postgresql_2_processes"):
        [run] = configurations[name]["runs"]
        assert run["completed"] == 20 and run["errors"] == {}
        assert run["database_cpu_ms_per_sign_in"] > 0
    extrapolation = result["extrapolation"]
    assert isinstance(extrapolation, dict)
    postgres = extrapolation["postgresql"]
    assert (
        postgres["sixteen_cores_shared_with_the_database_sign_ins_per_second"]
        < (postgres["sixteen_cores_for_the_hub_sign_ins_per_second"])
    )


def test_the_sweep_bench_queues_every_due_reminder(tmp_path: Path) -> None:
    # Its seeded patients lacked link ids too: every due reminder failed to build its link.
    result = _bench("bench.sweep_bench", "--sizes", "2000", "--due", "50", output=tmp_path / "sweep.json")
    runs = result["runs"]
    assert isinstance(runs, list)
    [run] = runs
    assert run["handled"] == run["messages_queued"] == 50
