"""The journey bench's CPU ratio from /proc, whose CPU time moves in ticks of 10 ms: a short round can read as no
CPU at all. CI's tiny side-by-side run once read the hub's median as zero and the bench died dividing by it."""

from __future__ import annotations

from bench.journey_bench import cpu_ratio


def _rounds(*cpu_ms: float) -> list[dict[str, float]]:
    return [{"server_cpu_ms_per_request": ms} for ms in cpu_ms]


def test_the_ratio_is_the_baselines_cpu_over_the_hubs() -> None:
    assert cpu_ratio(_rounds(0.1, 0.2, 0.3), _rounds(0.4, 0.3, 0.5)) == 0.5


def test_a_round_too_short_for_procs_ticks_gives_no_ratio_rather_than_a_crash() -> None:
    assert cpu_ratio(_rounds(0.2), _rounds(0.0)) is None
    assert cpu_ratio(_rounds(0.0), _rounds(0.2)) is None
